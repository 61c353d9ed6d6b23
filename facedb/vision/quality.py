"""Per-face quality signals: size, sharpness, head pose, exposure, detector score, learned quality.

Every signal is a plain measurement with a unit; the thresholds that turn them into
accept / reject decisions live in `facedb.vision.gates.GatePolicy`.

Head pose from the 5 landmarks (viewer-left eye, viewer-right eye, nose tip, viewer-left
mouth corner, viewer-right mouth corner), in degrees, a weak-perspective geometric estimate:

- roll: the angle of the eye line (from the left to the right eye) against the horizontal;
  positive when the right eye is lower (clockwise on screen, y points down).
  The other two angles are read after rotating the points by -roll about the eye midpoint.
- yaw: the nose tip's horizontal offset from the face midline (the mean x of the eye
  midpoint and the mouth midpoint). Turning the head by yaw moves the nose, which stands
  `NOSE_DEPTH` x (inter-ocular distance) in front of the eye/mouth plane, sideways by
  depth·sin(yaw), while the eye distance shrinks by cos(yaw); so
  yaw = atan(offset / (NOSE_DEPTH · observed inter-ocular distance)). Positive: the nose
  points to the viewer's right.
- pitch: where the nose sits between the eye line and the mouth line, t = (nose_y - eyes_y)
  / (mouth_y - eyes_y). Frontal faces have t = `FRONTAL_NOSE_RATIO` (the ArcFace template's
  value); nodding moves the nose by depth·sin(pitch) while the eye-mouth height shrinks by
  cos(pitch), so pitch = atan((FRONTAL_NOSE_RATIO - t) · eye-mouth height / nose depth).
  Positive: looking up.

These are coarse (about ±10° on frontal faces, unreliable beyond ~60° where landmarks
themselves degrade), enough to refuse profile and strongly tilted faces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from facedb.models.onnx_model import OnnxModel
from facedb.vision.types import Face

# Template (MODEL_FACTS §3.1) geometry: eyes at y≈51.6, nose 71.7, mouth 92.3 in a 112 crop.
FRONTAL_NOSE_RATIO = (71.7366 - 51.5989) / (92.2848 - 51.5989)  # ≈ 0.495
NOSE_DEPTH = 0.5  # nose tip in front of the eye/mouth plane, in inter-ocular distances
EYE_TO_MOUTH = (92.2848 - 51.5989) / (73.5318 - 38.2946)  # ≈ 1.155 inter-ocular distances
# The inner face of a 112x112 aligned crop (eyebrows to chin, cheek to cheek), scaled for other
# sizes. Sharpness and exposure are read here only: hair and background vary freely, and a
# face near the image border gets black fill from the warp whose hard edge would count as
# "sharp" and as clipped (a blurred face-only crop measured 1200 on the whole crop, 40 here).
FACE_REGION_112 = (36, 104, 28, 84)  # y0, y1, x0, x1
DARK_LEVEL = 5  # grey levels at or below this count as clipped shadows
BRIGHT_LEVEL = 250  # grey levels at or above this count as clipped highlights


@dataclass(frozen=True)
class HeadPose:
    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class QualityReport:
    """Measured signals of one face (pixels, degrees, grey levels, scores)."""

    inter_ocular: float  # px between the eye centres in the original image
    face_width: float  # detector box, px
    face_height: float
    sharpness: float  # variance of the Laplacian, inner face of the grey aligned crop
    yaw: float  # degrees, see the module docstring
    pitch: float
    roll: float
    brightness: float  # mean grey level of the inner face, 0-255
    clipped_fraction: float  # share of inner-face pixels ≤ DARK_LEVEL or ≥ BRIGHT_LEVEL
    detection_score: float
    learned_quality: float | None = None  # FiqaModel score when a model is configured

    @property
    def face_size(self) -> float:
        """The shorter side of the detector box, px."""
        return min(self.face_width, self.face_height)

    def to_dict(self) -> dict[str, float | None]:
        return {name: _rounded(value) for name, value in asdict(self).items()}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    return float(np.linalg.norm(points[1] - points[0]))


def head_pose(landmarks: np.ndarray) -> HeadPose:
    """Yaw, pitch and roll in degrees from the 5 landmarks (method in the module docstring)."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye = points[0], points[1]
    dx, dy = right_eye - left_eye
    roll = math.atan2(dy, dx)
    upright = _rotate(points, -roll, (left_eye + right_eye) / 2)
    eyes = (upright[0] + upright[1]) / 2
    mouth = (upright[3] + upright[4]) / 2
    nose = upright[2]
    iod = max(float(np.linalg.norm(upright[1] - upright[0])), 1e-6)
    midline_x = (eyes[0] + mouth[0]) / 2
    yaw = math.atan2(nose[0] - midline_x, NOSE_DEPTH * iod)
    height = mouth[1] - eyes[1]
    if abs(height) < 1e-6:  # eyes and mouth on one line: no vertical information
        pitch = 0.0
    else:
        nose_ratio = (nose[1] - eyes[1]) / height
        pitch = math.atan((FRONTAL_NOSE_RATIO - nose_ratio) * EYE_TO_MOUTH / NOSE_DEPTH)
    return HeadPose(math.degrees(yaw), math.degrees(pitch), math.degrees(roll))


def _rotate(points: np.ndarray, angle: float, centre: np.ndarray) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    return (points - centre) @ rotation.T + centre


def _grey(aligned: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY) if aligned.ndim == 3 else aligned


def face_region(plane: np.ndarray) -> np.ndarray:
    """The inner-face part of an aligned crop (or of an image computed from one)."""
    scale = plane.shape[0] / 112
    y0, y1, x0, x1 = (round(v * scale) for v in FACE_REGION_112)
    return plane[y0:y1, x0:x1]


def sharpness(aligned: np.ndarray) -> float:
    """Variance of the Laplacian over the inner face of the grey aligned crop.

    Low when edges are soft: blur, or a small face upsampled to 112 px.
    """
    laplacian = cv2.Laplacian(_grey(aligned), cv2.CV_64F)
    return float(face_region(laplacian).var())


def exposure(aligned: np.ndarray) -> tuple[float, float]:
    """(mean grey level, fraction of pixels clipped dark or bright) over the inner face."""
    grey = face_region(_grey(aligned))
    clipped = np.count_nonzero((grey <= DARK_LEVEL) | (grey >= BRIGHT_LEVEL))
    return float(grey.mean()), clipped / grey.size


def measure_quality(
    face: Face, aligned: np.ndarray, learned_quality: float | None = None
) -> QualityReport:
    """Every signal of one face, from its detection and its aligned (112x112 BGR) crop."""
    pose = head_pose(face.landmarks)
    grey = _grey(aligned)  # once for both signals (each accepts a grey plane as is)
    brightness, clipped = exposure(grey)
    return QualityReport(
        inter_ocular=inter_ocular_distance(face.landmarks),
        face_width=face.width,
        face_height=face.height,
        sharpness=sharpness(grey),
        yaw=pose.yaw,
        pitch=pose.pitch,
        roll=pose.roll,
        brightness=brightness,
        clipped_fraction=clipped,
        detection_score=float(face.score),
        learned_quality=learned_quality,
    )


class FiqaModel(OnnxModel):
    """A learned face-image-quality regressor on aligned crops (`fiqa:PATH`).

    The score is the mean of the model's outputs (the fixture file has 10 sigmoid outputs:
    about 0.77 for a sharp aligned face, 0.15 blurred, 0.11 low resolution).
    """

    family = "fiqa"
    default_input_hw = (112, 112)
    input_hw: tuple[int, int]  # never None: the file's size or 112x112

    def scores(self, aligned_crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(N,) quality per aligned BGR crop; higher is better."""
        if len(aligned_crops) == 0:
            return np.zeros(0, np.float32)
        crops = [self._sized(crop) for crop in aligned_crops]
        (outputs,) = self.run_batched(np.stack(crops), [self.io.outputs[0].name])
        return outputs.reshape(len(crops), -1).mean(axis=1)

    def _sized(self, crop: np.ndarray) -> np.ndarray:
        # Crops may differ in size; one size lets them share a batch.
        height, width = self.input_hw
        return crop if crop.shape[:2] == (height, width) else cv2.resize(crop, (width, height))
