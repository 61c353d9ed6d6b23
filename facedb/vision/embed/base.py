"""Recognizer base: aligned BGR crops in, L2-normalised float32 embeddings out.

Everything that differs between files is read from the ONNX file itself (input size,
float16 or float32, fixed or dynamic batch, embedding size); what differs between
families is only the default preprocessing (channel order, mean, std) and small hooks.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import onnxruntime as ort

from facedb.models.defaults import default_preprocessing
from facedb.models.session import ModelIO, get_session, inspect_model
from facedb.models.spec import ModelSpec, Preprocessing
from facedb.models.store import file_digest

CROP_SIZE = 112  # the aligned crop size every caller produces (facedb.vision.align)
MAX_BATCH = 64  # bounds the input tensor's memory for dynamic-batch models


@lru_cache(maxsize=32)
def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a model file, read once per process (galleries are bound to it).

    Shares the model store's digest memo, so a file verified on download is not hashed again.
    """
    return file_digest(Path(path))


@lru_cache(maxsize=32)
def quantizes_per_batch(path: Path) -> bool:
    """True when the graph quantizes activations dynamically (DynamicQuantizeLinear).

    Such a graph picks one int8 scale for the whole input tensor, so a face's embedding
    would depend on which other faces share its batch (cosine 0.985-0.993 to itself on the
    int8 ArcFace file). Op types are plain strings in the ONNX protobuf, so a byte search
    finds them without the onnx package.
    """
    return b"DynamicQuantizeLinear" in Path(path).read_bytes()


class Embedder:
    """One recognizer model. Subclasses set `family` and may adjust the hooks below."""

    family: ClassVar[str] = ""

    def __init__(self, spec: ModelSpec, *, flip: bool = False, threads: int | None = None):
        if spec.family != self.family:
            raise ValueError(f"{type(self).__name__} needs a {self.family!r} model, got {spec}")
        self.spec = spec
        self.flip = flip
        self.preprocessing: Preprocessing = spec.preprocessing_or(
            default_preprocessing(spec.family)
        )
        self.session: ort.InferenceSession = get_session(spec.path, threads)
        self.io: ModelIO = inspect_model(self.session)
        self._input_name = self.io.input.name
        self._output_name = self.io.outputs[self.output_index()].name
        self.input_hw: tuple[int, int] = self.io.fixed_hw() or (CROP_SIZE, CROP_SIZE)
        self.input_dtype: type[np.floating] = self.io.input.dtype
        self.batch_limit: int = self._batch_limit()
        self._check_model()
        self.dim: int = self._read_dim()
        self._scale = np.float32(1.0) / np.asarray(self.preprocessing.std, dtype=np.float32)
        self._mean = np.asarray(self.preprocessing.mean, dtype=np.float32)

    # ---- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def sha256(self) -> str:
        return file_sha256(self.spec.path)

    def __repr__(self) -> str:
        pre = self.preprocessing
        return (
            f"{type(self).__name__}({self.name}, dim={self.dim}, input={self.input_hw} "
            f"{np.dtype(self.input_dtype).name}, batch<={self.batch_limit}, "
            f"{pre.channel_order}, flip={self.flip})"
        )

    # ---- family hooks ---------------------------------------------------------------------

    def output_index(self) -> int:
        """Which output holds the embedding (the first, unless a family says otherwise)."""
        return 0

    def _check_model(self) -> None:
        """Refuse files this family cannot use; the base accepts any NCHW 3-channel input."""
        shape = self.io.input.shape
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"{self.name}: expected an N x 3 x H x W input, got {shape}")

    # ---- embedding ------------------------------------------------------------------------

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) BGR uint8 aligned crops → (N, dim) float32 unit vectors.

        With `flip`, each embedding is the sum of the crop's and its mirror's raw outputs,
        normalised afterwards (test-time augmentation).
        """
        crops = self._as_batch(crops)
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.flip:
            return l2_normalise(self.raw(crops))
        mirrored = crops[:, :, ::-1]
        both = self.raw(np.concatenate([crops, mirrored]))
        return l2_normalise(both[: len(crops)] + both[len(crops) :])

    def raw(self, crops: np.ndarray) -> np.ndarray:
        """The network's unnormalised float32 outputs, run in batches the file allows."""
        outputs = [
            self._run(self.to_tensor(crops[start : start + self.batch_limit]))
            for start in range(0, len(crops), self.batch_limit)
        ]
        return np.concatenate(outputs)

    def to_tensor(self, crops: np.ndarray) -> np.ndarray:
        """BGR uint8 NHWC → the model's NCHW input: resize, channel order, (x - mean) / std."""
        height, width = self.input_hw
        if crops.shape[1:3] != (height, width):
            crops = np.stack([cv2.resize(c, (width, height)) for c in crops])
        pixels = crops.astype(np.float32)
        if self.preprocessing.channel_order == "RGB":
            pixels = pixels[..., ::-1]
        pixels = (pixels - self._mean) * self._scale
        return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=self.input_dtype)

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        output = self.session.run([self._output_name], {self._input_name: tensor})[0]
        return np.asarray(output, dtype=np.float32).reshape(len(tensor), -1)

    def _batch_limit(self) -> int:
        """Crops per run: a fixed batch in the file wins; then `?batch=N` from the spec;
        then one when batching would change results; else MAX_BATCH."""
        fixed = self.io.fixed_batch()
        if fixed is not None:
            return fixed
        if "batch" in self.spec.options:
            return max(1, int(self.spec.options["batch"]))
        return 1 if quantizes_per_batch(self.spec.path) else MAX_BATCH

    def _read_dim(self) -> int:
        declared = self.io.outputs[self.output_index()].shape[-1]
        if isinstance(declared, int):
            return declared
        # Some exports leave the feature axis symbolic: one zero crop tells the truth.
        probe = np.zeros((1, *self.input_hw, 3), dtype=np.uint8)
        return int(self._run(self.to_tensor(probe)).shape[1])

    def _as_batch(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.dtype != np.uint8:
            raise ValueError(
                f"expected (N, H, W, 3) uint8 BGR crops, got {crops.shape} {crops.dtype}"
            )
        return crops


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # A zero vector stays zero rather than becoming NaN; it then matches nothing.
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
