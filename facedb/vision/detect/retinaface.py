"""RetinaFace (biubug6 / yakhyo exports): SSD-style priors with variance decoding (§2.1).

Three outputs — loc [.., N, 4], conf [.., N, 2] (already softmaxed, column 1 = face) and
landmarks [.., N, 10] — found by their last dimension, so the order in the file is free.
Priors depend on the input size only, so fixed and dynamic files share one decoder.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from facedb.models.session import ModelIO
from facedb.vision.detect.base import Candidates, Detector, squeeze_batch

STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
CENTRE_VARIANCE, SIZE_VARIANCE = 0.1, 0.2


@lru_cache(maxsize=32)
def priors(height: int, width: int) -> np.ndarray:
    """(N, 4) normalised (cx, cy, w, h): level, then row, column, then min size."""
    levels = []
    for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
        rows, cols = -(-height // step), -(-width // step)  # ceil division
        grid_y, grid_x = np.mgrid[:rows, :cols]
        cx = ((grid_x + 0.5) * step / width).reshape(-1, 1).repeat(len(sizes), axis=1)
        cy = ((grid_y + 0.5) * step / height).reshape(-1, 1).repeat(len(sizes), axis=1)
        w = np.broadcast_to(np.array(sizes, np.float64) / width, cx.shape)
        h = np.broadcast_to(np.array(sizes, np.float64) / height, cx.shape)
        levels.append(np.stack([cx, cy, w, h], axis=-1).reshape(-1, 4))
    result = np.concatenate(levels).astype(np.float32)
    result.flags.writeable = False  # shared through the cache
    return result


class RetinaFaceDetector(Detector):
    family = "retinaface"

    def _check_outputs(self, io: ModelIO) -> None:
        widths = sorted(o.shape[-1] for o in io.outputs if isinstance(o.shape[-1], int))
        if len(io.outputs) != 3 or widths != [2, 4, 10]:
            raise ValueError(
                f"{self.name}: RetinaFace files have loc (…, 4), conf (…, 2) and landmark "
                f"(…, 10) outputs; got {[o.shape for o in io.outputs]}"
            )
        self._position = {o.shape[-1]: i for i, o in enumerate(io.outputs)}

    def decode(
        self, outputs: list[np.ndarray], canvas_hw: tuple[int, int], threshold: float
    ) -> Candidates:
        loc, conf, marks = (squeeze_batch(outputs[self._position[k]]) for k in (4, 2, 10))
        anchors = priors(*canvas_hw)
        if len(anchors) != len(loc):
            raise ValueError(
                f"{self.name}: {len(loc)} predictions, expected {len(anchors)} priors for a "
                f"{canvas_hw[1]}x{canvas_hw[0]} input"
            )
        keep = np.flatnonzero(conf[:, 1] >= threshold)
        anchors, loc, marks = anchors[keep], loc[keep], marks[keep].reshape(-1, 5, 2)
        centre = anchors[:, :2] + loc[:, :2] * CENTRE_VARIANCE * anchors[:, 2:]
        size = anchors[:, 2:] * np.exp(loc[:, 2:] * SIZE_VARIANCE)
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        # Landmarks use the centre variance only, without exp.
        landmarks = anchors[:, None, :2] + marks * CENTRE_VARIANCE * anchors[:, None, 2:]
        pixels = np.array([canvas_hw[1], canvas_hw[0]], np.float32)
        return Candidates(
            boxes * np.tile(pixels, 2), conf[keep, 1], (landmarks * pixels).astype(np.float32)
        )
