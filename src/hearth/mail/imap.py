"""Generic IMAP: the check logs in and out again, over implicit TLS, STARTTLS or plain.

The standard library's ``imaplib`` is blocking, so the login runs in a worker thread; a
socket timeout bounds every step, so the thread ends soon even if the caller gave up.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import ssl
import time
from pathlib import Path
from typing import Literal

from hearth.kit.checks import CheckResult, CheckStatus
from hearth.kit.text import first_line
from hearth.log.redaction import Redactor

TlsMode = Literal["ssl", "starttls", "none"]
TLS_MODES: tuple[TlsMode, ...] = ("ssl", "starttls", "none")
DEFAULT_PORTS: dict[TlsMode, int] = {"ssl": 993, "starttls": 143, "none": 143}
_LABELS: dict[TlsMode, str] = {"ssl": "TLS", "starttls": "STARTTLS", "none": "no TLS"}
TIMEOUT_SECONDS = 5.0

VARIABLES = ("IMAP_HOST", "IMAP_USER", "IMAP_PASSWORD")


# OpenSSL's verification results for a certificate from a CA it does not know.
_UNKNOWN_ISSUER = {
    18,  # self-signed certificate
    19,  # self-signed certificate in certificate chain
    20,  # unable to get local issuer certificate
}
_UNKNOWN_ISSUER_HINT = "; if the server uses a private CA, set IMAP_CA_FILE to its certificate"
# A client expecting a plain greeting and a server expecting a TLS handshake wait forever.
_TLS_AT_ONCE_HINT = " (a port that expects TLS at once, as 993 does, needs IMAP_TLS=ssl)"


class _LoginRefused(Exception):
    """The server answered LOGIN with NO: wrong user or password, or a policy."""


class ImapAdapter:
    """Logs in to an IMAP server as ``user``. ``tls``: ``ssl`` (implicit TLS, port 993 by
    default), ``starttls`` or ``none`` (port 143). ``ca_file`` adds trust in a private CA;
    certificates are always verified."""

    def __init__(  # noqa: PLR0913 (the IMAP settings, keyword-only past the login)
        self,
        host: str,
        user: str,
        password: str,
        *,
        port: int | None = None,
        tls: TlsMode = "ssl",
        ca_file: str | Path | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        self.host = host
        self.user = user
        self._password = password
        self.tls = tls
        self.port = port or DEFAULT_PORTS[tls]
        self.ca_file = Path(ca_file) if ca_file else None
        self.timeout = timeout
        shown_host = f"[{host}]" if ":" in host else host
        self.location = f"{shown_host}:{self.port}"

    def __repr__(self) -> str:
        return f"ImapAdapter({self.user!r} at {self.location}, tls={self.tls!r}, ***)"

    async def check(self) -> CheckResult:
        """``ok`` when LOGIN succeeds (then LOGOUT), else ``unreachable`` saying why: no
        connection, no answer in time, a TLS failure, or the login refused."""
        started = time.perf_counter()
        failure = await self._failure()
        status: CheckStatus = "unreachable" if failure else "ok"
        detail = failure or f"IMAP login as {self.user} at {self.location} ({_LABELS[self.tls]})"
        return CheckResult.timed(status, Redactor([self._password]).scrub_text(detail), started)

    async def _failure(self) -> str | None:
        """Why logging in fails; ``None`` when it succeeds."""
        try:
            context = self._tls_context()
        except OSError as exc:  # ssl.SSLError included: a file that holds no certificate
            return f"IMAP_CA_FILE {self.ca_file} is not usable: {exc.strerror or exc}"
        try:
            await asyncio.to_thread(self._login, context)
        except (_LoginRefused, imaplib.IMAP4.error, OSError, ValueError) as exc:
            return self._reason(exc)
        return None

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.tls == "none":
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _login(self, context: ssl.SSLContext | None) -> None:
        """Blocking: connect, LOGIN, LOGOUT. Runs in a worker thread."""
        connection: imaplib.IMAP4
        if self.tls == "ssl":
            connection = imaplib.IMAP4_SSL(
                self.host, self.port, ssl_context=context, timeout=self.timeout
            )
        else:
            connection = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        try:
            if self.tls == "starttls":
                connection.starttls(ssl_context=context)
            try:
                connection.login(self.user, self._password)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                raise _LoginRefused(_text(exc)) from None
        except BaseException:
            # Close at once: a polite LOGOUT could wait another full timeout.
            connection.shutdown()
            raise
        # Logged in is what the check proves; a lost LOGOUT changes nothing.
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            connection.logout()

    def _reason(self, exc: BaseException) -> str:  # noqa: PLR0911 (one return per kind of failure)
        where = self.location
        if isinstance(exc, _LoginRefused):
            return (
                f"{where} refused the login as {self.user} ({exc}); "
                "check IMAP_USER and IMAP_PASSWORD"
            )
        if isinstance(exc, TimeoutError):
            hint = "" if self.tls == "ssl" else _TLS_AT_ONCE_HINT
            return f"{where} did not answer within {self.timeout:g} s{hint}"
        if isinstance(exc, ConnectionRefusedError):
            return f"{where} refused the connection; is an IMAP server listening there?"
        if isinstance(exc, ssl.SSLCertVerificationError):
            hint = _UNKNOWN_ISSUER_HINT if exc.verify_code in _UNKNOWN_ISSUER else ""
            return f"{where}: TLS certificate not accepted ({exc.verify_message}){hint}"
        if isinstance(exc, ssl.SSLError):
            return (
                f"{where}: TLS failed ({exc.reason or exc}); is IMAP_TLS={self.tls} right for "
                "this port? (ssl is usually port 993, starttls and none 143)"
            )
        if isinstance(exc, UnicodeError):
            return "IMAP_USER or IMAP_PASSWORD holds characters IMAP LOGIN cannot send"
        if isinstance(exc, imaplib.IMAP4.abort):
            return f"{where} broke off the session ({_text(exc)})"
        if isinstance(exc, imaplib.IMAP4.error):
            return f"{where}: {_text(exc)}"
        if isinstance(exc, OSError) and exc.strerror:
            return f"{where}: {exc.strerror}"
        return f"{where}: {first_line(exc)}"


def _text(exc: BaseException) -> str:
    """The server's words in an imaplib error, which carries them as bytes
    (``b'[AUTHENTICATIONFAILED] ...'``)."""
    message = exc.args[0] if exc.args else ""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return str(message) or type(exc).__name__
