"""Attributes stored with faces (opt-in per gallery): the catalog keeps the gallery's list of
names and each face's JSON as given; revision 0005 adds and drops the columns, rows kept."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from facedb.storage.catalog import Catalog, EnrollRequest, GalleryConfig, NewFace
from facedb.storage.db import create_engine, migrate
from facedb.storage.errors import InvalidArgumentError, NotFoundError
from tests.store.conftest import DatabaseFactory, gallery_name, make_gallery, unit_vectors

MODEL = "ab" * 32  # make_gallery's model
VECTORS = unit_vectors(4, seed=71)
MEASURED = {"age": 41.5, "gender": "female", "gender_confidence": 0.97}


def test_gallery_keeps_its_stored_attribute_names(catalog: Catalog) -> None:
    named = make_gallery(catalog, stored_attributes=("age", "gender"))
    plain = make_gallery(catalog)
    assert catalog.get_gallery(named).stored_attributes == ("age", "gender")
    assert catalog.get_gallery(plain).stored_attributes == ()
    listed = {g.name: g.stored_attributes for g in catalog.list_galleries()}
    assert listed[named] == ("age", "gender") and listed[plain] == ()


def test_bad_stored_attribute_names_are_refused(catalog: Catalog) -> None:
    name = gallery_name()
    with pytest.raises(InvalidArgumentError, match="non-empty strings"):
        catalog.create_gallery(GalleryConfig(name, "m", MODEL, 512, stored_attributes=("",)))
    with pytest.raises(NotFoundError):
        catalog.get_gallery(name)  # nothing was created


def test_face_attributes_are_stored_as_given(catalog: Catalog) -> None:
    name = make_gallery(catalog, stored_attributes=("age", "gender"))
    faces = [
        NewFace(VECTORS[0], model_sha256=MODEL, attributes=MEASURED),
        NewFace(VECTORS[1], model_sha256=MODEL),  # a caller that stored none
    ]
    written = catalog.enroll(name, EnrollRequest("a", faces))
    with_attributes, without = (catalog.get_face(name, i) for i in written.face_ids if i)
    assert with_attributes.attributes == MEASURED
    assert without.attributes is None


def test_face_attributes_reads_many_faces_at_once(catalog: Catalog) -> None:
    name = make_gallery(catalog, stored_attributes=("age", "gender"))
    other = make_gallery(catalog, stored_attributes=("age",))
    faces = [
        NewFace(VECTORS[0], model_sha256=MODEL, attributes=MEASURED),
        NewFace(VECTORS[1], model_sha256=MODEL),  # none stored: left out
    ]
    with_attributes, without = catalog.enroll(name, EnrollRequest("a", faces)).face_ids
    elsewhere = NewFace(VECTORS[2], model_sha256=MODEL, attributes={"age": 9.0})
    (foreign,) = catalog.enroll(other, EnrollRequest("b", [elsewhere])).face_ids
    assert with_attributes and without and foreign
    found = catalog.face_attributes(name, [with_attributes, without, foreign, 10**9])
    assert found == {with_attributes: MEASURED}  # another gallery's face is not read
    assert catalog.face_attributes(other, [foreign]) == {foreign: {"age": 9.0}}
    assert catalog.face_attributes(name, []) == {}


def test_attributes_that_are_not_json_change_nothing(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    for bad in ({"age": math.nan}, {"when": object()}):
        face = NewFace(VECTORS[2], model_sha256=MODEL, attributes=bad)
        with pytest.raises(InvalidArgumentError, match="not JSON"):
            catalog.enroll(name, EnrollRequest("a", [face]))
    with pytest.raises(NotFoundError):
        catalog.get_identity(name, "a")  # the whole enroll rolled back
    assert catalog.face_ids(name) == []


def test_revision_0005_round_trip_keeps_rows(databases: DatabaseFactory, tmp_path) -> None:
    url = databases.create()
    migrate(url, "head")
    with Catalog.open(url, tmp_path / "a", migrate=False, snapshot_interval=None) as catalog:
        name = make_gallery(catalog, stored_attributes=("age",))
        face = NewFace(VECTORS[3], model_sha256=MODEL, attributes={"age": 30.0})
        catalog.enroll(name, EnrollRequest("a", [face]))

    migrate(url, "0004")  # the columns go, the gallery and its face stay
    engine = create_engine(url)
    try:
        columns = {
            table: {c["name"] for c in sa.inspect(engine).get_columns(table)}
            for table in ("faces", "galleries")
        }
        with engine.connect() as connection:
            count = connection.execute(sa.text("SELECT count(*) FROM faces")).scalar_one()
    finally:
        engine.dispose()
    assert "attributes" not in columns["faces"]
    assert "stored_attributes" not in columns["galleries"]
    assert count == 1

    migrate(url, "head")
    with Catalog.open(url, tmp_path / "b", migrate=False, snapshot_interval=None) as catalog:
        assert catalog.get_gallery(name).stored_attributes == ()
        (face_id,) = catalog.face_ids(name)
        assert catalog.get_face(name, face_id).attributes is None
