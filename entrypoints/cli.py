"""The `session-events` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from adapters.settings import InvalidDatabaseUrl, StoreSettings
from application.errors import StoreUnavailable
from application.scope import Scope
from entrypoints.bootstrap import bootstrap


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = StoreSettings.from_environment()
    # Create the schema once, before any worker starts, so workers never race on DDL.
    bootstrap(settings, run_projection=False).close()
    print(f"session-events: serving {settings.describe()} on http://{args.host}:{args.port}", flush=True)
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
    service = bootstrap(run_projection=False)
    try:
        token = service.tokens.issue(Scope(account_id=args.account_id, user_id=args.user_id))
    finally:
        service.close()
    print(f"token for account {args.account_id}, user {args.user_id} (shown once, stored only as a hash):")
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="session-events",
        description="Records IDE coding-session events. The store is chosen by DATABASE_URL "
        "(unset: ./session-events.db; sqlite:////abs/path.db; postgresql://user@host:port/db).",
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
    create.add_argument("--account-id", type=int, required=True)
    create.add_argument("--user-id", type=int, required=True)
    create.set_defaults(run=_create_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        print("session-events: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except InvalidDatabaseUrl as error:
        print(f"session-events: invalid DATABASE_URL: {error}", file=sys.stderr)
        return 2
    except StoreUnavailable as error:
        print(f"session-events: the store is unreachable: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
