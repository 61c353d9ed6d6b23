"""YOLOv5-Face (deepcam-cn): letterboxed anchor-based YOLO with 5 landmarks (§2.3).

Two export layouts are accepted:
- raw heads, one [1, A, H, W, 16] tensor per stride (decoded here: sigmoid on xywh, objectness
  and class; xy = (2σ − 0.5 + cell)·stride, wh = (2σ)²·anchor, landmark = raw·anchor +
  cell·stride — landmarks get no sigmoid);
- one decoded [1, N, 16] tensor (letterbox pixels, probabilities already applied).
Row layout in both: cx, cy, w, h, objectness, 5 × (x, y) landmarks, class.

Score = objectness × class probability, the upstream confidence. uniface reports
objectness alone; for this one-class model the product differs only where the class head
is unsure, and it keeps the score a probability comparable with the other families.
"""

from __future__ import annotations

import numpy as np

from facedb.models.session import ModelIO
from facedb.vision.detect.base import Candidates, Detector, squeeze_batch

# (w, h) in pixels per level, strides 8 / 16 / 32 (yolov5s.yaml; the n-0.5 fixture agrees).
DEFAULT_ANCHORS: tuple[tuple[tuple[float, float], ...], ...] = (
    ((4, 5), (8, 10), (13, 16)),
    ((23, 29), (43, 55), (73, 105)),
    ((146, 217), (231, 300), (335, 433)),
)
ROW = 16  # values per prediction


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def parse_anchors(text: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    """`options["anchors"]`: 18 comma-separated numbers, w,h × 3 anchors × 3 levels."""
    values = [float(v) for v in text.split(",")]
    if len(values) != 18:
        raise ValueError(f"anchors needs 18 numbers (w,h x 3 anchors x 3 levels), got {text!r}")
    pairs = [(values[i], values[i + 1]) for i in range(0, 18, 2)]
    return tuple(tuple(pairs[level * 3 : level * 3 + 3]) for level in range(3))


def to_corners(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)


class YOLOv5FaceDetector(Detector):
    family = "yolov5face"
    layout = "centre"
    pad_value = 114.0
    anchors = DEFAULT_ANCHORS

    def _check_outputs(self, io: ModelIO) -> None:
        shapes = [o.shape for o in io.outputs]
        self.raw_heads = len(shapes) == 3 and all(len(s) == 5 and s[-1] == ROW for s in shapes)
        decoded = len(shapes) == 1 and len(shapes[0]) in (2, 3) and shapes[0][-1] == ROW
        if not (self.raw_heads or decoded):
            raise ValueError(
                f"{self.name}: YOLOv5-Face files have 3 raw heads [1, 3, H, W, 16] or one "
                f"decoded [1, N, 16] output; got {shapes}"
            )
        if "anchors" in self.spec.options:
            self.anchors = parse_anchors(self.spec.options["anchors"])

    def decode(
        self, outputs: list[np.ndarray], canvas_hw: tuple[int, int], threshold: float
    ) -> Candidates:
        if self.raw_heads:
            parts = [
                self._decode_head(o, lvl, canvas_hw, threshold) for lvl, o in enumerate(outputs)
            ]
            return Candidates.concatenate(parts)
        rows = squeeze_batch(outputs[0]).reshape(-1, ROW)
        scores = rows[:, 4] * rows[:, 15]
        rows = rows[scores >= threshold]
        return Candidates(
            to_corners(rows[:, :4]), rows[:, 4] * rows[:, 15], rows[:, 5:15].reshape(-1, 5, 2)
        )

    def _decode_head(
        self, head: np.ndarray, level: int, canvas_hw: tuple[int, int], threshold: float
    ) -> Candidates:
        head = squeeze_batch(head)  # (A, H, W, 16)
        stride = canvas_hw[0] / head.shape[1]
        scores = sigmoid(head[..., 4]) * sigmoid(head[..., 15])
        anchor_idx, rows_idx, cols_idx = np.nonzero(scores >= threshold)
        raw = head[anchor_idx, rows_idx, cols_idx]
        cell = np.stack([cols_idx, rows_idx], axis=1).astype(np.float32)
        anchor = np.asarray(self.anchors[level], np.float32)[anchor_idx]
        xy = (sigmoid(raw[:, :2]) * 2 - 0.5 + cell) * stride
        wh = (sigmoid(raw[:, 2:4]) * 2) ** 2 * anchor
        landmarks = raw[:, 5:15].reshape(-1, 5, 2) * anchor[:, None] + cell[:, None] * stride
        boxes = to_corners(np.concatenate([xy, wh], axis=1))
        return Candidates(boxes, scores[anchor_idx, rows_idx, cols_idx], landmarks)
