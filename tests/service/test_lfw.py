"""End to end on LFW through `facedb serve` (a subprocess on a loopback port).

Bulk-enroll the gallery images of the first 100 identities (EnrollStream), identify their
probes and unenrolled distractors, verify pairs, delete an identity, restart the server
with SIGTERM and find everything else back. The tests run in file order on one server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from facedb.client import FaceDBClient, enroll_request
from facedb.v1 import facedb_pb2 as pb
from tests.paths import LFW
from tests.service.support import (
    Photo,
    ServerProcess,
    client,
    lfw_split,
    start_server_process,
)

T = TypeVar("T")
IDENTITIES = 100
PROBES = 200
DISTRACTORS = 100
GALLERY = "lfw"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lfw-data")


@pytest.fixture(scope="module")
def split() -> dict[str, list[Photo]]:
    roles = lfw_split()
    gallery = roles["gallery"][:IDENTITIES]
    names = {p.identity for p in gallery}
    probes = [p for p in roles["probe"] if p.identity in names][:PROBES]
    return {"gallery": gallery, "probe": probes, "distractor": roles["distractor"][:DISTRACTORS]}


@pytest.fixture(scope="module")
def server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server_process(data_dir, tmp_path_factory.mktemp("log") / "serve.log")
    yield process
    if process.process.poll() is None:
        process.stop()


@pytest.fixture(scope="module")
def db(server: ServerProcess) -> Iterator[FaceDBClient]:
    with client(server.address) as admin:
        yield admin


@pytest.fixture(scope="module")
def enrolled(db: FaceDBClient, split: dict[str, list[Photo]]) -> pb.EnrollStreamResponse:
    db.create_gallery(GALLERY)
    requests = (
        enroll_request(
            GALLERY,
            p.identity,
            [p.path],
            display_name=p.identity.replace("_", " "),
            metadata={"source": "lfw"},
            allow_multiple_faces=True,  # LFW photos often show people behind the subject
        )
        for p in split["gallery"]
    )
    return db.enroll_stream(requests)


def test_bulk_enroll_reports_every_item(enrolled: pb.EnrollStreamResponse) -> None:
    summary = enrolled.summary
    assert summary.items == IDENTITIES and len(enrolled.items) == IDENTITIES
    assert summary.items_failed == 0
    # The enrollment gates refuse a few LFW photos (profile, blur); never many.
    assert summary.images_accepted >= 95
    assert summary.identities_created == summary.images_accepted
    assert summary.images_accepted + summary.images_rejected == IDENTITIES
    assert sum(summary.rejections_by_reason.values()) == summary.images_rejected
    for item in enrolled.items:
        outcome = item.outcomes[0]
        if outcome.accepted:
            assert outcome.face_id > 0 and not outcome.HasField("rejection")
        else:
            assert outcome.rejection.reason != pb.REASON_UNSPECIFIED
            assert outcome.rejection.message


def _parallel(function: Callable[[Photo], T], photos: list[Photo]) -> Iterator[T]:
    """Two calls in flight: the server runs two workers."""
    with ThreadPoolExecutor(2) as pool:
        yield from pool.map(function, photos)


def _enrolled_names(enrolled: pb.EnrollStreamResponse) -> set[str]:
    return {i.external_id for i in enrolled.items if i.outcomes[0].accepted}


def test_identify_probes_rank_one(
    db: FaceDBClient, enrolled: pb.EnrollStreamResponse, split: dict[str, list[Photo]]
) -> None:
    names = _enrolled_names(enrolled)
    probes = [p for p in split["probe"] if p.identity in names]
    assert len(probes) >= 190
    default = db.get_gallery(GALLERY).thresholds.identify

    def top_candidate(probe: Photo) -> pb.Candidate | None:
        # Threshold -1 returns the ranked candidates whatever their score (closed set).
        response = db.identify(GALLERY, probe.path, top_k=5, threshold=-1.0)
        candidates = response.faces[0].candidates if response.faces else []
        return candidates[0] if candidates else None

    tops = list(_parallel(top_candidate, probes))
    hits = [t for t, p in zip(tops, probes, strict=True) if t and t.external_id == p.identity]
    rank_one = len(hits)
    open_set = sum(t.score >= default for t in hits)
    assert rank_one / len(probes) >= 0.97
    # At the default threshold a few genuine probes fall below it (open set, FPIR 1%).
    assert open_set / len(probes) >= 0.94


def test_candidates_carry_identity_data(db: FaceDBClient, split: dict[str, list[Photo]]) -> None:
    probe = split["probe"][0]
    response = db.identify(GALLERY, probe.path)
    top = response.faces[0].candidates[0]
    assert top.external_id == probe.identity
    assert top.display_name == probe.identity.replace("_", " ")
    assert top.metadata["source"] == "lfw"
    assert top.face_id > 0 and top.score >= response.threshold
    box = response.faces[0].box
    assert 0 <= box.x1 < box.x2 <= 250 and 0 <= box.y1 < box.y2 <= 250


def test_distractors_are_no_match(db: FaceDBClient, split: dict[str, list[Photo]]) -> None:
    distractors = split["distractor"]

    def unmatched(photo: Photo) -> bool:
        response = db.identify(GALLERY, photo.path)  # the gallery's default threshold
        return not any(face.candidates for face in response.faces)

    no_match = sum(_parallel(unmatched, distractors))
    assert len(distractors) >= 100
    assert no_match / len(distractors) >= 0.97


def _pairs(count: int) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """The first `count` same and different pairs of pairsDevTest.txt."""

    def image(name: str, number: str) -> Path:
        return LFW / "images" / name / f"{name}_{int(number):04d}.jpg"

    same, different = [], []
    for line in (LFW / "pairsDevTest.txt").read_text().splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) == 3 and len(same) < count:
            same.append((image(fields[0], fields[1]), image(fields[0], fields[2])))
        elif len(fields) == 4 and len(different) < count:
            different.append((image(fields[0], fields[1]), image(fields[2], fields[3])))
    return same, different


def test_verify_image_pairs(db: FaceDBClient) -> None:
    same, different = _pairs(12)
    correct = 0
    for a, b in same:
        response = db.verify(a, b)
        assert response.threshold == pytest.approx(db.get_gallery(GALLERY).thresholds.verify)
        correct += response.match
    for a, b in different:
        correct += not db.verify(a, b).match
    assert correct >= 23  # of 24; LFW verification accuracy is ~99% with this model


def test_verify_against_an_enrolled_identity(
    db: FaceDBClient, enrolled: pb.EnrollStreamResponse, split: dict[str, list[Photo]]
) -> None:
    names = _enrolled_names(enrolled)
    probe = next(p for p in split["probe"] if p.identity in names)
    other = next(n for n in sorted(names) if n != probe.identity)
    same = db.verify(probe.path, gallery=GALLERY, external_id=probe.identity)
    assert same.match and same.score >= same.threshold and same.reference_face_id > 0
    different = db.verify(probe.path, gallery=GALLERY, external_id=other)
    assert not different.match and different.score < different.threshold


def test_deleted_identity_stays_gone_across_a_restart(
    db: FaceDBClient,
    server: ServerProcess,
    enrolled: pb.EnrollStreamResponse,
    split: dict[str, list[Photo]],
    data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    names = _enrolled_names(enrolled)
    victim = next(p for p in split["probe"] if p.identity in names)
    kept = next(p for p in split["probe"] if p.identity in names and p.identity != victim.identity)
    before = db.stats()
    assert db.delete_identity(GALLERY, victim.identity) == 1
    _assert_gone(db, victim)

    assert server.stop() == 0  # SIGTERM: graceful, snapshots flushed
    log = server.log_lines()  # JSON lines: one access-log entry per call, then the shutdown
    assert any(e.get("msg") == "rpc" and e.get("method") == "EnrollStream" for e in log)
    assert any(e.get("msg", "").startswith("facedb stopped") for e in log)
    assert any(p.is_file() for p in (data_dir / "index").rglob("*")), "no index snapshot"
    restarted = start_server_process(data_dir, tmp_path_factory.mktemp("log2") / "serve.log")
    try:
        with client(restarted.address) as again:
            _assert_gone(again, victim)
            stats = again.stats()
            assert stats.identities == before.identities - 1
            assert stats.faces == before.faces - 1
            listed = {i.external_id for i in again.iter_identities(GALLERY, page_size=30)}
            assert listed == names - {victim.identity}
            top = again.identify(GALLERY, kept.path).faces[0].candidates[0]
            assert top.external_id == kept.identity
    finally:
        restarted.stop()


def _assert_gone(db: FaceDBClient, photo: Photo) -> None:
    with pytest.raises(grpc.RpcError) as error:
        db.get_identity(GALLERY, photo.identity)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    response = db.identify(GALLERY, photo.path, top_k=10, threshold=-1.0)
    assert photo.identity not in {c.external_id for c in response.faces[0].candidates}
