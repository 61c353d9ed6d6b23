"""The shared detector rules: canvas planning, placement, NMS, face selection, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from facedb.vision.detect import DetectorConfig, detector_class
from facedb.vision.detect.base import as_bgr, largest, nms, place_image, plan_canvas
from facedb.vision.types import Face


def face(box: list[float], score: float) -> Face:
    return Face(np.array(box, np.float32), score, np.zeros((5, 2), np.float32))


def test_small_image_on_a_dynamic_model_keeps_its_scale_and_a_small_canvas() -> None:
    assert plan_canvas((250, 250), None, DetectorConfig()) == ((256, 256), 1.0)
    assert plan_canvas((60, 100), None, DetectorConfig()) == ((64, 128), 1.0)


def test_upscale_restores_the_classic_full_canvas() -> None:
    canvas, scale = plan_canvas((250, 250), None, DetectorConfig(upscale=True))
    assert canvas == (640, 640) and scale == pytest.approx(2.56)


def test_large_image_is_shrunk_to_the_canvas() -> None:
    canvas, scale = plan_canvas((1588, 2280), None, DetectorConfig())
    assert scale == pytest.approx(640 / 2280)
    assert canvas == (448, 640)  # 446 rows rounded up to a multiple of 32


def test_fixed_model_size_wins_over_input_size() -> None:
    config = DetectorConfig(input_size=(320, 320))
    assert plan_canvas((250, 250), (640, 640), config) == ((640, 640), 1.0)
    assert plan_canvas((250, 250), None, config) == ((256, 256), 1.0)
    assert plan_canvas((1000, 500), None, config) == ((320, 160), 0.32)


def test_letterbox_centres_on_grey_and_maps_back() -> None:
    image = np.full((60, 100, 3), 200, np.uint8)
    canvas, placement = place_image(image, (640, 640), 1.0, "centre", 114)
    assert canvas[0, 0, 0] == 114 and canvas[290, 270, 0] == 200 and canvas[289, 270, 0] == 114
    point = placement.to_original(np.array([[270.0, 290.0]], np.float32))
    np.testing.assert_allclose(point, [[0, 0]])


def test_top_left_placement_with_scale() -> None:
    image = np.full((500, 1000, 3), 50, np.uint8)
    canvas, placement = place_image(image, (320, 640), 0.64, "top_left", 0)
    assert canvas[:320, :640].mean() == 50 and placement.offset_x == 0
    np.testing.assert_allclose(
        placement.to_original(np.array([[64.0, 32.0]], np.float32)), [[100, 50]], atol=1e-4
    )


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    scores = np.array([0.7, 0.9, 0.8, 0.6])
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
    assert nms(boxes, scores, 1.0).tolist() == [1, 2, 0, 3]  # IoU 1.0 <= 1.0 survives


def test_max_faces_keeps_the_largest_best_score_first() -> None:
    faces = [face([0, 0, 10, 10], 0.9), face([0, 0, 50, 50], 0.6), face([0, 0, 30, 30], 0.8)]
    assert [f.score for f in largest(faces, 2)] == [0.8, 0.6]
    assert largest(faces, 0) == faces


def test_as_bgr_accepts_grey_and_bgra_and_refuses_the_rest() -> None:
    assert as_bgr(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert as_bgr(np.zeros((5, 6, 4), np.uint8)).shape == (5, 6, 3)
    with pytest.raises(ValueError, match="uint8"):
        as_bgr(np.zeros((5, 6, 3), np.float32))
    with pytest.raises(ValueError, match="BGR"):
        as_bgr(np.zeros((5, 6, 2), np.uint8))


def test_every_detector_family_has_a_class() -> None:
    for family in ("retinaface", "scrfd", "yolov5face", "yolov8face", "yunet"):
        assert detector_class(family).family == family
    with pytest.raises(ValueError, match="not a detector family"):
        detector_class("arcface")


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="nms_threshold"):
        DetectorConfig(nms_threshold=0.0)
    with pytest.raises(ValueError, match="max_faces"):
        DetectorConfig(max_faces=-1)
    with pytest.raises(ValueError, match="input_size"):
        DetectorConfig(input_size=(0, 640))
