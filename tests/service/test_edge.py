"""Every hostile or odd file in ../shared/data/edge, sent to Enroll and Identify over gRPC.

Each gets the right status code or outcome, the server stays up, and a request that fails
or whose face is refused leaves the database exactly as it was.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from facedb.client import FaceDBClient
from facedb.v1 import facedb_pb2 as pb
from tests.paths import DATA, EDGE
from tests.service.support import client, database_counts, running_server

GALLERY = "edge"
INVALID = {
    "thumbor_image_invalid_1byte.jpg",  # 1 byte
    "thumbor_truncated.jpg",  # truncated JPEG
    "thumbor_image_heic_no_face.heic",  # unsupported container
    "thumbor_image_jp2_no_face.jp2",
}
ALWAYS_REFUSED = {"blurred", "tiny_face", "no_face"}
ENROLLABLE = {"resolution_variants", "single_face_reference"}


@dataclass(frozen=True)
class EdgeFile:
    path: Path
    category: str
    expected_faces: int  # -1: many


# The 25x25 LFW crops come in dozens of near-identical files: a few of each kind suffice.
SAMPLES_PER_FOLDER = 4


def edge_files() -> list[EdgeFile]:
    with (EDGE / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    files = [EdgeFile(DATA / r["path"], r["category"], int(r["expected_faces"])) for r in rows]
    per_folder: dict[Path, int] = {}
    sampled = []
    for item in files:
        per_folder[item.path.parent] = per_folder.get(item.path.parent, 0) + 1
        if (
            "25px" not in item.path.parent.name
            or per_folder[item.path.parent] <= SAMPLES_PER_FOLDER
        ):
            sampled.append(item)
    return sampled


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaceDBClient, Path]]:
    data_dir = tmp_path_factory.mktemp("edge-data")
    with running_server(data_dir) as (_server, address), client(address) as db:
        db.create_gallery(GALLERY)
        yield db, data_dir


def _enroll(db: FaceDBClient, item: EdgeFile) -> pb.ImageOutcome | grpc.RpcError:
    try:
        # Duplicates allowed: several files show the same person under different ids.
        response = db.enroll(GALLERY, item.path.stem, [item.path], allow_duplicate=True)
    except grpc.RpcError as error:
        return error
    return response.outcomes[0]


def _check_enroll(item: EdgeFile, result: pb.ImageOutcome | grpc.RpcError) -> None:
    name = item.path.name
    assert isinstance(result, pb.ImageOutcome), f"{name}: {result}"
    if name in INVALID:  # refused per image, naming the file it came from
        assert not result.accepted and result.rejection.reason == pb.INVALID_IMAGE, name
        assert result.image_name == name and name in result.rejection.message, result
        return
    if item.expected_faces == 0 or item.category == "corrupt":
        assert not result.accepted and result.rejection.reason == pb.NO_FACE, name
    elif item.expected_faces > 1 or item.expected_faces == -1:
        assert result.rejection.reason == pb.MULTIPLE_FACES, name
        assert result.rejection.value >= 2, name
    elif item.category in ALWAYS_REFUSED:
        assert not result.accepted and result.rejection.reason != pb.REASON_UNSPECIFIED, name
        assert result.rejection.message, name
    elif item.category in ENROLLABLE:
        assert result.accepted and result.face_id > 0, f"{name}: {result.rejection.message}"
    else:  # a single face in an odd format: enrolled, or refused by a gate with a reason
        assert result.accepted or result.rejection.reason not in (pb.NO_FACE, 0), name


def _check_identify(db: FaceDBClient, item: EdgeFile) -> None:
    name = item.path.name
    try:
        everyone = db.identify(GALLERY, item.path, all_faces=True)
    except grpc.RpcError as error:
        assert name in INVALID and error.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        return
    assert name not in INVALID, name
    if item.expected_faces == 0:
        assert not everyone.faces, name
    elif item.category in ENROLLABLE or item.category == "format_variants":
        assert len(everyone.faces) == 1, name
    elif item.expected_faces >= 2:
        assert len(everyone.faces) >= 2, name
    if len(everyone.faces) > 1:  # by default only the largest face is searched
        assert len(db.identify(GALLERY, item.path).faces) == 1, name
    for face in everyone.faces:
        assert face.box.x2 > face.box.x1 and face.box.y2 > face.box.y1, name
        refused = face.HasField("rejection")
        assert not (refused and face.candidates), name  # a refused face is never searched


def test_every_edge_file_gets_the_right_answer(served: tuple[FaceDBClient, Path]) -> None:
    db, data_dir = served
    files = edge_files()
    assert {f.category for f in files} >= {"corrupt", "large", "no_face", "format_variants"}
    for item in files:
        before = database_counts(data_dir)
        result = _enroll(db, item)
        _check_enroll(item, result)
        after = database_counts(data_dir)
        if isinstance(result, pb.ImageOutcome) and result.accepted:
            assert after["faces"] == before["faces"] + 1, item.path.name
        else:
            assert after == before, f"{item.path.name} changed the database"
        _check_identify(db, item)
        assert database_counts(data_dir) == after, f"identify {item.path.name} wrote"
    assert db.health() == "SERVING"


def test_resolution_variants_find_each_other(served: tuple[FaceDBClient, Path]) -> None:
    db, _ = served
    probe = EDGE / "resolution_variants" / "fr_obama-720p.jpg"
    candidates = db.identify(GALLERY, probe, top_k=10).faces[0].candidates
    names = {c.external_id for c in candidates}
    # Every resolution enrolled by the sweep (the fixture order runs it first).
    assert {"fr_obama-1080p", "fr_obama-480p", "fr_obama-720p"} <= names


def test_one_unreadable_image_is_refused_alone_and_the_good_ones_are_kept(
    served: tuple[FaceDBClient, Path],
) -> None:
    db, data_dir = served
    good = EDGE / "single_face_reference" / "skimage_astronaut_eileen_collins.png"
    bad = EDGE / "corrupt" / "thumbor_truncated.jpg"
    before = database_counts(data_dir)
    reply = db.enroll(GALLERY, "mixed", [good, bad], allow_duplicate=True)
    kept, refused = reply.outcomes
    assert kept.accepted and kept.image_name == good.name
    assert kept.box.x2 > kept.box.x1 and kept.box.y2 > kept.box.y1  # which face was enrolled
    assert refused.rejection.reason == pb.INVALID_IMAGE and not refused.accepted
    assert refused.rejection.message.startswith(f"image 1 ({bad.name})")
    assert reply.created and list(reply.identity.face_ids) == [kept.face_id]
    assert database_counts(data_dir)["faces"] == before["faces"] + 1
    db.delete_identity(GALLERY, "mixed")


def test_empty_and_missing_fields_are_invalid(served: tuple[FaceDBClient, Path]) -> None:
    db, data_dir = served
    before = database_counts(data_dir)
    calls = [
        lambda: db.enroll(GALLERY, "nobody", []),
        lambda: db.enroll(GALLERY, "", [EDGE / "no_face" / "skimage_coffee.png"]),
        lambda: db.enroll("", "nobody", [EDGE / "no_face" / "skimage_coffee.png"]),
        lambda: db.identify(GALLERY, b""),
        lambda: db.verify(b"", b""),
        lambda: db.identify(GALLERY, EDGE / "no_face" / "skimage_coffee.png", top_k=-1),
        lambda: db.create_gallery(""),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as error:
            call()
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details()
    assert database_counts(data_dir) == before
