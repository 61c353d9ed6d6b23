"""XSeg face masks (DeepFaceLab XSeg, yakhyo/face-segmentation): where the face is visible.

- Crop: the 5-point ArcFace-template warp at 256 x 256 (template scaled by 2 and shifted
  16 px right, MODEL_FACTS §3.3), black outside the image.
- Input: NHWC [N, 256, 256, 3], BGR (no channel swap), x / 255.
- Output [N, 256, 256, 1] (or [N, 1, 256, 256]): P(face) per pixel, clipped to [0, 1].
  Occluders (hands, masks, hair, microphones) read as low values inside the face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facedb.vision.align import alignment_matrix
from facedb.vision.analysis.base import AnalysisModel
from facedb.vision.types import Face

ALIGNED_SIZE = 256


@dataclass(frozen=True)
class XSegMask:
    """P(visible face) over the aligned crop, and the image → crop matrix."""

    mask: np.ndarray  # (256, 256) float32 in [0, 1]
    matrix: np.ndarray  # 2x3, image pixels → crop pixels

    def to_image(self, image_hw: tuple[int, int]) -> np.ndarray:
        """The mask warped back over the whole image (0 outside the crop)."""
        height, width = image_hw
        inverse = cv2.invertAffineTransform(self.matrix)
        return cv2.warpAffine(self.mask, inverse, (width, height), flags=cv2.INTER_LINEAR)

    def to_dict(self) -> dict[str, object]:
        return {"face_fraction": round(float((self.mask >= 0.5).mean()), 4)}


def decode_xseg(outputs: np.ndarray, count: int) -> list[np.ndarray]:
    """The network's masks → (H, W) float32 in [0, 1], one per face."""
    masks = np.asarray(outputs, dtype=np.float32)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    elif masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.ndim != 3 or len(masks) != count:
        raise ValueError(f"expected {count} single-channel XSeg masks, got {outputs.shape}")
    return [np.clip(m, 0.0, 1.0) for m in masks]


class XSegModel(AnalysisModel):
    family = "xseg"
    layout = "NHWC"
    default_input_hw = (ALIGNED_SIZE, ALIGNED_SIZE)

    def predict(self, image: np.ndarray, faces: Sequence[Face]) -> list[XSegMask]:
        if not faces:
            return []
        matrices = [alignment_matrix(face.landmarks, ALIGNED_SIZE) for face in faces]
        crops = [
            cv2.warpAffine(image, m, (ALIGNED_SIZE, ALIGNED_SIZE), borderValue=(0, 0, 0))
            for m in matrices
        ]
        masks = decode_xseg(self.run_crops(crops)[0], len(faces))
        return [
            XSegMask(_at_crop_size(m), matrix) for m, matrix in zip(masks, matrices, strict=True)
        ]


def _at_crop_size(mask: np.ndarray) -> np.ndarray:
    """A mask from a file with another input size, resized onto the 256 crop."""
    if mask.shape == (ALIGNED_SIZE, ALIGNED_SIZE):
        return mask
    return cv2.resize(mask, (ALIGNED_SIZE, ALIGNED_SIZE), interpolation=cv2.INTER_LINEAR)
