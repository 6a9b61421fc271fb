"""Wall time of `session-events hook`, as Claude Code feels it (a script, not a test).

Runs the real command once per hook payload, sequentially, with a realistic mix of payloads (a
session start, prompts, Read/Edit/Bash/Write tool calls with their results, some of them tens of
KB, a few 300 KB), and reports the median, p90, p99 and maximum wall time from process start to
exit, in three situations:
  - `up`: a real `session-events serve` (SQLite, a temporary file) is running; the background
    sender is sending while the hooks run, as it would in a real session;
  - `down`: nothing listens at SESSION_EVENTS_URL; the sender is backing off;
  - `python -c pass` and `python -P -m entrypoints.claude_code_cli hook` as reference points.
Afterwards it flushes the `up` spool and checks that the service has every event (the only
assertion). Everything it creates lives in a temporary directory, deleted at the end.

    python bench/bench_hook.py              # 200 runs per situation (about a minute)
    python bench/bench_hook.py --runs 50
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from adapters.claude_code.mapping import map_payload  # noqa: E402
from adapters.claude_code.sender_process import stop_sender  # noqa: E402

SCRIPT = Path(sys.executable).parent / "session-events"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def payloads(count: int, session_id: str, cwd: str) -> list[bytes]:
    """A plausible session: every 50th tool result is a 300 KB Read."""
    common = {
        "session_id": session_id,
        "transcript_path": f"/home/dev/.claude/projects/p/{session_id}.jsonl",
        "cwd": cwd,
        "permission_mode": "default",
    }
    medium = "".join(f"{n:6d}\tline of source code, ünïcödé ✓\n" for n in range(600))  # ~25 KB
    large = medium * 12  # ~300 KB
    out: list[bytes] = [json.dumps({**common, "hook_event_name": "SessionStart", "source": "startup"}).encode()]
    n = 0
    while len(out) < count:
        n += 1
        tool_use_id = f"toolu_{uuid.uuid4().hex[:24]}"
        kind = n % 4
        if kind == 0:
            out.append(json.dumps({**common, "hook_event_name": "UserPromptSubmit", "prompt": f"step {n}"}).encode())
            continue
        if kind == 1:
            tool, tool_input = "Read", {"file_path": f"{cwd}/src/m{n}.py"}
            response = {
                "type": "text",
                "file": {"filePath": tool_input["file_path"], "content": large if n % 50 == 1 else medium},
            }
        elif kind == 2:
            tool, tool_input = "Bash", {"command": "pytest -q", "description": "run tests"}
            response = {"stdout": medium[:4000], "stderr": "", "interrupted": False, "isImage": False}
        else:
            tool, tool_input = "Edit", {"file_path": f"{cwd}/src/m{n}.py", "old_string": "a", "new_string": "b"}
            response = {"filePath": tool_input["file_path"], "oldString": "a", "newString": "b"}
        base = {**common, "tool_name": tool, "tool_input": tool_input, "tool_use_id": tool_use_id}
        out.append(json.dumps({**base, "hook_event_name": "PreToolUse"}).encode())
        out.append(json.dumps({**base, "hook_event_name": "PostToolUse", "tool_response": response}).encode())
    return out[:count]


def run_hooks(command: list[str], inputs: list[bytes], env: dict[str, str]) -> list[float]:
    times = []
    for raw in inputs:
        started = time.perf_counter()
        done = subprocess.run(command, input=raw, capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - started)
        if done.returncode != 0 or done.stdout:
            raise SystemExit(f"hook misbehaved: rc={done.returncode} stdout={done.stdout[:200]!r}")
    return times


def describe(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))]

    return (
        f"{name:<44} n={len(ms):<4} median {statistics.median(ms):6.1f} ms   p90 {pct(90):6.1f}   "
        f"p99 {pct(99):6.1f}   max {ms[-1]:6.1f}"
    )


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'service.db'}"}
    server = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", str(port), "--log-level", "warning"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit("the server did not start")
    token = (
        subprocess.run(
            [str(SCRIPT), "tokens", "create", "--account-id", "1", "--user-id", "1"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return server, url, token


def count_events(url: str, token: str, conversation: str) -> int:
    request = urllib.request.Request(f"{url}/api/sessions?limit=1000", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        sessions = json.load(answer)["data"]
    return sum(s["event_count"] for s in sessions if s["external_conversation_id"] == conversation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="hook runs per situation (default 200)")
    parser.add_argument(
        "--hook",
        default=str(SCRIPT),
        help="the session-events whose hook is timed (default: this virtualenv's); the service "
        "always runs from this virtualenv",
    )
    args = parser.parse_args()
    hook = [args.hook, "hook"]
    if not SCRIPT.exists():
        raise SystemExit(f"no {SCRIPT}: run this with the virtualenv's python after pip install -e .")
    workdir = Path(tempfile.mkdtemp(prefix="bench_hook_"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_EVENTS_")}
    base_env["XDG_CONFIG_HOME"] = str(workdir / "config")  # no client file from the user's own set-up
    results = []
    server = None
    try:
        print(
            f"python {sys.version.split()[0]} on {os.cpu_count()} cores; {args.runs} runs each; hook: {args.hook}",
            file=sys.stderr,
        )
        reference = payloads(args.runs, str(uuid.uuid4()), "/home/dev/p")
        python = str(Path(args.hook).parent / "python")
        results.append(describe("reference: python -c pass", run_hooks([python, "-c", "pass"], reference, base_env)))

        down_env = {
            **base_env,
            "SESSION_EVENTS_SPOOL": str(workdir / "down" / "spool.db"),
            "SESSION_EVENTS_URL": f"http://127.0.0.1:{free_port()}",
            "SESSION_EVENTS_TOKEN": "se_unused",
        }
        results.append(describe("session-events hook, service down", run_hooks(hook, reference, down_env)))
        module_env = {**down_env, "SESSION_EVENTS_SPOOL": str(workdir / "module" / "spool.db")}
        results.append(
            describe(
                "python -P -m entrypoints.claude_code_cli hook",
                run_hooks([python, "-P", "-m", "entrypoints.claude_code_cli", "hook"], reference, module_env),
            )
        )

        server, url, token = start_server(workdir)
        conversation = str(uuid.uuid4())
        up_env = {
            **base_env,
            "SESSION_EVENTS_SPOOL": str(workdir / "up" / "spool.db"),
            "SESSION_EVENTS_URL": url,
            "SESSION_EVENTS_TOKEN": token,
        }
        up_inputs = payloads(args.runs, conversation, "/home/dev/p")
        results.append(describe("session-events hook, service up (sender busy)", run_hooks(hook, up_inputs, up_env)))
        flushed = subprocess.run([str(SCRIPT), "flush"], env=up_env, capture_output=True, text=True, check=False)
        stored = count_events(url, token, conversation)
        expected = 1 + sum(len(map_payload(json.loads(raw))) for raw in up_inputs)  # + conversation_started
        print("\n".join(results))
        print(f"check: flush exit {flushed.returncode}; the service stored {stored} of {expected} events")
        if flushed.returncode != 0 or stored != expected:
            raise SystemExit(f"events missing: {flushed.stderr}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        for spool in workdir.glob("*/spool.db"):
            stop_sender(spool)  # the `down` sender would otherwise back off for an hour
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
