"""Recognizer base: aligned BGR crops in, L2-normalised float32 embeddings out.

Everything that differs between files is read from the ONNX file itself (input size,
float16 or float32, fixed or dynamic batch, embedding size); what differs between
families is only the default preprocessing (channel order, mean, std) and small hooks.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from facedb.models.onnx_model import OnnxModel
from facedb.models.session import SessionSettings
from facedb.models.spec import ModelSpec
from facedb.models.store import file_digest

CROP_SIZE = 112  # the aligned crop size every caller produces (facedb.vision.align)


@lru_cache(maxsize=32)
def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a model file, read once per process (galleries are bound to it).

    Shares the model store's digest memo, so a file verified on download is not hashed again.
    """
    return file_digest(Path(path))


class Embedder(OnnxModel):
    """One recognizer model. Subclasses set `family` and may adjust the hooks below.

    Input size, dtype and batch come from the file (`OnnxModel`); 112x112 when the file's
    size is dynamic.
    """

    default_input_hw = (CROP_SIZE, CROP_SIZE)
    input_hw: tuple[int, int]  # never None here: the file's size or 112x112

    def __init__(
        self,
        spec: ModelSpec,
        *,
        flip: bool = False,
        runtime: SessionSettings | None = None,
    ):
        super().__init__(spec, runtime)
        self.flip = flip
        self._output_name = self.io.outputs[self.output_index()].name
        self._check_model()
        self.dim: int = self._read_dim()

    # ---- identity -------------------------------------------------------------------------

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
        (output,) = self.run_batched(crops, [self._output_name])
        return output.reshape(len(crops), -1)

    def _read_dim(self) -> int:
        declared = self.io.outputs[self.output_index()].shape[-1]
        if isinstance(declared, int):
            return declared
        # Some exports leave the feature axis symbolic: one zero crop tells the truth.
        probe = np.zeros((1, *self.input_hw, 3), dtype=np.uint8)
        return int(self.raw(probe).shape[1])

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
