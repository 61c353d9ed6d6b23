"""Attributes stored with enrolled faces, opt-in per gallery, over a real gRPC server on
loopback: real SCRFD, ArcFace and AgeGender models, real LFW photos, SQLite."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from facedb.cli import main
from facedb.client import FaceDBClient, enroll_request
from facedb.v1 import facedb_pb2 as pb
from tests.paths import EDGE
from tests.service.support import ADMIN_KEY, client, running_server
from tests.vision.analysis.support import AGEGENDER, lfw_path

METADATA = (("x-api-key", ADMIN_KEY),)
COFFEE = EDGE / "no_face" / "skimage_coffee.png"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FaceDBClient, Path, str]]:
    patch = pytest.MonkeyPatch()
    patch.setenv("FACEDB_AGEGENDER_MODEL", AGEGENDER)
    patch.delenv("FACEDB_EMOTION_MODEL", raising=False)
    try:
        data_dir = tmp_path_factory.mktemp("stored-attributes")
        with running_server(data_dir) as (_, address), client(address) as db:
            yield db, data_dir, address
    finally:
        patch.undo()


def call(db: FaceDBClient, method: str, request) -> object:
    return getattr(db.stub, method)(request, metadata=METADATA, timeout=60)


def stored_row(data_dir: Path, face_id: int) -> dict | None:
    with sqlite3.connect(data_dir / "facedb.sqlite3") as database:
        (value,) = database.execute(
            "SELECT attributes FROM faces WHERE id = ?", (face_id,)
        ).fetchone()
    return None if value is None else json.loads(value)


def enroll(
    db: FaceDBClient, gallery: str, person: str, request_id: str = "", *extra: Path
) -> pb.EnrollResponse:
    images = [lfw_path(person, 1).read_bytes(), *(path.read_bytes() for path in extra)]
    request = enroll_request(gallery, person, images, request_id=request_id)
    return call(db, "Enroll", request)


def test_gallery_with_stored_attributes_keeps_them_per_face(served) -> None:
    db, data_dir, _ = served
    gallery = call(
        db,
        "CreateGallery",
        pb.CreateGalleryRequest(name="audit", stored_attributes=["age", "gender"]),
    )
    assert list(gallery.stored_attributes) == ["age", "gender"]
    got = call(db, "GetGallery", pb.GetGalleryRequest(name="audit"))
    assert list(got.stored_attributes) == ["age", "gender"]

    reply = enroll(db, "audit", "Serena_Williams", "serena-1", COFFEE)
    outcome, no_face = reply.outcomes
    assert outcome.accepted and not no_face.accepted and not no_face.HasField("attributes")
    assert outcome.attributes.gender == "female" and outcome.attributes.gender_confidence > 0.5
    assert 15 < outcome.attributes.age < 60
    assert not outcome.attributes.HasField("eyes_open")  # only what the gallery names

    row = stored_row(data_dir, outcome.face_id)
    assert row is not None and set(row) == {"age", "gender", "gender_confidence"}
    assert row["gender"] == "female" and row["age"] == pytest.approx(outcome.attributes.age)

    # A retry is answered from the receipt; the attributes are read back from the face.
    again = enroll(db, "audit", "Serena_Williams", "serena-1", COFFEE)
    assert again.replayed and list(again.outcomes) == [outcome, no_face]


def test_gallery_without_stored_attributes_stores_none(served) -> None:
    db, data_dir, _ = served
    gallery = call(db, "CreateGallery", pb.CreateGalleryRequest(name="plain"))
    assert list(gallery.stored_attributes) == []
    (outcome,) = enroll(db, "plain", "Colin_Powell").outcomes
    assert outcome.accepted and not outcome.HasField("attributes")
    assert stored_row(data_dir, outcome.face_id) is None


@pytest.mark.parametrize(
    ("names", "code", "words"),
    [
        (["age", "shoe_size"], grpc.StatusCode.INVALID_ARGUMENT, "shoe_size"),
        (["emotion"], grpc.StatusCode.FAILED_PRECONDITION, "FACEDB_EMOTION_MODEL"),
    ],
)
def test_create_gallery_refuses_attributes_it_cannot_store(served, names, code, words) -> None:
    db, _, _ = served
    request = pb.CreateGalleryRequest(name="refused", stored_attributes=names)
    with pytest.raises(grpc.RpcError) as caught:
        call(db, "CreateGallery", request)
    assert caught.value.code() == code and words in caught.value.details()
    with pytest.raises(grpc.RpcError) as missing:
        call(db, "GetGallery", pb.GetGalleryRequest(name="refused"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND  # nothing was created


def test_server_without_the_model_refuses_to_enroll_into_the_gallery(
    served, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, data_dir, _ = served
    call(db, "CreateGallery", pb.CreateGalleryRequest(name="aged", stored_attributes=["age"]))
    monkeypatch.delenv("FACEDB_AGEGENDER_MODEL")  # a second server, sharing the database
    with (
        running_server(data_dir) as (_, address),
        client(address) as other,
        pytest.raises(grpc.RpcError) as caught,
    ):
        enroll(other, "aged", "Tony_Blair")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "'aged' stores age" in caught.value.details()
    assert "FACEDB_AGEGENDER_MODEL" in caught.value.details()
    assert call(db, "GetGallery", pb.GetGalleryRequest(name="aged")).face_count == 0


def test_gallery_create_cli_stores_attributes(served, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, address = served
    server = ["--server", address, "--api-key", ADMIN_KEY]
    assert (
        main(["gallery", "create", "cli-audit", "--store-attributes", "age, gender", *server]) == 0
    )
    capsys.readouterr()
    assert main(["gallery", "get", "cli-audit", "--json", *server]) == 0
    assert json.loads(capsys.readouterr().out)["stored_attributes"] == ["age", "gender"]

    assert main(["gallery", "create", "cli-bad", "--store-attributes", "shoe_size", *server]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "INVALID_ARGUMENT" in lines[0] and "shoe_size" in lines[0], lines


# ---- filters on stored attributes (Identify, SearchFaces) ------------------------------


@pytest.fixture(scope="module")
def filtered(served) -> dict[str, pb.ImageOutcome]:
    """A gallery storing age and gender: a woman and two men from LFW (their first photos:
    AgeGender says female 36, male 55 and male 67)."""
    db, _, _ = served
    call(
        db,
        "CreateGallery",
        pb.CreateGalleryRequest(name="filtered", stored_attributes=["age", "gender"]),
    )
    outcomes = {}
    for person in ("Serena_Williams", "Tony_Blair", "Colin_Powell"):
        (outcomes[person],) = enroll(db, "filtered", person).outcomes
        assert outcomes[person].accepted
    assert outcomes["Serena_Williams"].attributes.gender == "female"
    assert {outcomes[p].attributes.gender for p in ("Tony_Blair", "Colin_Powell")} == {"male"}
    return outcomes


def identified(db: FaceDBClient, person: str, *filters: pb.AttributeFilter) -> list[str]:
    request = pb.IdentifyRequest(
        gallery="filtered", image=lfw_path(person, 2).read_bytes(), filters=filters
    )
    (face,) = call(db, "Identify", request).faces
    return [c.external_id for c in face.candidates]


def gender(value: str) -> pb.AttributeFilter:
    return pb.AttributeFilter(name="gender", equals=value)


def test_identify_keeps_only_faces_whose_stored_attributes_match(served, filtered) -> None:
    db, _, _ = served
    assert identified(db, "Serena_Williams") == ["Serena_Williams"]
    assert identified(db, "Serena_Williams", gender("female")) == ["Serena_Williams"]
    assert identified(db, "Serena_Williams", gender("FEMALE")) == ["Serena_Williams"]
    assert identified(db, "Serena_Williams", gender("male")) == []  # her face is not a candidate
    assert identified(db, "Tony_Blair") == ["Tony_Blair"]
    assert identified(db, "Tony_Blair", gender("female")) == []  # the man: no match
    old = pb.AttributeFilter(name="age", min=60)
    assert identified(db, "Tony_Blair", gender("male"), old) == []  # all filters must match
    assert identified(db, "Colin_Powell", gender("male"), old) == ["Colin_Powell"]
    reply = db.identify("filtered", lfw_path("Serena_Williams", 2), filters=[gender("female")])
    assert [c.external_id for c in reply.faces[0].candidates] == ["Serena_Williams"]


def searched(db: FaceDBClient, face_id: int, *filters: pb.AttributeFilter) -> list[str]:
    request = pb.SearchFacesRequest(
        gallery="filtered", face_id=face_id, top_k=10, threshold=-1.0, filters=filters
    )
    return sorted(m.external_id for m in call(db, "SearchFaces", request).matches)


def test_search_faces_filters_by_gender_and_age_range(served, filtered) -> None:
    db, _, _ = served
    serena, tony, colin = (filtered[p] for p in ("Serena_Williams", "Tony_Blair", "Colin_Powell"))
    assert searched(db, colin.face_id) == ["Serena_Williams", "Tony_Blair"]
    assert searched(db, colin.face_id, gender("female")) == ["Serena_Williams"]
    assert searched(db, colin.face_id, gender("male")) == ["Tony_Blair"]
    assert searched(db, serena.face_id, gender("female")) == []  # itself is left out

    # Ages as stored: Serena < Tony < Colin; the bounds are inclusive.
    assert serena.attributes.age + 5 < tony.attributes.age < colin.attributes.age - 5
    middle = (serena.attributes.age + tony.attributes.age) / 2
    young = pb.AttributeFilter(name="age", max=middle)
    assert searched(db, colin.face_id, young) == ["Serena_Williams"]
    assert searched(db, colin.face_id, pb.AttributeFilter(name="age", min=middle)) == ["Tony_Blair"]
    exact = pb.AttributeFilter(name="age", min=tony.attributes.age, max=tony.attributes.age)
    assert searched(db, serena.face_id, exact) == ["Tony_Blair"]
    assert searched(db, colin.face_id, young, gender("male")) == []


@pytest.mark.parametrize(
    ("gallery", "condition", "code", "words"),
    [
        (
            "filtered",
            pb.AttributeFilter(name="shoe_size", equals="9"),
            "INVALID_ARGUMENT",
            "shoe_size",
        ),
        (
            "filtered",
            pb.AttributeFilter(name="emotion", equals="happy"),
            "INVALID_ARGUMENT",
            "not a single value",
        ),
        ("filtered", pb.AttributeFilter(name="age"), "INVALID_ARGUMENT", "give equals, min or max"),
        (
            "filtered",
            pb.AttributeFilter(name="age", min=50, max=40),
            "INVALID_ARGUMENT",
            "above max",
        ),
        (
            "filtered",
            pb.AttributeFilter(name="gender", equals="male", min=1),
            "INVALID_ARGUMENT",
            "not both",
        ),
        (
            "filtered",
            pb.AttributeFilter(name="race", equals="white"),
            "FAILED_PRECONDITION",
            "does not store",
        ),
        (
            "plain",
            pb.AttributeFilter(name="gender", equals="male"),
            "FAILED_PRECONDITION",
            "stores: none",
        ),
    ],
)
def test_bad_filters_are_refused_with_a_clear_status(
    served, filtered, gallery, condition, code, words
) -> None:
    db, _, _ = served
    if gallery == "plain":
        call(db, "CreateGallery", pb.CreateGalleryRequest(name="unfiltered"))
        gallery = "unfiltered"
    image = lfw_path("Tony_Blair", 2).read_bytes()
    requests = [
        ("Identify", pb.IdentifyRequest(gallery=gallery, image=image, filters=[condition])),
        ("SearchFaces", pb.SearchFacesRequest(gallery=gallery, face_id=1, filters=[condition])),
    ]
    for method, request in requests:
        with pytest.raises(grpc.RpcError) as caught:
            call(db, method, request)
        assert caught.value.code() == getattr(grpc.StatusCode, code), method
        assert words in caught.value.details(), caught.value.details()


def test_identify_cli_filters(served, filtered, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, address = served
    server = ["--server", address, "--api-key", ADMIN_KEY, "--gallery", "filtered"]
    serena = str(lfw_path("Serena_Williams", 2))
    assert main(["identify", serena, *server, "--filter", "gender=female"]) == 0
    assert "Serena_Williams" in capsys.readouterr().out
    assert main(["identify", serena, *server, "--filter", "gender=male"]) == 1  # no match
    tony = str(lfw_path("Tony_Blair", 2))
    assert main(["identify", tony, *server, "--filter", "age>=60"]) == 1
    assert main(["identify", tony, *server, "--filter", "age<=60", "--filter", "gender=male"]) == 0
    capsys.readouterr()
    for condition, words in (("age>=old", "needs a number"), ("shoe_size=9", "INVALID_ARGUMENT")):
        assert main(["identify", tony, *server, "--filter", condition]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], lines
