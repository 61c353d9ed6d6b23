"""Face parsing with BiSeNet (yakhyo/face-parsing, CelebAMask-HQ's 19 classes).

- Crop: the plain detector box (integer, clipped), resized to the file's input (512 x 512).
- Input: RGB, ImageNet mean / std on x / 255, NCHW.
- Output [N, 19, H, W] class logits (the first output); the mask is the per-pixel argmax,
  resized back to the crop with nearest-neighbour interpolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facedb.vision.analysis.base import AnalysisModel
from facedb.vision.analysis.crops import PixelBox, crop_box, padded_box
from facedb.vision.types import Face

CLASSES = (
    "background",
    "skin",
    "left_brow",
    "right_brow",
    "left_eye",
    "right_eye",
    "eyeglasses",
    "left_ear",
    "right_ear",
    "earring",
    "nose",
    "mouth",  # the inside of the mouth (teeth, tongue), between the lips
    "upper_lip",
    "lower_lip",
    "neck",
    "necklace",
    "cloth",
    "hair",
    "hat",
)
CLASS_INDEX = {name: index for index, name in enumerate(CLASSES)}


@dataclass(frozen=True)
class ParsingMask:
    """Class ids over the face's crop, and where that crop sits in the image."""

    mask: np.ndarray  # (h, w) uint8 class ids, the crop's own size
    box: PixelBox  # the crop in image pixels (x2, y2 exclusive)

    def at(self, points: np.ndarray) -> np.ndarray:
        """Class ids at image-pixel points (N, 2); points outside the crop are background."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x = np.floor(points[:, 0]).astype(int) - self.box[0]
        y = np.floor(points[:, 1]).astype(int) - self.box[1]
        height, width = self.mask.shape
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        out = np.zeros(len(points), dtype=np.uint8)
        out[inside] = self.mask[y[inside], x[inside]]
        return out

    def share(self, names: Sequence[str]) -> float:
        """Fraction of the crop's pixels in any of these classes."""
        ids = [CLASS_INDEX[n] for n in names]
        return float(np.isin(self.mask, ids).mean())

    def to_dict(self) -> dict[str, object]:
        counts = np.bincount(self.mask.ravel(), minlength=len(CLASSES))
        total = max(int(counts.sum()), 1)
        shares = {CLASSES[i]: round(int(c) / total, 4) for i, c in enumerate(counts) if c}
        return {"box": list(self.box), "class_shares": shares}


def decode_parsing(logits: np.ndarray, crop_sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """[N, 19, H, W] logits → one (h, w) uint8 class mask per crop, at the crop's size."""
    logits = np.asarray(logits)
    if logits.ndim != 4 or logits.shape[1] != len(CLASSES):
        raise ValueError(f"expected [N, {len(CLASSES)}, H, W] parsing logits, got {logits.shape}")
    masks = []
    for scores, (height, width) in zip(logits, crop_sizes, strict=True):
        labels = scores.argmax(axis=0).astype(np.uint8)
        masks.append(cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST))
    return masks


class BiSeNetModel(AnalysisModel):
    family = "bisenet"
    default_input_hw = (512, 512)
    # One crop's output is 19 x 512 x 512 float32 (20 MB): 4 per run bounds the memory.
    max_batch = 4

    def predict(self, image: np.ndarray, faces: Sequence[Face]) -> list[ParsingMask]:
        if not faces:
            return []
        boxes = [padded_box(face.box, image.shape[:2]) for face in faces]
        crops = [crop_box(image, box) for box in boxes]
        masks = decode_parsing(self.run_crops(crops)[0], [c.shape[:2] for c in crops])
        return [ParsingMask(mask, box) for mask, box in zip(masks, boxes, strict=True)]
