"""Live reindex: the Reindex RPC, and a model switch under traffic on two real servers.

Two `facedb serve` processes share one PostgreSQL database. A reindex through A to another
real recognizer file (the float32 rewrite of the int8 ArcFace fixture: another SHA-256)
streams its progress; both servers keep answering Identify from the old index and model
until they have switched (A at the commit, B in the background once the change log tells
it), and afterwards every enrolled person is found on both, whose indexes hold every face.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from facedb.cli import main
from facedb.models.optimize import optimize_model
from facedb.models.store import sha256_file
from facedb.v1 import facedb_pb2 as pb
from tests.paths import ARCFACE, LFW
from tests.service.support import ADMIN_KEY, ServerProcess, client
from tests.service.test_replicas import _server_pair, shared_database  # noqa: F401

pytestmark = pytest.mark.postgres
PEOPLE = ("Colin_Powell", "Tony_Blair", "Gray_Davis", "Hugo_Chavez", "Aaron_Peirsol")
SWITCH_BOUND_S = 60.0  # B's background switch, on a shared 2-core machine
SWITCHED = pb.ReindexProgress.SWITCHED
ENROLLED = (1, 3, 4)  # photos enrolled per person (2 is the probe); Aaron_Peirsol has 4


def photo(name: str, number: int) -> Path:
    return LFW / "images" / name / f"{name}_{number:04d}.jpg"


@pytest.fixture
def float32_arcface(tmp_path: Path, monkeypatch) -> Path:
    """Another real recognizer file, in a model directory both servers look in."""
    models = tmp_path / "models"
    models.mkdir()
    target = models / "arcface_w600k_mbf_float32.onnx"
    optimize_model(Path(ARCFACE.partition(":")[2]), target)
    monkeypatch.setenv("FACEDB_MODEL_DIR", str(models))
    # The servers run the int8 fixture as given, so its rewrite is another model here.
    monkeypatch.setenv("FACEDB_RECOGNIZER_GRAPH", "int8")
    return target


@pytest.fixture
def two_servers(
    shared_database: str,  # noqa: F811
    tmp_path: Path,
    float32_arcface: Path,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    yield from _server_pair(shared_database, tmp_path)


def _live(address: str, gallery: str) -> pb.GalleryStats:
    with client(address) as reader:
        return next(g for g in reader.stats().galleries if g.name == gallery)


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code()


class Traffic:
    """Identify on both servers in a loop; counts failed calls and missed people."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.calls = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        clients = [client(address) for address in self.addresses]
        number = 0
        while not self._stop.is_set():
            name = PEOPLE[number % len(PEOPLE)]
            searcher = clients[number % len(clients)]
            number += 1
            try:
                faces = searcher.identify("staff", photo(name, 2)).faces
                found = {c.external_id for face in faces for c in face.candidates}
                if name not in found:
                    self.failures.append(f"{name} not found: {found}")
            except grpc.RpcError as error:
                self.failures.append(f"{error.code()}: {error.details()}")
            self.calls += 1
        for each in clients:
            each.close()


def test_reindex_rpc_refuses_bad_requests_then_switches_both_servers_under_traffic(
    two_servers,
    float32_arcface: Path,
    shared_database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    a, b = two_servers
    new_sha = sha256_file(float32_arcface)
    with client(a.address) as admin:
        old = admin.create_gallery("staff").model
        for name in PEOPLE:
            photos = [photo(name, n) for n in ENROLLED if photo(name, n).is_file()]
            assert all(o.accepted for o in admin.enroll("staff", name, photos).outcomes)
        admin.create_gallery("nocrops", store_crops=False)
        assert admin.enroll("nocrops", "colin", [photo("Colin_Powell", 1)]).outcomes[0].accepted
    enrolled = sum(len([n for n in ENROLLED if photo(name, n).is_file()]) for name in PEOPLE)
    assert old.sha256 != new_sha
    spec = f"arcface:{float32_arcface}"

    def reindex(key: str = ADMIN_KEY, **request) -> list[pb.ReindexProgress]:
        with client(a.address, key) as caller:
            return list(caller.reindex(**request))

    # Refused, each with its status, and nothing changes.
    refused = {
        "search key": _code(lambda: reindex(key="search-a", gallery="staff", recognizer=spec)),
        "bad kind": _code(lambda: reindex(gallery="staff", index_kind="btree")),
        "bad spec": _code(lambda: reindex(gallery="staff", recognizer="no-such-model")),
        "long spec": _code(lambda: reindex(gallery="staff", recognizer="x" * 5000)),
        "batch": _code(lambda: reindex(gallery="staff", batch_size=100_000)),
        "missing file": _code(lambda: reindex(gallery="staff", recognizer="arcface:/nope.onnx")),
        "no gallery": _code(lambda: reindex(gallery="nope", recognizer=spec)),
        "no crops": _code(lambda: reindex(gallery="nocrops", recognizer=spec)),
    }
    S = grpc.StatusCode
    assert refused == {
        "search key": S.PERMISSION_DENIED,
        "bad kind": S.INVALID_ARGUMENT,
        "bad spec": S.INVALID_ARGUMENT,
        "long spec": S.INVALID_ARGUMENT,
        "batch": S.INVALID_ARGUMENT,
        "missing file": S.FAILED_PRECONDITION,
        "no gallery": S.NOT_FOUND,
        "no crops": S.FAILED_PRECONDITION,
    }
    with client(a.address) as admin:
        assert admin.get_gallery("staff").model.sha256 == old.sha256
        assert admin.get_gallery("nocrops").model.sha256 == old.sha256

    # A second reindex of the gallery while one runs is ABORTED; the first, cancelled after
    # its first batch, switches nothing.
    with client(a.address) as admin:
        stream = admin.reindex("staff", spec, batch_size=1)
        first = next(stream)
        assert first.phase == pb.ReindexProgress.EMBEDDING and first.faces_done == 1
        assert _code(lambda: reindex(gallery="staff", index_kind="flat")) == S.ABORTED
        stream.close()  # cancels the call
    time.sleep(1.0)
    assert _live(a.address, "staff").index_model_sha256 == old.sha256
    with client(a.address) as admin:
        assert admin.get_gallery("staff").model.sha256 == old.sha256

    # The live switch, under traffic on both servers.
    for server in (a, b):
        with client(server.address) as searcher:
            assert searcher.identify("staff", photo(PEOPLE[0], 2)).faces[0].candidates
        assert _live(server.address, "staff").index_model_sha256 == old.sha256  # loaded
    served_while_embedding: list[str] = []
    with Traffic([a.address, b.address]) as traffic:
        updates = []
        with client(a.address) as admin:
            for update in admin.reindex("staff", spec, batch_size=2):
                updates.append(update)
                if update.phase == pb.ReindexProgress.EMBEDDING and len(updates) == 1:
                    served_while_embedding += [
                        _live(s.address, "staff").index_model_sha256 for s in (a, b)
                    ]
        started = time.monotonic()
        while _live(b.address, "staff").index_model_sha256 != new_sha:
            assert time.monotonic() - started < SWITCH_BOUND_S, "B did not switch"
            time.sleep(0.05)
        switch_lag = time.monotonic() - started
        time.sleep(1.0)  # some traffic after B's switch too
    print(f"identify calls {traffic.calls}, B switched {switch_lag * 1e3:.0f} ms after A")

    assert traffic.failures == [] and traffic.calls > 10
    assert served_while_embedding == [old.sha256, old.sha256]  # the old index until the switch
    done = [u.faces_done for u in updates]
    assert done == sorted(done) and updates[-1].phase == SWITCHED
    assert [u.phase for u in updates].count(SWITCHED) == 1
    assert updates[-1].faces_total == enrolled and updates[-1].gallery.model.sha256 == new_sha
    for server in (a, b):
        live = _live(server.address, "staff")
        assert (live.index_model_sha256, live.model.sha256) == (new_sha, new_sha)
        assert live.index_faces == live.faces == enrolled  # no face missing
        with client(server.address) as searcher:
            for name in PEOPLE:
                probe = searcher.identify("staff", photo(name, 2)).faces[0]
                assert probe.candidates[0].external_id == name

    # The offline tool beside the running servers: both follow its index-kind change.
    tool = ["reindex", "--database-url", shared_database, "--data-dir", str(tmp_path / "tool")]
    assert main([*tool, "--gallery", "staff", "--index", "hnsw"]) == 0
    for server in (a, b):
        started = time.monotonic()
        while _live(server.address, "staff").index_kind != "hnsw":
            assert time.monotonic() - started < SWITCH_BOUND_S, "the kind change was missed"
            time.sleep(0.05)
        assert _live(server.address, "staff").index_faces == enrolled
