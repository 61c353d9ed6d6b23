"""Derived signals on constructed landmarks and masks: openness, pose, occlusion, accessories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facedb.vision.analysis.landmarks106 import Landmarks106
from facedb.vision.analysis.parsing import CLASS_INDEX, ParsingMask
from facedb.vision.analysis.signals import (
    SignalReadings,
    derive_signals,
    eye_openness_106,
    head_pose_106,
    mouth_openness_106,
    parsing_eye_openness,
    parsing_mouth_openness,
    principal_extent_ratio,
    xseg_occlusion,
)
from facedb.vision.analysis.xseg import XSegMask
from facedb.vision.types import Face
from tests.vision.analysis.graphs import face_layout_106


def layout(eye_aspect: float = 0.4, nose_shift: float = 0.0, roll_deg: float = 0.0) -> Landmarks106:
    """The test layout in pixels (x 100 + 200), optionally with the nose moved sideways
    (a turned head) and the whole face rotated in the image plane."""
    points = face_layout_106(eye_aspect).reshape(106, 2).copy()
    points[72:87, 0] += nose_shift
    angle = math.radians(roll_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return Landmarks106((points @ rotation.T * 100 + 200).astype(np.float32))


def test_principal_extent_ratio_needs_no_point_order() -> None:
    ring = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ellipse = np.stack([3 * np.cos(ring), np.sin(ring)], axis=1)
    shuffled = ellipse[np.random.default_rng(1).permutation(12)]
    assert principal_extent_ratio(shuffled) == pytest.approx(1 / 3, abs=0.02)
    assert principal_extent_ratio(np.zeros((5, 2))) == 0.0


def test_eye_and_mouth_openness_from_106_points() -> None:
    assert eye_openness_106(layout(0.4)) == pytest.approx(0.4, abs=0.02)
    assert eye_openness_106(layout(0.03, roll_deg=25)) == pytest.approx(0.03, abs=0.01)
    assert mouth_openness_106(layout()) == pytest.approx(0.05 / 0.16, abs=0.02)


def test_head_pose_from_106_points() -> None:
    frontal = head_pose_106(layout())
    assert abs(frontal.yaw) < 1 and abs(frontal.roll) < 1
    turned = head_pose_106(layout(nose_shift=0.3))  # nose halfway to the cheek edge (0.6)
    assert turned.yaw == pytest.approx(math.degrees(math.asin(0.5)), abs=2)
    assert head_pose_106(layout(nose_shift=-0.3)).yaw == pytest.approx(-turned.yaw, abs=0.5)
    assert head_pose_106(layout(roll_deg=20)).roll == pytest.approx(20, abs=1)


def _face() -> Face:
    marks = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], np.float32)
    return Face(np.array([20, 20, 100, 120], np.float32), 0.9, marks)


def _parsing(fill: str) -> ParsingMask:
    mask = np.full((100, 80), CLASS_INDEX[fill], np.uint8)  # covers x 20-100, y 20-120
    return ParsingMask(mask, (20, 20, 100, 120))


def test_parsing_occlusion_and_accessories() -> None:
    face = _face()
    clear = derive_signals(face, SignalReadings(parsing=_parsing("skin")))
    assert clear.occlusion == {"eyes": 0.0, "nose": 0.0, "mouth": 0.0}
    assert not clear.glasses and not clear.hat and not clear.mask

    covered = _parsing("skin")
    covered.mask[41:90, :] = CLASS_INDEX["cloth"]  # image y 61-110: nose and mouth
    masked = derive_signals(face, SignalReadings(parsing=covered))
    assert masked.occlusion["mouth"] == 1.0 and masked.occlusion["eyes"] == 0.0 and masked.mask

    shades = _parsing("skin")
    shades.mask[20:41, :] = CLASS_INDEX["eyeglasses"]  # image y 40-60: over the eyes
    shades.mask[:8, :] = CLASS_INDEX["hat"]
    worn = derive_signals(face, SignalReadings(parsing=shades))
    assert worn.glasses and worn.sunglasses and worn.hat and worn.occlusion["eyes"] == 1.0


def test_parsing_openness() -> None:
    parsed = _parsing("skin")
    parsed.mask[28:33, 15:30] = CLASS_INDEX["left_eye"]  # 5 x 15 px: open
    parsed.mask[30:31, 45:60] = CLASS_INDEX["right_eye"]  # 1 x 15 px: shut
    assert parsing_eye_openness(parsed) == pytest.approx(5 / 15)
    parsed.mask[65:70, 25:55] = CLASS_INDEX["upper_lip"]
    parsed.mask[70:73, 25:55] = CLASS_INDEX["mouth"]
    parsed.mask[73:78, 25:55] = CLASS_INDEX["lower_lip"]
    assert parsing_mouth_openness(parsed) == pytest.approx(3 / 13)
    assert parsing_eye_openness(_parsing("skin")) == 0.0  # no eye seen at all


def test_xseg_occlusion_reads_the_aligned_crop() -> None:
    mask = np.ones((256, 256), np.float32)
    mask[163:, :] = 0.0  # the lower part of the aligned crop (mouth discs: y 167-202)
    occlusion = xseg_occlusion(XSegMask(mask, np.eye(2, 3)))
    assert occlusion["mouth"] == 1.0 and occlusion["eyes"] == 0.0 and occlusion["nose"] < 0.1
