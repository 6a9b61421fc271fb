"""The `session-events` command line.

Modules that pull in the web framework, the event store or the database driver are imported
inside the commands that need them: a light command (such as a Claude Code hook, run on every
tool call) must not pay for them."""

from __future__ import annotations

import argparse
import json
import logging
import logging.config
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from application.errors import StoreUnavailable
from entrypoints import claude_code_cli
from entrypoints.settings import ENVIRONMENT


def _serve(args: argparse.Namespace) -> int:
    # Before anything imports the metrics client, which reads it once (ADR 0012).
    metrics_dir = _fresh_metrics_dir()
    try:
        return _run_server(args)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _fresh_metrics_dir() -> str:
    """Where every worker process keeps its Prometheus counters, so that `/metrics` sums them:
    new for each run (counters start at zero), created before the workers start, removed at exit.
    An inherited `PROMETHEUS_MULTIPROC_DIR` is replaced: a stale one would mix in old runs."""
    path = tempfile.mkdtemp(prefix="session-events-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path

    def remove_then_terminate(signum: int, frame: Any) -> None:
        # One worker: uvicorn re-raises the SIGTERM it caught once it has shut down, which would
        # end the process before `_serve`'s cleanup; the exit status stays that of the signal.
        shutil.rmtree(path, ignore_errors=True)
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, remove_then_terminate)
    return path


def _run_server(args: argparse.Namespace) -> int:
    import uvicorn

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import Settings

    json_logs = args.log_format == "json"
    if json_logs:
        from entrypoints.log_format import json_log_config

        log_config: dict[str, Any] = json_log_config(args.log_level)
        logging.config.dictConfig(log_config)
    settings = Settings.from_environment()
    # Migrate the schema once, before any worker starts: the workers then find it current.
    bootstrap(settings, run_projection=False).close()
    serving = f"session-events: serving {settings.database.describe()} on http://{args.host}:{args.port}"
    if json_logs:
        logging.getLogger("session_events.serve").info(serving)
        logging_options: dict[str, Any] = {"log_config": log_config, "access_log": False}
    else:
        print(serving, flush=True)
        logging_options = {}
    uvicorn.run(
        "entrypoints.http.app:create_app_with_json_logs" if json_logs else "entrypoints.http.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
        **logging_options,
    )
    return 0


def _create_token(args: argparse.Namespace) -> int:
    from application.scope import Scope
    from entrypoints.bootstrap import bootstrap

    expires_at = args.expires_at
    if args.expires_in is not None:
        expires_at = datetime.now(UTC) + timedelta(days=args.expires_in)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        print(f"session-events: --expires-at {expires_at.isoformat()} is not in the future", file=sys.stderr)
        return 2
    service = bootstrap(run_projection=False)
    try:
        issued = service.tokens.issue(
            Scope(account_id=args.account_id, user_id=args.user_id), name=args.name, expires_at=expires_at
        )
        store = service.describe_store()
    finally:
        service.close()
    named = f" {args.name!r}" if args.name else ""
    until = f", expires {expires_at.isoformat(timespec='seconds')}" if expires_at else ""
    print(
        f"token {issued.id}{named} for account {args.account_id}, user {args.user_id}{until} in {store} "
        "(shown once, stored only as a hash):"
    )
    print(issued.secret)
    return 0


def _moment(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _list_tokens(args: argparse.Namespace) -> int:
    """Never the token or its hash: they are not even read."""
    from entrypoints.bootstrap import bootstrap

    service = bootstrap(run_projection=False)
    try:
        tokens = service.tokens.tokens(args.account_id)
        store = service.describe_store()
    finally:
        service.close()
    now = datetime.now(UTC)
    if args.json:
        listed = [
            {
                "id": t.id,
                "name": t.name,
                "account_id": t.scope.account_id,
                "user_id": t.scope.user_id,
                "created_at": _moment(t.created_at),
                "last_used_at": _moment(t.last_used_at),
                "expires_at": _moment(t.expires_at),
                "revoked_at": _moment(t.revoked_at),
                "state": t.state(now),
            }
            for t in tokens
        ]
        print(json.dumps({"store": store, "tokens": listed}))
        return 0
    print(f"store: {store}")
    print(f"{'id':>6}  {'name':<20} {'account':>10} {'user':>10}  {'created':<25} {'last used':<25} state")
    for t in tokens:
        state = t.state(now)
        if state == "active" and t.expires_at is not None:
            state = f"active until {_moment(t.expires_at)}"
        elif state == "revoked":
            state = f"revoked {_moment(t.revoked_at)}"
        elif state == "expired":
            state = f"expired {_moment(t.expires_at)}"
        name = t.name if t.name is not None else "-"
        print(
            f"{t.id:>6}  {name:<20} {t.scope.account_id:>10} {t.scope.user_id:>10}  "
            f"{_moment(t.created_at):<25} {_moment(t.last_used_at) or 'never':<25} {state}"
        )
    return 0


def _revoke_token(args: argparse.Namespace) -> int:
    from application.tokens import TokenNotFound
    from entrypoints.bootstrap import bootstrap

    service = bootstrap(run_projection=False)
    try:
        store = service.describe_store()
        try:
            token, revoked_now = service.tokens.revoke(args.id)
        except TokenNotFound:
            print(f"session-events: no token {args.id} in {store} (see tokens list)", file=sys.stderr)
            return 2
    finally:
        service.close()
    owner = f"account {token.scope.account_id}, user {token.scope.user_id}"
    named = f" {token.name!r}" if token.name else ""
    if revoked_now:
        print(f"revoked token {args.id}{named} of {owner} in {store}: refused by every process within a second")
    else:
        print(f"token {args.id}{named} of {owner} was already revoked at {_moment(token.revoked_at)}")
    return 0


def _prune_sessions(args: argparse.Namespace) -> int:
    from entrypoints.bootstrap import bootstrap

    older_than = timedelta(days=args.older_than)
    service = bootstrap(run_projection=False)
    try:
        store = service.describe_store()
        erased = service.erasure.prune(older_than, dry_run=args.dry_run, batch_size=args.batch_size)
    finally:
        service.close()
    cutoff = (datetime.now(UTC) - older_than).isoformat(timespec="seconds")
    verb = "would erase" if args.dry_run else "erased"
    plural = "" if erased == 1 else "s"
    print(f"{verb} {erased} session{plural} whose last event was received before {cutoff} in {store}")
    return 0


def _list_projections(args: argparse.Namespace) -> int:
    from entrypoints.bootstrap import READ_MODELS

    for model in READ_MODELS:
        print(model.name)
    return 0


def _rebuild_projections(args: argparse.Namespace) -> int:
    from adapters.readmodel.projection import ProjectionFailed
    from adapters.readmodel.rebuild import RebuildInProgress
    from entrypoints.bootstrap import bootstrap
    from entrypoints.heap import freeze_startup_heap
    from entrypoints.progress import CommandProgress

    service = bootstrap(run_projection=False)
    freeze_startup_heap()
    try:
        names = args.names or list(service.projectors)
        unknown = [name for name in names if name not in service.projectors]
        if unknown:
            print(f"session-events: no such projection: {', '.join(unknown)} (see projections list)", file=sys.stderr)
            return 2
        print(f"store: {service.describe_store()}", file=sys.stderr)
        for name in names:
            started = time.monotonic()
            terminal = sys.stderr.isatty() and not args.quiet
            head = service.projection.head()
            with CommandProgress(f"rebuilding {name}", head, terminal=terminal, plain_lines=not args.quiet) as progress:
                try:
                    rebuilt = service.rebuild(name, on_progress=progress.update, batch_size=args.batch_size)
                except RebuildInProgress as error:
                    print(f"session-events: {error}", file=sys.stderr)
                    return 1
                except ProjectionFailed as error:  # the read model still raises on an event
                    print(
                        f"session-events: rebuilding {name} failed at log position {error.position}: {error.error};"
                        f" the live {name} is unchanged (fix the read model, then rebuild again)",
                        file=sys.stderr,
                    )
                    return 1
            print(f"rebuilt {name}: up to log position {rebuilt.position} in {time.monotonic() - started:.1f} s")
    finally:
        service.close()
    return 0


STALLED_AFTER_SECONDS = 60.0


def _projection_status(args: argparse.Namespace) -> int:
    """Exit status 1 when a projection has failed, or is behind and has not moved for a minute."""
    from entrypoints.bootstrap import bootstrap

    service = bootstrap(run_projection=False)
    try:
        statuses = service.projection_statuses()
        store = service.describe_store()
    finally:
        service.close()
    now = datetime.now(UTC)
    unhealthy = [
        s
        for s in statuses
        if s.state == "failed"
        or (s.behind and s.updated_at is not None and (now - s.updated_at).total_seconds() > STALLED_AFTER_SECONDS)
    ]
    if args.json:
        print(json.dumps({"store": store, "projections": [_status_json(s) for s in statuses]}))
        return 1 if unhealthy else 0
    print(f"store: {store}")
    print(f"{'projection':<16} {'position':>10} {'log head':>10} {'behind':>8} {'seconds':>8}  {'state':<10} updated")
    for s in statuses:
        updated = s.updated_at.isoformat(timespec="seconds") if s.updated_at else "-"
        lag = f"{s.behind:>8} {s.seconds_behind:>8.1f}"
        print(f"{s.name:<16} {s.position:>10} {s.head:>10} {lag}  {s.state:<10} {updated}")
        if s.error:
            print(f"  failed at log position {s.failed_position}: {s.error}")
    for s in unhealthy:
        if s.state != "failed":
            print(f"  {s.name} is behind and has not moved for over {STALLED_AFTER_SECONDS:.0f} s", file=sys.stderr)
    return 1 if unhealthy else 0


def _status_json(status: Any) -> dict[str, Any]:
    fields = asdict(status)
    fields["updated_at"] = status.updated_at.isoformat() if status.updated_at else None
    return fields


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


def _token_id(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_SCOPE_ID:
        raise argparse.ArgumentTypeError(f"{text!r} is not a token id (a positive whole number, see tokens list)")
    return int(text)


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 < days <= 36_500:
        raise argparse.ArgumentTypeError(f"{text}: a number of days above 0 (at most 36500)")
    return days


def _batch_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1 to 100000")
    return int(text)


def _prune_batch_size(text: str) -> int:
    from application.erasure import MAX_PRUNE_BATCH

    if not text.isdigit() or not 1 <= int(text) <= MAX_PRUNE_BATCH:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1 to {MAX_PRUNE_BATCH}")
    return int(text)


def _add_session_commands(commands: Any) -> None:
    sessions = commands.add_parser("sessions", help="erase sessions")
    session_commands = sessions.add_subparsers(dest="sessions_command", required=True)
    prune = session_commands.add_parser(
        "prune",
        help="erase, for good, every session whose last event was received more than DAYS ago (a session "
        "without events: created); prints how many",
        description="Erases sessions as DELETE /api/sessions/{id} does: their events leave the event log, "
        "every read model, exports and stream replays, and cannot be restored.",
    )
    prune.add_argument(
        "--older-than", type=_days, required=True, metavar="DAYS", help="a number of days above 0 (e.g. 90, 0.5)"
    )
    prune.add_argument("--dry-run", action="store_true", help="only count the sessions it would erase")
    prune.add_argument(
        "--batch-size",
        type=_prune_batch_size,
        default=100,
        metavar="N",
        help="sessions erased per transaction; appends wait for each (default 100)",
    )
    prune.set_defaults(run=_prune_sessions)


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
    serve.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per line (time, level, logger, message, request_id, route, status, duration_ms)",
    )
    serve.set_defaults(run=_serve)

    tokens = commands.add_parser("tokens", help="manage API tokens")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True)
    create = token_commands.add_parser("create", help="create a token; prints it alone on the last line")
    create.add_argument("--account-id", type=_scope_id, required=True)
    create.add_argument("--user-id", type=_scope_id, required=True)
    create.add_argument("--name", metavar="TEXT", help="what the token is for, shown by tokens list")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", type=_days, metavar="DAYS", help="refused after this many days (e.g. 90, 0.5)")
    expiry.add_argument("--expires-at", type=_since, metavar="RFC3339", help="refused from then on")
    create.set_defaults(run=_create_token)
    token_list = token_commands.add_parser(
        "list", help="each token's id, name, scope, creation, last use and state (never the token)"
    )
    token_list.add_argument("--account-id", type=_scope_id, help="only this account's tokens")
    token_list.add_argument("--json", action="store_true", help="machine-readable output")
    token_list.set_defaults(run=_list_tokens)
    revoke = token_commands.add_parser(
        "revoke", help="revoke a token: every process refuses it within a second, and closes its streams"
    )
    revoke.add_argument("id", type=_token_id, metavar="ID", help="the token's id (see tokens list)")
    revoke.set_defaults(run=_revoke_token)

    _add_session_commands(commands)

    projections = commands.add_parser("projections", help="inspect and rebuild read models")
    projection_commands = projections.add_subparsers(dest="projections_command", required=True)
    listing = projection_commands.add_parser("list", help="the name of each projection, one per line")
    listing.set_defaults(run=_list_projections)
    rebuild = projection_commands.add_parser(
        "rebuild", help="rebuild read models from the event log without downtime (default: all of them)"
    )
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="projections to rebuild (see projections list)")
    rebuild.add_argument("--quiet", action="store_true", help="no progress")
    rebuild.add_argument(
        "--batch-size", type=_batch_size, default=1000, metavar="N", help="log events per transaction (default 1000)"
    )
    rebuild.set_defaults(run=_rebuild_projections)
    status = projection_commands.add_parser("status", help="each projection's position and lag behind the log")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=_projection_status)

    claude_code_cli.register(commands)
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
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] and arguments[0] in claude_code_cli.COMMANDS:
        # The Claude Code client's commands need none of the service's modules (and `hook`
        # must not wait for them); they also configure no logging: `hook` writes nothing.
        return claude_code_cli.main(arguments)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(arguments)
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
