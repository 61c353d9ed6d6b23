"""Alembic revisions: round trip, schema equal to the models, refusal of old schemas."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from facedb.cli import main as facedb_main
from facedb.storage.catalog import Catalog
from facedb.storage.db import create_engine, current_revision, head_revision, migrate
from facedb.storage.errors import SchemaError
from facedb.storage.tables import Base
from tests.store.conftest import DatabaseFactory

TABLES = {"galleries", "identities", "faces", "changes", "api_keys"}


def schema_diff(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_matches_models(databases: DatabaseFactory) -> None:
    url = databases.create()
    migrate(url, "head")
    assert tables(url) == TABLES
    assert schema_diff(url) == []
    migrate(url, "base")
    assert tables(url) == set()
    assert len(schema_diff(url)) >= len(TABLES)  # the comparison does see differences
    migrate(url, "head")
    assert schema_diff(url) == []
    engine = create_engine(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_catalog_refuses_unmigrated_database(databases: DatabaseFactory, tmp_path) -> None:
    url = databases.create()
    with pytest.raises(SchemaError, match="run `facedb migrate`"):
        Catalog.open(url, tmp_path, migrate=False)
    assert tables(url) == set()  # refusing wrote nothing
    facedb_main(["migrate", "--database-url", url])
    Catalog.open(url, tmp_path, migrate=False).close()
    facedb_main(["migrate", "--database-url", url, "--revision", "base"])
    with pytest.raises(SchemaError, match="run `facedb migrate`"):
        Catalog.open(url, tmp_path, migrate=False)
    Catalog.open(url, tmp_path, migrate=True).close()  # migrates when asked
    assert schema_diff(url) == []
