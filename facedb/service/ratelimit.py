"""Per-key request rate limits: a token bucket per key, in this process.

A key with `rate_limit` r gets r requests per second on average and bursts of up to one
second's worth; beyond that a call is refused with RESOURCE_EXHAUSTED (HTTP 429) and the
seconds after which one more would be allowed. Buckets are per server process: behind a
load balancer over n replicas a key gets at most n x r.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_BUCKETS = 100_000  # forget idle buckets beyond this many keys (a full bucket is the default)


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key_id: str, rate: float) -> float | None:
        """Take one request from the key's bucket: None when allowed, else the seconds to wait."""
        capacity = max(1.0, rate)
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(key_id, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * rate)
            if len(self._buckets) >= MAX_BUCKETS and key_id not in self._buckets:
                self._buckets.clear()
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return None
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate
