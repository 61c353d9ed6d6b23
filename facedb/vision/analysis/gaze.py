"""MobileGaze (yakhyo/gaze-estimation, Gaze360 config): gaze pitch and yaw.

- Crop: the plain detector box (integer, clipped), resized to the file's input (448 x 448).
- Input: RGB, ImageNet mean / std on x / 255, NCHW.
- Outputs: two [N, 90] logit tensors, pitch then yaw, over 4-degree bins. Decoding is a
  soft-argmax: softmax, expected bin index, x 4 - 180 degrees, then radians.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facedb.vision.analysis.base import AnalysisModel, softmax
from facedb.vision.analysis.crops import crop_box, padded_box
from facedb.vision.types import Face

BINS = 90
BIN_WIDTH_DEG = 4.0
ANGLE_OFFSET_DEG = 180.0


@dataclass(frozen=True)
class Gaze:
    pitch: float  # radians, positive = looking up (as the network was trained)
    yaw: float  # radians

    @property
    def pitch_deg(self) -> float:
        return math.degrees(self.pitch)

    @property
    def yaw_deg(self) -> float:
        return math.degrees(self.yaw)

    def to_dict(self) -> dict[str, float]:
        return {
            "pitch": round(self.pitch, 4),
            "yaw": round(self.yaw, 4),
            "pitch_deg": round(self.pitch_deg, 2),
            "yaw_deg": round(self.yaw_deg, 2),
        }


def binned_angle_deg(logits: np.ndarray) -> np.ndarray:
    """[N, 90] logits → [N] degrees (soft-argmax over 4-degree bins from -180)."""
    logits = np.asarray(logits, dtype=np.float32).reshape(len(logits), -1)
    if logits.shape[1] != BINS:
        raise ValueError(f"expected {BINS} gaze bins, got {logits.shape[1]}")
    expected = softmax(logits) @ np.arange(BINS, dtype=np.float32)
    return expected * BIN_WIDTH_DEG - ANGLE_OFFSET_DEG


def decode_gaze(pitch_logits: np.ndarray, yaw_logits: np.ndarray) -> list[Gaze]:
    pitch, yaw = binned_angle_deg(pitch_logits), binned_angle_deg(yaw_logits)
    pairs = zip(pitch, yaw, strict=True)
    return [Gaze(math.radians(float(p)), math.radians(float(y))) for p, y in pairs]


class GazeModel(AnalysisModel):
    family = "mobilegaze"
    default_input_hw = (448, 448)
    max_batch = 8  # 448 x 448 inputs: 2.4 MB per crop

    def predict(self, image: np.ndarray, faces: Sequence[Face]) -> list[Gaze]:
        if not faces:
            return []
        crops = [crop_box(image, padded_box(f.box, image.shape[:2])) for f in faces]
        outputs = self.run_crops(crops)
        if len(outputs) != 2:
            raise ValueError(f"{self.name}: MobileGaze has 2 outputs, the file has {len(outputs)}")
        return decode_gaze(outputs[0], outputs[1])
