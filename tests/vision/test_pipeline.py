"""FacePipeline on real photos: face selection, refusals, and gates that stop embedding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import cv2
import numpy as np
import pytest

from facedb.models import resolve_model
from facedb.vision.detect import load_detector
from facedb.vision.embed import MobileFaceEmbedder
from facedb.vision.gates import FaceGates, GatePolicy, Reason, Rejection
from facedb.vision.image import decode_image
from facedb.vision.pipeline import FacePipeline, select_faces
from facedb.vision.types import Face
from tests.paths import ARCFACE, EDGE, LFW, MODELS, SCRFD

RELU6 = f"mobileface:{MODELS / 'mobilefacenet128_relu6.onnx'}"


class CountingEmbedder(MobileFaceEmbedder):
    """A real recognizer (a fast dynamic-batch one), recording the crops of each call."""

    def __init__(self) -> None:
        super().__init__(resolve_model(RELU6))
        self.calls: list[int] = []

    def embed(self, crops: np.ndarray) -> np.ndarray:
        self.calls.append(len(crops))
        return super().embed(crops)


@dataclass(frozen=True)
class Verdict:
    rejection: Rejection | None


class RejectFaces:
    """Gates that refuse the faces whose index is listed (all of them by default)."""

    def __init__(self, refused: set[int] | None = None) -> None:
        self.refused = refused
        self.seen: list[tuple[int, tuple[int, ...], object]] = []

    def assess_batch(
        self, image: np.ndarray, faces: Sequence[Face], aligned: np.ndarray, policy: object
    ) -> list[Verdict]:
        self.seen.append((len(faces), aligned.shape, policy))
        refused = set(range(len(faces))) if self.refused is None else self.refused
        blurry = Rejection(Reason.BLURRY, 1.0, 50.0, "too blurry")
        return [Verdict(blurry if i in refused else None) for i in range(len(faces))]


@pytest.fixture(scope="module")
def detector():
    return load_detector(SCRFD)


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture(scope="module")
def two_people() -> np.ndarray:
    return cv2.imread(str(EDGE / "group" / "fr_two_people.jpg"))


def test_all_faces_are_embedded_in_one_batch(detector, embedder, two_people) -> None:
    analysis = FacePipeline(detector, embedder).analyze(two_people)
    assert analysis.rejection is None
    assert analysis.image_size == (two_people.shape[1], two_people.shape[0])
    assert len(analysis.faces) == 2 and embedder.calls == [2]
    first, second = (f.embedding for f in analysis.faces)
    assert first.shape == (128,) and abs(np.linalg.norm(first) - 1) < 1e-5
    assert float(first @ second) < 0.4  # two different people
    assert all(f.aligned.shape == (112, 112, 3) and f.rejection is None for f in analysis.faces)
    assert analysis.embeddings.shape == (2, 128)


def test_single_refuses_two_faces(detector, embedder, two_people) -> None:
    analysis = FacePipeline(detector, embedder).analyze(two_people, select="single")
    assert analysis.rejection is not None
    assert analysis.rejection.reason is Reason.MULTIPLE_FACES
    assert analysis.rejection.value == 2
    assert len(analysis.faces) == 2 and all(f.embedding is None for f in analysis.faces)
    assert embedder.calls == []


def test_largest_picks_the_biggest_box(detector, embedder, two_people) -> None:
    everything = detector.detect(two_people)
    analysis = FacePipeline(detector, embedder).analyze(two_people, select="largest")
    assert analysis.rejection is None and len(analysis.faces) == 1
    assert analysis.faces[0].face.area == max(f.area for f in everything)
    assert embedder.calls == [1]


def test_single_face_is_embedded_like_embed_aligned(detector, embedder) -> None:
    image = cv2.imread(str(LFW / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg"))
    pipeline = FacePipeline(detector, embedder)
    analysis = pipeline.analyze(image, select="single")
    (face,) = analysis.accepted
    again = pipeline.embed_aligned(face.aligned[None])[0]
    np.testing.assert_allclose(face.embedding, again, atol=1e-5)


def test_no_face_is_an_outcome(detector, embedder) -> None:
    image = cv2.imread(str(EDGE / "no_face" / "skimage_coffee.png"))
    for select in ("all", "largest", "single"):
        analysis = FacePipeline(detector, embedder).analyze(image, select=select)
        assert analysis.rejection is not None and analysis.rejection.reason is Reason.NO_FACE
        assert analysis.faces == []
    assert embedder.calls == []


def test_rejected_faces_never_reach_the_embedder(detector, embedder, two_people) -> None:
    gates = RejectFaces()
    analysis = FacePipeline(detector, embedder, gates).analyze(two_people, policy="enrol")
    assert embedder.calls == []
    assert gates.seen == [(2, (2, 112, 112, 3), "enrol")]
    assert all(f.embedding is None for f in analysis.faces)
    assert all(f.rejection.reason is Reason.BLURRY for f in analysis.faces)
    assert analysis.rejection is not None and analysis.rejection.reason is Reason.BLURRY


def test_only_accepted_faces_are_embedded(detector, embedder, two_people) -> None:
    gates = RejectFaces(refused={0})
    analysis = FacePipeline(detector, embedder, gates).analyze(two_people, policy="search")
    assert embedder.calls == [1]
    refused, accepted = analysis.faces
    assert refused.embedding is None and refused.rejection.reason is Reason.BLURRY
    assert accepted.embedding is not None and accepted.rejection is None
    assert analysis.rejection is None and len(analysis.accepted) == 1


def test_gates_run_only_with_a_policy(detector, embedder, two_people) -> None:
    gates = RejectFaces()
    analysis = FacePipeline(detector, embedder, gates).analyze(two_people)
    assert gates.seen == [] and embedder.calls == [2]
    assert all(f.assessment is None for f in analysis.faces)


def test_from_specs_and_bad_selection(two_people) -> None:
    pipeline = FacePipeline.from_specs(SCRFD, ARCFACE, flip=True)
    assert pipeline.embedder.flip and pipeline.embedder.dim == 512
    with pytest.raises(ValueError, match="select"):
        pipeline.analyze(two_people, select="best")  # type: ignore[arg-type]


def test_real_gates_refuse_a_blurred_face_before_embedding(detector, embedder) -> None:
    from dataclasses import replace

    from facedb.vision.gates import FaceGates, GatePolicy

    policy = replace(GatePolicy.enrollment(), require_liveness=False)  # no liveness model here
    pipeline = FacePipeline(detector, embedder, FaceGates())
    blurred = cv2.imread(str(EDGE / "blurred" / "derived_astronaut_gaussian_r4.png"))
    refused = pipeline.analyze(blurred, policy=policy, select="single")
    assert refused.rejection is not None and refused.rejection.reason is Reason.BLURRY
    assert embedder.calls == []
    sharp = cv2.imread(str(LFW / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg"))
    accepted = pipeline.analyze(sharp, policy=policy, select="single")
    assert accepted.rejection is None and embedder.calls == [1]
    assert accepted.faces[0].assessment.quality is not None


def _square_face(x: float, side: float) -> Face:
    box = np.array([x, 0.0, x + side, side], np.float32)
    return Face(box=box, score=0.9, landmarks=np.zeros((5, 2), np.float32))


def test_single_ignores_bystanders_but_not_a_second_main_face() -> None:
    main, bystander, rival = _square_face(0, 100), _square_face(200, 40), _square_face(400, 80)
    chosen, rejection = select_faces([bystander, main], "single")
    assert rejection is None and chosen == [main]
    _, rejection = select_faces([bystander, main, rival], "single")
    assert rejection is not None and rejection.reason is Reason.MULTIPLE_FACES
    assert rejection.value == 2.0  # the main face and its rival; the bystander is not counted


class StageLog:
    """A stage hook that records each step and refuses to start the one named `stop`."""

    def __init__(self, stop: str = "") -> None:
        self.stop = stop
        self.names: list[str] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if name == self.stop:
            raise TimeoutError(f"not starting {name}")
        self.names.append(name)
        yield


def test_every_step_runs_inside_the_stage_hook(detector, embedder, two_people) -> None:
    stages = StageLog()
    pipeline = FacePipeline(detector, embedder, RejectFaces(refused={0}), stage=stages)
    pipeline.analyze(two_people, policy="search")
    assert stages.names == ["detect", "align", "gates", "embed"]
    pipeline.embed_aligned(np.zeros((1, 112, 112, 3), np.uint8))
    assert stages.names[-1] == "embed"


def test_a_stage_hook_that_raises_stops_the_analysis(detector, embedder, two_people) -> None:
    pipeline = FacePipeline(detector, embedder).with_stage(StageLog(stop="embed"))
    with pytest.raises(TimeoutError, match="embed"):
        pipeline.analyze(two_people)
    assert embedder.calls == []  # the recognizer never ran


# A clear main face with partial / tiny / badly lit faces beside it: each of those fails the
# enrollment gates on its own, so the photo is not ambiguous (issue: press photos refused).
BYSTANDER_PHOTOS = ["Bashar_Assad/Bashar_Assad_0004.jpg", "Joseph_Biden/Joseph_Biden_0002.jpg"]
TWO_GOOD_FACES = "Robin_Cook/Robin_Cook_0002.jpg"


@pytest.fixture(scope="module")
def gated_pipeline() -> tuple[FacePipeline, GatePolicy]:
    pipeline = FacePipeline.from_specs(SCRFD, ARCFACE, threads=1, gates=FaceGates())
    return pipeline, replace(GatePolicy.enrollment(), require_liveness=False)


@pytest.mark.parametrize("name", BYSTANDER_PHOTOS)
def test_single_enrolls_the_main_face_when_the_others_fail_the_gates(gated_pipeline, name) -> None:
    pipeline, policy = gated_pipeline
    image = decode_image(LFW / "images" / name)
    detected = pipeline.detector.detect(image)
    _, plain = select_faces(detected, "single")
    assert plain is not None and plain.reason is Reason.MULTIPLE_FACES  # by size alone
    analysis = pipeline.analyze(image, policy=policy, select="single")
    assert analysis.rejection is None and len(analysis.accepted) == 1
    chosen = analysis.accepted[0].face
    assert chosen.area == max(f.area for f in detected)  # the main face, not a bystander
    # LFW photos are centred on their subject.
    centre_x = (chosen.box[0] + chosen.box[2]) / 2
    assert abs(centre_x - image.shape[1] / 2) < image.shape[1] / 8


def test_single_still_refuses_two_faces_that_both_pass(gated_pipeline) -> None:
    pipeline, policy = gated_pipeline
    analysis = pipeline.analyze(
        decode_image(LFW / "images" / TWO_GOOD_FACES), policy=policy, select="single"
    )
    assert analysis.rejection is not None and analysis.rejection.reason is Reason.MULTIPLE_FACES
    assert analysis.rejection.value == 2.0 and analysis.accepted == []
