"""What every face detector shares: configuration, input placement, NMS and face selection.

A family module only decodes its raw outputs into `Candidates` in network-input pixels;
everything before (resize, pad, normalise) and after (threshold, NMS, back to original
pixels, `max_faces`) happens here, so the families cannot drift apart on those rules.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import cv2
import numpy as np

from facedb.models.onnx_model import OnnxModel
from facedb.models.session import ModelIO, SessionSettings
from facedb.models.spec import ModelSpec
from facedb.vision.types import Face

DEFAULT_CANVAS = (640, 640)  # (height, width) for files whose input size is dynamic
SIZE_MULTIPLE = 32  # the coarsest stride of every supported family
PRE_NMS_LIMIT = 5000  # candidates kept for NMS, best first (bounds NMS cost at low thresholds)

Layout = Literal["top_left", "centre"]


@dataclass(frozen=True)
class DetectorConfig:
    """Detection settings shared by every family.

    `input_size` is (width, height) of the network input for files with a dynamic input
    (rounded up to a multiple of 32; default 640x640); a file with a fixed input always uses
    its own size. Scores at or above `score_threshold` are kept; NMS drops a box whose IoU
    with a better one is above `nms_threshold`. `upscale=False` never enlarges a small
    image: it is pasted at native scale (upscaling small faces makes light detectors miss
    them, MODEL_FACTS §13).
    """

    score_threshold: float = 0.5
    nms_threshold: float = 0.4
    input_size: tuple[int, int] | None = None
    max_faces: int = 0  # 0 = all; otherwise keep the largest boxes
    upscale: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1], got {self.nms_threshold}")
        if self.max_faces < 0:
            raise ValueError(f"max_faces must be >= 0, got {self.max_faces}")
        if self.input_size is not None and min(self.input_size) <= 0:
            raise ValueError(f"input_size must be positive (width, height), got {self.input_size}")


@dataclass(frozen=True)
class Candidates:
    """Decoded detections before NMS: boxes (N, 4), scores (N,), landmarks (N, 5, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @staticmethod
    def empty() -> Candidates:
        return Candidates(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        )

    @staticmethod
    def concatenate(parts: list[Candidates]) -> Candidates:
        """One set from the per-level (or per-head) sets a detector decodes separately."""
        return Candidates(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> Candidates:
        return Candidates(self.boxes[index], self.scores[index], self.landmarks[index])


@dataclass(frozen=True)
class Placement:
    """Where the image went on the network canvas: canvas = original · scale + offset."""

    canvas_hw: tuple[int, int]
    scale_x: float
    scale_y: float
    offset_x: float = 0.0
    offset_y: float = 0.0

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) canvas points → original-image points."""
        offset = np.array([self.offset_x, self.offset_y], np.float32)
        scale = np.array([self.scale_x, self.scale_y], np.float32)
        return (points - offset) / scale


def round_up(value: int, multiple: int = SIZE_MULTIPLE) -> int:
    return int(math.ceil(value / multiple) * multiple)


def plan_canvas(
    image_hw: tuple[int, int], fixed_hw: tuple[int, int] | None, config: DetectorConfig
) -> tuple[tuple[int, int], float]:
    """The network input (height, width) and the image scale for one image."""
    height, width = image_hw
    if fixed_hw is not None:
        target = fixed_hw
    elif config.input_size is not None:
        target = (round_up(config.input_size[1]), round_up(config.input_size[0]))
    else:
        target = DEFAULT_CANVAS
    scale = min(target[0] / height, target[1] / width)
    if not config.upscale:
        scale = min(scale, 1.0)
    if fixed_hw is not None or config.upscale:
        return target, scale
    # A dynamic file needs no padding beyond the next stride multiple: a smaller canvas
    # gives the same faces for a fraction of the compute on small photos.
    scaled_h, scaled_w = _scaled_size(image_hw, scale)
    return (round_up(scaled_h), round_up(scaled_w)), scale


def _scaled_size(image_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(image_hw[0] * scale)), max(1, round(image_hw[1] * scale))


def place_image(
    image: np.ndarray,
    canvas_hw: tuple[int, int],
    scale: float,
    layout: Layout,
    pad_value: float,
) -> tuple[np.ndarray, Placement]:
    """Resize by `scale` and paste on a `pad_value` canvas, top-left or centred (letterbox)."""
    original_h, original_w = image.shape[:2]
    new_h, new_w = _scaled_size((original_h, original_w), scale)
    new_h, new_w = min(new_h, canvas_hw[0]), min(new_w, canvas_hw[1])
    if (new_h, new_w) != (original_h, original_w):
        # INTER_AREA averages when shrinking (no aliasing on big photos); bilinear to enlarge.
        interpolation = cv2.INTER_AREA if new_w < original_w else cv2.INTER_LINEAR
        image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top = left = 0
    if layout == "centre":
        top, left = (canvas_hw[0] - new_h) // 2, (canvas_hw[1] - new_w) // 2
    canvas = np.full((*canvas_hw, 3), pad_value, np.uint8)
    canvas[top : top + new_h, left : left + new_w] = image
    # Per-axis scales: rounding the resized size makes them differ by a fraction of a pixel.
    placement = Placement(
        canvas_hw, new_w / original_w, new_h / original_h, offset_x=left, offset_y=top
    )
    return canvas, placement


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box with many, on continuous coordinates (no legacy +1 pixel)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS: indices kept, best score first; a box survives when IoU ≤ threshold.

    Continuous IoU (unlike the "+1 pixel" legacy form) is scale invariant, so running NMS
    in original or network pixels gives the same answer.
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[best], boxes[rest]) <= threshold]
    return np.asarray(keep, np.int64)


def largest(faces: list[Face], count: int) -> list[Face]:
    """The `count` largest faces by box area (0 = all), returned best score first."""
    if count <= 0 or len(faces) <= count:
        return faces
    kept = sorted(faces, key=lambda f: f.area, reverse=True)[:count]
    return sorted(kept, key=lambda f: f.score, reverse=True)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Accept (H, W) grey, (H, W, 3) BGR or (H, W, 4) BGRA uint8; return (H, W, 3) BGR."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("expected a uint8 numpy image")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"expected an (H, W, 3) BGR image, got shape {image.shape}")


def squeeze_batch(output: np.ndarray) -> np.ndarray:
    """Drop a leading batch axis of 1, so batched [1, N, k] and unbatched [N, k] look alike."""
    return output[0] if output.ndim >= 3 and output.shape[0] == 1 else output


class Detector(OnnxModel, ABC):
    """One ONNX face detector. Subclasses set the family and decode raw outputs.

    The input canvas is planned per image (`prepare`), so `input_hw` is the file's fixed
    size or None; session, preprocessing and tensor conversion come from `OnnxModel`.
    """

    layout: ClassVar[Layout] = "top_left"
    pad_value: ClassVar[float] = 0.0
    clip_boxes: ClassVar[bool] = False
    has_landmarks: bool = True

    def __init__(
        self,
        spec: ModelSpec,
        config: DetectorConfig | None = None,
        runtime: SessionSettings | None = None,
    ) -> None:
        super().__init__(spec, runtime)
        self.config = config or DetectorConfig()
        self._check_outputs(self.io)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.config})"

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in original-image pixels, best score first."""
        image = as_bgr(image_bgr)
        canvas, placement = self.prepare(image)
        raw = self.run(self.to_tensor(canvas))
        found = self.decode(raw, placement.canvas_hw, self.config.score_threshold)
        return self._finish(found, placement, image.shape[:2])

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Placement]:
        """The network canvas for this image and where the image sits on it."""
        canvas_hw, scale = plan_canvas(image.shape[:2], self.io.fixed_hw(), self.config)
        return place_image(image, canvas_hw, scale, self.layout, self.pad_value)

    def _finish(
        self, found: Candidates, placement: Placement, image_hw: tuple[int, int]
    ) -> list[Face]:
        found = found.take(found.scores >= self.config.score_threshold)
        if len(found) > PRE_NMS_LIMIT:
            found = found.take(np.argsort(-found.scores, kind="stable")[:PRE_NMS_LIMIT])
        boxes = placement.to_original(found.boxes.reshape(-1, 2, 2)).reshape(-1, 4)
        landmarks = placement.to_original(found.landmarks)
        if self.clip_boxes:
            height, width = image_hw
            boxes = np.clip(boxes, 0, [width, height, width, height])
        keep = nms(boxes, found.scores, self.config.nms_threshold)
        faces = [
            Face(
                box=boxes[i].astype(np.float32),
                score=float(found.scores[i]),
                landmarks=landmarks[i].astype(np.float32),
            )
            for i in keep
        ]
        return largest(faces, self.config.max_faces)

    @abstractmethod
    def _check_outputs(self, io: ModelIO) -> None:
        """Read the output layout from the file; ValueError when this family cannot decode it."""

    @abstractmethod
    def decode(
        self, outputs: list[np.ndarray], canvas_hw: tuple[int, int], threshold: float
    ) -> Candidates:
        """Raw outputs → candidates in canvas pixels (may pre-filter at `threshold`)."""
