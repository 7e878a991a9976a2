"""Infrastructure settings: environment, ``.env`` and secret files, checked once at start-up.

Precedence, highest first: the process environment, ``NAME_FILE`` variables, the ``.env``
file, systemd credentials (``$CREDENTIALS_DIRECTORY``), Docker secrets (``/run/secrets``, or
``HEARTH_SECRETS_DIR``), then the defaults below.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from hearth.config.allowlist import ALLOWLIST, InvalidValue
from hearth.health.schemas import DetailsPolicy
from hearth.kit.bound import BoundSecret
from hearth.kit.urls import mask_url, normalize_database_url, origin, split_url
from hearth.notify.urls import BadNotifyUrl, split_urls, token_parts

# Written into .env.example so that copying the example without editing it is refused.
SECRET_KEY_PLACEHOLDER = "replace-me-with-the-output-of-hearth-init-0000000000"  # noqa: S105 (a placeholder, refused as a key)
SECRET_KEY_MIN_LENGTH = 32
MCP_TOKEN_MIN_LENGTH = 16
DEFAULT_SECRETS_DIR = Path("/run/secrets")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["auto", "json", "console"]


class UnreadableSecretFile:
    """Stands in for a value whose ``NAME_FILE`` could not be read, so the error is reported
    together with every other bad setting instead of stopping at the first."""

    def __init__(self, variable: str, path: str, reason: str) -> None:
        self.variable = variable
        self.path = path
        self.reason = reason


def env_names(field_name: str, field: FieldInfo) -> list[str]:
    """The environment variable names a field is read from, in order of preference."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice).upper() for choice in alias.choices]
    if isinstance(alias, str):
        return [alias.upper()]
    return [field_name.upper()]


class SecretFileVariablesSource(PydanticBaseSettingsSource):
    """Reads ``NAME_FILE`` variables (the Docker and Kubernetes convention): the value of
    ``NAME`` is the content of the file that ``NAME_FILE`` names, trailing newline removed."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: dict[str, str | None]) -> None:
        super().__init__(settings_cls)
        self._variables = {k.upper(): v for k, v in dotenv.items() if v is not None}
        self._variables.update({k.upper(): v for k, v in os.environ.items()})

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The content of the file a ``NAME_FILE`` variable names for this field, an
        ``UnreadableSecretFile`` saying why it cannot be read, or None when none is set."""
        for name in env_names(field_name, field):
            file_variable = f"{name}_FILE"
            path = self._variables.get(file_variable)
            if not path:
                continue
            try:
                return Path(path).read_text(encoding="utf-8").rstrip("\r\n"), field_name, False
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                return UnreadableSecretFile(file_variable, path, reason), field_name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """Every field that a ``NAME_FILE`` variable sets, with its value."""
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values


def secrets_dirs() -> list[Path]:
    """Existing secret directories, lowest precedence first."""
    candidates = [Path(os.environ.get("HEARTH_SECRETS_DIR") or DEFAULT_SECRETS_DIR)]
    if credentials := os.environ.get("CREDENTIALS_DIRECTORY"):
        candidates.append(Path(credentials))
    return [path for path in candidates if path.is_dir()]


class Settings(BaseSettings):
    """Everything Hearth needs before it can serve. Secrets are ``SecretStr``: they never
    appear in ``repr``, a log line or a page."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    # Security
    secret_key: SecretStr = Field(
        description="Signs sessions and tokens. At least 32 characters; `hearth init` writes one."
    )
    admin_password: SecretStr | None = Field(
        default=None, description="Password of the operator console."
    )
    mcp_token: SecretStr | None = Field(
        default=None,
        description="Bearer token MCP clients must send to /mcp; at least 16 characters. "
        "Unset: the MCP endpoint is off.",
    )

    # Database
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL. Unset: Hearth runs its own embedded PostgreSQL "
        "under HEARTH_DATA_DIR.",
    )
    db_connect_attempts: int = Field(
        default=5, ge=1, le=100, description="Connection attempts at start-up before giving up."
    )
    db_connect_delay_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="First wait between connection attempts; doubles each time, at most 10 s.",
    )
    hearth_data_dir: Path = Field(
        default=Path("data"), description="Where embedded PostgreSQL keeps its files."
    )
    embedded_postgres_recovery_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="How long `hearth serve` keeps restarting an embedded PostgreSQL that "
        "died (waiting 1 s, doubling to 30 s, between tries) before it gives up: /livez "
        "then answers 503 and Hearth exits with status 1, for its supervisor to restart it.",
    )
    migrate_on_start: bool = Field(
        default=True, description="Run database migrations when the server starts."
    )

    # Redis and the worker queue
    redis_url: str | None = Field(
        default=None,
        description="Redis URL, e.g. redis://127.0.0.1:6379/0: the task queue's broker and "
        "results. Unset: the queue lives in PostgreSQL (fine for one machine).",
    )
    worker_concurrency: int = Field(
        default=2, ge=1, le=64, description="Tasks one `hearth worker` runs at once."
    )
    worker_imports: str = Field(
        default="",
        description="Extra task modules the worker loads, comma-separated "
        "(for services built on Hearth).",
    )
    task_visibility_timeout_seconds: int = Field(
        default=3600,
        ge=1,
        description="How long a task taken, but not yet started, by a worker that "
        "died waits before it is delivered again (a started one comes back within two "
        "heartbeat windows). Keep it longer than your longest task.",
    )
    embedded_queue_poll_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Without Redis: how often an idle worker looks at the queue in PostgreSQL "
        "even though no notification came (it wakes on one at once); a lost notification "
        "delays a task this long at most.",
    )
    worker_heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How often a worker reports that it is alive. The tasks of a worker "
        "silent for three reports are handed to the live workers.",
    )
    embedding_sweep_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How often each worker looks for documents still waiting to be embedded "
        "and queues a run for them; also the longest wait between retries of a failed run.",
    )

    # Runtime settings. Normally edited on the config page and kept in the database; set
    # here, in the environment, they win and are locked on the page (see allowlist.py).
    llm_provider: str | None = Field(default=None, description="ollama or openai.")
    llm_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("llm_endpoint", "ollama_base_url"),
        description="Base URL of the LLM server, e.g. http://127.0.0.1:11434 for Ollama "
        "(OLLAMA_BASE_URL is accepted too). Unset: AI features are off.",
    )
    llm_model: str | None = Field(default=None, description="Chat model name.")
    embedding_model: str | None = Field(default=None, description="Embedding model name.")
    event_date: str | None = Field(default=None, description="A date, YYYY-MM-DD.")
    llm_api_key: SecretStr | None = Field(
        default=None,
        description="API key for an OpenAI-compatible server (never stored). It is sent "
        "only to the origin (scheme, host, port) of LLM_ENDPOINT, or of LLM_TRUSTED_ORIGIN.",
    )
    llm_trusted_origin: str | None = Field(
        default=None,
        description="The one origin, scheme://host[:port], LLM_API_KEY may be sent to when "
        "LLM_ENDPOINT is left to the config page, e.g. https://api.openai.com. An endpoint "
        "saved on the page on another origin gets no key.",
    )

    # Mail (the `mail` check): Gmail through OAuth, and/or any IMAP server
    gmail_client_id: str | None = Field(default=None, description="Google OAuth client id.")
    gmail_client_secret: SecretStr | None = Field(
        default=None, description="Google OAuth client secret."
    )
    gmail_refresh_token: SecretStr | None = Field(
        default=None, description="Refresh token, exchanged at Google's token endpoint."
    )
    imap_host: str | None = Field(default=None, description="IMAP server host name.")
    imap_port: int | None = Field(
        default=None, ge=1, le=65535, description="IMAP port; default 993 with ssl, 143 otherwise."
    )
    imap_tls: Literal["ssl", "starttls", "none"] = Field(
        default="ssl", description="ssl (implicit TLS), starttls, or none."
    )
    imap_user: str | None = Field(default=None, description="IMAP login name.")
    imap_password: SecretStr | None = Field(default=None, description="IMAP password.")
    imap_ca_file: Path | None = Field(
        default=None, description="Extra CA bundle to trust for the IMAP server's certificate."
    )

    # Operator console
    session_cookie_secure: bool = Field(
        default=False,
        description="Send the session cookie over HTTPS only. Set true behind a TLS proxy.",
    )
    session_check_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How long a Hearth process trusts an operator session it has confirmed "
        "before asking the database again (the dashboard polls every 15 s). A logout ends the "
        "session at once on the process that handled it; on other replicas within this time.",
    )
    runtime_values_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="How long a Hearth process uses the runtime settings it read from the "
        "database before reading them again; 0, every request reads them. A save on the config "
        "page takes effect at once on the process that saved it; on other replicas, and after "
        "`hearth settings import`, within this time.",
    )
    api_token_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="How long a Hearth process uses an API token it has verified before "
        "asking the database again; 0, every request asks. A token revoked on the Tokens page "
        "or the API is refused at once by the process that revoked it; one revoked with "
        "`hearth token revoke` or on another replica, within this time.",
    )

    # Web server
    host: str = Field(default="127.0.0.1", description="Address `hearth serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `hearth serve` listens on.")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="The reverse proxies whose X-Forwarded-For and X-Forwarded-Proto Hearth "
        "believes, comma-separated addresses or networks (10.0.0.0/8), or * for any peer "
        "(only when nothing but the proxy can reach Hearth); empty, none. The login throttle "
        "keys on the client address this yields; from any other peer the headers are ignored.",
    )
    max_request_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body Hearth reads, in bytes; a larger one is refused "
        "with 413 before it is read. One document of 100 000 characters fits.",
    )
    max_batch_request_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="The same for POST /documents/batch, which takes up to 100 documents.",
    )

    # Logging
    log_level: LogLevel = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: LogFormat = Field(
        default="auto",
        description="json (one JSON object a line), console (readable), or auto: console "
        "on a terminal, json otherwise.",
    )
    service_name: str = Field(
        default="hearth", description="The `service` field of every log line."
    )
    log_repeat_limit: int = Field(
        default=5,
        ge=0,
        description="How many times the same warning or error (same logger, event or "
        "message template, exception type, client address) is written per "
        "LOG_REPEAT_WINDOW_SECONDS; the rest are counted and summed up in one "
        "`log_repeats_suppressed` line. 0 writes every line.",
    )
    log_repeat_window_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="The window LOG_REPEAT_LIMIT counts in.",
    )

    # Health
    health_budget_seconds: float = Field(
        default=2.0, gt=0, le=30, description="Longest time a health request waits for checks."
    )
    health_cache_seconds: float = Field(
        default=2.0, ge=0, le=300, description="How long a check result is reused."
    )
    health_details: DetailsPolicy = Field(
        default="when_authorized",
        description="Who reads each check's detail (versions, hosts, URLs, error text) on "
        "/health, /readyz and the pages: when_authorized (the operator or an API token with "
        "read scope), always (anyone) or never (no one). Statuses and latencies are public.",
    )
    health_monitor_seconds: float = Field(
        default=15.0,
        ge=1,
        le=300,
        description="How often the web app checks every component on its own, probed or not: "
        "the health history, the metrics and the notifications follow these checks. The "
        "dashboard and /status refresh at the same period while they are open.",
    )
    health_history_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="How long each change of a component's status is kept (pruned hourly by "
        "the worker).",
    )

    # Observability
    metrics_enabled: bool = Field(
        default=True,
        description="Serve /metrics (Prometheus; an API token with the metrics scope reads "
        "it) and count requests, tasks and LLM calls.",
    )
    notify_urls: SecretStr | None = Field(
        default=None,
        description="Where to send a notice when a component goes down and when it recovers: "
        "Apprise URLs separated by spaces or commas (ntfy://, gotify://, mailto://, "
        "discord://, tgram://, hassio://, json://…). A secret: it holds tokens.",
    )
    notify_grace_seconds: float = Field(
        default=120.0,
        ge=0,
        le=86400,
        description="How long a component stays unreachable before a notice is sent (a "
        "blip shorter than this sends nothing).",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="Send traces (OpenTelemetry over OTLP/HTTP) to this collector's base URL, "
        "e.g. http://127.0.0.1:4318 (spans go to /v1/traces), from the web app and every "
        "worker. Unset, Hearth loads none of OpenTelemetry's SDK (docs/traces.md).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 (passed by name; secrets_dirs() replaces it)
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The sources, highest precedence first: arguments, the environment, ``NAME_FILE``
        variables, ``.env``, then the secret directories."""
        from pydantic_settings import DotEnvSettingsSource, SecretsSettingsSource

        dotenv_values = (
            dotenv_settings.env_vars if isinstance(dotenv_settings, DotEnvSettingsSource) else {}
        )
        return (
            init_settings,
            env_settings,
            SecretFileVariablesSource(settings_cls, dict(dotenv_values)),
            dotenv_settings,
            SecretsSettingsSource(settings_cls, secrets_dir=secrets_dirs()),
        )

    @field_validator("*", mode="before")
    @classmethod
    def _report_unreadable_files(cls, value: object) -> object:
        if isinstance(value, UnreadableSecretFile):
            raise PydanticCustomError(
                "secret_file",
                "{path} (named by {variable}) cannot be read: {reason}",
                {"variable": value.variable, "path": value.path, "reason": value.reason},
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong_secret_key(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if secret.strip() == SECRET_KEY_PLACEHOLDER:
            raise PydanticCustomError("placeholder", "is still the placeholder from .env.example")
        if len(secret) < SECRET_KEY_MIN_LENGTH:
            raise PydanticCustomError(
                "too_short",
                "is {length} characters long; it needs at least {minimum}",
                {"length": len(secret), "minimum": SECRET_KEY_MIN_LENGTH},
            )
        return value

    @field_validator("mcp_token")
    @classmethod
    def _strong_mcp_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # empty counts as unset, as Compose writes ${VAR:-}
        length = len(value.get_secret_value())
        if length < MCP_TOKEN_MIN_LENGTH:
            raise PydanticCustomError(
                "too_short",
                "is {length} characters long; it needs at least {minimum}",
                {"length": length, "minimum": MCP_TOKEN_MIN_LENGTH},
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return normalize_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _valid_redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = split_url(value.strip(), "redis://host:6379/0")
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            raise PydanticCustomError(
                "redis_url", "must look like redis://host:6379/0 (or rediss:// for TLS)"
            )
        return value.strip()

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _valid_otlp_endpoint(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # empty counts as unset, as Compose writes ${VAR:-}
        parts = split_url(value.strip(), "http://otel-collector:4318")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PydanticCustomError(
                "otlp_endpoint",
                "must be the collector's OTLP/HTTP base URL, e.g. http://otel-collector:4318",
            )
        return value.strip()

    @field_validator(*ALLOWLIST)
    @classmethod
    def _valid_runtime_value(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None  # empty counts as unset, as Compose writes ${VAR:-}
        try:
            return ALLOWLIST[str(info.field_name)].validate(value)
        except InvalidValue as exc:
            raise PydanticCustomError("runtime_value", str(exc)) from None

    @field_validator("notify_urls")
    @classmethod
    def _valid_notify_urls(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # empty counts as unset, as Compose writes ${VAR:-}
        try:
            split_urls(value.get_secret_value())
        except BadNotifyUrl as exc:  # says which entry, never what it holds
            raise PydanticCustomError("notify_urls", str(exc)) from None
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _valid_proxy_addresses(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if entries == ["*"]:
            return "*"
        trusted = []
        for entry in entries:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise PydanticCustomError(
                    "proxy_address",
                    "'{entry}' is not an IP address or network; list the proxies' addresses "
                    "(e.g. 127.0.0.1,10.0.0.0/8), or * for any",
                    {"entry": entry},
                ) from None
            # Uvicorn reads 10.0.0.1/8 as a name, not a network: pass it 10.0.0.0/8.
            trusted.append(str(network) if "/" in entry else entry)
        return ",".join(trusted)

    @field_validator("llm_trusted_origin")
    @classmethod
    def _valid_trusted_origin(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        parts = split_url(value.strip(), "https://api.openai.com")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PydanticCustomError(
                "trusted_origin",
                "must be an http:// or https:// origin, e.g. https://api.openai.com",
            )
        if parts.username or parts.password or parts.path.strip("/") or parts.query:
            raise PydanticCustomError(
                "trusted_origin",
                "must name an origin only, scheme://host[:port] (the key goes to every path "
                "there), with no user, path or query",
            )
        bound = origin(value)
        endpoint = info.data.get("llm_endpoint")
        if endpoint and origin(endpoint) != bound:
            raise PydanticCustomError(
                "trusted_origin",
                "is not the origin of LLM_ENDPOINT ({endpoint}), so the key would never be "
                "sent; set one of the two",
                {"endpoint": origin(endpoint)},
            )
        return bound

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("imap_port", "imap_ca_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("imap_tls", mode="before")
    @classmethod
    def _lower_imap_tls(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("health_details", mode="before")
    @classmethod
    def _lower_health_details(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # URLs may carry a password; repr() ends up in tracebacks and debug output.
        for name, value in super().__repr_args__():
            if isinstance(value, str) and "://" in value:
                yield name, mask_url(value)
            else:
                yield name, value

    def bound_llm_api_key(self) -> BoundSecret:
        """``LLM_API_KEY`` with the one origin it may be sent to: ``LLM_TRUSTED_ORIGIN``'s,
        else ``LLM_ENDPOINT``'s as set here. An endpoint saved on the config page names no
        origin: the console must not be able to send the key to a server of its choosing."""
        name = "LLM_API_KEY"
        bind_with = "LLM_ENDPOINT or LLM_TRUSTED_ORIGIN"
        if self.llm_trusted_origin:
            return BoundSecret(
                name, self.llm_api_key, self.llm_trusted_origin, "LLM_TRUSTED_ORIGIN", bind_with
            )
        if self.llm_endpoint:
            return BoundSecret(
                name, self.llm_api_key, origin(self.llm_endpoint), "LLM_ENDPOINT", bind_with
            )
        return BoundSecret(name, self.llm_api_key, None, "", bind_with)

    @property
    def embedded_database(self) -> bool:
        """True when Hearth must run its own PostgreSQL (``DATABASE_URL`` unset)."""
        return self.database_url is None

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction to mask wherever it appears."""
        values = []
        for name in SECRET_FIELDS:
            secret = getattr(self, name)
            if isinstance(secret, SecretStr):
                values.append(secret.get_secret_value())
        if self.notify_urls is not None:  # each URL and its tokens, wherever one is logged
            for url in split_urls(self.notify_urls.get_secret_value()):
                values.extend(token_parts(url))
        for name in URL_FIELDS:
            url = getattr(self, name)
            if url and (password := urlsplit(url).password):
                values.append(password)
        return [value for value in values if value]

    def public_summary(self) -> dict[str, Any]:
        """The settings safe to log and show: secrets left out, URL passwords masked."""
        summary: dict[str, Any] = {}
        for name, dumped in self.model_dump().items():
            if isinstance(dumped, SecretStr) or name in SECRET_FIELDS:
                continue
            value = str(dumped) if isinstance(dumped, Path) else dumped
            if isinstance(value, str) and "://" in value:
                value = mask_url(value)
            summary[name] = value
        return summary


def _holds_secret(field: FieldInfo) -> bool:
    return "SecretStr" in str(field.annotation)


# The secrets (``SecretStr`` fields): never logged or shown, even when unset.
SECRET_FIELDS = frozenset(
    name for name, field in Settings.model_fields.items() if _holds_secret(field)
)
# URLs that may carry a password: shown masked, never echoed back in an error message.
URL_FIELDS = frozenset(
    {
        "database_url",
        "redis_url",
        "llm_endpoint",
        "llm_trusted_origin",
        "otel_exporter_otlp_endpoint",
    }
)
