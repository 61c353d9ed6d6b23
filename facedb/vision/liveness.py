"""Passive liveness (presentation-attack detection) with MiniFASNet V2 / V1SE (MODEL_FACTS §5).

Each model sees the face box enlarged about its centre by its own crop scale (V2 2.7,
V1SE 4.0), so it judges the face *with its surroundings*: screen bezels, paper edges and
moiré around a face are much of what separates a photo of a photo from a live capture.

The crop follows the original Silent-Face code, not uniface: when the enlarged box crosses
an image edge it is shifted back inside and keeps its size. Clipping it instead (uniface)
gives smaller, off-centre crops near borders, which the weights were never trained on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import cv2
import numpy as np

from facedb.models.onnx_model import OnnxModel
from facedb.models.session import SessionSettings
from facedb.models.spec import ModelSpec
from facedb.vision.types import Face

LIVE_CLASS = 1  # the 3 outputs are (spoof, live, spoof)
DEFAULT_CROP_SCALE = 2.7  # V2, the upstream default model
_SCALE_BY_VARIANT = ((re.compile(r"v1[_-]?se|4[._]0"), 4.0), (re.compile(r"v2|2[._]7"), 2.7))

Box = tuple[int, int, int, int]


def liveness_crop_box(box: np.ndarray, image_hw: tuple[int, int], scale: float) -> Box:
    """The inclusive (x1, y1, x2, y2) pixel box a MiniFASNet model sees for a face box.

    The box is truncated to integer x, y, w, h (as upstream), enlarged by `scale` about its
    centre, with the scale lowered so the result fits the image ((H-1)/h, (W-1)/w), then
    shifted back inside the image without changing its size.
    """
    height, width = image_hw
    x, y = int(box[0]), int(box[1])
    w, h = max(int(box[2] - box[0]), 1), max(int(box[3] - box[1]), 1)
    scale = min((height - 1) / h, (width - 1) / w, scale)
    new_w, new_h = w * scale, h * scale
    centre_x, centre_y = x + w / 2, y + h / 2
    x1, x2 = _shift_inside(centre_x - new_w / 2, centre_x + new_w / 2, width - 1)
    y1, y2 = _shift_inside(centre_y - new_h / 2, centre_y + new_h / 2, height - 1)
    return int(x1), int(y1), int(x2), int(y2)


def _shift_inside(low: float, high: float, limit: float) -> tuple[float, float]:
    """Move the span [low, high] into [0, limit] keeping its length (it is never longer)."""
    if low < 0:
        high, low = high - low, 0.0
    if high > limit:
        low, high = low - (high - limit), limit
    return low, high


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def crop_scale_for(spec: ModelSpec) -> float:
    """`crop_scale` from the spec's options, else read from the variant in its name, else 2.7."""
    if "crop_scale" in spec.options:
        return float(spec.options["crop_scale"])
    text = f"{spec.name} {spec.path.name}".lower()
    for pattern, scale in _SCALE_BY_VARIANT:
        if pattern.search(text):
            return scale
    return DEFAULT_CROP_SCALE


class LivenessModel(OnnxModel):
    """One MiniFASNet file: crops every face of an image, runs them as one batch.

    The file must fix its input size: it is the patch size the model was trained on.
    """

    family = "minifasnet"
    input_hw: tuple[int, int]  # never None: required to be fixed in the file

    def __init__(self, spec: ModelSpec, runtime: SessionSettings | None = None) -> None:
        super().__init__(spec, runtime)
        if self.io.fixed_hw() is None:
            raise ValueError(f"{spec.name}: the input size must be fixed in the file")
        self.crop_scale = crop_scale_for(spec)

    def crop(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The (h, w, 3) uint8 patch this model sees for one face box."""
        x1, y1, x2, y2 = liveness_crop_box(box, image.shape[:2], self.crop_scale)
        patch = image[y1 : y2 + 1, x1 : x2 + 1]
        height, width = self.input_hw
        return cv2.resize(patch, (width, height), interpolation=cv2.INTER_LINEAR)

    def probabilities(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """(N, classes) softmax probabilities, one row per face."""
        if not faces:
            return np.zeros((0, 3), np.float32)
        patches = np.stack([self.crop(image, face.box) for face in faces])
        (logits,) = self.run_batched(patches, [self.io.outputs[0].name])
        return softmax(logits.reshape(len(faces), -1))

    def live_scores(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """(N,) P(live) per face."""
        return self.probabilities(image, faces)[:, LIVE_CLASS]


class LivenessChecker:
    """One or more liveness models; with several, P(live) is the mean of their P(live).

    (Upstream sums the models' probability vectors and takes the argmax; averaging P(live)
    keeps a threshold meaningful whatever the number of models.)
    """

    def __init__(self, models: Sequence[LivenessModel]) -> None:
        if not models:
            raise ValueError("a liveness checker needs at least one model")
        self.models = list(models)

    @classmethod
    def from_specs(
        cls, specs: Sequence[str | ModelSpec], runtime: SessionSettings | None = None
    ) -> LivenessChecker:
        return cls([LivenessModel.from_spec(spec, runtime) for spec in specs])

    def per_model(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """(models, N) P(live) of every model for every face."""
        return np.stack([model.live_scores(image, faces) for model in self.models])

    def scores(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """(N,) fused P(live) per face."""
        return self.per_model(image, faces).mean(axis=0)
