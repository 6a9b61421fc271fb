"""How the sender answers each kind of service reply, against a scripted HTTP service.

The happy path, wrong tokens and outages run against the real service in test_hook_command.py;
here a stub plays the replies a real service gives only in rare states (429, 503 with
Retry-After, a 422 pointing at one event, 413, a session deleted under us)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from adapters.claude_code.mapping import conversation_started, map_payload
from adapters.claude_code.sender import Backoff, RetryLater, Sender, ServiceClient, parse_retry_after
from adapters.claude_code.spool import Spool
from tests.claude_code import payloads as p
from tests.conftest import free_port

Reply = tuple[int, dict[str, str], Any]


class ScriptedService:
    """Answers each request with `reply(method, path, body)`; records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.sessions: dict[int, list[dict[str, Any]]] = {}
        self.created = 0
        self.reply: Callable[[str, str, Any], Reply] = self.well_behaved
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                service.requests.append((self.command, self.path, body))
                status, headers, answer = service.reply(self.command, self.path, body)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _answer

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def well_behaved(self, method: str, path: str, body: Any) -> Reply:
        if method == "GET" and path.startswith("/api/sessions?"):
            return 200, {}, {"data": []}
        if method == "POST" and path == "/api/sessions":
            self.created += 1
            session_id = self.created
            self.sessions[session_id] = []
            return 201, {}, {"data": {"id": session_id, "external_conversation_id": None}}
        if method == "POST" and path.endswith("/events/batch"):
            session_id = int(path.split("/")[3])
            if session_id not in self.sessions:
                return 404, {}, {"status": "not_found", "error": "Session not found"}
            known = {e["id"] for e in self.sessions[session_id]}
            fresh = [e for e in body["events"] if e["id"] not in known]
            self.sessions[session_id].extend(fresh)
            return 200, {}, {"data": {"id": session_id}, "event_count": len(fresh)}
        return 404, {}, {"error": "no route"}

    def batches(self) -> list[list[dict[str, Any]]]:
        return [body["events"] for method, path, body in self.requests if path.endswith("/events/batch")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[ScriptedService]:
    running = ScriptedService()
    yield running
    running.close()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool.db")
    yield opened
    opened.close()


def spool_prompts(spool: Spool, session_id: str, count: int) -> None:
    for n in range(count):
        payload = p.user_prompt(session_id, f"prompt {n}")
        spool.append(session_id, map_payload(payload), conversation_started(payload), p.CWD)


def sender_for(spool: Spool, service: ScriptedService, **kwargs: Any) -> Sender:
    return Sender(spool, ServiceClient(service.url, "se_token"), **kwargs)


def test_creates_a_session_and_sends_its_events_in_order(spool: Spool, service: ScriptedService) -> None:
    sid = p.new_session_id()
    spool_prompts(spool, sid, 5)
    sender = sender_for(spool, service)
    sender.drain()
    assert spool.pending_count() == 0
    stored = service.sessions[1]
    assert [e["event_type"] for e in stored] == ["conversation_started"] + ["conversation_message_sent"] * 5
    assert [e["data"].get("payload", {}).get("prompt") for e in stored[1:]] == [f"prompt {n}" for n in range(5)]
    assert service.requests[0][:2] == ("GET", f"/api/sessions?conversation_id={sid}")
    assert service.requests[1][2] == {"agent": "claude-code", "state": {"cwd": p.CWD}}


def test_batches_hold_at_most_the_limit(spool: Spool, service: ScriptedService) -> None:
    spool_prompts(spool, p.new_session_id(), 9)
    sender_for(spool, service, max_events=4).drain()
    assert [len(batch) for batch in service.batches()] == [4, 4, 2]


def test_an_existing_session_is_found_by_conversation_id_and_only_an_exact_match_counts(
    spool: Spool, service: ScriptedService
) -> None:
    sid = p.new_session_id()
    service.sessions = {4: [], 9: []}

    def listing(method: str, path: str, body: Any) -> Reply:
        if method == "GET":  # a service that ignores the filter lists every session
            return 200, {}, {"data": [{"id": 4, "external_conversation_id": "someone-else"},
                                      {"id": 9, "external_conversation_id": sid}]}
        return service.well_behaved(method, path, body)

    service.reply = listing
    spool_prompts(spool, sid, 2)
    sender_for(spool, service).drain()
    assert len(service.sessions[9]) == 3 and service.sessions[4] == []


def test_unreachable_or_busy_service_means_retry_later_and_nothing_is_lost(
    spool: Spool, service: ScriptedService
) -> None:
    spool_prompts(spool, p.new_session_id(), 3)
    service.reply = lambda *_: (503, {"Retry-After": "7"}, {"error": "service_unavailable"})
    with pytest.raises(RetryLater) as raised:
        sender_for(spool, service).drain()
    assert raised.value.retry_after == 7.0
    assert spool.pending_count() == 4
    service.reply = lambda *_: (429, {"Retry-After": formatdate(usegmt=True)}, {"error": "rate_limited"})
    with pytest.raises(RetryLater):
        sender_for(spool, service).drain()
    unreachable = Sender(spool, ServiceClient(f"http://127.0.0.1:{free_port()}", "t"))
    with pytest.raises(RetryLater, match="unreachable"):
        unreachable.drain()
    assert spool.pending_count() == 4 and spool.rejected_count() == 0


def test_a_refused_event_is_parked_and_the_ones_behind_it_go_on(spool: Spool, service: ScriptedService) -> None:
    spool_prompts(spool, p.new_session_id(), 5)
    refused_once = []

    def refuse_third(method: str, path: str, body: Any) -> Reply:
        if path.endswith("/events/batch") and not refused_once:
            refused_once.append(body["events"][2]["id"])
            return 422, {}, {"errors": {"data": ["is invalid"]}, "index": 2}
        return service.well_behaved(method, path, body)

    service.reply = refuse_third
    sender = sender_for(spool, service)
    sender.drain()
    assert spool.pending_count() == 0 and spool.rejected_count() == 1
    (rejected,) = spool.rejected()
    assert (rejected.id, rejected.status) == (refused_once[0], 422)
    assert "is invalid" in rejected.reason
    assert len(service.sessions[1]) == 5
    assert sender.report.rejected == 1 and sender.report.sent == 5


@pytest.mark.parametrize("status", [400, 413])
def test_a_batch_refused_as_a_whole_is_halved_until_the_bad_event_is_alone(
    spool: Spool, service: ScriptedService, status: int
) -> None:
    spool_prompts(spool, p.new_session_id(), 7)
    bad = spool.next_batch(100, 1 << 30)[5].id

    def refuse_batches_with_bad(method: str, path: str, body: Any) -> Reply:
        if path.endswith("/events/batch") and any(e["id"] == bad for e in body["events"]):
            return status, {}, {"errors": {"body": ["too large or malformed"]}}
        return service.well_behaved(method, path, body)

    service.reply = refuse_batches_with_bad
    sender_for(spool, service).drain()
    assert [e.id for e in spool.rejected()] == [bad]
    assert len(service.sessions[1]) == 7


def test_a_wrong_token_parks_the_events_and_moves_on(spool: Spool, service: ScriptedService) -> None:
    refused, accepted = p.new_session_id(), p.new_session_id()
    spool_prompts(spool, refused, 2)
    spool_prompts(spool, accepted, 2)
    service.reply = lambda method, path, body: (
        (401, {"WWW-Authenticate": "Bearer"}, {"error": "invalid_token"})
        if refused in path else service.well_behaved(method, path, body)
    )
    sender = sender_for(spool, service)
    sender.drain()
    assert spool.rejected_count() == 3 and {e.status for e in spool.rejected()} == {401}
    assert len(service.sessions[1]) == 3
    assert "invalid_token" in sender.report.reasons[0]


def test_a_session_deleted_under_us_is_looked_up_again_and_opened_again(spool: Spool, service: ScriptedService) -> None:
    sid = p.new_session_id()
    spool_prompts(spool, sid, 1)
    sender = sender_for(spool, service)
    sender.drain()
    del service.sessions[1]  # deleted on the service
    spool_prompts(spool, sid, 1)
    sender.drain()
    assert spool.pending_count() == 0 and spool.rejected_count() == 0
    reopened = service.sessions[2]
    assert [e["event_type"] for e in reopened] == ["conversation_started", "conversation_message_sent"]
    assert reopened[0]["data"]["conversation_id"] == sid
    assert reopened[0]["sent_at"] == reopened[1]["sent_at"]


def test_a_session_that_keeps_answering_404_is_parked_not_looped_on(spool: Spool, service: ScriptedService) -> None:
    spool_prompts(spool, p.new_session_id(), 1)
    service.reply = lambda method, path, body: (
        (404, {}, {"status": "not_found"})
        if path.endswith("/events/batch")
        else service.well_behaved(method, path, body)
    )
    sender_for(spool, service).drain()
    assert spool.pending_count() == 0 and spool.rejected_count() == 2


def test_backoff_grows_with_jitter_up_to_a_cap_and_honours_retry_after() -> None:
    high = Backoff(base=0.5, cap=8.0, rng=lambda: 1.0)
    assert [high.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    low = Backoff(base=0.5, cap=8.0, rng=lambda: 0.0)
    assert [low.next_delay() for _ in range(3)] == [0.25, 0.5, 1.0]
    assert low.next_delay(retry_after=30.0) == 30.0
    low.reset()
    assert low.next_delay() == 0.25


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=0.0) == 600.0  # capped
    assert parse_retry_after(formatdate(1_000_030, usegmt=True), now=1_000_000) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
