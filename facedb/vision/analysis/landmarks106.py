"""106-point landmarks (insightface `2d106det.onnx`, = uniface LANDMARK 2D106).

- Crop: a square centred on the detector box, side 1.5 x the box's longer side, warped to
  the file's input (192 x 192); the same warp as AgeGender.
- Input: RGB, raw 0-255 float32 (the graph normalises itself), NCHW.
- Output [N, 212]: 106 (x, y) pairs in [-1, 1] over the crop; pixel = (v + 1) x size / 2,
  then the inverse of the crop warp gives original-image pixels.

Point groups follow insightface's 2d106 mark-up: contour 0-32, viewer-left eye 33-42
(centre 38), viewer-left eyebrow 43-51, mouth 52-71, nose 72-86, viewer-right eye 87-96
(centre 92), viewer-right eyebrow 97-105. (uniface's documentation table gives other
ranges, 33-50 brows / 51-62 nose / 63-86 eyes / 87-105 mouth; code that uses the real
file, e.g. eyebrow centres from 43-51 and 97-105 and nose 74-86, agrees with the mark-up.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facedb.vision.analysis.base import AnalysisModel
from facedb.vision.analysis.crops import centred_square, transform_points
from facedb.vision.types import Face

POINTS = 106
CROP_SCALE = 1.5

LEFT_EYE = tuple(range(33, 43))
LEFT_EYEBROW = tuple(range(43, 52))
MOUTH = tuple(range(52, 72))
NOSE = tuple(range(72, 87))
RIGHT_EYE = tuple(range(87, 97))
RIGHT_EYEBROW = tuple(range(97, 106))
GROUPS: dict[str, tuple[int, ...]] = {
    "contour": tuple(range(0, 33)),
    "eyebrows": LEFT_EYEBROW + RIGHT_EYEBROW,
    "nose": NOSE,
    "eyes": LEFT_EYE + RIGHT_EYE,
    "mouth": MOUTH,
    "left_eye": LEFT_EYE,
    "right_eye": RIGHT_EYE,
    "left_eyebrow": LEFT_EYEBROW,
    "right_eyebrow": RIGHT_EYEBROW,
}
EYE_CENTRES = (38, 92)


@dataclass(frozen=True)
class Landmarks106:
    points: np.ndarray  # (106, 2) float32, original-image pixels

    def group(self, name: str) -> np.ndarray:
        """The points of one group (see GROUPS), e.g. "mouth"."""
        return self.points[list(GROUPS[name])]

    def to_dict(self) -> dict[str, object]:
        return {"points": [[round(float(x), 2), round(float(y), 2)] for x, y in self.points]}


def decode_landmarks(
    rows: np.ndarray, size: int, matrices: Sequence[np.ndarray]
) -> list[Landmarks106]:
    """[N, 212] outputs in [-1, 1] and each face's image → crop matrix → image pixels."""
    rows = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
    if rows.shape[1] != 2 * POINTS:
        raise ValueError(f"expected {2 * POINTS} landmark values, got {rows.shape[1]}")
    results = []
    for row, matrix in zip(rows, matrices, strict=True):
        in_crop = (row.reshape(POINTS, 2) + 1.0) * (size / 2)
        inverse = cv2.invertAffineTransform(matrix)
        results.append(Landmarks106(transform_points(in_crop, inverse).astype(np.float32)))
    return results


class Landmark106Model(AnalysisModel):
    family = "landmark106"
    default_input_hw = (192, 192)

    def predict(self, image: np.ndarray, faces: Sequence[Face]) -> list[Landmarks106]:
        if not faces:
            return []
        size = self.input_hw[0]
        warps = [centred_square(image, face.box, size, CROP_SCALE) for face in faces]
        rows = self.run_crops([crop for crop, _ in warps])[0]
        return decode_landmarks(rows, size, [matrix for _, matrix in warps])
