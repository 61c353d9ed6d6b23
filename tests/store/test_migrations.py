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


def test_identity_changes_revision_backfills_owners_and_never_reuses_a_sequence(
    databases: DatabaseFactory,
) -> None:
    url = databases.create()
    migrate(url, "0005")
    engine = create_engine(url)
    with engine.begin() as connection:
        run = connection.exec_driver_sql
        row = "'u', 'g', 'm', 'ab', 4, true, '2026-12-01', '2026-12-01'"
        run(
            "INSERT INTO galleries (uid, name, model_name, model_sha256, dim, store_crops, "
            f"created_at, updated_at) VALUES ({row})"
        )
        run(
            "INSERT INTO identities (gallery_id, external_id, created_at, updated_at) "
            "SELECT id, 'x', '2026-12-01', '2026-12-01' FROM galleries"
        )
        run(
            "INSERT INTO faces (identity_id, gallery_id, embedding, model_name, model_sha256, "
            "created_at) SELECT i.id, i.gallery_id, 'e', 'm', 'ab', '2026-12-01' "
            "FROM identities i"
        )
        for op, face in (("added", "f.id"), ("added", "f.id + 1000"), ("removed", "f.id + 1000")):
            run(
                "INSERT INTO changes (gallery_id, face_id, op, created_at) "
                f"SELECT f.gallery_id, {face}, '{op}', '2026-12-01' FROM faces f"
            )
        last = run("SELECT max(seq) FROM changes").scalar()
        run(f"DELETE FROM changes WHERE seq = {last}")  # the highest number must stay used
    engine.dispose()

    migrate(url, "head")
    engine = create_engine(url)
    with engine.begin() as connection:
        run = connection.exec_driver_sql
        owners = run("SELECT op, identity_id FROM changes ORDER BY seq").all()
        identity = run("SELECT id FROM identities").scalar()
        assert owners == [("added", identity), ("added", None)]  # face 1000+ never existed
        run(
            "INSERT INTO changes (gallery_id, identity_id, op, created_at) "
            f"SELECT id, {identity}, 'identity', '2026-12-01' FROM galleries"
        )
        assert run("SELECT max(seq) FROM changes").scalar() > last
    engine.dispose()
