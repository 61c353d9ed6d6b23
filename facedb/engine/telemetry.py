"""Stage timings, refusal counts and request deadlines.

Every expensive step of a request (decode, the pipeline's detect / align / gates / embed,
search, write) runs inside `Telemetry.stage(name)`: the deadline is checked before the
step starts and its duration goes to the observer. The deadline lives in a context
variable, so a request's steps see its deadline on whichever thread runs the request.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from facedb.engine.errors import DeadlineExceededError


class Observer(Protocol):
    """Where stage timings and refusals go (the service plugs Prometheus in here)."""

    def stage(self, name: str, seconds: float) -> None: ...

    def rejection(self, reason: str) -> None: ...


class NullObserver:
    def stage(self, name: str, seconds: float) -> None:
        pass

    def rejection(self, reason: str) -> None:
        pass


# Monotonic time by which the request on this thread must be answered (None: no deadline).
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "facedb_deadline", default=None
)


@contextmanager
def deadline_scope(timeout: float | None) -> Iterator[None]:
    """Within the block, stages refuse to start `timeout` seconds from now."""
    token = _deadline.set(None if timeout is None else time.monotonic() + timeout)
    try:
        yield
    finally:
        _deadline.reset(token)


def current_deadline() -> float | None:
    """The `time.monotonic()` by which this thread's request must be answered (None: none)."""
    return _deadline.get()


def deadline_error(stage: str) -> DeadlineExceededError:
    return DeadlineExceededError(f"deadline exceeded before the {stage} stage")


def check_deadline(stage: str) -> None:
    """Refuse to start an expensive stage once the caller has stopped waiting."""
    expires = _deadline.get()
    if expires is not None and time.monotonic() >= expires:
        raise deadline_error(stage)


class Telemetry:
    """The engine's stage hook and refusal counter, backed by a replaceable observer."""

    def __init__(self, observer: Observer | None = None) -> None:
        self.observer: Observer = observer or NullObserver()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        check_deadline(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observer.stage(name, time.perf_counter() - start)

    def rejection(self, reason: object) -> None:
        self.observer.rejection(str(reason))
