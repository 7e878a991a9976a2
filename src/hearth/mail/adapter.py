"""The ``mail`` check: Gmail over OAuth, a generic IMAP login, or both.

Each way in is checked when any of its variables is set; one set only in part is reported
as ``unreachable`` naming what is missing, so a forgotten secret file does not read as
"mail is off". With neither, the check is ``unconfigured``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hearth.kit.checks import CheckResult
from hearth.mail import gmail, imap
from hearth.mail.imap import TlsMode

if TYPE_CHECKING:
    import httpx


class MailCheck(Protocol):
    """One way in to the mailbox, checked on its own."""

    async def check(self) -> CheckResult:
        """``ok``, or ``unreachable`` saying why; never raises."""
        ...


class Incomplete:
    """Stands in for a way in configured only in part: always ``unreachable``."""

    def __init__(self, name: str, values: dict[str, str | None]) -> None:
        self.name = name
        self.present = [variable for variable, value in values.items() if value]
        self.missing = [variable for variable, value in values.items() if not value]

    def __repr__(self) -> str:
        return f"Incomplete({self.name!r}, missing={self.missing!r})"

    async def check(self) -> CheckResult:
        """``unreachable``, naming the variables still to set (never their values)."""
        missing, present = _words(self.missing), _words(self.present)
        verb = "is" if len(self.missing) == 1 else "are"
        detail = f"{self.name} is configured in part: {missing} {verb} not set ({present} set)"
        return CheckResult(status="unreachable", detail=detail)


class MailAdapter:
    """The ``mail`` health check over whichever ways in are configured.

    Secrets are plain strings here (pass ``SecretStr.get_secret_value()``); they never
    appear in ``repr`` or a detail. ``http_client`` is called once, and only when Gmail is
    configured, so a Hearth without Gmail never builds an HTTP client for it.
    """

    def __init__(  # noqa: PLR0913 (the mail settings, keyword-only)
        self,
        http_client: Callable[[], httpx.AsyncClient],
        *,
        gmail_client_id: str | None = None,
        gmail_client_secret: str | None = None,
        gmail_refresh_token: str | None = None,
        imap_host: str | None = None,
        imap_user: str | None = None,
        imap_password: str | None = None,
        imap_port: int | None = None,
        imap_tls: TlsMode = "ssl",
        imap_ca_file: str | Path | None = None,
        token_url: str = gmail.GOOGLE_TOKEN_URL,
        timeout: float = gmail.TIMEOUT_SECONDS,
    ) -> None:
        self.parts: dict[str, MailCheck] = {}
        oauth = {
            "GMAIL_CLIENT_ID": gmail_client_id,
            "GMAIL_CLIENT_SECRET": gmail_client_secret,
            "GMAIL_REFRESH_TOKEN": gmail_refresh_token,
        }
        if gmail_client_id and gmail_client_secret and gmail_refresh_token:
            self.parts["Gmail"] = gmail.GmailOAuthAdapter(
                http_client(),
                gmail_client_id,
                gmail_client_secret,
                gmail_refresh_token,
                token_url=token_url,
                timeout=timeout,
            )
        elif any(oauth.values()):
            self.parts["Gmail"] = Incomplete("Gmail OAuth", oauth)

        login = {"IMAP_HOST": imap_host, "IMAP_USER": imap_user, "IMAP_PASSWORD": imap_password}
        if imap_host and imap_user and imap_password:
            self.parts["IMAP"] = imap.ImapAdapter(
                imap_host,
                imap_user,
                imap_password,
                port=imap_port,
                tls=imap_tls,
                ca_file=imap_ca_file,
                timeout=timeout,
            )
        elif any(login.values()):
            self.parts["IMAP"] = Incomplete("IMAP", login)

    def __repr__(self) -> str:
        return f"MailAdapter({self.parts!r})"

    async def check(self) -> CheckResult:
        """``ok`` when every configured way in works; ``unreachable`` when one does not
        (the detail covers each); ``unconfigured`` when none is set. Never raises."""
        if not self.parts:
            detail = (
                f"no mail account: set {_words(gmail.VARIABLES)} for Gmail, "
                f"or {_words(imap.VARIABLES)} for IMAP"
            )
            return CheckResult(status="unconfigured", detail=detail)
        started = time.perf_counter()
        results = await asyncio.gather(*(part.check() for part in self.parts.values()))
        if len(results) == 1:
            return results[0]
        ok = all(result.status == "ok" for result in results)
        detail = "; ".join(
            f"{name}: {r.detail}" for name, r in zip(self.parts, results, strict=True)
        )
        return CheckResult.timed("ok" if ok else "unreachable", detail, started)


def _words(names: list[str] | tuple[str, ...]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
