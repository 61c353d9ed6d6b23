"""Replicas that follow the change log: keep this process's indexes current with the
writes of every other server on the same database.

Each write transaction announces its gallery and its last change sequence with
`pg_notify(CHANNEL, "<gallery id> <origin> <sequence>")` (sent by PostgreSQL when the
transaction commits). A follower thread LISTENs on its own connection and, when woken, hands
the catalog each notified gallery with the highest sequence announced: an index already at
it does nothing; one behind applies the change log after its watermark from one query. Every
`poll_interval` seconds (the fallback for a lost notification, a dropped connection, or
SQLite, which has no notifications) it catches every loaded gallery up in full.

Why reading "after my watermark" skips nothing: writers take the gallery's write lock
(PostgreSQL: the gallery row / an advisory lock, SQLite: the single writer) before they take
a change sequence number, and hold it to COMMIT, so the changes of one gallery commit in
sequence order. A reader that sees change N has therefore seen every change < N of that
gallery (tests/store/test_follower.py commits out of order on purpose to check it). The
notified catch-up reads those changes with their faces' embeddings and their identities'
labels in one statement, one snapshot: the faces and identities it sees are in the state
the changes it returns left them (a face or identity gone has no row: removed).
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

    def catch_up_notified(self, notified: dict[int, int]) -> None:
        """The same for the loaded galleries of these ids, each known to have reached the
        change sequence given (0: unknown)."""
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

    def _notified(self, connection: psycopg.Connection) -> dict[int, int]:
        """Gallery id -> sequence of the commits notified within the poll interval (the
        first one wakes the thread; those already queued behind it are folded in)."""
        galleries: dict[int, int] = {}
        timeout = self._poll_interval
        for notification in connection.notifies(timeout=timeout, stop_after=1):
            self._fold(galleries, notification.payload)
        for notification in connection.notifies(timeout=0.0):
            self._fold(galleries, notification.payload)
        return galleries

    def _fold(self, galleries: dict[int, int], notice: str) -> None:
        """Add one payload: the highest sequence per gallery, 0 (catch up in full) once any
        notice for it had none. This process's own commits are already in its indexes."""
        parsed = parse_payload(notice)
        if parsed is None or (parsed[1] and parsed[1] == self._origin):
            return
        gallery, _, sequence = parsed
        known = galleries.get(gallery)
        galleries[gallery] = 0 if known == 0 or not sequence else max(known or 0, sequence)

    def _catch_up(self, galleries: dict[int, int] | None = None) -> None:
        try:
            if galleries is None:
                self._catalog.catch_up_all()
            else:
                self._catalog.catch_up_notified(galleries)
        except Exception:  # a failed catch-up is retried at the next wake-up
            log.exception("change follower: catching up failed")


def payload(gallery_id: int, origin: str, sequence: int = 0) -> str:
    """The NOTIFY payload of a commit on `gallery_id` by the process named `origin` whose
    last change is `sequence` (0: it wrote no change)."""
    return f"{gallery_id} {origin} {sequence}"


def parse_payload(notice: str) -> tuple[int, str, int] | None:
    """(gallery id, origin, sequence) of a payload; an older server's "<id> <origin>" has
    sequence 0; None for anything else."""
    parts = notice.split(" ")
    try:
        gallery = int(parts[0])
        sequence = int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        return None
    return gallery, parts[1] if len(parts) > 1 else "", sequence


def _libpq_url(database_url: str) -> str | None:
    """The libpq URL of a PostgreSQL SQLAlchemy URL; None for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
