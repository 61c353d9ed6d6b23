"""Quality signals: landmark head pose, sharpness, exposure, and the learned FIQA score."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facedb.vision.align import ARCFACE_TEMPLATE, align_face
from facedb.vision.detect import load_detector
from facedb.vision.image import decode_image
from facedb.vision.quality import (
    FiqaModel,
    exposure,
    head_pose,
    inter_ocular_distance,
    measure_quality,
    sharpness,
)
from facedb.vision.types import Face
from tests.paths import EDGE, LFW, MODELS, SCRFD

FIQA = f"fiqa:{MODELS / 'face_quality_fiqa.onnx'}"
TEMPLATE = ARCFACE_TEMPLATE.astype(np.float32)


def _rotated(points: np.ndarray, degrees: float) -> np.ndarray:
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = points.mean(axis=0)
    return (points - centre) @ rotation.T + centre


def test_template_face_is_frontal() -> None:
    pose = head_pose(TEMPLATE)
    assert abs(pose.yaw) < 1.5 and abs(pose.pitch) < 0.5 and abs(pose.roll) < 0.5


def test_roll_follows_the_eye_line_and_leaves_yaw_and_pitch_alone() -> None:
    pose = head_pose(_rotated(TEMPLATE * 3, 25.0))
    assert pose.roll == pytest.approx(25.0 + head_pose(TEMPLATE).roll, abs=0.01)
    assert pose.yaw == pytest.approx(head_pose(TEMPLATE).yaw, abs=0.01)
    assert pose.pitch == pytest.approx(head_pose(TEMPLATE).pitch, abs=0.01)


def test_yaw_sign_and_size_from_the_nose_offset() -> None:
    points = TEMPLATE.copy()
    eyes_x = (points[0, 0] + points[1, 0]) / 2
    mouth_x = (points[3, 0] + points[4, 0]) / 2
    iod = points[1, 0] - points[0, 0]
    # nose half an inter-ocular distance right of the midline → 45° (nose depth 0.5 IOD)
    points[2, 0] = (eyes_x + mouth_x) / 2 + 0.5 * iod
    assert head_pose(points).yaw == pytest.approx(45.0, abs=1.0)
    points[2, 0] = (eyes_x + mouth_x) / 2 - 0.25 * iod
    assert head_pose(points).yaw == pytest.approx(-math.degrees(math.atan(0.5)), abs=1.0)


def test_pitch_is_positive_when_the_nose_rises_towards_the_eyes() -> None:
    up, down = TEMPLATE.copy(), TEMPLATE.copy()
    up[2, 1] -= 10
    down[2, 1] += 10
    assert head_pose(up).pitch > 20 and head_pose(down).pitch < -20


def test_inter_ocular_distance_is_the_eye_to_eye_length() -> None:
    assert inter_ocular_distance(TEMPLATE) == pytest.approx(35.24, abs=0.01)


@pytest.fixture(scope="module")
def lfw_face() -> tuple[np.ndarray, Face, np.ndarray]:
    image = decode_image(LFW / "images" / "Albert_Costa" / "Albert_Costa_0006.jpg")
    face = max(load_detector(SCRFD).detect(image), key=lambda f: f.area)
    return image, face, align_face(image, face.landmarks)


def test_sharpness_drops_with_blur(lfw_face) -> None:
    _, _, aligned = lfw_face
    sharp = sharpness(aligned)
    assert sharp > 50
    assert sharpness(cv2.GaussianBlur(aligned, (0, 0), 2.0)) < sharp / 5


def test_black_fill_outside_the_inner_face_does_not_count(lfw_face) -> None:
    # a face at the image border gets black fill from the warp: a hard, "sharp" edge
    _, _, aligned = lfw_face
    soft = cv2.GaussianBlur(aligned, (0, 0), 3.0)
    filled = soft.copy()
    filled[:, :20] = 0
    filled[:, -20:] = 0
    assert sharpness(filled) == pytest.approx(sharpness(soft), rel=0.05)
    assert exposure(filled)[1] == exposure(soft)[1]


def test_exposure_brightness_and_clipping(lfw_face) -> None:
    _, _, aligned = lfw_face
    brightness, clipped = exposure(aligned)
    assert 60 < brightness < 200 and clipped < 0.05
    dark_brightness, dark_clipped = exposure((aligned * 0.03).astype(np.uint8))
    assert dark_brightness < 10 and dark_clipped > 0.5
    assert exposure(np.full_like(aligned, 255)) == (255.0, 1.0)


def test_measure_quality_reports_every_named_signal(lfw_face) -> None:
    _, face, aligned = lfw_face
    report = measure_quality(face, aligned, learned_quality=0.7)
    assert report.face_width == pytest.approx(face.width)
    assert report.face_size == min(face.width, face.height)
    assert report.detection_score == pytest.approx(face.score)
    assert abs(report.yaw) < 30 and abs(report.roll) < 15
    values = report.to_dict()
    assert set(values) >= {"inter_ocular", "sharpness", "yaw", "pitch", "roll", "brightness"}
    assert values["learned_quality"] == 0.7 and values["clipped_fraction"] is not None


def test_fiqa_scores_a_sharp_face_above_its_blurred_and_low_resolution_copies(lfw_face) -> None:
    model = FiqaModel.from_spec(FIQA)
    assert model.input_hw == (112, 112)
    _, _, aligned = lfw_face
    blurred = cv2.GaussianBlur(aligned, (0, 0), 3.0)
    low_res = cv2.resize(cv2.resize(aligned, (16, 16)), (112, 112))
    scores = model.scores([aligned, blurred, low_res])
    assert scores.shape == (3,)
    assert scores[0] > 0.5 and scores[1] < scores[0] - 0.3 and scores[2] < scores[0] - 0.3
    assert model.scores([]).shape == (0,)


def test_tiny_faces_measure_far_below_lfw_faces(lfw_face) -> None:
    detector = load_detector(SCRFD)
    tiny = decode_image(EDGE / "tiny_face" / "skimage_lfw_subset_25px" / "face_008.png")
    faces = detector.detect(tiny)
    assert len(faces) == 1  # a 25x25 crop the detector still finds
    _, lfw, _ = lfw_face
    assert inter_ocular_distance(faces[0].landmarks) < 15 < inter_ocular_distance(lfw.landmarks)
