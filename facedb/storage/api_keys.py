"""API keys in SQL: create, find by secret hash, list, revoke, replace the secret, touch.

Storage holds only the SHA-256 of each secret; making secrets and deciding who may call
what are the service's job (facedb.service.keys). Every process reads the same rows, so
a revocation written by one server is seen by all of them on their next read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facedb.storage.db import Database
from facedb.storage.errors import NotFoundError
from facedb.storage.tables import ApiKey, utcnow


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    name: str
    role: str
    galleries: tuple[str, ...]
    view_crops: bool
    rate_limit: float | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class NewApiKey:
    key_id: str
    key_hash: str
    name: str
    role: str
    galleries: tuple[str, ...]
    view_crops: bool
    rate_limit: float | None = None
    expires_at: datetime | None = None


def _record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        name=row.name,
        role=row.role,
        galleries=tuple(row.galleries),
        view_crops=row.view_crops,
        rate_limit=row.rate_limit,
        created_at=_utc(row.created_at),
        last_used_at=_utc_or_none(row.last_used_at),
        expires_at=_utc_or_none(row.expires_at),
        revoked_at=_utc_or_none(row.revoked_at),
    )


def _utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


class ApiKeyStore:
    def __init__(self, db: Database):
        self._db = db

    @classmethod
    def open(cls, database_url: str) -> ApiKeyStore:
        """On a database whose schema the catalog has already checked or migrated."""
        return cls(Database(database_url))

    def close(self) -> None:
        self._db.dispose()

    def create(self, key: NewApiKey) -> ApiKeyRecord:
        row = ApiKey(
            key_id=key.key_id,
            key_hash=key.key_hash,
            name=key.name,
            role=key.role,
            galleries=list(key.galleries),
            view_crops=key.view_crops,
            rate_limit=key.rate_limit,
            expires_at=key.expires_at,
        )
        with self._db.write() as session:
            session.add(row)
            session.flush()
            return _record(row)

    def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with self._db.read() as session:
            row = session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()
            return None if row is None else _record(row)

    def list(self, include_revoked: bool = False) -> list[ApiKeyRecord]:
        query = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        with self._db.read() as session:
            return [_record(row) for row in session.scalars(query)]

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke the key (a revoked key stays revoked; revoking again changes nothing)."""
        with self._db.write() as session:
            row = self._row(session, key_id)
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return _record(row)

    def replace_secret(self, key_id: str, key_hash: str) -> ApiKeyRecord:
        """The key's new secret hash: the old secret stops matching at once."""
        with self._db.write() as session:
            row = self._row(session, key_id)
            if row.revoked_at is not None:
                raise NotFoundError(f"API key {key_id} is revoked")
            row.key_hash = key_hash
            return _record(row)

    def touch(self, key_id: str, when: datetime) -> None:
        with self._db.write() as session:
            session.execute(update(ApiKey).where(ApiKey.key_id == key_id).values(last_used_at=when))

    @staticmethod
    def _row(session: Session, key_id: str) -> ApiKey:
        row = session.scalars(
            select(ApiKey).where(ApiKey.key_id == key_id).with_for_update()
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"API key {key_id} not found")
        return row
