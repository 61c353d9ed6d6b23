"""Replicas that follow the change log: keep this process's indexes current with the
writes of every other server on the same database.

Each write transaction announces its gallery with `pg_notify(CHANNEL, gallery id)` (sent by
PostgreSQL when the transaction commits). A follower thread LISTENs on its own connection
and, when woken (or every `poll_interval` seconds, the fallback for a lost notification, a
dropped connection, or SQLite, which has no notifications), asks the catalog to catch every
loaded gallery up with the change log after its watermark.

Why reading "after my watermark" skips nothing: writers take the gallery's write lock
(PostgreSQL: the gallery row / an advisory lock, SQLite: the single writer) before they take
a change sequence number, and hold it to COMMIT, so the changes of one gallery commit in
sequence order. A reader that sees change N has therefore seen every change < N of that
gallery (tests/store/test_follower.py commits out of order on purpose to check it).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "facedb_changes"


# On PostgreSQL a live LISTEN connection delivers every commit's notification; polling is
# then only a safety net, this many times rarer than where there are no notifications.
SAFETY_POLL_FACTOR = 30


class Followed(Protocol):
    def catch_up_all(self) -> int:
        """Apply the change log to every loaded gallery; returns changes applied."""
        ...

    def catch_up_ids(self, gallery_ids: set[int]) -> int:
        """The same for the loaded galleries of these ids."""
        ...


class ChangeFollower:
    """A daemon thread that catches `catalog` up on notification or every `poll_interval`."""

    def __init__(
        self, catalog: Followed, database_url: str, poll_interval: float = 1.0, origin: str = ""
    ) -> None:
        self._catalog = catalog
        self._origin = origin  # this process's own commits: already in its indexes
        self._conninfo = _libpq_url(database_url)
        self._poll_interval = poll_interval
        self._stopped = threading.Event()
        self._connection: psycopg.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="change-follower", daemon=True)
        self.wakeups = 0  # how often it caught up (for stats and tests)

    def start(self) -> ChangeFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._listen()
            except psycopg.Error as error:
                # The database restarted or failed over: poll, and LISTEN again.
                log.warning("change follower: %s; reconnecting", error)
                self._catch_up()
                self._stopped.wait(self._poll_interval)

    def _listen(self) -> None:
        if self._conninfo is None:  # SQLite: no notifications, polling only
            while not self._stopped.wait(self._poll_interval):
                self._catch_up()
            return
        with psycopg.connect(self._conninfo, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self._catch_up()  # whatever committed before the LISTEN took effect
            safety_poll = time.monotonic() + self._poll_interval * SAFETY_POLL_FACTOR
            while not self._stopped.is_set():
                galleries = self._notified(connection)
                if galleries:
                    self.wakeups += 1
                    self._catch_up(galleries)
                if time.monotonic() >= safety_poll:
                    self._catch_up()
                    safety_poll = time.monotonic() + self._poll_interval * SAFETY_POLL_FACTOR

    def _notified(self, connection: psycopg.Connection) -> set[int]:
        """Gallery ids of the commits notified within the poll interval (the first one
        wakes the thread; those already queued behind it are folded into the same set)."""
        galleries: set[int] = set()
        timeout = self._poll_interval
        for notification in connection.notifies(timeout=timeout, stop_after=1):
            galleries.add(self._gallery_of(notification.payload))
        for notification in connection.notifies(timeout=0.0):
            galleries.add(self._gallery_of(notification.payload))
        galleries.discard(-1)
        return galleries

    def _gallery_of(self, payload: str) -> int:
        """The gallery id of a `payload(gallery_id, origin)`; -1 for this process's own."""
        gallery, _, origin = payload.partition(" ")
        if origin and origin == self._origin:
            return -1
        try:
            return int(gallery)
        except ValueError:
            return -1

    def _catch_up(self, galleries: set[int] | None = None) -> None:
        try:
            if galleries is None:
                self._catalog.catch_up_all()
            else:
                self._catalog.catch_up_ids(galleries)
        except Exception:  # a failed catch-up is retried at the next wake-up
            log.exception("change follower: catching up failed")


def payload(gallery_id: int, origin: str) -> str:
    """The NOTIFY payload of a commit on `gallery_id` by the process named `origin`."""
    return f"{gallery_id} {origin}"


def _libpq_url(database_url: str) -> str | None:
    """The libpq URL of a PostgreSQL SQLAlchemy URL; None for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
