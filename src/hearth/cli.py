"""The ``hearth`` command. Heavy modules are imported inside each command, so ``--help``
and ``check --live`` answer quickly (a container health check runs them every few seconds).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.kit import collector

if TYPE_CHECKING:
    from hearth.config.settings import Settings

EXIT_OK = 0
EXIT_FAILURE = 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hearth`` console script; returns the exit status."""
    collector.pause()  # `serve` and `worker` resume once built (hearth.kit.collector)
    args = None
    try:
        parser = _build_parser()
        args = parser.parse_args(argv)
    finally:  # also when argparse exits (--help, a bad argument)
        if getattr(args, "handler", None) not in (_serve, _worker):
            collector.resume(set_aside=False)  # every other command collects as usual
    if args.command is None:
        parser.print_help()
        return EXIT_FAILURE
    from hearth.errors import StartupError

    try:
        status: int = args.handler(args)
    except StartupError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    return status


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="Hearth: the core of a self-hosted, privacy-first Python service.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the web app (migrates the database first)")
    serve.add_argument("--host", help="address to bind (default: HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT, else 8000)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default: LOG_LEVEL)")
    serve.add_argument("--log-format", help="json, console or auto (default: LOG_FORMAT)")
    serve.add_argument(
        "--with-worker", action="store_true", help="also run a `hearth worker` beside it"
    )
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser("worker", help="run a background worker (Celery)")
    worker.add_argument(
        "--concurrency", type=int, help="tasks run at once (default: WORKER_CONCURRENCY)"
    )
    worker.set_defaults(handler=_worker)

    migrate = commands.add_parser("migrate", help="apply database migrations, then exit")
    migrate.set_defaults(handler=_migrate)

    check = commands.add_parser(
        "check",
        help="check the components once; exit 0 when ok, 1 otherwise",
        description="Without options, connect to each component and report. With --live or "
        "--ready, ask the running server's /livez or /readyz (for Docker and systemd).",
    )
    probe = check.add_mutually_exclusive_group()
    probe.add_argument("--live", action="store_true", help="is the server process answering?")
    probe.add_argument("--ready", action="store_true", help="is the server ready for traffic?")
    probe.add_argument(
        "--worker", action="store_true", help="has this host's worker reported recently?"
    )
    check.add_argument("--json", action="store_true", help="print JSON")
    check.add_argument(
        "--url", help="server to ask with --live/--ready (default: http://127.0.0.1:PORT)"
    )
    check.set_defaults(handler=_check)

    runtime_settings = commands.add_parser(
        "settings",
        help="export or import the runtime settings (the config page's values) as JSON",
        description="The runtime settings stored in the database, as JSON: for backups and "
        "for moving them to another host. Import checks every key and value first and "
        "stores all of them or none.",
    )
    actions = runtime_settings.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="print the stored runtime settings as JSON")
    export.add_argument("--output", "-o", metavar="FILE", help="write FILE instead of stdout")
    export.set_defaults(handler=_settings_export)
    load = actions.add_parser(
        "import", help="check and store the runtime settings of an export, all or nothing"
    )
    load.add_argument("file", metavar="FILE", help="a `hearth settings export` file; - for stdin")
    load.set_defaults(handler=_settings_import)

    _add_token_commands(commands)
    _add_audit_command(commands)
    _add_diagnose_command(commands)
    _add_documents_command(commands)

    init = commands.add_parser("init", help="write a .env with fresh random secrets")
    init.add_argument("--path", default=".env", help="file to write (default: .env)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(handler=_init)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=_version)
    return parser


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return number


def _add_token_commands(commands: Any) -> None:  # noqa: ANN401 (argparse's private subparsers type)
    """``hearth token create|list|revoke``."""
    tokens = commands.add_parser(
        "token",
        help="create, list or revoke API tokens (the console's Tokens page)",
        description="API tokens let programs call Hearth: Authorization: Bearer hth_…. "
        "These commands connect to DATABASE_URL, or to the embedded PostgreSQL of a running "
        "`hearth serve`.",
    )
    token_actions = tokens.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = token_actions.add_parser(
        "create", help="create a token and print it (alone, on the last line) once"
    )
    create.add_argument("name", metavar="NAME", help="1-64 letters, digits, '_', '.' or '-'")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        metavar="SCOPE",
        help="read, write or metrics; repeat for more than one",
    )
    create.add_argument(
        "--expires-days", type=int, metavar="N", help="refuse the token after N days"
    )
    create.set_defaults(handler=_token_create)
    listing = token_actions.add_parser("list", help="list the tokens (never their secrets)")
    listing.set_defaults(handler=_token_list)
    revoke = token_actions.add_parser(
        "revoke", help="refuse a token (running servers: within API_TOKEN_CACHE_SECONDS)"
    )
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=_token_revoke)


def _add_audit_command(commands: Any) -> None:  # noqa: ANN401
    """``hearth audit``."""
    audit = commands.add_parser(
        "audit",
        help="show the audit trail (logins, saves, imports, tests, tokens), newest first",
        description="The security-relevant actions recorded in the database, newest first, "
        "with time (UTC), actor, client address and details. Kept 90 days.",
    )
    audit.add_argument(
        "--limit", type=_positive, default=50, metavar="N", help="show N events (default: 50)"
    )
    audit.add_argument("--json", action="store_true", help="print a JSON array")
    audit.set_defaults(handler=_audit)


def _add_diagnose_command(commands: Any) -> None:  # noqa: ANN401
    """``hearth diagnose``."""
    diagnose = commands.add_parser(
        "diagnose",
        help="print a report for a bug report (version, platform, settings, health, "
        "migrations, queues, workers, recent warnings), secrets masked",
        description="Gathers the report itself, as `hearth check` does, and reads the running "
        "server's last warnings and errors through GET /diagnostics when HEARTH_TOKEN holds "
        "an API token with the read scope. Starts nothing. Exit 0 even when components are "
        "down (it is a report); 1 only when it cannot run.",
    )
    diagnose.add_argument("--json", action="store_true", help="print JSON instead of text")
    diagnose.add_argument(
        "--url", help="the server whose log ring to read (default: http://HOST:PORT)"
    )
    diagnose.set_defaults(handler=_diagnose)


def _add_documents_command(commands: Any) -> None:  # noqa: ANN401
    """``hearth documents reembed``."""
    documents = commands.add_parser("documents", help="work on the stored documents")
    actions = documents.add_subparsers(dest="action", metavar="ACTION", required=True)
    reembed = actions.add_parser(
        "reembed",
        help="queue every document embedded by another model than the one in force",
        description="After embedding_model changes: mark every document embedded by another "
        "model pending, so that the workers embed it with the model in force (search finds "
        "each once it is). Old vectors stay until the new ones are stored. Connects to "
        "DATABASE_URL, or to the embedded PostgreSQL of a running `hearth serve`.",
    )
    reembed.add_argument(
        "--wait", action="store_true", help="follow the progress until every document is done"
    )
    reembed.add_argument(
        "--stall-seconds",
        type=_positive,
        default=300,
        metavar="N",
        help="with --wait, give up (exit 1) after N seconds without progress (default: 300)",
    )
    reembed.set_defaults(handler=_documents_reembed)


def _documents_reembed(args: argparse.Namespace) -> int:
    import asyncio

    from hearth.documents import commands
    from hearth.errors import HearthError

    settings = _settings()
    _configure_command_logging(settings)
    try:
        return asyncio.run(
            commands.run(
                settings,
                sys.stdout,
                wait=args.wait,
                terminal=sys.stdout.isatty(),
                stall_seconds=args.stall_seconds,
            )
        )
    except HearthError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_FAILURE


def _settings(**overrides: object) -> Settings:
    from hearth.config.loader import load_settings

    return load_settings(**{key: value for key, value in overrides.items() if value is not None})


def _configure_logging(settings: Settings) -> None:
    from hearth.log import configure_logging

    configure_logging(
        level=settings.log_level,
        fmt=settings.log_format,
        service=settings.service_name,
        secrets=settings.secret_values(),
        repeat_limit=settings.log_repeat_limit,
        repeat_window=settings.log_repeat_window_seconds,
        trace_ids=settings.otel_exporter_otlp_endpoint is not None,
    )


def _serve(args: argparse.Namespace) -> int:
    from hearth.log import get_logger
    from hearth.version import hearth_version

    settings = _settings(
        host=args.host, port=args.port, log_level=args.log_level, log_format=args.log_format
    )
    _configure_logging(settings)
    get_logger("hearth.cli").info(
        "hearth_starting", version=hearth_version(), settings=settings.public_summary()
    )
    if settings.embedded_database:
        from hearth.db.embedded import start_early

        start_early(settings.hearth_data_dir)  # boots while the web stack is imported below

    from hearth.app.server import run

    if not args.with_worker:
        return run(settings)
    from hearth.worker.child import WorkerChild

    # The worker shares the environment and the embedded database; it is started again when
    # it exits (the database lost, a crash), and stops with the server.
    worker = WorkerChild([sys.executable, "-m", "hearth", "worker"])
    worker.start()
    try:
        return run(settings)
    finally:
        worker.stop()
        if settings.embedded_database:
            from hearth.db.embedded import EmbeddedPostgres

            EmbeddedPostgres(settings.hearth_data_dir).stop_if_abandoned()


def _worker(args: argparse.Namespace) -> int:
    settings = _settings()
    _configure_logging(settings)
    from hearth.worker.run import run_worker

    return run_worker(settings, concurrency=args.concurrency)


def _migrate(_args: argparse.Namespace) -> int:
    import asyncio

    from hearth.app.runtime import open_runtime
    from hearth.db.migrate import HEAD_REVISION

    settings = _settings(migrate_on_start=True)
    _configure_logging(settings)

    async def migrate() -> None:
        async with open_runtime(settings, serving=True):
            pass

    asyncio.run(migrate())
    print(f"Database is at revision {HEAD_REVISION}.")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    if args.live or args.ready:
        from hearth.app.check import probe_server

        return probe_server("/livez" if args.live else "/readyz", url=args.url, as_json=args.json)
    from hearth.app.check import check_components, check_worker

    if args.worker:
        return check_worker(_settings(), as_json=args.json)
    return check_components(_settings(), as_json=args.json)


def _settings_export(args: argparse.Namespace) -> int:
    import asyncio

    from hearth.config import transfer
    from hearth.db.commands import command_session

    settings = _settings()
    _configure_command_logging(settings)

    async def export() -> dict[str, Any]:
        async with command_session(settings.database_url, settings.hearth_data_dir) as session:
            return await transfer.export_document(session)

    document = asyncio.run(export())
    text = transfer.render(document)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"Cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    count = len(document["settings"])
    print(f"Exported {count} runtime setting{'s' * (count != 1)} to {args.output}.")
    return EXIT_OK


def _settings_import(args: argparse.Namespace) -> int:
    import asyncio

    from hearth.config import transfer
    from hearth.config.service import ConfigService, InvalidSettings
    from hearth.db.commands import command_session

    source = "standard input" if args.file == "-" else args.file
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        values = transfer.parse_document(text)
        transfer.validate(values)  # before touching the database: bad input fails fast
    except OSError as exc:
        print(f"Cannot read {source}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (UnicodeDecodeError, transfer.UnreadableDocument) as exc:
        print(f"{source} {exc}; nothing was imported.", file=sys.stderr)
        return EXIT_FAILURE
    except InvalidSettings as exc:
        print(f"{source} holds settings Hearth refuses; nothing was imported:", file=sys.stderr)
        for name, reason in exc.field_errors.items():
            print(f"  {name}: {reason}", file=sys.stderr)
        return EXIT_FAILURE

    from hearth.app.runtime import audit_trail

    settings = _settings()
    _configure_command_logging(settings)

    async def store() -> dict[str, str]:
        async with command_session(settings.database_url, settings.hearth_data_dir) as session:
            return await transfer.import_settings(session, values, audit=audit_trail(settings))

    stored = asyncio.run(store())
    names = ", ".join(stored) or "none"
    print(f"Imported {len(stored)} runtime setting{'s' * (len(stored) != 1)}: {names}.")
    for name, variable in transfer.overridden(ConfigService(settings), list(stored)).items():
        print(f"  {name}: {variable} in the environment wins over the imported value.")
    if stored:
        print(
            "Running servers act on them within "
            f"{settings.runtime_values_cache_seconds:g} s (RUNTIME_VALUES_CACHE_SECONDS)."
        )
    return EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from hearth.audit import service as audit_service
    from hearth.audit.schemas import AuditEntry
    from hearth.db.commands import command_session

    settings = _settings()
    _configure_command_logging(settings)

    async def read() -> list[AuditEntry]:
        async with command_session(settings.database_url, settings.hearth_data_dir) as session:
            events = await audit_service.newest(session, limit=args.limit)
            return [AuditEntry.of(event) for event in events]

    entries = asyncio.run(read())
    if args.json:
        print(json.dumps([entry.model_dump(mode="json") for entry in entries], indent=2))
        return EXIT_OK
    if not entries:
        print("Nothing recorded yet.")
        return EXIT_OK
    rows = [
        (
            entry.at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.actor,
            entry.client or "-",
            entry.action,
            audit_service.describe(entry.details),
        )
        for entry in entries
    ]
    header = ("TIME (UTC)", "ACTOR", "CLIENT", "ACTION", "DETAILS")
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(4)]
    for row in (header, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), end=""
        )
        print(f"  {row[4]}".rstrip())
    return EXIT_OK


def _diagnose(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from hearth.app.runtime import open_runtime
    from hearth.diagnostics import command
    from hearth.diagnostics.schemas import Diagnostics
    from hearth.diagnostics.service import DiagnosticsService
    from hearth.worker.identity import MISSED_BEATS

    settings = _settings()
    _configure_command_logging(settings)
    url = (args.url or command.server_url(settings)).rstrip("/")

    async def gather() -> Diagnostics:
        # serving=False: connects to what runs, starts no embedded PostgreSQL of its own.
        async with open_runtime(settings, serving=False) as runtime:
            service = DiagnosticsService(
                settings=settings,
                health=runtime.health,
                engine=runtime.engine,
                redis=runtime.redis,
                worker_window=settings.worker_heartbeat_seconds * MISSED_BEATS,
            )
            return await command.diagnose(
                service, url=url, token=os.environ.get(command.TOKEN_VARIABLE)
            )

    report = asyncio.run(gather())
    sys.stdout.write(report.model_dump_json(indent=2) + "\n" if args.json else report.text)
    return EXIT_OK


def _configure_command_logging(settings: Settings) -> None:
    """Warnings and errors only, on stderr: stdout carries the command's own output."""
    from hearth.log import configure_logging

    configure_logging(
        level="WARNING",
        fmt=settings.log_format,
        service=settings.service_name,
        secrets=settings.secret_values(),
        stream=sys.stderr,
    )


def _token_create(args: argparse.Namespace) -> int:
    import asyncio

    from hearth.access import commands, service
    from hearth.app.runtime import audit_trail
    from hearth.db.commands import command_session

    settings = _settings()
    _configure_command_logging(settings)

    async def create() -> service.NewToken:
        async with command_session(settings.database_url, settings.hearth_data_dir) as session:
            new = await service.create(session, args.name, args.scope, args.expires_days)
            await audit_trail(settings).record(
                "token_created",
                actor="cli",
                client=None,
                within=session,
                name=new.row.name,
                scopes=sorted(new.row.scopes),
                expires_at=new.row.expires_at.isoformat() if new.row.expires_at else None,
            )
            return new

    try:
        service.validate(args.name, args.scope, args.expires_days)  # before connecting
        new = asyncio.run(create())
    except (service.InvalidToken, service.DuplicateToken) as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_FAILURE
    print("\n".join(commands.created_lines(new)))
    return EXIT_OK


def _token_list(_args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    from hearth.access import commands, service
    from hearth.db.commands import command_session

    settings = _settings()
    _configure_command_logging(settings)

    async def rows() -> list[str]:
        async with command_session(settings.database_url, settings.hearth_data_dir) as session:
            found = await service.list_tokens(session)
            if not found:
                return [
                    "No API tokens yet: create one with `hearth token create NAME --scope read`."
                ]
            return commands.table_lines(found, datetime.now(UTC))

    print("\n".join(asyncio.run(rows())))
    return EXIT_OK


def _token_revoke(args: argparse.Namespace) -> int:
    import asyncio

    from hearth.access import commands, service
    from hearth.app.runtime import audit_trail
    from hearth.db.commands import command_session

    settings = _settings()
    _configure_command_logging(settings)

    async def revoke() -> None:
        async with command_session(settings.database_url, settings.hearth_data_dir) as session:
            await service.revoke(session, args.name)
            await audit_trail(settings).record(
                "token_revoked", actor="cli", client=None, within=session, name=args.name
            )

    try:
        asyncio.run(revoke())
    except service.UnknownToken as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_FAILURE
    print(commands.revoked_line(args.name, settings.api_token_cache_seconds))
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    from hearth.config.envfile import write_env_file

    path = write_env_file(args.path, force=args.force)
    print(f"Wrote {path} with a fresh SECRET_KEY and ADMIN_PASSWORD (readable by you only).")
    return EXIT_OK


def _version(_args: argparse.Namespace) -> int:
    from hearth.version import hearth_version

    print(f"hearth {hearth_version()}")
    return EXIT_OK
