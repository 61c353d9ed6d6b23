"""YuNet (libfacedetection / OpenCV zoo): tiny anchor-free detector, raw BGR 0-255 input.

Twelve outputs in groups of three (strides 8 / 16 / 32): cls [.., N, 1], obj [.., N, 1],
bbox [.., N, 4], kps [.., N, 10], cells row-major. Decoding (the rule of OpenCV's
FaceDetectorYN, which we do not use so the product runs on onnxruntime alone):
- score = sqrt(clip(cls, 0, 1) · clip(obj, 0, 1));
- centre = (col + dx, row + dy)·stride, size = exp(dw, dh)·stride (cells have no +0.5);
- landmark k = (col + kx, row + ky)·stride.
"""

from __future__ import annotations

import numpy as np

from facedb.models.session import ModelIO
from facedb.vision.detect.base import Candidates, Detector, squeeze_batch

STRIDES = (8, 16, 32)
GROUP_WIDTHS = (1, 1, 4, 10)  # cls, obj, bbox, kps


class YuNetDetector(Detector):
    family = "yunet"

    def _check_outputs(self, io: ModelIO) -> None:
        widths = [o.shape[-1] for o in io.outputs]
        expected = [w for w in GROUP_WIDTHS for _ in STRIDES]
        if widths != expected:
            raise ValueError(
                f"{self.name}: YuNet files have 12 outputs (cls, obj, bbox, kps x strides "
                f"8/16/32); got {[o.shape for o in io.outputs]}"
            )

    def decode(
        self, outputs: list[np.ndarray], canvas_hw: tuple[int, int], threshold: float
    ) -> Candidates:
        levels = len(STRIDES)
        parts = [
            self._decode_level(
                [outputs[level + g * levels] for g in range(4)], stride, canvas_hw, threshold
            )
            for level, stride in enumerate(STRIDES)
        ]
        return Candidates.concatenate(parts)

    def _decode_level(
        self,
        tensors: list[np.ndarray],
        stride: int,
        canvas_hw: tuple[int, int],
        threshold: float,
    ) -> Candidates:
        cls, obj, bbox, kps = (squeeze_batch(t) for t in tensors)
        scores = np.sqrt(np.clip(cls[:, 0], 0, 1) * np.clip(obj[:, 0], 0, 1))
        cols = canvas_hw[1] // stride
        if len(scores) != (canvas_hw[0] // stride) * cols:
            raise ValueError(f"{self.name}: stride {stride} does not match the input size")
        keep = np.flatnonzero(scores >= threshold)
        cell = np.stack([keep % cols, keep // cols], axis=1).astype(np.float32)
        box = bbox[keep]
        centre = (cell + box[:, :2]) * stride
        size = np.exp(box[:, 2:]) * stride
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        landmarks = (cell[:, None] + kps[keep].reshape(-1, 5, 2)) * stride
        return Candidates(boxes, scores[keep], landmarks)
