"""OCCLUDED and EYES_CLOSED on real LFW photos.

No real parsing, XSeg or 2D106 weights exist here, so each gate runs on the real photo and
the real detector with a built graph whose output the test constructs: a parser / XSeg
model that calls dark pixels "not face" (a black bar drawn over the eyes or mouth of the
real photo is then an occluder, the untouched photo is not), and 2D106 graphs whose 106
points have open or closed eyes.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedb.vision.align import align_face
from facedb.vision.analysis.landmarks106 import Landmark106Model
from facedb.vision.analysis.parsing import CLASS_INDEX, BiSeNetModel
from facedb.vision.analysis.signals import SignalModels
from facedb.vision.analysis.xseg import XSegModel
from facedb.vision.gates import FaceGates, GatePolicy, Reason
from tests.vision.analysis.graphs import (
    bright_is_face_graph,
    constant_graph,
    dark_is_class_graph,
    face_layout_106,
)
from tests.vision.analysis.support import load, main_face

PERSON = ("Colin_Powell", 1)
POLICY = GatePolicy(require_liveness=False)
# The built parser has no eye class (it only knows dark and skin), so its eye openness is 0
# on every photo: the occlusion test turns the eye check off to look at occlusion alone.
OCCLUSION_POLICY = GatePolicy(require_liveness=False, min_eye_openness=0.0)


@pytest.fixture(scope="module")
def parser(tmp_path_factory) -> BiSeNetModel:
    path = tmp_path_factory.mktemp("g") / "dark_glasses.onnx"
    return BiSeNetModel.from_spec(f"bisenet:{dark_is_class_graph(path, CLASS_INDEX['eyeglasses'])}")


@pytest.fixture(scope="module")
def xseg(tmp_path_factory) -> XSegModel:
    path = tmp_path_factory.mktemp("g") / "bright_face.onnx"
    return XSegModel.from_spec(f"xseg:{bright_is_face_graph(path)}")


def covered(image: np.ndarray, region: str) -> np.ndarray:
    """The photo with a dark bar over the eyes (sunglasses) or the mouth (a mask)."""
    face = main_face(image)
    points = face.landmarks
    iod = float(np.linalg.norm(points[1] - points[0]))
    centres = points[:2] if region == "eyes" else points[3:5]
    x1, y1 = (centres.min(axis=0) - 0.35 * iod).astype(int)
    x2, y2 = (centres.max(axis=0) + 0.35 * iod).astype(int)
    painted = image.copy()
    cv2.rectangle(painted, (x1, y1), (x2, y2), (20, 20, 20), -1)  # dark, not clipped black
    return painted


def assess(gates: FaceGates, image: np.ndarray, policy: GatePolicy = POLICY):
    face = main_face(image)
    return gates.assess(image, face, align_face(image, face.landmarks), policy)


@pytest.mark.parametrize("source", ["parsing", "xseg"])
def test_occluded_refuses_covered_eyes_and_mouth_and_accepts_the_photo(
    source, parser, xseg
) -> None:
    models = SignalModels(parsing=parser) if source == "parsing" else SignalModels(xseg=xseg)
    gates = FaceGates(signals=models)
    image, _ = load(*PERSON)

    clear = assess(gates, image, OCCLUSION_POLICY)
    assert clear.accepted, clear.rejection
    assert clear.signals is not None and clear.signals.max_occlusion < 0.3

    for region in ("eyes", "mouth"):
        verdict = assess(gates, covered(image, region), OCCLUSION_POLICY)
        assert verdict.rejection is not None and verdict.rejection.reason is Reason.OCCLUDED
        assert verdict.rejection.value > 0.9 and verdict.rejection.threshold == 0.5
        assert f"covered at the {region}" in verdict.rejection.message
        if source == "parsing" and region == "eyes":
            assert verdict.signals.sunglasses and verdict.signals.glasses
    mask_like = assess(gates, covered(image, "mouth"), OCCLUSION_POLICY).signals
    assert mask_like.occlusion["eyes"] < 0.5 and mask_like.occlusion["mouth"] > 0.9


@pytest.fixture(scope="module")
def landmark_models(tmp_path_factory) -> dict[str, Landmark106Model]:
    folder = tmp_path_factory.mktemp("lm")
    models = {}
    for state, aspect in (("open", 0.4), ("closed", 0.03)):
        path = constant_graph(
            folder / f"{state}.onnx", ["N", 3, 192, 192], [face_layout_106(aspect)]
        )
        models[state] = Landmark106Model.from_spec(f"landmark106:{path}")
    return models


def test_eyes_closed_refuses_closed_and_accepts_open_eyes(landmark_models) -> None:
    image, _ = load(*PERSON)
    open_verdict = assess(FaceGates(signals=SignalModels(landmarks=landmark_models["open"])), image)
    assert open_verdict.accepted, open_verdict.rejection
    assert open_verdict.signals.eyes_open and open_verdict.signals.eye_openness == pytest.approx(
        0.4, abs=0.02
    )

    closed = assess(FaceGates(signals=SignalModels(landmarks=landmark_models["closed"])), image)
    assert closed.rejection is not None and closed.rejection.reason is Reason.EYES_CLOSED
    assert closed.rejection.value == pytest.approx(0.03, abs=0.01)
    assert closed.rejection.threshold == pytest.approx(0.12)
    assert "eyes look closed" in closed.rejection.message
    # The 106-point pose replaces the 5-point one in the quality report: the layout is frontal.
    assert abs(closed.quality.yaw) < 1.0 and abs(closed.quality.roll) < 1.0


def test_gates_without_analysis_models_do_not_check_them(landmark_models) -> None:
    image, _ = load(*PERSON)
    plain = assess(FaceGates(), image)
    assert plain.accepted and plain.signals is None
    off = GatePolicy.none()
    gates = FaceGates(signals=SignalModels(landmarks=landmark_models["closed"]))
    face = main_face(image)
    assert gates.assess(image, face, align_face(image, face.landmarks), off).accepted
    assert GatePolicy.from_dict({"max_occlusion": 0.3}).max_occlusion == 0.3
