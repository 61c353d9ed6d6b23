"""YOLOv8-Face (derronqi): anchor-free letterboxed heads with DFL box regression (§2.4).

One [1, 80, H, W] tensor per stride 8 / 16 / 32 (the stride is canvas / H). Channels per
cell: 4 sides × 16 DFL bin logits, 1 class logit, 5 keypoints × (x, y, visibility).
Box side = softmax-expected bin (grid units) from the anchor point (col + 0.5, row + 0.5);
keypoint = (2·raw + col, 2·raw + row)·stride; visibility is not used.
"""

from __future__ import annotations

import numpy as np

from facedb.models.session import ModelIO
from facedb.vision.detect.base import Candidates, Detector, squeeze_batch

REG_MAX = 16  # DFL bins per box side
CHANNELS = 4 * REG_MAX + 1 + 5 * 3


def dfl_expectation(logits: np.ndarray) -> np.ndarray:
    """(N, 4, 16) bin logits → (N, 4) expected distances in grid units."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
    return probabilities @ np.arange(REG_MAX, dtype=np.float32)


class YOLOv8FaceDetector(Detector):
    family = "yolov8face"
    layout = "centre"
    pad_value = 114.0
    clip_boxes = True  # upstream clips boxes (not landmarks) to the image

    def _check_outputs(self, io: ModelIO) -> None:
        shapes = [o.shape for o in io.outputs]
        if not shapes or any(len(s) != 4 or s[1] != CHANNELS for s in shapes):
            raise ValueError(
                f"{self.name}: YOLOv8-Face files have [1, {CHANNELS}, H, W] outputs per "
                f"stride; got {shapes}"
            )

    def decode(
        self, outputs: list[np.ndarray], canvas_hw: tuple[int, int], threshold: float
    ) -> Candidates:
        parts = [self._decode_level(o, canvas_hw, threshold) for o in outputs]
        return Candidates.concatenate(parts)

    def _decode_level(
        self, level: np.ndarray, canvas_hw: tuple[int, int], threshold: float
    ) -> Candidates:
        cells = squeeze_batch(level)  # (80, H, W)
        stride = canvas_hw[0] / cells.shape[1]
        scores = 1.0 / (1.0 + np.exp(-cells[4 * REG_MAX]))
        rows, cols = np.nonzero(scores >= threshold)
        picked = cells[:, rows, cols].T  # (N, 80)
        grid = np.stack([cols, rows], axis=1).astype(np.float32)
        sides = dfl_expectation(picked[:, : 4 * REG_MAX].reshape(-1, 4, REG_MAX))
        anchor = grid + 0.5
        boxes = np.concatenate([anchor - sides[:, :2], anchor + sides[:, 2:]], axis=1) * stride
        raw_points = picked[:, 4 * REG_MAX + 1 :].reshape(-1, 5, 3)[:, :, :2]
        landmarks = (raw_points * 2 + grid[:, None]) * stride
        return Candidates(boxes, scores[rows, cols], landmarks)
