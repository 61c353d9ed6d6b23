"""Engines, sessions and schema revisions for SQLite and PostgreSQL.

SQLite runs in WAL mode (readers never block the writer), with foreign keys on, a busy
timeout and `secure_delete` (deleted rows are overwritten with zeros, not left in free
pages). Write transactions start with BEGIN IMMEDIATE so that two writers queue on the
busy timeout instead of failing when a deferred read transaction tries to upgrade.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.orm import Session, sessionmaker

from facedb.storage.errors import SchemaError

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
# An erasure's checkpoint waits this long for readers to leave the old WAL frames, then
# retries in the background every ERASURE_RETRY_S.
ERASURE_CHECKPOINT_WAIT_MS = 200
ERASURE_RETRY_S = 0.5
_WRITE_OPTION = "facedb_write"

log = logging.getLogger(__name__)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> Engine:
    """An engine with the per-backend settings this project relies on."""
    if is_sqlite(url):
        return _create_sqlite_engine(url)
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _create_sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        pool_size=16,
        max_overflow=16,
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the driver's implicit BEGIN is
    # deferred and cannot be made IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    # NORMAL in WAL mode survives a killed process (not a power cut) and is much faster.
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Right to be forgotten: a deleted crop or embedding must not survive in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _begin_sqlite_transaction(connection: sa.Connection) -> None:
    write = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """An engine plus read and write session factories."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sqlite = is_sqlite(url)
        write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(write_engine, expire_on_commit=False)
        self._erasure_retry = _Retry(self._truncate_wal, ERASURE_RETRY_S)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    @contextmanager
    def snapshot_read(self) -> Iterator[Session]:
        """A read transaction whose statements all see one snapshot (for index rebuilds)."""
        with self._read() as session:
            if not self.sqlite:  # a SQLite read transaction is already a snapshot
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._write() as session, session.begin():
            yield session

    def checkpoint_after_erasure(self) -> None:
        """Push an erasure out of SQLite's write-ahead log and truncate it.

        With `secure_delete` the database pages are zeroed, but the WAL still holds the old
        page images (crop PNG, embedding) until a checkpoint; TRUNCATE empties the file too.
        A checkpoint must wait for readers of older snapshots, so it waits briefly; while
        searches keep such snapshots open, a background thread retries until it completes
        (the delete itself does not wait for the readers).
        On PostgreSQL the dead tuples stay in the table's pages until VACUUM reclaims them
        (see docs/DESIGN.md, "Erasure").
        """
        if self.sqlite and not self._truncate_wal():
            self._erasure_retry.schedule()

    def _truncate_wal(self) -> bool:
        """One TRUNCATE checkpoint; False when readers kept it from completing."""
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(f"PRAGMA busy_timeout={ERASURE_CHECKPOINT_WAIT_MS}")
            busy, _frames, _done = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cursor.close()
        finally:
            raw.close()
        return not busy

    def dispose(self) -> None:
        self._erasure_retry.stop()
        self.engine.dispose()


class _Retry:
    """Runs `attempt` every `interval` seconds on a daemon thread until it returns True;
    `schedule` while one is pending does nothing (erasures coalesce)."""

    def __init__(self, attempt: Callable[[], bool], interval: float) -> None:
        self._attempt, self._interval = attempt, interval
        self._pending = threading.Event()
        self._stopped = threading.Event()
        self._guard = threading.Lock()

    def schedule(self) -> None:
        with self._guard:
            if self._pending.is_set() or self._stopped.is_set():
                return
            self._pending.set()
        threading.Thread(target=self._run, name="facedb-erasure", daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                if self._attempt():
                    break
            except Exception:  # the database went away (closing): nothing left to erase
                log.exception("erasure checkpoint failed")
                break
        self._pending.clear()

    def stop(self) -> None:
        self._stopped.set()


# ---- schema revisions ---------------------------------------------------------------------


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration without needing alembic.ini (the URL is passed through)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.attributes["database_url"] = url
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations found in {MIGRATIONS_DIR}"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade (or, to an older revision or "base", downgrade) the schema."""
    config = alembic_config(url)
    current = current_revision_for_url(url)
    if revision == "base" or _is_older(revision, current):
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


def current_revision_for_url(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def _is_older(revision: str, current: str | None) -> bool:
    if current is None or revision == "head":
        return False
    script = ScriptDirectory.from_config(alembic_config())
    ancestors = {rev.revision for rev in script.iterate_revisions(current, "base")}
    return revision in ancestors and revision != current


def check_schema(engine: Engine) -> None:
    """Refuse a database that is not at the head revision, saying how to fix it."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    url = engine.url.render_as_string(hide_password=True)
    state = "has no facedb schema" if current is None else f"is at revision {current}"
    raise SchemaError(
        f"database {url} {state}, this facedb needs revision {head}: run `facedb migrate`"
    )
