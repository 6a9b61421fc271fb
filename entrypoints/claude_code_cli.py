"""`session-events hook`, `flush` and `hooks`: the Claude Code client's commands.

`hook` runs on every Claude Code hook, and Claude Code waits for it, so this module imports the
standard library and the light `adapters.claude_code` modules only, and `hook` does not even build
an argument parser. Whatever happens, `hook` exits 0 and writes nothing on standard output (Claude
Code would read it as a decision); problems go to standard error and to the log beside the spool.

`session-events` dispatches these commands here before it imports anything heavy."""

from __future__ import annotations

import os
import signal
import sys

from adapters.claude_code import config as client_config
from adapters.claude_code.problem_log import ProblemLog

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from pathlib import Path
    from types import FrameType
    from typing import NoReturn

    from adapters.claude_code.sender import SendReport, ServiceClient
    from adapters.claude_code.spool import Spool

COMMANDS = ("hook", "flush", "hooks")

HOOK_DEADLINE_SECONDS = 8
HOOK_BUSY_TIMEOUT_SECONDS = 5.0
BAD_INPUT_EXCERPT_BYTES = 120


class _HookDeadline(Exception):
    pass


def _deadline_reached(_signum: int, _frame: FrameType | None) -> None:
    raise _HookDeadline(f"gave up after {HOOK_DEADLINE_SECONDS} s")


def sender_command() -> list[str]:
    """How a hook starts the background sender: this interpreter, this module (-P: not from
    whatever directory Claude Code runs in)."""
    return [sys.executable, "-P", "-m", "entrypoints.claude_code_cli", "flush", "--daemon"]


def run_hook(*, leave_spool_open: bool = False) -> int:
    """Spools the payload on standard input; always 0. `leave_spool_open` is for a process that
    ends right after (see `_end_hook_process`)."""
    # Anything printed by mistake goes to standard error, never to Claude Code's decision channel.
    sys.stdout = sys.stderr
    try:  # noqa: SIM105 - contextlib would cost the hook 2 ms of start-up
        os.dup2(2, 1)
    except OSError:
        pass
    log = ProblemLog(None, echo_to_stderr=True)
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _deadline_reached)
        signal.alarm(HOOK_DEADLINE_SECONDS)
    try:
        _hook(log, leave_spool_open)
    finally:
        if hasattr(signal, "SIGALRM"):
            signal.alarm(0)
    return 0


def _hook(log: ProblemLog, leave_spool_open: bool) -> None:
    env = os.environ
    raw = b""
    try:
        spool_path = client_config.spool_path(env)
        log.path = client_config.log_path(spool_path)
        os.umask(0o077)  # the spool holds prompts and code: the user's alone
        raw = sys.stdin.buffer.read()
        _record(raw, spool_path, leave_spool_open)
    except _BadInput as error:
        log.write(f"hook input ignored: {error}; {len(raw)} bytes starting {raw[:BAD_INPUT_EXCERPT_BYTES]!r}")
        return
    except _HookDeadline as error:
        log.write(f"hook {error}; its events may be lost")
        return
    except Exception as error:
        log.write(f"hook failed, its events are lost: {type(error).__name__}: {error}")
        return
    try:
        if client_config.sending_configured(env):
            from adapters.claude_code.sender_process import ensure_sender_running

            ensure_sender_running(spool_path, sender_command(), log.path)
    except Exception as error:
        log.write(f"events spooled, but no background sender could be started: {type(error).__name__}: {error}")


class _BadInput(Exception):
    pass


def _record(raw: bytes, spool_path: str, leave_open: bool) -> None:
    from adapters.claude_code import mapping
    from adapters.claude_code.encoding import parse_payload
    from adapters.claude_code.spool import Spool

    if not raw.strip():
        raise _BadInput("empty input, expected one hook payload (a JSON object)")
    try:
        payload = parse_payload(raw)
        events = mapping.map_payload(payload)
    except (ValueError, RecursionError) as error:  # BadPayload is a ValueError, like bad JSON
        raise _BadInput(str(error)[:200]) from error
    if not isinstance(payload, dict):  # map_payload has refused anything else already
        raise _BadInput("not a JSON object")
    cwd = payload.get("cwd")
    spool = Spool(spool_path, busy_timeout=HOOK_BUSY_TIMEOUT_SECONDS)
    try:
        spool.append(
            mapping.conversation_id(payload),
            events,
            mapping.conversation_started(payload),
            cwd if isinstance(cwd, str) else None,
        )
    finally:
        if not leave_open:
            spool.close()
        else:
            _LEFT_OPEN.append(spool)


_LEFT_OPEN: list[object] = []


def _end_hook_process() -> NoReturn:
    """Ends the hook's process at once: no interpreter teardown, and the spool left open.

    Closing the last connection to a WAL database checkpoints it, and that checkpoint (an fsync)
    cost the hook about 25 ms whenever no sender had the spool open. The transaction is committed
    already; SQLite is built to have a process vanish at any point, and the sender checkpoints."""
    try:  # noqa: SIM105 - no contextlib on the hook's path
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(0)


# --- flush ------------------------------------------------------------------------------------


def run_flush(args: argparse.Namespace) -> int:
    config = client_config.ClientConfig.load(os.environ)
    if args.daemon:
        from adapters.claude_code.sender_process import run_background_sender

        log = ProblemLog(client_config.log_path(config.spool), echo_to_stderr=False)
        return run_background_sender(config, log, lock_fd=args.lock_fd)

    from adapters.claude_code.sender import ServiceClient
    from adapters.claude_code.spool import Spool

    with Spool(config.spool) as spool:
        if args.requeue_rejected:
            print(f"requeued {spool.requeue_rejected()} rejected events")
        if args.drop_rejected:
            print(f"dropped {spool.drop_rejected()} rejected events")
        missing = config.missing()
        if missing is not None or config.url is None or config.token is None:
            _complain(f"{spool.pending_count()} events stay spooled: {missing}")
            return 1
        try:
            client = ServiceClient(config.url, config.token)
        except ValueError as error:
            _complain(f"{spool.pending_count()} events stay spooled: {client_config.URL_VARIABLE}: {error}")
            return 1
        try:
            report, failure = _send_everything(spool, client, config.spool, args.timeout)
        finally:
            client.close()
        pending, rejected = spool.pending_count(), spool.rejected_count()
        spool.tidy(final=True)
        print(f"sent {report.sent} events to {config.url}")
        if pending:
            _complain(f"{pending} events stay spooled: {failure or 'not sent'}")
        if rejected:
            reasons = report.reasons or [event.reason for event in spool.rejected(limit=1)]
            _complain(f"{rejected} events were rejected by the service and are kept aside: {'; '.join(reasons[:3])}")
            _complain("fix the cause, then: session-events flush --requeue-rejected (or --drop-rejected)")
        return 1 if pending or rejected else 0


def _send_everything(
    spool: Spool, client: ServiceClient, spool_path: str, timeout: float
) -> tuple[SendReport, str | None]:
    """Sends batch after batch until the spool is empty, retrying a busy or unreachable service
    until `timeout`; returns what was done and, if events are left, why."""
    import time

    from adapters.claude_code.locks import FileLock, send_lock_path
    from adapters.claude_code.sender import Backoff, RetryLater, Sender, SendReport

    report = SendReport()
    sender = Sender(spool, client, report=report)
    backoff = Backoff()
    deadline = time.monotonic() + timeout
    send_lock = FileLock(send_lock_path(spool_path))  # never beside the background sender's batch
    try:
        while True:
            try:
                with send_lock:
                    if not sender.send_next():
                        return report, None
                backoff.reset()
            except RetryLater as error:
                delay = backoff.next_delay(error.retry_after)
                if time.monotonic() + delay > deadline:
                    return report, error.reason
                time.sleep(delay)
    finally:
        send_lock.close()


def _complain(message: str) -> None:
    print(f"session-events: {message}", file=sys.stderr)


# --- hooks install / uninstall / status ---------------------------------------------------------


def _settings_path(args: argparse.Namespace) -> Path:
    from pathlib import Path

    from adapters.claude_code.settings_file import settings_path

    project_dir = Path(args.project_dir or os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd())
    return settings_path(args.scope, project_dir=project_dir, env=os.environ)


def _session_events_executable() -> list[str]:
    """The absolute path of this installation's `session-events`, so the hook works whatever
    PATH Claude Code runs with (a virtualenv's script needs no activation)."""
    import shutil

    beside_interpreter = os.path.join(os.path.dirname(sys.executable), "session-events")
    if os.path.exists(beside_interpreter):
        return [beside_interpreter]
    found = shutil.which("session-events")
    return [found] if found else ["session-events"]


def run_hooks_install(args: argparse.Namespace) -> int:
    from adapters.claude_code import settings_file

    command = args.command or settings_file.hook_command(_session_events_executable())
    if not settings_file.is_our_handler({"type": "command", "command": command}):
        _complain(f"--command must end with 'session-events hook': {command!r}")
        return 2
    token = args.token
    if token == "-":  # noqa: S105 - "read it from stdin", not a password
        token = sys.stdin.readline().strip()
    path = _settings_path(args)
    try:
        settings = settings_file.read_settings(path)
        changed = settings_file.install(settings, command, args.event or settings_file.DEFAULT_EVENTS)
        if changed:
            settings_file.write_settings(path, settings)
    except (settings_file.SettingsError, OSError) as error:
        _complain(str(error))
        return 1
    if args.url or token:
        client_file = client_config.client_file_path(os.environ)
        client_config.write_client_file(client_file, url=args.url, token=token)
        print(f"saved the service {'URL and token' if args.url and token else 'URL' if args.url else 'token'}"
              f" in {client_file} (readable by you only)")
    events = settings_file.installed_events(settings)
    print(f"{path}: session-events hook installed for {len(events)} events"
          f" ({'changed: ' + ', '.join(changed) if changed else 'already up to date'})")
    print(f"command: {command}")
    missing = client_config.ClientConfig.load(os.environ).missing()
    if missing:
        print(f"note: events will be spooled but not sent until configured: {missing}")
    return 0


def run_hooks_uninstall(args: argparse.Namespace) -> int:
    from adapters.claude_code import settings_file

    path = _settings_path(args)
    try:
        settings = settings_file.read_settings(path)
        changed = settings_file.uninstall(settings)
        if changed:
            settings_file.write_settings(path, settings)
    except (settings_file.SettingsError, OSError) as error:
        _complain(str(error))
        return 1
    if changed:
        print(f"{path}: session-events hook removed from {len(changed)} events ({', '.join(changed)})")
    else:
        print(f"{path}: no session-events hook to remove")
    return 0


def run_hooks_status(args: argparse.Namespace) -> int:
    import json

    from adapters.claude_code import settings_file
    from adapters.claude_code.sender_process import sender_pid
    from adapters.claude_code.spool import Spool

    config = client_config.ClientConfig.load(os.environ)
    status: dict[str, object] = {
        "url": config.url,
        "token_configured": config.token is not None,
        "spool": str(config.spool),
        "log": str(client_config.log_path(config.spool)),
        "sender_pid": sender_pid(config.spool),
    }
    if os.path.exists(config.spool):
        with Spool(config.spool) as spool:
            status["pending"] = spool.pending_count()
            status["rejected"] = spool.rejected_count()
            status["last_error"] = spool.state("last_error")
            status["rejected_examples"] = [
                {"id": e.id, "event_type": e.event_type, "status": e.status, "reason": e.reason}
                for e in spool.rejected(limit=5)
            ]
    else:
        status.update(pending=0, rejected=0, last_error=None, rejected_examples=[])
    installed: dict[str, list[str]] = {}
    for scope in ("user", "project", "local"):
        args.scope = scope
        try:
            installed[scope] = settings_file.installed_events(settings_file.read_settings(_settings_path(args)))
        except settings_file.SettingsError as error:
            installed[scope] = [f"unreadable: {error}"]
    status["installed"] = installed
    if args.json:
        print(json.dumps(status))
        return 0
    print(f"service:        {config.url or '(not configured)'}  token: {'set' if config.token else 'not set'}")
    print(f"spool:          {status['spool']}")
    print(f"pending events: {status['pending']}   rejected: {status['rejected']}")
    pid = status["sender_pid"]
    print(f"sender:         {f'running (pid {pid})' if pid else 'not running'}")
    if status["last_error"]:
        print(f"last error:     {status['last_error']}")
    for example in status["rejected_examples"]:  # type: ignore[attr-defined]
        print(f"  rejected {example['event_type']} {example['id']}: {example['reason']}")
    for scope, events in installed.items():
        print(f"hooks ({scope}): {', '.join(events) if events else 'none'}")
    return 0


# --- command line ---------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `hook`, `flush` and `hooks` to a `session-events` parser."""
    hook = commands.add_parser(
        "hook", help="Claude Code hook command: spool the hook payload on stdin (always exits 0, prints nothing)"
    )
    hook.set_defaults(run=lambda _args: run_hook())

    flush = commands.add_parser(
        "flush", help="send every spooled Claude Code event now; exit 0 when the spool is empty, 1 otherwise"
    )
    flush.add_argument("--timeout", type=float, default=15.0, help="seconds to keep retrying (default 15)")
    flush.add_argument("--requeue-rejected", action="store_true", help="first put rejected events back in the queue")
    flush.add_argument("--drop-rejected", action="store_true", help="first delete the rejected events for good")
    flush.add_argument("--daemon", action="store_true", help="run as the background sender (hooks start it)")
    flush.add_argument("--lock-fd", type=int, default=None, help=argparse_suppress())
    flush.set_defaults(run=run_flush)

    hooks = commands.add_parser("hooks", help="install or remove the hook in Claude Code's settings")
    hook_commands = hooks.add_subparsers(dest="hooks_command", required=True)
    for name, run, text in (
        ("install", run_hooks_install, "add the session-events hook for every hook event (idempotent)"),
        ("uninstall", run_hooks_uninstall, "remove exactly what install added"),
    ):
        sub = hook_commands.add_parser(name, help=text)
        sub.add_argument("--scope", choices=["user", "project", "local"], default="user",
                         help="~/.claude/settings.json (user, default), .claude/settings.json (project) "
                         "or .claude/settings.local.json (local)")
        sub.add_argument("--project-dir", help="the project for --scope project/local (default: current directory)")
        sub.set_defaults(run=run)
        if name == "install":
            sub.add_argument("--event", action="append", metavar="NAME",
                             help="install for these hook events only (repeatable; default: the 12 every recent "
                             "Claude Code knows)")
            sub.add_argument("--url", help="save the service's base URL for the sender "
                             f"(else ${client_config.URL_VARIABLE})")
            sub.add_argument("--token", help=f"save the API token for the sender ('-': read it from stdin; "
                             f"else ${client_config.TOKEN_VARIABLE})")
            sub.add_argument("--command", help="the hook command to write (default: this installation's "
                             "absolute 'session-events hook')")
    status = hook_commands.add_parser("status", help="configuration, spool, sender and installed hooks")
    status.add_argument("--json", action="store_true")
    status.add_argument("--project-dir", help="the project whose settings to inspect (default: current directory)")
    status.set_defaults(run=run_hooks_status, scope="user")


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["hook"]:
        run_hook(leave_spool_open=True)  # the hot path: no argument parser, never a usage error
        _end_hook_process()
    import argparse

    parser = argparse.ArgumentParser(prog="session-events")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(arguments)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
