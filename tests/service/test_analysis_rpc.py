"""Analyze, SearchFaces and ClusterFaces over a real gRPC server on loopback: real models
(SCRFD, ArcFace int8, AgeGender, MiniXception), real LFW photos, SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from facedb.client import FaceDBClient, enroll_request
from facedb.v1 import facedb_pb2 as pb
from facedb.vision.align import align_face
from facedb.vision.embed import load_embedder
from tests.paths import ARCFACE
from tests.service.support import ADMIN_KEY, client, running_server
from tests.vision.analysis.support import AGEGENDER, EMOTION, lfw_path, load

PEOPLE = ("Colin_Powell", "Serena_Williams", "Tony_Blair")
METADATA = (("x-api-key", ADMIN_KEY),)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaceDBClient, dict]]:
    patch = pytest.MonkeyPatch()
    patch.setenv("FACEDB_AGEGENDER_MODEL", AGEGENDER)
    patch.setenv("FACEDB_EMOTION_MODEL", EMOTION)
    try:
        data_dir = tmp_path_factory.mktemp("analysis-server")
        with running_server(data_dir) as (_, address), client(address) as db:
            db.create_gallery("people")
            face_ids = {}
            for name in PEOPLE:
                images = [lfw_path(name, n).read_bytes() for n in (1, 2, 3)]
                reply = db.stub.Enroll(
                    enroll_request("people", name, images, allow_multiple_faces=True),
                    metadata=METADATA,
                )
                face_ids[name] = [o.face_id for o in reply.outcomes if o.accepted]
            yield db, face_ids
    finally:
        patch.undo()


def call(db: FaceDBClient, method: str, request) -> object:
    return getattr(db.stub, method)(request, metadata=METADATA, timeout=60)


def test_analyze_returns_faces_and_the_asked_attributes(served) -> None:
    db, _ = served
    image = lfw_path("Tiger_Woods", 2).read_bytes()
    reply = call(
        db, "Analyze", pb.AnalyzeRequest(image=image, attributes=["age", "gender", "emotion"])
    )
    assert list(reply.attributes) == ["age", "gender", "emotion"]
    (face,) = reply.faces
    assert face.box.x2 > face.box.x1 > 0 and len(face.landmarks) == 5
    assert face.detection_score > 0.5 and face.quality["sharpness"] > 0
    assert not face.HasField("rejection")
    attributes = face.attributes
    assert attributes.gender == "male" and attributes.gender_confidence > 0.9
    assert 15 < attributes.age < 50 and attributes.emotion.label == "happy"
    assert sum(attributes.emotion.scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert not attributes.HasField("eyes_open")  # not asked (and no model for it)

    bare = call(db, "Analyze", pb.AnalyzeRequest(image=image))
    assert len(bare.faces) == 1 and not bare.faces[0].attributes.HasField("age")


def test_identify_carries_the_asked_attributes(served) -> None:
    db, _ = served
    image = lfw_path("Serena_Williams", 4).read_bytes()  # not enrolled: a new photo of her
    request = pb.IdentifyRequest(gallery="people", image=image, attributes=["gender", "age"])
    reply = call(db, "Identify", request)
    (probe,) = reply.faces
    assert probe.candidates[0].external_id == "Serena_Williams"
    assert probe.attributes.gender == "female" and probe.attributes.HasField("age")
    plain = call(db, "Identify", pb.IdentifyRequest(gallery="people", image=image))
    assert not plain.faces[0].HasField("attributes")
    with pytest.raises(grpc.RpcError) as caught:
        call(db, "Identify", pb.IdentifyRequest(gallery="people", image=image, attributes=["hat"]))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_analyze_mistakes_have_their_codes(served) -> None:
    db, _ = served
    image = lfw_path("Tiger_Woods", 2).read_bytes()
    cases = [
        (
            pb.AnalyzeRequest(image=image, attributes=["shoe_size"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown attribute",
        ),
        (
            pb.AnalyzeRequest(image=image, attributes=["occlusion"]),
            grpc.StatusCode.FAILED_PRECONDITION,
            "parsing",
        ),
        (
            pb.AnalyzeRequest(image=b"", attributes=["age"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "empty image",
        ),
        (pb.AnalyzeRequest(image=b"not an image"), grpc.StatusCode.INVALID_ARGUMENT, ""),
    ]
    for request, code, text in cases:
        with pytest.raises(grpc.RpcError) as caught:
            call(db, "Analyze", request)
        assert caught.value.code() == code and text in caught.value.details()


def test_search_faces_by_face_id_and_by_embedding(served) -> None:
    db, face_ids = served
    powell = face_ids["Colin_Powell"]
    reply = call(
        db, "SearchFaces", pb.SearchFacesRequest(gallery="people", face_id=powell[0], top_k=5)
    )
    assert reply.matches and powell[0] not in [m.face_id for m in reply.matches]
    assert {m.external_id for m in reply.matches} == {"Colin_Powell"}
    assert sorted(m.face_id for m in reply.matches) == sorted(powell[1:])
    assert all(m.score >= reply.threshold for m in reply.matches)

    image, face = load("Serena_Williams", 4)  # not enrolled: a new photo of her
    vector = load_embedder(ARCFACE).embed(align_face(image, face.landmarks)[None])[0]
    query = pb.EmbeddingVector(values=vector.tolist())
    by_vector = call(db, "SearchFaces", pb.SearchFacesRequest(gallery="people", embedding=query))
    assert by_vector.matches[0].external_id == "Serena_Williams"

    wrong = pb.SearchFacesRequest(gallery="people", embedding=pb.EmbeddingVector(values=[1.0, 2.0]))
    missing = pb.SearchFacesRequest(gallery="people", face_id=999_999)
    nothing = pb.SearchFacesRequest(gallery="people")
    for request, code in (
        (wrong, "INVALID_ARGUMENT"),
        (missing, "NOT_FOUND"),
        (nothing, "INVALID_ARGUMENT"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call(db, "SearchFaces", request)
        assert caught.value.code().name == code


def test_cluster_faces_of_a_gallery_and_of_raw_embeddings(served) -> None:
    db, face_ids = served
    reply = call(db, "ClusterFaces", pb.ClusterFacesRequest(gallery="people"))
    groups = sorted(sorted(c.face_ids) for c in reply.clusters)
    assert groups == sorted(sorted(ids) for ids in face_ids.values())
    assert 0 < reply.threshold < 1

    some = face_ids["Colin_Powell"][:2] + face_ids["Tony_Blair"][:1]
    subset = call(db, "ClusterFaces", pb.ClusterFacesRequest(gallery="people", face_ids=some))
    assert sorted(len(c.face_ids) for c in subset.clusters) == [1, 2]

    rng = np.random.default_rng(0)
    centre = rng.normal(size=512)
    rows = [centre + rng.normal(scale=0.1, size=512) for _ in range(3)] + [rng.normal(size=512)]
    raw = pb.ClusterFacesRequest(embeddings=[pb.EmbeddingVector(values=r.tolist()) for r in rows])
    clustered = call(db, "ClusterFaces", raw)
    assert [sorted(c.indices) for c in clustered.clusters] == [[0, 1, 2], [3]]

    with pytest.raises(grpc.RpcError) as caught:
        call(db, "ClusterFaces", pb.ClusterFacesRequest(gallery="people", face_ids=[999_999]))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        call(db, "ClusterFaces", pb.ClusterFacesRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_gallery_the_key_cannot_see_is_refused(served, tmp_path: Path) -> None:
    db, face_ids = served
    request = pb.SearchFacesRequest(gallery="people", face_id=face_ids["Tony_Blair"][0])
    with pytest.raises(grpc.RpcError) as caught:
        db.stub.SearchFaces(request, metadata=(("x-api-key", "search-a"),), timeout=30)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
