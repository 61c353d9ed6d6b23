"""Labels and gallery settings in memory (facedb.storage.labels): Identify runs no SQL once
a gallery is loaded, and every process's labels follow the change log.

Statements are counted with a `before_cursor_execute` listener on the catalog's own engine,
on SQLite and PostgreSQL. The followers poll once an hour here, so nothing but the calls
under test can reach the database while they are counted; catch-up is made explicit with
`catch_up_all` / `wait_for`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from facedb.engine import EnrollItem, open_engine
from facedb.storage import repository as repo
from facedb.storage.catalog import Catalog, EnrollRequest, GalleryConfig, NewFace
from facedb.storage.errors import NotFoundError
from facedb.storage.labels import GalleryLabels, IdentityLabel, LabelChanges
from facedb.storage.records import GalleryInfo, GallerySettings
from tests.paths import LFW
from tests.service.support import server_settings
from tests.store.conftest import gallery_name, make_gallery, unit_vectors

IDENTIFY_CALLS = 5
QUIET_POLL_S = 3600.0  # the followers' safety poll: never within a test


class StatementCounter:
    """SQL statements sent on an engine, from any thread, while counting."""

    def __init__(self, engine) -> None:
        self.engine, self.statements = engine, []
        self._lock = threading.Lock()

    def _seen(self, _conn, _cursor, statement, *_args) -> None:
        with self._lock:
            self.statements.append(statement)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        self.statements = []
        event.listen(self.engine, "before_cursor_execute", self._seen)
        try:
            yield self.statements
        finally:
            event.remove(self.engine, "before_cursor_execute", self._seen)


def photo(name: str, number: int) -> bytes:
    return (LFW / "images" / name / f"{name}_{number:04d}.jpg").read_bytes()


def test_identify_and_get_gallery_run_no_sql_once_loaded(database_url: str, tmp_path: Path) -> None:
    settings = server_settings(
        tmp_path / "data", database_url=database_url, change_poll_interval=QUIET_POLL_S
    )
    engine = open_engine(settings)
    name = gallery_name()
    try:
        engine.create_gallery(name)
        for person in ("Colin_Powell", "Tony_Blair"):
            engine.enroll(EnrollItem(name, person.lower(), [photo(person, 1)]))
        engine.update_identity(name, "colin_powell", display_name="Colin", metadata={"t": "1"})
        probe = photo("Colin_Powell", 4)
        engine.identify(name, probe)  # loads nothing new: the writes already loaded it
        counter = StatementCounter(engine.catalog._db.engine)
        with counter.counting() as statements:
            results = [engine.identify(name, probe) for _ in range(IDENTIFY_CALLS)]
            gallery = engine.get_gallery(name)
        assert statements == []
        best = results[-1].faces[0].candidates[0]
        assert (best.external_id, best.display_name, best.metadata) == (
            "colin_powell",
            "Colin",
            {"t": "1"},
        )
        assert (gallery.identity_count, gallery.face_count) == (2, 2)
        with counter.counting() as statements:  # the check that counts what it should
            engine.update_identity(name, "tony_blair", display_name="Tony")
        assert statements
    finally:
        engine.close()


@pytest.fixture
def two_catalogs(database_url: str, tmp_path: Path) -> Iterator[tuple[Catalog, Catalog]]:
    a = Catalog.open(database_url, tmp_path / "a", migrate=False, snapshot_interval=None)
    b = Catalog.open(database_url, tmp_path / "b", migrate=False, snapshot_interval=None)
    a.follow(QUIET_POLL_S)
    b.follow(QUIET_POLL_S)
    yield a, b
    a.close()
    b.close()


def _faces(count: int, seed: int) -> list[NewFace]:
    return [NewFace(vector) for vector in unit_vectors(count, 64, seed)]


def _labels(catalog: Catalog, name: str, probes: np.ndarray) -> list[tuple]:
    hits = catalog.search(name, probes, k=10)
    return [(h.face_id, h.external_id, h.display_name, h.metadata) for row in hits for h in row]


def test_changes_in_one_process_reach_the_other_s_labels_and_settings(
    two_catalogs: tuple[Catalog, Catalog],
) -> None:
    a, b = two_catalogs
    name = make_gallery(a, dim=64)
    x_faces, y_faces = _faces(2, 1), _faces(2, 2)
    x_ids = a.add_faces(name, "x", x_faces, display_name="X", metadata={"v": 1})
    y_ids = a.add_faces(name, "y", y_faces)
    probes = np.stack([f.embedding for f in x_faces + y_faces])
    assert b.get_gallery(name).face_count == 4  # loads the gallery in B
    counter = StatementCounter(b._db.engine)
    with counter.counting() as statements:
        before = _labels(b, name, probes)
        info = b.get_gallery(name)
    assert statements == []
    assert {(f, e, d) for f, e, d, _ in before} == {
        *((i, "x", "X") for i in x_ids),
        *((i, "y", None) for i in y_ids),
    }
    assert (info.identity_count, info.face_count) == (2, 4)

    # Relabel: B's hits carry the new name and metadata after catch-up.
    a.update_identity(name, "x", display_name="X2", metadata={"v": 2})
    b.catch_up_all()
    relabelled = {(e, d, str(m)) for _, e, d, m in _labels(b, name, probes)}
    assert ("x", "X2", "{'v': 2}") in relabelled and ("x", "X", "{'v': 1}") not in relabelled

    # A face deleted in A is never returned by B once B has caught up.
    a.delete_face(name, y_ids[0])
    b.catch_up_all()
    assert y_ids[0] not in {f for f, *_ in _labels(b, name, probes)}
    assert b.get_gallery(name).face_count == 3

    # An identity erased with no face left still reaches B (an `identity` change).
    a.delete_face(name, y_ids[1])
    erased = a.erase_identity(name, "y")
    assert erased.faces_removed == 0 and erased.sequence > 0
    assert b.wait_for(name, erased.sequence, timeout=10)
    assert b.get_gallery(name).identity_count == 1

    # Read-your-writes: an enroll's sequence, waited for on B, is labelled there at once.
    z_face = _faces(1, 3)
    enrolled = a.enroll(name, EnrollRequest("z", z_face, display_name="Zed"))
    assert enrolled.sequence and b.wait_for(name, enrolled.sequence, timeout=10)
    found = _labels(b, name, z_face[0].embedding[None])
    assert (enrolled.face_ids[0], "z", "Zed") in {(f, e, d) for f, e, d, _ in found}

    # Settings: the gallery row changed in A (index kind) reaches B's GetGallery.
    a.reindex(name, kind="hnsw")
    b.catch_up_all()
    assert b.get_gallery(name).index_kind == "hnsw"

    # Deleted, then created again with other settings: B forgets it, then loads the new one.
    a.delete_gallery(name)
    b.catch_up_all()
    with pytest.raises(NotFoundError):
        b.get_gallery(name)
    settings = GallerySettings(match_threshold=0.42)
    a.create_gallery(GalleryConfig(name, "test-model", "ab" * 32, 64, settings=settings))
    again = b.get_gallery(name)
    assert again.settings.match_threshold == 0.42 and again.face_count == 0
    assert b.search(name, probes, k=5) == [[], [], [], []]


@pytest.mark.postgres
@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)
def test_a_notified_catch_up_applies_adds_removals_relabels_and_erasures_in_one_statement(
    database_url: str, tmp_path: Path
) -> None:
    a = Catalog.open(database_url, tmp_path / "a", migrate=False, snapshot_interval=None)
    b = Catalog.open(database_url, tmp_path / "b", migrate=False, snapshot_interval=None)
    counter = StatementCounter(b._db.engine)  # B follows nothing: notices are delivered here

    def notified(sequence: int) -> dict[int, tuple]:
        with counter.counting() as statements:
            assert b._live.apply_notified(name, sequence)
        assert len(statements) == 1 and b._live.peek(name).watermark == sequence
        ids = np.asarray(sorted(faces), dtype=np.int64)
        labelled = b._live.labels(name).hits(np.ones((1, len(ids)), np.float32), ids[None])[0]
        assert sorted(b.index_ids(name).tolist()) == [h.face_id for h in labelled]
        return {h.face_id: (h.external_id, h.display_name, h.metadata) for h in labelled}

    try:
        name = make_gallery(a, dim=64)
        faces = a.add_faces(name, "x", _faces(1, 4), display_name="X")
        assert b.index_ids(name).tolist() == faces  # loaded in B
        added = a.enroll(name, EnrollRequest("y", _faces(2, 5), display_name="Y"))
        faces += added.face_ids
        labels = notified(added.sequence)
        assert labels == {faces[0]: ("x", "X", {}), **dict.fromkeys(faces[1:], ("y", "Y", {}))}
        assert notified(a.delete_face(name, faces[1])) == {
            faces[0]: ("x", "X", {}),
            faces[2]: ("y", "Y", {}),
        }
        a.update_identity(name, "x", display_name="X2", metadata={"v": 2})
        with a._db.read() as session:
            relabel = repo.latest_seq(session, repo.get_gallery(session, name).id)
        assert notified(relabel)[faces[0]] == ("x", "X2", {"v": 2})
        assert notified(a.erase_identity(name, "y").sequence) == {faces[0]: ("x", "X2", {"v": 2})}
        assert notified(a.delete_face(name, faces[0])) == {}
        assert notified(a.erase_identity(name, "x").sequence) == {}  # an `identity` change
        info = b._live.labels(name).info()
        assert (info.identity_count, info.face_count) == (0, 0)
    finally:
        a.close()
        b.close()


def _info() -> GalleryInfo:
    now = datetime.now(UTC)
    return GalleryInfo(1, "u", "g", "m", "s", 4, GallerySettings(), True, None, now, now)


def test_the_face_map_keeps_order_through_appends_removals_and_compaction() -> None:
    owners = np.arange(3000, dtype=np.int64) % 7
    labels = GalleryLabels(_info(), 0, np.arange(3000, dtype=np.int64) * 2, owners, {})
    people = {i: IdentityLabel(f"p{i}", None, {}) for i in range(7)}
    labels.apply(LabelChanges(1, identities=dict(people)))
    labels.apply(LabelChanges(2, removed=np.arange(0, 4000, 2, dtype=np.int64)))  # compacts
    late = np.asarray([1, 3, 9001], dtype=np.int64)  # older than held ids, and newer
    labels.apply(LabelChanges(3, late, np.asarray([1, 2, 3], dtype=np.int64)))
    ids = np.asarray([[1, 3, 4000, 5998, 2, 9001, -1]], dtype=np.int64)
    hits = labels.hits(np.ones(ids.shape, np.float32), ids)[0]
    assert [(h.face_id, h.external_id) for h in hits] == [
        (1, "p1"),
        (3, "p2"),
        (4000, f"p{2000 % 7}"),
        (5998, f"p{2999 % 7}"),
        (9001, "p3"),
    ]
    assert labels.info().face_count == 1000 + 3 and labels.info().identity_count == 7
