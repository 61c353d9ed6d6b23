"""Value types shared by every stage of the vision pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Face:
    """One detected face, in original-image pixels.

    `landmarks` are the 5 points in the standard order: viewer-left eye, viewer-right eye,
    nose tip, viewer-left mouth corner, viewer-right mouth corner.
    """

    box: np.ndarray  # (4,) float32: x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # (5, 2) float32

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def scaled(self, factor: float) -> Face:
        """The same face in an image scaled by `factor` (used to undo a downscale)."""
        return Face(
            box=(self.box * factor).astype(np.float32),
            score=self.score,
            landmarks=(self.landmarks * factor).astype(np.float32),
        )
