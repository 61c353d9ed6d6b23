"""MiniFASNet liveness: the border-shift crop, model loading, batching, fusion, real spoofs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from facedb.models import ModelSpec
from facedb.vision.detect import load_detector
from facedb.vision.image import decode_image
from facedb.vision.liveness import (
    LivenessChecker,
    LivenessModel,
    crop_scale_for,
    liveness_crop_box,
    softmax,
)
from facedb.vision.types import Face
from tests.paths import DATA, MODELS, SCRFD, SPOOF

V2 = f"minifasnet:{MODELS / 'minifasnet_v2.onnx'}"
V1SE = f"minifasnet:{MODELS / 'minifasnet_v1se.onnx'}"
FULL_FRAME_SOURCES = {"silent_face", "silent_face_history", "doubango"}
VGA_HW = (480, 640)


def _box(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    return np.array([x1, y1, x2, y2], dtype=np.float32)


@pytest.mark.parametrize(
    ("box", "scale", "expected"),
    [
        # MODEL_FACTS §5.2 worked examples (640x480): inside the image nothing moves ...
        ((200, 150, 300, 280), 2.7, (115, 39, 385, 390)),
        # ... near the top-left corner the 270x351 box is shifted inside, not clipped
        ((20, 30, 120, 160), 2.7, (0, 0, 270, 351)),
        # V1SE's 4.0 is lowered to (480-1)/130 = 3.68 and the box shifted down to y=0
        ((200, 150, 300, 280), 4.0, (65, 0, 434, 479)),
    ],
)
def test_crop_box_matches_the_original_silent_face_rule(
    box: tuple[int, ...], scale: float, expected: tuple[int, ...]
) -> None:
    assert liveness_crop_box(_box(*box), VGA_HW, scale) == expected


@pytest.mark.parametrize("box", [(0, 0, 90, 120), (560, 380, 640, 480), (600, 10, 700, 140)])
def test_crop_box_near_borders_keeps_its_size_inside_the_image(box: tuple[int, ...]) -> None:
    x1, y1, x2, y2 = liveness_crop_box(_box(*box), VGA_HW, 2.7)
    assert 0 <= x1 < x2 <= 639 and 0 <= y1 < y2 <= 479
    w, h = int(box[2] - box[0]), int(box[3] - box[1])
    # the size is the enlarged size (up to int truncation), never cut by the border
    assert abs((x2 - x1) - w * 2.7) <= 1.0 and abs((y2 - y1) - h * 2.7) <= 1.0


def test_softmax_rows_are_probabilities_even_for_huge_logits() -> None:
    probs = softmax(np.array([[1000.0, 1001.0, 999.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert probs[0].argmax() == 1 and np.allclose(probs[1], 1 / 3)


def test_crop_scale_from_options_then_variant_name_then_default() -> None:
    v2_path, v1se_path = MODELS / "minifasnet_v2.onnx", MODELS / "minifasnet_v1se.onnx"
    assert crop_scale_for(ModelSpec("minifasnet", v1se_path, "minifasnet_v1se")) == 4.0
    assert crop_scale_for(ModelSpec("minifasnet", v2_path, "minifasnet_v2")) == 2.7
    named = ModelSpec("minifasnet", v2_path, "4_0_0_80x80_MiniFASNetV1SE")
    assert crop_scale_for(named) == 4.0
    override = ModelSpec("minifasnet", v1se_path, "minifasnet_v1se", options={"crop_scale": "3"})
    assert crop_scale_for(override) == 3.0
    anonymous = ModelSpec("minifasnet", Path("/m/fas.onnx"), "fas")
    assert crop_scale_for(anonymous) == 2.7


def test_model_reads_its_input_size_and_refuses_other_families() -> None:
    model = LivenessModel.from_spec(V1SE)
    assert model.input_hw == (80, 80) and model.crop_scale == 4.0
    with pytest.raises(ValueError, match="minifasnet"):
        LivenessModel.from_spec(f"fiqa:{MODELS / 'face_quality_fiqa.onnx'}")


@pytest.fixture(scope="module")
def checker() -> LivenessChecker:
    return LivenessChecker.from_specs([V2, V1SE])


@pytest.fixture(scope="module")
def detector():
    return load_detector(SCRFD)


def _spoof_rows() -> list[dict[str, str]]:
    with open(SPOOF / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _largest_face(detector, image: np.ndarray) -> Face:
    faces = detector.detect(image)
    assert faces, "the detector should find the face"
    return max(faces, key=lambda f: f.area)


def test_one_batch_gives_the_same_scores_as_one_face_at_a_time(checker, detector) -> None:
    live = decode_image(SPOOF / "live" / "silentface_T1.jpg")
    fake = decode_image(SPOOF / "fake" / "silentface_F2_screen.jpg")
    # both photos are 480x640 after EXIF rotation: put them side by side as one image
    image = np.hstack([live, fake])
    faces = detector.detect(image)
    assert len(faces) == 2
    batched = checker.models[0].live_scores(image, faces)
    single = [checker.models[0].live_scores(image, [f])[0] for f in faces]
    assert np.allclose(batched, single, atol=1e-5)
    assert checker.models[0].live_scores(image, []).shape == (0,)


def test_fusion_is_the_mean_of_the_two_models(checker, detector) -> None:
    image = decode_image(SPOOF / "fake" / "silentface_F1_print.jpg")
    face = _largest_face(detector, image)
    per_model = checker.per_model(image, [face])
    assert per_model.shape == (2, 1)
    # on this print attack the models disagree (V2 is sure it is fake, V1SE is not)
    assert per_model[0, 0] < 0.1 and per_model[1, 0] > 0.4
    assert checker.scores(image, [face])[0] == pytest.approx(per_model[:, 0].mean())
    assert checker.scores(image, [face])[0] < 0.5


def test_full_frame_spoof_samples_are_separated_at_one_half(checker, detector) -> None:
    rows = [r for r in _spoof_rows() if r["source"] in FULL_FRAME_SOURCES]
    assert {r["label"] for r in rows} == {"live", "fake"}
    for row in rows:
        image = decode_image(DATA / row["path"])  # EXIF orientation honoured
        score = checker.scores(image, [_largest_face(detector, image)])[0]
        if row["label"] == "live":
            assert score >= 0.5, row["path"]
        else:
            assert score < 0.5, row["path"]
