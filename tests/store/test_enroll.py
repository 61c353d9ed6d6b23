"""Catalog.enroll: lookup, duplicate check, insert and index in one transaction; and how many
SQL sessions one Enroll costs (counted with SQLAlchemy's event hooks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from facedb.engine import EnrollItem, open_engine
from facedb.storage.catalog import Catalog, DuplicateOf, EnrollRequest, NewFace
from facedb.storage.errors import InvalidArgumentError, NotFoundError
from tests.paths import LFW
from tests.service.support import server_settings
from tests.store.conftest import gallery_name as make_gallery_name
from tests.store.conftest import make_gallery, unit_vectors

MODEL = "ab" * 32  # make_gallery's model
VECTORS = unit_vectors(6, seed=61)


def faces(*rows: int) -> list[NewFace]:
    return [NewFace(VECTORS[row], model_sha256=MODEL) for row in rows]


def test_duplicates_of_other_identities_are_refused(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    first = catalog.enroll(name, EnrollRequest("a", faces(0, 1), duplicate_threshold=0.9))
    assert first.created and first.duplicates == [None, None] and first.sequence is not None
    assert first.identity is not None and first.identity.face_ids == tuple(first.face_ids)

    mixed = catalog.enroll(name, EnrollRequest("b", faces(1, 2), duplicate_threshold=0.9))
    assert mixed.created and mixed.face_ids[0] is None and mixed.face_ids[1] is not None
    duplicate = mixed.duplicates[0]
    assert isinstance(duplicate, DuplicateOf) and duplicate.external_id == "a"
    assert duplicate.score == pytest.approx(1.0, abs=1e-5)
    assert mixed.identity is not None and mixed.identity.face_ids == (mixed.face_ids[1],)

    # The identity's own faces are no duplicates; without a threshold nothing is checked.
    again = catalog.enroll(name, EnrollRequest("a", faces(0), duplicate_threshold=0.9))
    assert not again.created and again.face_ids[0] is not None
    forced = catalog.enroll(name, EnrollRequest("c", faces(2)))
    assert forced.created and forced.duplicates == [None]

    refused = catalog.enroll(name, EnrollRequest("d", faces(0), duplicate_threshold=0.9))
    assert (refused.identity, refused.created, refused.face_ids) == (None, False, [None])
    assert refused.duplicates[0] is not None and refused.sequence is None
    with pytest.raises(NotFoundError):
        catalog.get_identity(name, "d")  # nothing was written
    assert len(catalog.face_ids(name)) == 5 == len(catalog.index_ids(name))


def test_metadata_merges_and_display_name_stays(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    catalog.enroll(name, EnrollRequest("a", faces(0), "Alice", {"team": "red", "n": 1}))
    outcome = catalog.enroll(name, EnrollRequest("a", faces(1), metadata={"n": 2}))
    assert outcome.identity is not None and not outcome.created
    assert outcome.identity.display_name == "Alice"
    assert outcome.identity.metadata == {"team": "red", "n": 2}
    looked_up = catalog.enroll(name, EnrollRequest("a", []))  # no faces: a lookup
    assert looked_up.identity == catalog.get_identity(name, "a") and looked_up.sequence is None
    with pytest.raises(InvalidArgumentError):
        catalog.enroll(name, EnrollRequest("", faces(2)))


def test_identity_embeddings_are_its_stored_faces(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    catalog.enroll(name, EnrollRequest("a", faces(3, 4)))
    catalog.enroll(name, EnrollRequest("b", faces(5)))
    stored = catalog.identity_embeddings(name, "a")
    assert stored.dtype == np.float32 and stored.shape == (2, 512)
    assert np.allclose(stored, VECTORS[3:5], atol=1e-6)
    (first, _) = catalog.get_identity(name, "a").face_ids
    catalog.delete_face(name, first)
    assert np.allclose(catalog.identity_embeddings(name, "a"), VECTORS[4:5], atol=1e-6)
    with pytest.raises(NotFoundError):
        catalog.identity_embeddings(name, "nobody")


def photo(person: str) -> bytes:
    return (LFW / "images" / person / f"{person}_0001.jpg").read_bytes()


class SqlCounter:
    """SQL sessions that began a transaction, and database transactions begun."""

    def __init__(self) -> None:
        self.sessions = 0
        self.transactions = 0


@contextmanager
def counting(catalog: Catalog) -> Iterator[SqlCounter]:
    counter = SqlCounter()

    def session_began(*_: object) -> None:
        counter.sessions += 1

    def transaction_began(*_: object) -> None:
        counter.transactions += 1

    engine = catalog._db.engine
    event.listen(Session, "after_begin", session_began)
    event.listen(engine, "begin", transaction_began)
    try:
        yield counter
    finally:
        event.remove(Session, "after_begin", session_began)
        event.remove(engine, "begin", transaction_began)


def test_one_enroll_is_one_sql_session(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    catalog.enroll(name, EnrollRequest("a", faces(0)))  # the first use loads the index
    request = EnrollRequest("b", faces(1, 2), metadata={"k": "v"}, duplicate_threshold=0.5)
    with counting(catalog) as counter:
        outcome = catalog.enroll(name, request)
    print(f"Catalog.enroll: {counter.sessions} SQL sessions, {counter.transactions} transactions")
    assert outcome.identity is not None and len(outcome.identity.face_ids) == 2
    assert (counter.sessions, counter.transactions) == (1, 1)


def test_sql_sessions_of_one_engine_enroll(database_url: str, tmp_path: Path) -> None:
    """End to end: the engine reads the gallery's settings (before detection: from memory,
    facedb.storage.labels) and then makes the one catalog call; before the write path moved
    into the catalog this was 5, before the settings moved into memory 2."""
    settings = server_settings(tmp_path / "data", database_url=database_url)
    engine = open_engine(settings)
    try:
        name = make_gallery_name()
        engine.create_gallery(name)
        first = EnrollItem(name, "colin", [photo("Colin_Powell")], allow_multiple_faces=True)
        assert engine.enroll(first).outcomes[0].accepted  # loads the index
        item = EnrollItem(name, "tony", [photo("Tony_Blair")], allow_multiple_faces=True)
        with counting(engine.catalog) as counter:
            result = engine.enroll(item)
        sessions, transactions = counter.sessions, counter.transactions
        print(f"Engine.enroll: {sessions} SQL sessions, {transactions} transactions")
        assert result.created and result.outcomes[0].accepted
        assert (sessions, transactions) == (1, 1)
    finally:
        engine.close()
