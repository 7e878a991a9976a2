"""Gmail over OAuth 2.0: the check exchanges the refresh token for an access token at
Google's token endpoint, which proves the client credentials and the grant are still good."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hearth.kit.checks import CheckResult, CheckStatus
from hearth.kit.text import first_line
from hearth.log.redaction import Redactor

if TYPE_CHECKING:  # httpx is imported when Gmail is checked, not when Hearth starts
    import httpx

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
GOOGLE_CLIENT_SUFFIX = ".apps.googleusercontent.com"
SHOWN_CHARS = 4  # of a client id in a detail, at each end
TIMEOUT_SECONDS = 5.0

VARIABLES = ("GMAIL_CLIENT_ID", "GMAIL_CLIENT_SECRET", "GMAIL_REFRESH_TOKEN")

HOW_TO_RENEW = (
    "it was revoked or has expired (an app in the 'Testing' publishing status gets tokens "
    "that last 7 days); get a new one through the consent flow, for example Google's OAuth "
    "2.0 Playground with your own client and the scope https://mail.google.com/, and set "
    "GMAIL_REFRESH_TOKEN"
)


def short_client_id(client_id: str) -> str:
    """``1234…apps.googleusercontent.com``: enough to tell clients apart in a detail."""
    if client_id.endswith(GOOGLE_CLIENT_SUFFIX):
        return f"{client_id[:SHOWN_CHARS]}…{GOOGLE_CLIENT_SUFFIX[1:]}"
    if len(client_id) <= 2 * SHOWN_CHARS:
        return client_id
    return f"{client_id[:SHOWN_CHARS]}…{client_id[-SHOWN_CHARS:]}"


class GmailOAuthAdapter:
    """Refreshes an OAuth access token for Gmail; ``client`` makes the request."""

    def __init__(  # noqa: PLR0913 (the Gmail settings, then how to reach Google)
        self,
        client: httpx.AsyncClient,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        token_url: str = GOOGLE_TOKEN_URL,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.client = client
        self.client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.token_url = token_url
        self.timeout = timeout
        self.location = urlsplit(token_url).netloc.rpartition("@")[2] or token_url

    def __repr__(self) -> str:
        return f"GmailOAuthAdapter(client_id={short_client_id(self.client_id)!r}, ***)"

    async def check(self) -> CheckResult:
        """``ok`` when the token endpoint hands out an access token, else ``unreachable``
        saying why (refused grant or client, HTTP error, no answer, not the expected JSON)."""
        started = time.perf_counter()
        status, detail = await self._refresh()
        # The access token is never kept, and nothing sent may come back in a detail.
        redactor = Redactor([self._client_secret, self._refresh_token])
        return CheckResult.timed(status, redactor.scrub_text(detail), started)

    async def _refresh(self) -> tuple[CheckStatus, str]:  # noqa: PLR0911 (one return per outcome)
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        import httpx

        try:
            response = await self.client.post(
                self.token_url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.TimeoutException:
            return "unreachable", f"{self.location} did not answer within {self.timeout:g} s"
        except httpx.ConnectError as exc:
            return "unreachable", f"cannot connect to {self.location} ({exc or 'no reason given'})"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return "unreachable", f"{self.location}: {first_line(exc)}"

        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return "unreachable", (
                f"{self.location} answered HTTP {response.status_code} without OAuth JSON; "
                "is this Google's token endpoint?"
            )
        if error := body.get("error"):
            return "unreachable", self._refusal(str(error), body.get("error_description"))
        if response.status_code != HTTPStatus.OK:
            return "unreachable", f"{self.location} answered HTTP {response.status_code}"
        if not isinstance(body.get("access_token"), str) or not body["access_token"]:
            return "unreachable", f"{self.location} answered without an access_token"
        return "ok", f"Gmail OAuth token refreshed for client {short_client_id(self.client_id)}"

    def _refusal(self, error: str, description: object) -> str:
        said = f"{error}: {description}" if description else error
        if error == "invalid_grant":
            return f"Google refused the refresh token ({said}): {HOW_TO_RENEW}"
        if error in ("invalid_client", "unauthorized_client"):
            return (
                f"Google refused the OAuth client {short_client_id(self.client_id)} ({said}); "
                "check GMAIL_CLIENT_ID and GMAIL_CLIENT_SECRET"
            )
        return f"{self.location} refused the token refresh ({said})"
