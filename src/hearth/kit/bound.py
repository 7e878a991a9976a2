"""A secret bound to the one server its deployment named: sent there, withheld elsewhere.

An API key travels with requests to a URL, and the operator console can change that URL.
Binding the key to the origin (scheme, host, port) given with it in the deployment files
means no console or API action can send the key to a server of the caller's choosing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from hearth.kit.urls import origin


@dataclass(frozen=True)
class KeyUse:
    """Whether a secret goes with requests to one URL, and a sentence saying why."""

    sent: bool
    reason: str


@dataclass(frozen=True)
class BoundSecret:
    """``value`` (the secret named ``name``), which may be sent to ``origin`` only.

    ``bound_by`` names the setting that gave the origin; ``bind_with`` the settings that
    could give one, for the message when none did (``origin`` is then None).
    """

    name: str
    value: SecretStr | None
    origin: str | None
    bound_by: str
    bind_with: str

    @property
    def configured(self) -> bool:
        """A secret is set (it may still be sent nowhere)."""
        return self.value is not None and bool(self.value.get_secret_value())

    @property
    def unbound(self) -> bool:
        """A secret is set, and no origin was named with it: it is sent nowhere."""
        return self.configured and self.origin is None

    def use_for(self, url: str) -> KeyUse | None:
        """Whether the secret may go with requests to ``url``; None when no secret is set."""
        if not self.configured:
            return None
        if self.origin is None:
            return KeyUse(
                sent=False,
                reason=f"{self.name} is withheld: no {self.bind_with} in the environment "
                "names the server it may be sent to",
            )
        try:
            destination = origin(url)
        except ValueError:
            destination = "an unusable URL"
        if destination != self.origin:
            return KeyUse(
                sent=False,
                reason=f"{self.name} is withheld from {destination}: it may be sent only to "
                f"{self.origin} (named by {self.bound_by} in the environment)",
            )
        return KeyUse(
            sent=True,
            reason=f"{self.name} is sent to this server: it is bound to {self.origin} "
            f"by {self.bound_by} in the environment",
        )

    def for_url(self, url: str) -> str | None:
        """The secret's value if it may go with requests to ``url``, else None."""
        use = self.use_for(url)
        if use is None or not use.sent or self.value is None:
            return None
        return self.value.get_secret_value()

    def withheld_from(self, url: str) -> str:
        """Why the secret is not sent to ``url``; empty when it is, or when there is none."""
        use = self.use_for(url)
        return use.reason if use is not None and not use.sent else ""

    @classmethod
    def absent(cls, name: str) -> BoundSecret:
        """No secret at all: nothing is sent anywhere, and nothing is said about it."""
        return cls(name=name, value=None, origin=None, bound_by="", bind_with="")
