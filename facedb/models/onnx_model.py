"""`OnnxModel`: the one base every ONNX model family stands on.

A subclass names its family and, where it has one, the input size it wants when the file
leaves height and width dynamic; everything else comes from the file or the spec:

    class GenderAgeModel(OnnxModel):
        family = "genderage"        # a row of facedb.models.families.FAMILIES
        default_input_hw = (96, 96)

        def predict(self, crops: np.ndarray) -> np.ndarray:
            (logits,) = self.run_batched(crops)   # BGR uint8 NHWC in, float32 out
            return logits

What the base does, so families cannot drift apart on it:
- one process-wide onnxruntime session per (file, `SessionSettings`) — threads, spinning,
  execution providers (`facedb.models.session`);
- input and output names, shapes and dtypes read from the file (`self.io`), never assumed;
- the family's preprocessing (channel order, mean, std; `facedb.models.families`), with the
  spec's `?order=&mean=&std=` overrides applied;
- BGR uint8 HWC images → the model's NCHW tensor (resize to the input size, channel order,
  (x - mean) / std, float32 or float16 as the file wants): `to_tensor`;
- batched runs in chunks the file allows: a fixed batch in the file, else `?batch=N`, else
  one image per run when the graph quantizes per batch, else `max_batch`: `run_batched`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Self

import cv2
import numpy as np
import onnxruntime as ort

from facedb.models.families import Preprocessing, default_preprocessing
from facedb.models.session import ModelIO, SessionSettings, inspect_model, session_for
from facedb.models.spec import ModelSpec, resolve_model

MAX_BATCH = 64  # images per run for dynamic-batch files: bounds the input tensor's memory


@lru_cache(maxsize=32)
def quantizes_per_batch(path: Path) -> bool:
    """True when the graph quantizes activations dynamically (DynamicQuantizeLinear).

    Such a graph picks one int8 scale for the whole input tensor, so one image's output
    would depend on which other images share its batch (cosine 0.985-0.993 to itself on the
    int8 ArcFace file). Op types are plain strings in the ONNX protobuf, so a byte search
    finds them without the onnx package.
    """
    return b"DynamicQuantizeLinear" in Path(path).read_bytes()


def images_to_tensor(
    images: np.ndarray, pre: Preprocessing, dtype: type[np.floating] = np.float32
) -> np.ndarray:
    """(N, H, W, 3) BGR uint8 → (N, 3, H, W) `dtype`: channel order, then (x - mean) / std.

    OpenCV does the swap, the mean (given in the network's order, as ours is) and one scale
    in a single pass, two to four times faster than numpy and bit-identical to it.
    """
    uniform = len(set(pre.std)) == 1
    blob: np.ndarray = cv2.dnn.blobFromImages(
        list(images),
        scalefactor=1.0 / pre.std[0] if uniform else 1.0,
        mean=pre.mean,
        swapRB=pre.channel_order == "RGB",
    )
    if not uniform:
        blob = blob / np.asarray(pre.std, np.float32)[None, :, None, None]
    return blob.astype(dtype, copy=False)


class OnnxModel:
    """One ONNX file of one family: its session, what the file declares, how to feed it.

    Class attributes a family sets:
      `family`           — key of `facedb.models.families.FAMILIES` (required);
      `default_input_hw` — (height, width) to use when the file's are dynamic; None lets
                           each call choose (detectors size a canvas per image);
      `max_batch`        — images per run for dynamic-batch files.

    Instance attributes: `spec`, `session`, `io` (ModelIO), `preprocessing`, `input_name`,
    `input_dtype`, `input_hw` (the file's fixed size, else `default_input_hw`),
    `batch_limit`; `name` is the spec's name. A subclass that adds constructor arguments
    keeps `runtime` as a keyword (`from_spec` passes it by name) and defaults the rest.
    """

    family: ClassVar[str] = ""
    default_input_hw: ClassVar[tuple[int, int] | None] = None
    max_batch: ClassVar[int] = MAX_BATCH

    def __init__(self, spec: ModelSpec, runtime: SessionSettings | None = None) -> None:
        if spec.family != self.family:
            raise ValueError(
                f"{type(self).__name__} needs a {self.family!r} model, got {spec.name} "
                f"({spec.family})"
            )
        self.spec = spec
        self.preprocessing: Preprocessing = spec.preprocessing_or(
            default_preprocessing(self.family)
        )
        self.session: ort.InferenceSession = session_for(spec.path, runtime or SessionSettings())
        self.io: ModelIO = inspect_model(self.session)
        self.input_name: str = self.io.input.name
        self.input_dtype: type[np.floating] = self.io.input.dtype
        self.input_hw: tuple[int, int] | None = self.io.fixed_hw() or self.default_input_hw
        self.batch_limit: int = self._batch_limit()

    @classmethod
    def from_spec(cls, spec: str | ModelSpec, runtime: SessionSettings | None = None) -> Self:
        """A model for a registry name, `FAMILY:PATH[?...]` string or resolved spec."""
        return cls(resolve_model(spec) if isinstance(spec, str) else spec, runtime=runtime)

    @property
    def name(self) -> str:
        return self.spec.name

    # ---- input --------------------------------------------------------------------------

    def to_tensor(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) or (H, W, 3) BGR uint8 → the NCHW input tensor, resized to
        `input_hw` when that is set (bilinear)."""
        batch = np.asarray(images)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[3] != 3 or batch.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: expected (N, H, W, 3) uint8 BGR images, got "
                f"{batch.shape} {batch.dtype}"
            )
        if self.input_hw is not None and batch.shape[1:3] != self.input_hw:
            height, width = self.input_hw
            batch = np.stack([cv2.resize(image, (width, height)) for image in batch])
        return images_to_tensor(batch, self.preprocessing, self.input_dtype)

    # ---- running ------------------------------------------------------------------------

    def run(self, tensor: np.ndarray, outputs: Sequence[str] | None = None) -> list[np.ndarray]:
        """One session run on a ready tensor; the named outputs (default: all) as float32."""
        names = list(outputs) if outputs is not None else None
        results = self.session.run(names, {self.input_name: tensor})
        return [np.asarray(result, dtype=np.float32) for result in results]

    def run_batched(
        self, images: np.ndarray, outputs: Sequence[str] | None = None
    ) -> list[np.ndarray]:
        """`to_tensor` + `run` over `batch_limit` images at a time; each output's chunks are
        joined along axis 0, so row i belongs to image i. At least one image is needed."""
        batch = np.asarray(images)
        if batch.ndim == 3:
            batch = batch[None]
        if len(batch) == 0:
            raise ValueError(f"{self.name}: run_batched needs at least one image")
        chunks = [
            self.run(self.to_tensor(batch[start : start + self.batch_limit]), outputs)
            for start in range(0, len(batch), self.batch_limit)
        ]
        return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]

    def _batch_limit(self) -> int:
        """Images per run: a fixed batch in the file wins; then `?batch=N` from the spec;
        then one when batching would change results; else `max_batch`."""
        fixed = self.io.fixed_batch()
        if fixed is not None:
            return fixed
        if "batch" in self.spec.options:
            return max(1, int(self.spec.options["batch"]))
        return 1 if quantizes_per_batch(self.spec.path) else self.max_batch

    def __repr__(self) -> str:
        pre = self.preprocessing
        return (
            f"{type(self).__name__}({self.name!r}, input={self.input_hw} "
            f"{np.dtype(self.input_dtype).name}, batch<={self.batch_limit}, {pre.channel_order})"
        )
