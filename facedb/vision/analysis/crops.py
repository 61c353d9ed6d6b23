"""The three ways analysis models see a face, each as the upstream models were trained.

- `centred_square`: a square warp centred on the detector box, side = `scale` x the box's
  longer side (insightface AgeGender and 2D106: scale 1.5), black outside the image. It
  returns the 2x3 matrix so points predicted in the crop can be mapped back.
- `padded_box`: the box widened by `pad` x its width / height on every side, clipped to the
  image (FairFace: 0.25; MobileGaze and BiSeNet: 0, the plain box). Integer pixel box.
- aligned crops: the 5-point ArcFace-template warp (`facedb.vision.align`), for models
  trained on aligned faces (AffectNet DDAMFN 112, XSeg 256).
"""

from __future__ import annotations

import cv2
import numpy as np

PixelBox = tuple[int, int, int, int]  # x1, y1, x2, y2 with x2, y2 exclusive


def centred_square_matrix(box: np.ndarray, size: int, scale: float) -> np.ndarray:
    """The 2x3 matrix taking image pixels to a `size`-px square centred on `box`."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1, 1.0) * scale
    zoom = size / side
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array(
        [[zoom, 0.0, size / 2 - centre_x * zoom], [0.0, zoom, size / 2 - centre_y * zoom]],
        dtype=np.float64,
    )


def centred_square(
    image: np.ndarray, box: np.ndarray, size: int, scale: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """(crop (size, size, 3), matrix image → crop)."""
    matrix = centred_square_matrix(box, size, scale)
    crop = cv2.warpAffine(image, matrix, (size, size), borderValue=(0, 0, 0))
    return crop, matrix


def padded_box(box: np.ndarray, image_hw: tuple[int, int], pad: float = 0.0) -> PixelBox:
    """The integer box widened by `pad` of its size on each side, clipped; never empty."""
    height, width = image_hw
    x1, y1, x2, y2 = (int(v) for v in box[:4])
    pad_x, pad_y = int((x2 - x1) * pad), int((y2 - y1) * pad)
    left, top = min(max(0, x1 - pad_x), width - 1), min(max(0, y1 - pad_y), height - 1)
    right, bottom = min(width, x2 + pad_x), min(height, y2 + pad_y)
    return left, top, max(right, left + 1), max(bottom, top + 1)


def crop_box(image: np.ndarray, box: PixelBox) -> np.ndarray:
    x1, y1, x2, y2 = box
    return image[y1:y2, x1:x2]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ matrix[:, :2].T + matrix[:, 2]
