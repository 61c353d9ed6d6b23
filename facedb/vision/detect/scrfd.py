"""SCRFD (insightface): anchor-point detector with distance regression.

Outputs come in three groups by position — scores, box distances, keypoint offsets — one
tensor per FPN level each. The count tells the layout (as insightface does): 6 or 9 outputs
are 3 levels (strides 8/16/32) with 2 anchors per cell, 10 or 15 are 5 levels (8…128) with
1 anchor; 9 and 15 carry keypoints. Tensors may be unbatched [N, k] or batched [1, N, k].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from facedb.models.session import ModelIO
from facedb.vision.detect.base import Candidates, Detector, squeeze_batch

# output count → (strides, anchors per cell, has keypoints)
LAYOUTS: dict[int, tuple[tuple[int, ...], int, bool]] = {
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}


@lru_cache(maxsize=64)
def anchor_centres(grid_h: int, grid_w: int, stride: int, anchors: int) -> np.ndarray:
    """(grid_h·grid_w·anchors, 2) cell top-left corners (SCRFD adds no +0.5), row-major."""
    rows, cols = np.mgrid[:grid_h, :grid_w]
    centres = np.stack([cols, rows], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    centres = np.repeat(centres, anchors, axis=0)
    centres.flags.writeable = False  # shared through the cache
    return centres


class SCRFDDetector(Detector):
    family = "scrfd"

    def _check_outputs(self, io: ModelIO) -> None:
        if len(io.outputs) not in LAYOUTS:
            raise ValueError(
                f"{self.name}: SCRFD files have 6, 9, 10 or 15 outputs, this one has "
                f"{len(io.outputs)}"
            )
        self.strides, self.anchors, self.has_landmarks = LAYOUTS[len(io.outputs)]

    def decode(
        self, outputs: list[np.ndarray], canvas_hw: tuple[int, int], threshold: float
    ) -> Candidates:
        levels = len(self.strides)
        parts = [
            self._decode_level(outputs, level, levels, canvas_hw, threshold)
            for level in range(levels)
        ]
        return Candidates.concatenate(parts)

    def _decode_level(
        self,
        outputs: list[np.ndarray],
        level: int,
        levels: int,
        canvas_hw: tuple[int, int],
        threshold: float,
    ) -> Candidates:
        stride = self.strides[level]
        scores = squeeze_batch(outputs[level]).reshape(-1)
        grid_h, grid_w = canvas_hw[0] // stride, canvas_hw[1] // stride
        centres = anchor_centres(grid_h, grid_w, stride, self.anchors)
        if len(centres) != len(scores):
            raise ValueError(
                f"{self.name}: stride {stride} has {len(scores)} scores, expected "
                f"{len(centres)} for a {canvas_hw[1]}x{canvas_hw[0]} input"
            )
        # Scores are sigmoid probabilities already (inside the graph); decode only the keepers.
        keep = np.flatnonzero(scores >= threshold)
        centres = centres[keep]
        distances = squeeze_batch(outputs[level + levels]).reshape(-1, 4)[keep] * stride
        boxes = np.concatenate([centres - distances[:, :2], centres + distances[:, 2:]], axis=1)
        if self.has_landmarks:
            offsets = squeeze_batch(outputs[level + 2 * levels]).reshape(-1, 5, 2)[keep] * stride
            landmarks = centres[:, None, :] + offsets
        else:
            # No keypoint head: landmarks are unknown, and the pipeline must not align on them.
            landmarks = np.full((len(keep), 5, 2), np.nan, np.float32)
        return Candidates(boxes, scores[keep], landmarks)
