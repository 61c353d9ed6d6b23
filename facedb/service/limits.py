"""Bounded concurrency for CPU-bound work: a few running, a bounded queue, then refusal.

Detection and embedding saturate a core each (onnxruntime threads are sized so that
`slots x threads` equals the cores), so running more requests at once only makes every
one of them slower. Requests beyond the slots wait in a short queue, up to their own
deadline; when the queue is full the caller is told at once to back off.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class OverloadedError(Exception):
    """Every slot is busy and the wait queue is full (RESOURCE_EXHAUSTED)."""


class SlotTimeoutError(Exception):
    """The request's deadline passed while it waited for a slot (DEADLINE_EXCEEDED)."""


class ConcurrencyLimiter:
    def __init__(self, slots: int, max_queue: int):
        if slots < 1 or max_queue < 0:
            raise ValueError("slots must be >= 1 and max_queue >= 0")
        self.slots = slots
        self.max_queue = max_queue
        self._running = 0
        self._waiting = 0
        self._condition = threading.Condition()

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    @contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[None]:
        """Hold one slot for the block; wait at most `timeout` seconds (None: no limit)."""
        self._acquire(timeout)
        try:
            yield
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify()

    def _acquire(self, timeout: float | None) -> None:
        with self._condition:
            if self._running < self.slots:
                self._running += 1
                return
            if self._waiting >= self.max_queue:
                raise OverloadedError(
                    f"server busy: {self._running} requests running and {self._waiting} "
                    "queued; retry with backoff"
                )
            self._waiting += 1
            try:
                got = self._condition.wait_for(lambda: self._running < self.slots, timeout)
            finally:
                self._waiting -= 1
            if not got:
                raise SlotTimeoutError("deadline exceeded while waiting for a free worker")
            self._running += 1
