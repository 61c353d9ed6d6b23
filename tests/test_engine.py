"""The engine in-process: real models, real photos, real SQLite + FAISS in a temp dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facedb.engine import (
    DeadlineExceededError,
    Engine,
    EnrollItem,
    EnrollResult,
    FailedPreconditionError,
    GatePolicyOptions,
    InvalidRequestError,
    NotFoundEngineError,
    Thresholds,
    open_engine,
)
from facedb.vision.gates import Reason
from tests.paths import EDGE, LFW, MODELS
from tests.service.support import server_settings

os.environ.setdefault("FACEDB_ORT_THREADS", "1")

MOBILEFACENET = f"mobileface:{MODELS / 'mobilefacenet512.onnx'}"


def photo(name: str, number: int) -> bytes:
    return (LFW / "images" / name / f"{name}_{number:04d}.jpg").read_bytes()


def enroll(
    engine: Engine, gallery: str, external_id: str, *images: bytes, **options: Any
) -> EnrollResult:
    item = EnrollItem(gallery, external_id, list(images), allow_multiple_faces=True, **options)
    return engine.enroll(item)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def engine(data_dir: Path) -> Iterator[Engine]:
    engine = open_engine(server_settings(data_dir))
    engine.create_gallery("g")
    yield engine
    engine.close()


def test_a_face_of_another_identity_is_a_duplicate(engine: Engine) -> None:
    enroll(engine, "g", "colin", photo("Colin_Powell", 1))
    refused = enroll(engine, "g", "impostor", photo("Colin_Powell", 2)).outcomes[0]
    assert refused.rejection is not None and str(refused.rejection.reason) == "DUPLICATE"
    assert refused.duplicate_of == "colin"
    assert refused.rejection.value >= refused.rejection.threshold
    with pytest.raises(NotFoundEngineError):
        engine.get_identity("g", "impostor")  # nothing was written
    # The same person's own new photo is no duplicate; the flag lets a duplicate through.
    assert enroll(engine, "g", "colin", photo("Colin_Powell", 3)).outcomes[0].accepted
    forced = enroll(engine, "g", "impostor", photo("Colin_Powell", 2), allow_duplicate=True)
    assert forced.created and forced.outcomes[0].accepted


def test_identify_aggregates_faces_per_identity(engine: Engine) -> None:
    enroll(engine, "g", "colin", photo("Colin_Powell", 1), photo("Colin_Powell", 2))
    enroll(engine, "g", "tony", photo("Tony_Blair", 1))
    result = engine.identify("g", photo("Colin_Powell", 4), top_k=5, threshold=-1.0)
    names = [c.external_id for c in result.faces[0].candidates]
    assert names == ["colin", "tony"]  # colin once, with his best face
    scores = [c.score for c in result.faces[0].candidates]
    assert scores == sorted(scores, reverse=True) and result.threshold == -1.0
    default = engine.identify("g", photo("Colin_Powell", 4))
    assert [c.external_id for c in default.faces[0].candidates] == ["colin"]
    assert default.threshold == engine.get_gallery("g").thresholds.identify


def test_enroll_reports_each_image(engine: Engine) -> None:
    coffee = (EDGE / "no_face" / "skimage_coffee.png").read_bytes()
    result = enroll(engine, "g", "colin", photo("Colin_Powell", 1), coffee)
    accepted, refused = result.outcomes
    assert accepted.accepted and accepted.face_id and accepted.index == 0
    assert refused.index == 1 and refused.rejection is not None
    assert refused.rejection.reason == Reason.NO_FACE
    assert result.created and result.identity is not None
    assert list(result.identity.face_ids) == [accepted.face_id]


def test_gallery_gate_overrides_apply_and_unknown_ones_are_refused(engine: Engine) -> None:
    strict = GatePolicyOptions(enrollment={"min_face_size": 500.0})
    engine.create_gallery("strict", gates=strict, thresholds=Thresholds(identify=0.5))
    gallery = engine.get_gallery("strict")
    assert gallery.gates.enrollment == {"min_face_size": 500.0}
    assert gallery.thresholds.identify == 0.5
    refused = enroll(engine, "strict", "colin", photo("Colin_Powell", 1)).outcomes[0]
    assert refused.rejection is not None and refused.rejection.reason == Reason.FACE_TOO_SMALL
    assert refused.rejection.threshold == 500.0
    with pytest.raises(InvalidRequestError, match="no_such_gate"):
        engine.create_gallery("bad", gates=GatePolicyOptions(search={"no_such_gate": 1.0}))
    with pytest.raises(FailedPreconditionError, match="liveness"):
        engine.create_gallery("live", gates=GatePolicyOptions(enrollment_liveness=True))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_gate_overrides_must_be_finite(engine: Engine, value: float) -> None:
    """A NaN min face size would switch the size gate off (and be stored as non-JSON)."""
    with pytest.raises(InvalidRequestError, match="finite"):
        engine.create_gallery("nan", gates=GatePolicyOptions(enrollment={"min_face_size": value}))
    with pytest.raises(InvalidRequestError, match="finite"):
        engine.create_gallery("nan", gates=GatePolicyOptions(search={"max_yaw": value}))
    assert "nan" not in [g.name for g in engine.list_galleries()]


def test_identities_update_list_and_delete(engine: Engine) -> None:
    for number, name in enumerate(("Colin_Powell", "Tony_Blair", "Gray_Davis"), 1):
        enroll(engine, "g", name.lower(), photo(name, 1), metadata={"n": str(number)})
    updated = engine.update_identity("g", "colin_powell", display_name="Colin", metadata={"x": "1"})
    assert updated.display_name == "Colin" and updated.metadata == {"n": "1", "x": "1"}
    replaced = engine.update_identity("g", "colin_powell", metadata={}, replace_metadata=True)
    assert replaced.metadata == {} and replaced.display_name == "Colin"
    first, token = engine.list_identities("g", page_size=2)
    rest, last = engine.list_identities("g", page_size=2, page_token=token)
    assert len(first) == 2 and token and last == ""
    assert {i.external_id for i in first + rest} == {"colin_powell", "tony_blair", "gray_davis"}
    face_id = engine.get_identity("g", "tony_blair").face_ids[0]
    engine.delete_face("g", face_id)
    assert engine.get_identity("g", "tony_blair").face_ids == ()
    assert engine.delete_identity("g", "gray_davis") == 1
    with pytest.raises(NotFoundEngineError):
        engine.delete_identity("g", "gray_davis")


def test_an_expired_deadline_stops_before_the_work(engine: Engine) -> None:
    with pytest.raises(DeadlineExceededError, match="decode"):
        engine.identify("g", photo("Colin_Powell", 1), timeout=0.0)
    with pytest.raises(DeadlineExceededError):
        engine.enroll(EnrollItem("g", "colin", [photo("Colin_Powell", 1)]), timeout=0.0)
    assert engine.stats()[0].faces == 0


def test_verify_images_and_identities(engine: Engine) -> None:
    enroll(engine, "g", "colin", photo("Colin_Powell", 1))
    same = engine.verify(photo("Colin_Powell", 2), reference_image=photo("Colin_Powell", 3))
    different = engine.verify(photo("Colin_Powell", 2), reference_image=photo("Tony_Blair", 1))
    assert same.match and not different.match and same.threshold == different.threshold
    against = engine.verify(photo("Colin_Powell", 2), gallery="g", external_id="colin")
    assert against.match and against.reference_face_id
    coffee = (EDGE / "no_face" / "skimage_coffee.png").read_bytes()
    refused = engine.verify(coffee, reference_image=photo("Colin_Powell", 3))
    assert not refused.match and refused.rejection is not None
    with pytest.raises(InvalidRequestError):
        engine.verify(photo("Colin_Powell", 2))  # no reference at all


def test_reindex_to_another_model_keeps_identities(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = ("Colin_Powell", "Tony_Blair", "Gray_Davis", "Hugo_Chavez")
    engine = open_engine(server_settings(data_dir))
    engine.create_gallery("g")
    for name in people:
        enroll(engine, "g", name, photo(name, 1))
    engine.create_gallery("arc")
    enroll(engine, "arc", "colin", photo("Colin_Powell", 1))
    reindexed = engine.reindex("g", MOBILEFACENET)
    assert reindexed.model.dim == 512 and reindexed.model.name != engine.model.name
    # This engine was started with ArcFace and now serves "g" with MobileFaceNet beside it.
    for name in people:
        top = engine.identify("g", photo(name, 2), threshold=-1.0).faces[0].candidates[0]
        assert top.external_id == name
    assert {m.sha256 for m in engine._core.recognizers.loaded()} == {
        engine.model.sha256,
        reindexed.model.sha256,
    }
    engine.close()

    # No model directory holds the ArcFace graph "arc" is bound to (its float32 rewrite,
    # in the default cache otherwise).
    monkeypatch.setenv("FACEDB_MODEL_DIR", str(data_dir.parent / "no-models"))
    mobile = open_engine(server_settings(data_dir, recognizer=MOBILEFACENET))
    try:
        assert mobile.get_gallery("g").identity_count == len(people)
        for name in people:
            top = mobile.identify("g", photo(name, 2), threshold=-1.0).faces[0].candidates[0]
            assert top.external_id == name
        # A gallery of a model with no file in the model directories is refused, with
        # what to do; and so is creating one of another model.
        with pytest.raises(FailedPreconditionError, match="FACEDB_MODEL_DIR"):
            mobile.identify("arc", photo("Colin_Powell", 2))
        with pytest.raises(FailedPreconditionError):
            mobile.create_gallery("arc2", embedding_model="ARCFACE_MNET")
    finally:
        mobile.close()


def test_a_target_rate_without_a_calibration_is_a_failed_precondition(data_dir: Path) -> None:
    engine = open_engine(server_settings(data_dir, recognizer=MOBILEFACENET))
    try:
        engine.create_gallery("m")
        with pytest.raises(FailedPreconditionError, match="calibrat"):
            engine.identify("m", photo("Colin_Powell", 1), target_fpir=0.01)
        with pytest.raises(FailedPreconditionError, match="calibrat"):
            engine.verify(
                photo("Colin_Powell", 1), reference_image=photo("Colin_Powell", 2), target_far=1e-3
            )
    finally:
        engine.close()


class StageRecorder:
    """An observer that keeps the name of every stage the engine ran."""

    def __init__(self) -> None:
        self.stages: list[str] = []

    def stage(self, name: str, seconds: float) -> None:
        self.stages.append(name)

    def rejection(self, reason: str) -> None:
        pass


def test_verify_against_an_identity_compares_its_own_faces_without_a_search(
    engine: Engine,
) -> None:
    enroll(engine, "g", "colin", photo("Colin_Powell", 1), photo("Colin_Powell", 2))
    for name in ("Tony_Blair", "Gray_Davis", "Hugo_Chavez"):
        enroll(engine, "g", name, photo(name, 1))
    recorder = StageRecorder()
    engine.observe(recorder)
    probe = photo("Colin_Powell", 3)
    result = engine.verify(probe, gallery="g", external_id="colin")
    # A gallery search costs what the gallery holds (k = its size); the identity's own
    # stored faces are all a 1:1 decision needs.
    assert "search" not in recorder.stages and "embed" in recorder.stages
    pairs = [engine.verify(probe, reference_image=photo("Colin_Powell", n)) for n in (1, 2)]
    face_ids = engine.get_identity("g", "colin").face_ids
    best = max(range(2), key=lambda i: pairs[i].score)
    assert result.reference_face_id == face_ids[best]
    assert result.score == pytest.approx(pairs[best].score, abs=1e-5)
    assert result.match and result.threshold == engine.get_gallery("g").thresholds.verify
    impostor = engine.verify(photo("Tony_Blair", 2), gallery="g", external_id="colin")
    assert not impostor.match and impostor.reference_face_id in face_ids


def test_reindex_without_a_recognizer_rebuilds_the_index_in_place(engine: Engine) -> None:
    enroll(engine, "g", "colin", photo("Colin_Powell", 1))
    rebuilt = engine.reindex("g", kind="hnsw")
    assert rebuilt.model == engine.model and rebuilt.face_count == 1
    (stats,) = engine.catalog.stats()["galleries"]
    assert stats["index_kind"] == "hnsw"
    top = engine.identify("g", photo("Colin_Powell", 2)).faces[0].candidates[0]
    assert top.external_id == "colin"
