"""What the analysis families add to `OnnxModel`: crops of any size in, every output out.

`OnnxModel` (facedb.models) owns the session, the input read from the file, the family's
preprocessing and batched runs. An analysis family declares on its class how its crops
become the network's input where that differs from the colour NCHW default (`layout`
NHWC for XSeg, `grey` for MiniXception) and the input size used when the file leaves it
dynamic (`default_input_hw`), and decodes the outputs in `predict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import cv2
import numpy as np

from facedb.models import ModelSpec, ModelSpecError, OnnxModel, SessionSettings
from facedb.vision.types import Face

Layout = Literal["NCHW", "NHWC"]
MAX_BATCH = 32  # crops per run for dynamic-batch files: bounds the input tensor's memory


class AnalysisModel(OnnxModel):
    """One analysis ONNX file. Subclasses set the class variables and implement `predict`."""

    layout: ClassVar[Layout] = "NCHW"
    grey: ClassVar[bool] = False  # one grey channel instead of three colour channels
    default_input_hw: ClassVar[tuple[int, int] | None] = (112, 112)
    max_batch: ClassVar[int] = MAX_BATCH

    def __init__(self, spec: ModelSpec, runtime: SessionSettings | None = None) -> None:
        super().__init__(spec, runtime)
        self.input_hw: tuple[int, int] = self._input_hw()  # NHWC files keep H, W at 1, 2
        self._check_channels()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, input={self.input_hw}, {self.layout})"

    def predict(self, image: np.ndarray, faces: Sequence[Face]) -> Sequence[Any]:
        """One result per face, in order (each family returns its own result type)."""
        raise NotImplementedError

    # ---- input ----------------------------------------------------------------------------

    def _input_hw(self) -> tuple[int, int]:
        shape = self.io.input.shape
        if len(shape) != 4:
            raise ModelSpecError(f"{self.name}: expected a 4-D image input, got {shape}")
        h, w = (shape[1], shape[2]) if self.layout == "NHWC" else (shape[2], shape[3])
        if isinstance(h, int) and isinstance(w, int):
            return (h, w)
        assert self.default_input_hw is not None
        return self.default_input_hw

    def _check_channels(self) -> None:
        shape = self.io.input.shape
        channels = shape[3] if self.layout == "NHWC" else shape[1]
        wanted = 1 if self.grey else 3
        if isinstance(channels, int) and channels != wanted:
            raise ModelSpecError(
                f"{self.name}: a {self.family} model takes {wanted} channel(s) in "
                f"{self.layout} order, the file's input is {shape}"
            )

    def to_tensor(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) BGR uint8 at the input size → the input tensor; grey and NHWC
        families normalise here, the colour NCHW ones in `OnnxModel.to_tensor`."""
        if not self.grey and self.layout == "NCHW":
            return super().to_tensor(images)
        pre = self.preprocessing
        if self.grey:
            grey = np.stack([cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in images])
            pixels = ((grey.astype(np.float32) - pre.mean[0]) / pre.std[0])[..., None]
        else:
            pixels = images[..., ::-1] if pre.channel_order == "RGB" else images
            mean = np.asarray(pre.mean, np.float32)
            std = np.asarray(pre.std, np.float32)
            pixels = (pixels.astype(np.float32) - mean) / std
        if self.layout == "NCHW":
            pixels = pixels.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(pixels, dtype=self.input_dtype)

    # ---- run ------------------------------------------------------------------------------

    def run_crops(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Every output of the network for these BGR crops of any sizes, one row per crop."""
        if len(crops) == 0:
            raise ValueError(f"{self.name}: run_crops needs at least one crop")
        height, width = self.input_hw
        sized = [
            c if c.shape[:2] == (height, width) else cv2.resize(c, (width, height)) for c in crops
        ]
        return self.run_batched(np.stack(sized))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along `axis`."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)
