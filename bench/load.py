"""The load generator: threads, each with one persistent HTTP/1.1 connection (stdlib
`http.client`), sending request bodies built before the clock starts.

Why `http.client` and threads: on this 2-core machine the client shares the CPU with the server,
so what a request costs the client decides whether the client or the server is measured. See
bench/README.md for the measurement (httpx costs ~3x the CPU per request and its ceiling fell
below the server's /health rate with 16 threads). The client's own cost is measured in every run
(`ceiling`) and its CPU use is reported beside every HTTP case, so a saturated client shows."""

from __future__ import annotations

import http.client
import json
import resource
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any


class RequestFailed(RuntimeError):
    """A request the benchmark expected to succeed did not: the run stops rather than report
    figures for work that was not done."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Connection:
    """One keep-alive connection with the token's headers ready."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self._headers = {"Content-Type": "application/json"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, body: bytes | None = None, expect: int = 200) -> bytes:
        try:
            self._conn.request(method, path, body=body, headers=self._headers)
            response = self._conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closes a connection left idle past its keep-alive timeout (uvicorn: 5 s)
            # before reading the next request: send it again on a new one. Events carry their
            # ids, so even a POST that had been read would be recorded once.
            self._conn.close()
            self._conn.request(method, path, body=body, headers=self._headers)
            response = self._conn.getresponse()
        payload = response.read()
        if response.status != expect:
            raise RequestFailed(f"{method} {path}: {response.status} {payload[:300]!r}", response.status)
        return payload

    def post(self, path: str, body: bytes) -> bytes:
        return self.request("POST", path, body)

    def get_json(self, path: str) -> Any:
        return json.loads(self.request("GET", path))

    def create_session(self) -> int:
        return int(json.loads(self.request("POST", "/api/sessions", b"{}", expect=201))["data"]["id"])

    def close(self) -> None:
        self._conn.close()


def cpu_seconds() -> float:
    """CPU time this process (every thread) has used: the load generator's cost."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    """What a set of clients did: wall time from the moment all were connected, the client
    process's CPU seconds over the same span, and every request's latency."""

    seconds: float
    client_cpu_seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def client_cpu_share(self) -> float:
        """Fraction of one core the load generator used; near 1.0 it, not the server, limits."""
        return self.client_cpu_seconds / self.seconds if self.seconds else 0.0


Job = Callable[[threading.Barrier], list[float]]
"""A client: gets ready (connects), waits on the barrier, works, returns its latencies."""


def run_clients(jobs: Sequence[Job]) -> Run:
    """Runs each job in its own thread; the clock starts once every client is ready."""
    barrier = threading.Barrier(len(jobs) + 1)
    errors: list[BaseException] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def run(job: Job) -> None:
        try:
            mine = job(barrier)
        except BaseException as error:
            errors.append(error)
            barrier.abort()
            return
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    with suppress(threading.BrokenBarrierError):  # a client failed before it was ready: raised below
        barrier.wait()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for thread in threads:
        thread.join()
    run_ = Run(time.perf_counter() - started, cpu_seconds() - cpu_started, latencies)
    if errors:
        raise errors[0]
    return run_


def posting(port: int, token: str, requests: Sequence[tuple[str, bytes]]) -> Job:
    """A client that POSTs each (path, body) in turn on one connection, timing each call."""

    def job(barrier: threading.Barrier) -> list[float]:
        connection = Connection(port, token)
        try:
            connection.request("GET", "/health")  # connected and warm before the clock starts
            barrier.wait()
            latencies = []
            for path, body in requests:
                sent = time.perf_counter()
                connection.post(path, body)
                latencies.append(time.perf_counter() - sent)
            return latencies
        finally:
            connection.close()

    return job


def getting(port: int, token: str | None, paths: Sequence[str]) -> Job:
    def job(barrier: threading.Barrier) -> list[float]:
        connection = Connection(port, token)
        try:
            connection.request("GET", "/health")
            barrier.wait()
            latencies = []
            for path in paths:
                sent = time.perf_counter()
                connection.request("GET", path)
                latencies.append(time.perf_counter() - sent)
            return latencies
        finally:
            connection.close()

    return job


@dataclass(frozen=True)
class Ceiling:
    """The load generator's own limit: requests per CPU-second of the client process (it is
    GIL-bound, so one core's worth), measured against the server's lightest route."""

    clients: int
    requests: int
    health_rate: float
    client_cpu_per_request_us: float

    @property
    def client_ceiling(self) -> float:
        return 1e6 / self.client_cpu_per_request_us if self.client_cpu_per_request_us else 0.0


def measure_ceiling(port: int, clients: int, requests: int) -> Ceiling:
    per_client = max(1, requests // clients)
    run = run_clients([getting(port, None, ["/health"] * per_client) for _ in range(clients)])
    done = per_client * clients
    return Ceiling(clients, done, done / run.seconds, 1e6 * run.client_cpu_seconds / done)
