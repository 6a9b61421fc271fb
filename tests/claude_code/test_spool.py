"""The spool file: order, first events, de-duplication, batches, parking; and event encoding."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from adapters.claude_code import encoding
from adapters.claude_code.mapping import conversation_started, map_payload
from adapters.claude_code.spool import Spool
from tests.claude_code import payloads as p


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    opened = Spool(tmp_path / "state" / "spool.db")
    yield opened
    opened.close()


def spool_hook(spool: Spool, payload: dict) -> int:
    return spool.append(payload["session_id"], map_payload(payload), conversation_started(payload), payload.get("cwd"))


def waiting(spool: Spool) -> list:
    return spool.next_batch(10_000, 1 << 40)


def test_the_first_event_of_a_session_is_conversation_started_once(spool: Spool) -> None:
    sid = p.new_session_id()
    assert spool_hook(spool, p.user_prompt(sid, "one")) == 2
    assert spool_hook(spool, p.user_prompt(sid, "two")) == 1
    events = waiting(spool)
    assert [e.event_type for e in events] == [
        "conversation_started", "conversation_message_sent", "conversation_message_sent"]
    assert json.loads(events[0].data)["conversation_id"] == sid


def test_sent_at_strictly_increases_in_spool_order(spool: Spool) -> None:
    sid = p.new_session_id()
    for n in range(20):
        spool_hook(spool, p.pre_tool(sid, "Bash", {"command": f"echo {n}"}, p.tool_use_id()))
    stamps = [e.sent_at for e in waiting(spool)]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(s.endswith("Z") and len(s) == len("2025-01-15T10:00:00.000000Z") for s in stamps)


def test_an_event_already_waiting_is_not_spooled_twice(spool: Spool) -> None:
    sid = p.new_session_id()
    payload = p.post_tool(sid, "Bash", {"command": "ls"}, {"stdout": ""}, "toolu_same")
    assert spool_hook(spool, payload) == 3
    assert spool_hook(spool, payload) == 0
    prompt = p.user_prompt(sid, "same words")
    assert spool_hook(spool, prompt) == spool_hook(spool, prompt) == 1
    assert spool.pending_count() == 5


def test_a_batch_is_one_sessions_oldest_events_within_the_limits(spool: Spool) -> None:
    first, second = p.new_session_id(), p.new_session_id()
    for n in range(3):
        spool_hook(spool, p.user_prompt(first, f"a{n}"))
        spool_hook(spool, p.user_prompt(second, f"b{n}"))
    batch = spool.next_batch(3, 1 << 30)
    assert [e.conversation_id for e in batch] == [first] * 3
    assert [e.seq for e in batch] == sorted(e.seq for e in batch)
    spool.delete(batch)
    assert {e.conversation_id for e in spool.next_batch(1000, 1 << 30)} == {second}
    one = spool.next_batch(1000, 1)  # too small for any event: still one, or nothing would move
    assert len(one) == 1


def test_parked_events_leave_the_queue_and_come_back_in_place(spool: Spool) -> None:
    sid = p.new_session_id()
    for n in range(4):
        spool_hook(spool, p.user_prompt(sid, f"p{n}"))
    events = waiting(spool)
    assert spool.park(events[1:3], 422, "invalid") == 2
    assert [e.seq for e in waiting(spool)] == [events[0].seq, *(e.seq for e in events[3:])]
    (rejected, _) = spool.rejected()
    assert (rejected.status, rejected.reason) == (422, "invalid")
    assert spool.requeue_rejected() == 2
    assert [e.seq for e in waiting(spool)] == [e.seq for e in events]
    assert spool.rejected_count() == 0


def test_a_whole_conversation_can_be_parked(spool: Spool) -> None:
    one, other = p.new_session_id(), p.new_session_id()
    spool_hook(spool, p.user_prompt(one, "x"))
    spool_hook(spool, p.user_prompt(other, "y"))
    assert spool.park_conversation(one, 401, "unknown token") == 2
    assert {e.conversation_id for e in waiting(spool)} == {other}


def test_remembers_service_sessions_per_url(spool: Spool) -> None:
    spool.remember_session("http://a", "c1", 7, opened=False)
    assert spool.remote_session("http://a", "c1") == (7, False)
    assert spool.remote_session("http://b", "c1") is None
    spool.mark_opened("http://a", "c1")
    assert spool.remote_session("http://a", "c1") == (7, True)
    spool.forget_session("http://a", "c1")
    assert spool.remote_session("http://a", "c1") is None


def test_writers_in_many_threads_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    sid = p.new_session_id()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with Spool(path) as own:
                for k in range(10):
                    spool_hook(own, p.user_prompt(sid, f"{n}-{k}"))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Spool(path) as check:
        events = waiting(check)
    prompts = [json.loads(e.data)["payload"]["prompt"] for e in events[1:]]
    assert events[0].event_type == "conversation_started"
    assert sorted(prompts) == sorted(f"{n}-{k}" for n in range(8) for k in range(10))


def test_encoding_keeps_unicode_and_replaces_lone_surrogates() -> None:
    text, size = encoding.encode_data({"prompt": "prix € ✓ 日本語 😀"})
    assert json.loads(text) == {"prompt": "prix € ✓ 日本語 😀"}
    assert size == len(text.encode())
    payload = encoding.parse_payload(b'{"prompt": "bad \\ud800 half", "n": NaN}')
    text, _ = encoding.encode_data({"payload": payload})
    assert json.loads(text) == {"payload": {"prompt": "bad \ufffd half", "n": None}}


def test_an_event_too_big_for_a_request_is_shrunk_and_says_so() -> None:
    huge = "x" * (encoding.MAX_EVENT_BYTES + 10)
    text, size = encoding.encode_data({"tool_name": "Read", "payload": {"tool_response": {"content": huge}, "k": 1}})
    data = json.loads(text)
    assert size <= encoding.MAX_EVENT_BYTES
    assert data["truncated"] is True and data["tool_name"] == "Read" and data["payload"]["k"] == 1
    assert data["payload"]["tool_response"]["content"].startswith("x" * 1000)
    many = {"payload": {"lines": ["y" * 1000] * (encoding.MAX_EVENT_BYTES // 1000 + 10)}, "tool_name": "Read"}
    text, size = encoding.encode_data(many)
    data = json.loads(text)
    assert size <= encoding.MAX_EVENT_BYTES
    assert data["payload"] is None and data["payload_omitted"]["bytes"] > encoding.MAX_EVENT_BYTES


def test_a_busy_answer_is_waited_out_not_turned_into_a_lost_event() -> None:
    """SQLite sometimes answers busy at once, without its busy timeout: the spool retries."""
    import sqlite3

    from adapters.claude_code.spool import _until_not_busy

    class Flaky:
        def __init__(self, failures: list[str]) -> None:
            self.failures, self.ran = failures, []

        def execute(self, statement: str) -> None:
            if self.failures:
                raise sqlite3.OperationalError(self.failures.pop(0))
            self.ran.append(statement)

    db = Flaky(["database is locked", "database is locked"])
    _until_not_busy(db, "BEGIN IMMEDIATE")  # type: ignore[arg-type]
    assert db.ran == ["BEGIN IMMEDIATE"]
    with pytest.raises(sqlite3.OperationalError, match="no such table"):  # anything else is not retried
        _until_not_busy(Flaky(["no such table: x"]), "SELECT 1")  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # nor past the deadline
        _until_not_busy(Flaky(["database is locked"] * 1000), "BEGIN", timeout=0.01)  # type: ignore[arg-type]
