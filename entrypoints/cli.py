"""The `session-events` command line.

Modules that pull in the web framework, the event store or the database driver are imported
inside the commands that need them: a light command (such as a Claude Code hook, run on every
tool call) must not pay for them."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from datetime import datetime

from application.errors import StoreUnavailable
from entrypoints.settings import ENVIRONMENT


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import Settings

    settings = Settings.from_environment()
    # Migrate the schema once, before any worker starts: the workers then find it current.
    bootstrap(settings, run_projection=False).close()
    print(f"session-events: serving {settings.database.describe()} on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        "entrypoints.http.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


def _create_token(args: argparse.Namespace) -> int:
    from application.scope import Scope
    from entrypoints.bootstrap import bootstrap

    service = bootstrap(run_projection=False)
    try:
        token = service.tokens.issue(Scope(account_id=args.account_id, user_id=args.user_id))
        store = service.describe_store()
    finally:
        service.close()
    print(f"token for account {args.account_id}, user {args.user_id} in {store} (shown once, stored only as a hash):")
    print(token)
    return 0


def _rebuild_projections(args: argparse.Namespace) -> int:
    from entrypoints.bootstrap import bootstrap

    service = bootstrap(run_projection=False)
    try:
        print(f"store: {service.describe_store()}", file=sys.stderr)
        projection = service.projection
        head = projection.head()
        started = time.monotonic()
        projection.reset()
        bar = ProgressBar(total=max(head, 1), enabled=sys.stdout.isatty() and not args.quiet)
        projection.catch_up(on_progress=bar.show)
        bar.finish()
        elapsed = time.monotonic() - started
        status = projection.status()
        print(
            f"rebuilt {status.name}: up to log position {status.position} in {elapsed:.1f} s; "
            f"{status.behind} events behind the log now"
        )
    finally:
        service.close()
    return 0


def _projection_status(args: argparse.Namespace) -> int:
    from entrypoints.bootstrap import bootstrap

    service = bootstrap(run_projection=False)
    try:
        status = service.projection.status()
        store = service.describe_store()
    finally:
        service.close()
    if args.json:
        print(json.dumps(asdict(status)))
        return 0
    print(f"store: {store}")
    print(f"{'projection':<16} {'position':>10} {'log head':>10} {'behind':>8}  updated")
    print(f"{status.name:<16} {status.position:>10} {status.head:>10} {status.behind:>8}  {status.updated_at or '-'}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from application.errors import SessionNotFound
    from entrypoints import export_command
    from entrypoints.bootstrap import bootstrap

    service = bootstrap(run_projection=False)
    try:
        scan = service.log_export().scan(session_id=args.session, since=args.since)
        with export_command.opened_output(args.output) as output:
            writer = export_command.writer_for(args.format, output)
            exported = export_command.export(scan, writer, progress=sys.stderr.isatty())
    except SessionNotFound:
        print(f"session-events: no session {args.session} in {service.describe_store()}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`export | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        service.close()
    if sys.stderr.isatty():
        print(f"exported {exported:,} events from {service.describe_store()}", file=sys.stderr)
    return 0


def _since(text: str) -> datetime:
    """`--since`: an RFC 3339 date-time, read as event times are (no offset means UTC)."""
    from application.validation import parse_rfc3339

    moment = parse_rfc3339(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 date-time, e.g. 2026-01-15T10:00:00Z")
    return moment


class ProgressBar:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, *, enabled: bool, width: int = 40) -> None:
        self.total, self.enabled, self.width = total, enabled, width
        self.started = time.monotonic()

    def show(self, done: int) -> None:
        if not self.enabled:
            return
        fraction = min(done / self.total, 1.0)
        filled = int(fraction * self.width)
        rate = done / max(time.monotonic() - self.started, 1e-6)
        sys.stdout.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {fraction:6.1%}  position {done}/{self.total}"
            f"  {rate:,.0f}/s"
        )
        sys.stdout.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stdout.write("\n")


MAX_SCOPE_ID = 2**63 - 1
"""Account and user ids are stored as signed 64-bit integers."""


def _scope_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_SCOPE_ID:
        raise argparse.ArgumentTypeError(f"{text} must be between 1 and {MAX_SCOPE_ID}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="session-events",
        description="Records IDE coding-session events.",
        epilog="settings (environment variables):\n"
        + "\n".join(f"  {name:<34} {meaning}" for name, meaning in ENVIRONMENT.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(run=_serve)

    tokens = commands.add_parser("tokens", help="manage API tokens")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True)
    create = token_commands.add_parser("create", help="create a token; prints it alone on the last line")
    create.add_argument("--account-id", type=_scope_id, required=True)
    create.add_argument("--user-id", type=_scope_id, required=True)
    create.set_defaults(run=_create_token)

    projections = commands.add_parser("projections", help="inspect and rebuild read models")
    projection_commands = projections.add_subparsers(dest="projections_command", required=True)
    rebuild = projection_commands.add_parser("rebuild", help="rebuild the session_events read model from the event log")
    rebuild.add_argument("--quiet", action="store_true", help="no progress bar")
    rebuild.set_defaults(run=_rebuild_projections)
    status = projection_commands.add_parser("status", help="each projection's position and lag behind the log")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=_projection_status)

    export = commands.add_parser(
        "export", help="write recorded events from the event log, in log order (to standard output by default)"
    )
    export.add_argument("--session", type=int, metavar="ID", help="only this session's events")
    export.add_argument("--since", type=_since, metavar="RFC3339", help="only events received at or after then")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="default jsonl")
    export.add_argument("--output", metavar="FILE", help="write to FILE (complete or not at all)")
    export.set_defaults(run=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        print("session-events: --workers must be at least 1", file=sys.stderr)
        return 2
    from entrypoints.settings import InvalidDatabaseUrl, InvalidSetting

    try:
        return int(args.run(args))
    except InvalidDatabaseUrl as error:
        print(f"session-events: invalid DATABASE_URL: {error}", file=sys.stderr)
        return 2
    except InvalidSetting as error:
        print(f"session-events: invalid setting: {error}", file=sys.stderr)
        return 2
    except StoreUnavailable as error:
        print(f"session-events: the store is unreachable: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
