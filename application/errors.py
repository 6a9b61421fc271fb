"""Errors the use cases raise; entrypoints map them to their own vocabulary (HTTP status codes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class SessionNotFound(Exception):
    """The session does not exist, or is outside the caller's scope: the two are indistinguishable."""

    def __init__(self, session_id: int) -> None:
        super().__init__(f"session {session_id} not found")
        self.session_id = session_id


class EventRejected(Exception):
    """An event failed validation; `index` is its position in a batch (None for a single event)."""

    def __init__(self, errors: Mapping[str, Sequence[str]], index: int | None = None) -> None:
        where = "" if index is None else f" at index {index}"
        super().__init__(f"invalid event{where}: {dict(errors)}")
        self.errors = {field: list(messages) for field, messages in errors.items()}
        self.index = index


class InvalidQuery(Exception):
    """A query parameter is out of range; `errors` maps parameter names to messages."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        super().__init__(f"invalid query: {dict(errors)}")
        self.errors = {field: list(messages) for field, messages in errors.items()}


class StoreUnavailable(Exception):
    """The store cannot be reached right now; the caller should retry later."""


class ReadModelFailed(StoreUnavailable):
    """A read model stopped on an event it could not project, before the position the read
    needs; it answers again once it is fixed and retried, or rebuilt."""

    def __init__(self, projection: str, position: int, error: str) -> None:
        super().__init__(f"the {projection} read model failed at log position {position}: {error}")
        self.projection = projection
        self.position = position


class ConcurrentUpdate(Exception):
    """Another writer saved the session first; the command must be decided again."""


class RateLimited(Exception):
    """The token made more requests this minute than the service allows; `retry_after` is the
    whole number of seconds until a request would be admitted again."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"more than {limit} requests a minute with this token; retry in {retry_after} s")
        self.limit = limit
        self.retry_after = retry_after
