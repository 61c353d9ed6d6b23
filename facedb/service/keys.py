"""API keys managed at run time, beside the bootstrap keys of FACEDB_API_KEYS.

A new key's secret is random (`fdb_` + 32 random bytes, URL-safe), shown once, and stored
only as its SHA-256. Lookups by secret are cached for a couple of seconds per process, so
a revocation or rotation written by any server process takes effect on every process
within `cache_seconds`, without a database read per call. Last use is written at most
once a minute per key and process.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from facedb.engine import InvalidRequestError, NotFoundEngineError
from facedb.service.auth import ROLE_RANK, AuthError, KeyRing, Principal
from facedb.storage.api_keys import ApiKeyRecord, ApiKeyStore, NewApiKey
from facedb.storage.errors import NotFoundError
from facedb.storage.tables import utcnow

KEY_PREFIX = "fdb_"
CACHE_SECONDS = 2.0
TOUCH_EVERY = timedelta(seconds=60)
MAX_CACHED = 10_000


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    secret: str  # shown to the caller once; never stored or logged
    record: ApiKeyRecord


@dataclass
class _Cached:
    record: ApiKeyRecord | None  # None: no such key (cached too, so guessing costs no reads)
    fetched: float


class ManagedKeys:
    def __init__(
        self,
        store: ApiKeyStore,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._touched: dict[str, datetime] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------- management

    def create(
        self,
        *,
        name: str = "",
        role: str,
        galleries: Sequence[str] = ("*",),
        view_crops: bool | None = None,
        rate_limit: float | None = None,
        expires_in: float | None = None,
    ) -> IssuedKey:
        _check_grant(role, galleries, rate_limit, expires_in)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = self.store.create(
            NewApiKey(
                key_id=secrets.token_hex(6),
                key_hash=hash_key(secret),
                name=name,
                role=role,
                galleries=tuple(galleries) or ("*",),
                view_crops=role != "search" if view_crops is None else view_crops,
                rate_limit=rate_limit or None,
                expires_at=utcnow() + timedelta(seconds=expires_in) if expires_in else None,
            )
        )
        return IssuedKey(secret, record)

    def list(self, include_revoked: bool = False) -> list[ApiKeyRecord]:
        return self.store.list(include_revoked)

    def revoke(self, key_id: str) -> ApiKeyRecord:
        record = _found(lambda: self.store.revoke(key_id))
        self._forget(key_id)
        return record

    def rotate(self, key_id: str) -> IssuedKey:
        """A new secret for the key (same id and grants); the old one stops working."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = _found(lambda: self.store.replace_secret(key_id, hash_key(secret)))
        self._forget(key_id)
        return IssuedKey(secret, record)

    # ----------------------------------------------------------------- lookup

    def lookup(self, secret: str) -> Principal | None:
        """The key's caller; None for an unknown key, AuthError for a revoked or expired one."""
        digest = hash_key(secret)
        record = self._record(digest)
        if record is None:
            return None
        now = utcnow()
        if record.revoked_at is not None:
            raise AuthError("UNAUTHENTICATED", f"API key {record.key_id} was revoked")
        if record.expires_at is not None and now >= record.expires_at:
            raise AuthError("UNAUTHENTICATED", f"API key {record.key_id} has expired")
        self._touch(record.key_id, now)
        return Principal(
            record.key_id,
            record.role,
            frozenset(record.galleries),
            record.view_crops,
            record.rate_limit,
        )

    def _record(self, digest: str) -> ApiKeyRecord | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached.fetched < self.cache_seconds:
            return cached.record
        record = self.store.find_by_hash(digest)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = _Cached(record, now)
        return record

    def _touch(self, key_id: str, now: datetime) -> None:
        with self._lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < TOUCH_EVERY:
                return
            self._touched[key_id] = now
        self.store.touch(key_id, now)

    def _forget(self, key_id: str) -> None:
        with self._lock:
            stale = [d for d, c in self._cache.items() if c.record and c.record.key_id == key_id]
            for digest in stale:
                del self._cache[digest]


class KeyChain:
    """Where keys are looked up: the bootstrap keys first, then the managed ones."""

    def __init__(self, bootstrap: KeyRing, managed: ManagedKeys | None):
        self.bootstrap = bootstrap
        self.managed = managed

    def __len__(self) -> int:
        return len(self.bootstrap)

    def lookup(self, key: str) -> Principal | None:
        found = self.bootstrap.lookup(key)
        if found is None and self.managed is not None:
            found = self.managed.lookup(key)
        return found


def _found(action: Callable[[], ApiKeyRecord]) -> ApiKeyRecord:
    try:
        return action()
    except NotFoundError as error:
        raise NotFoundEngineError(str(error)) from error


def _check_grant(
    role: str, galleries: Sequence[str], rate_limit: float | None, expires_in: float | None
) -> None:
    if role not in ROLE_RANK:
        raise InvalidRequestError(f"role must be admin, enroll or search, not {role!r}")
    if any(not g or len(g) > 128 for g in galleries):
        raise InvalidRequestError("galleries must be gallery names (1-128 characters) or '*'")
    if rate_limit is not None and not rate_limit >= 0:
        raise InvalidRequestError("rate_limit must be a number of requests per second >= 0")
    if expires_in is not None and not expires_in >= 0:
        raise InvalidRequestError("expires_in_seconds must be >= 0 (0: never expires)")
