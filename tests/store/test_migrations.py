"""Alembic revisions: round trip, schema equal to the models, refusal of old schemas."""

from __future__ import annotations

from datetime import UTC, datetime

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

TABLES = {"galleries", "identities", "faces", "changes", "enroll_receipts", "api_keys"}
NOW = datetime(2026, 12, 1, tzinfo=UTC)
# The galleries table as revision 0001 made it (no verify_threshold column).
OLD_GALLERIES = sa.table(
    "galleries",
    *(sa.column(name) for name in ("uid", "name", "model_name", "model_sha256", "dim")),
    *(sa.column(name) for name in ("store_crops", "created_at", "updated_at")),
    sa.column("gate_policy", sa.JSON),
)


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


def test_verify_threshold_moves_between_the_json_and_its_column(
    databases: DatabaseFactory, tmp_path
) -> None:
    url = databases.create()
    migrate(url, "0001")  # before the column existed
    policies = {
        "kept": {"gates": {"search": {"min_face": 40}}, "verify_threshold": 0.42},
        "unset": {"gates": {}, "verify_threshold": None},
        "none": None,
    }
    engine = create_engine(url)
    with engine.begin() as connection:
        for number, (name, policy) in enumerate(policies.items()):
            row = dict(uid=f"uid{number}", name=name, model_name="m", model_sha256="ab" * 32)
            connection.execute(
                OLD_GALLERIES.insert().values(
                    **row,
                    dim=4,
                    store_crops=True,
                    gate_policy=policy,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    engine.dispose()

    migrate(url, "head")
    with Catalog.open(url, tmp_path, migrate=False, snapshot_interval=None) as catalog:
        settings = {name: catalog.get_gallery(name).settings for name in policies}
    assert settings["kept"].verify_threshold == 0.42
    assert settings["kept"].gate_policy == {"gates": {"search": {"min_face": 40}}}
    assert settings["unset"].verify_threshold is None and settings["unset"].gate_policy == {
        "gates": {}
    }
    assert settings["none"].verify_threshold is None and settings["none"].gate_policy is None

    migrate(url, "0001")  # and back into the JSON
    engine = create_engine(url)
    with engine.connect() as connection:
        query = sa.select(OLD_GALLERIES.c.name, OLD_GALLERIES.c.gate_policy)
        restored = {row[0]: row[1] for row in connection.execute(query)}
    engine.dispose()
    assert restored["kept"] == policies["kept"]
    assert restored["none"] is None
