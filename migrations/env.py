"""Alembic environment: runs revisions against the facedb database.

The URL is, in order: config.attributes["database_url"] (set by facedb.storage.db.migrate),
the `sqlalchemy.url` option, then facedb's settings (FACEDB_DATABASE_URL or the embedded
SQLite file). The engine comes from facedb.storage.db so SQLite gets the same pragmas.
"""

from __future__ import annotations

from alembic import context

from facedb.config import Settings
from facedb.storage.db import create_engine, is_sqlite
from facedb.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return (
        config.attributes.get("database_url")
        or config.get_main_option("sqlalchemy.url")
        or Settings().resolved_database_url
    )


def run_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`)."""
    url = database_url()
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    url = database_url()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=is_sqlite(url),  # SQLite alters tables by copying them
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
