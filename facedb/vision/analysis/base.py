"""What every analysis model shares: the session, the input read from the file, batched runs.

A family declares how its crops become the network's input (colour order, mean / std,
grey or colour, NCHW or NHWC, the input size used when the file leaves it dynamic) and how
its outputs are decoded; everything else is here. Sizes, dtypes and fixed batches are
read from the ONNX file itself (`facedb.models.session.ModelIO`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

import cv2
import numpy as np

from facedb.models import ModelSpec, Preprocessing, get_session, inspect_model, resolve_model
from facedb.models.defaults import default_preprocessing
from facedb.models.session import ModelIO
from facedb.models.spec import ModelSpecError
from facedb.vision.types import Face

Layout = Literal["NCHW", "NHWC"]
MAX_BATCH = 32  # crops per run for dynamic-batch files: bounds the input tensor's memory


class AnalysisModel:
    """One analysis ONNX file. Subclasses set the class variables and decode the outputs."""

    family: ClassVar[str] = ""
    layout: ClassVar[Layout] = "NCHW"
    grey: ClassVar[bool] = False  # one grey channel instead of three colour channels
    default_size: ClassVar[tuple[int, int]] = (112, 112)  # (height, width) for dynamic files

    def __init__(self, spec: ModelSpec, threads: int | None = None) -> None:
        if spec.family != self.family:
            raise ModelSpecError(
                f"{type(self).__name__} needs a {self.family!r} model, got {spec.family!r}"
            )
        self.spec = spec
        self.preprocessing: Preprocessing = spec.preprocessing_or(
            default_preprocessing(spec.family)
        )
        self.session = get_session(spec.path, threads)
        self.io: ModelIO = inspect_model(self.session)
        self.input_hw: tuple[int, int] = self._input_hw()
        self._fixed_batch = self.io.input.shape[0]
        self._mean = np.asarray(self.preprocessing.mean, dtype=np.float32)
        self._scale = np.float32(1.0) / np.asarray(self.preprocessing.std, dtype=np.float32)
        self._check_channels()

    @classmethod
    def from_spec(cls, spec: str | ModelSpec, threads: int | None = None) -> Self:
        return cls(resolve_model(spec) if isinstance(spec, str) else spec, threads)

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, input={self.input_hw}, {self.layout})"

    # ---- input ----------------------------------------------------------------------------

    def _input_hw(self) -> tuple[int, int]:
        shape = self.io.input.shape
        if len(shape) != 4:
            raise ModelSpecError(f"{self.name}: expected a 4-D image input, got {shape}")
        h, w = (shape[1], shape[2]) if self.layout == "NHWC" else (shape[2], shape[3])
        if isinstance(h, int) and isinstance(w, int):
            return (h, w)
        return self.default_size

    def _check_channels(self) -> None:
        shape = self.io.input.shape
        channels = shape[3] if self.layout == "NHWC" else shape[1]
        wanted = 1 if self.grey else 3
        if isinstance(channels, int) and channels != wanted:
            raise ModelSpecError(
                f"{self.name}: a {self.family} model takes {wanted} channel(s) in "
                f"{self.layout} order, the file's input is {shape}"
            )

    def to_tensor(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops → the input tensor: resize, colour order or grey, (x - mean) / std."""
        height, width = self.input_hw
        sized = [
            c if c.shape[:2] == (height, width) else cv2.resize(c, (width, height)) for c in crops
        ]
        pixels = np.stack(sized).astype(np.float32)
        if self.grey:
            grey = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in sized])
            pixels = ((grey.astype(np.float32) - self._mean[0]) * self._scale[0])[..., None]
        else:
            if self.preprocessing.channel_order == "RGB":
                pixels = pixels[..., ::-1]
            pixels = (pixels - self._mean) * self._scale
        if self.layout == "NCHW":
            pixels = pixels.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(pixels, dtype=self.io.input.dtype)

    def predict(self, image: np.ndarray, faces: Sequence[Face]) -> Sequence[Any]:
        """One result per face, in order (each family returns its own result type)."""
        raise NotImplementedError

    # ---- run ------------------------------------------------------------------------------

    def run(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Every output of the network for these crops (float32, one row per crop)."""
        if len(crops) == 0:
            raise ValueError("run() needs at least one crop")
        tensor = self.to_tensor(crops)
        step = self._fixed_batch if isinstance(self._fixed_batch, int) else MAX_BATCH
        parts = [
            self.session.run(None, {self.io.input.name: tensor[i : i + step]})
            for i in range(0, len(tensor), step)
        ]
        return [
            np.concatenate([np.asarray(p[k], dtype=np.float32) for p in parts])
            for k in range(len(parts[0]))
        ]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along `axis`."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)
