"""onnxruntime sessions: created once per (file, threads) per process, then reused."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
_lock = threading.Lock()


def default_threads() -> int:
    """Intra-op threads per session: FACEDB_ORT_THREADS, else every core of the machine."""
    return int(os.environ.get("FACEDB_ORT_THREADS", "0")) or (os.cpu_count() or 1)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | str | None, ...]  # ints where fixed, a name or None where dynamic
    dtype: type[np.floating]


@dataclass(frozen=True)
class ModelIO:
    """What an ONNX file says about itself; models read sizes and layouts from here."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    @property
    def input(self) -> TensorInfo:
        return self.inputs[0]

    def fixed_hw(self) -> tuple[int, int] | None:
        """The input's (height, width) when both are fixed in the file, else None."""
        h, w = self.input.shape[2], self.input.shape[3]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None

    def fixed_batch(self) -> int | None:
        b = self.input.shape[0]
        return b if isinstance(b, int) else None


def _tensor_info(arg: ort.NodeArg) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) and d > 0 else (d or None) for d in arg.shape)
    return TensorInfo(arg.name, shape, _ORT_DTYPES.get(arg.type, np.float32))


def inspect_model(session: ort.InferenceSession) -> ModelIO:
    return ModelIO(
        inputs=tuple(_tensor_info(a) for a in session.get_inputs()),
        outputs=tuple(_tensor_info(a) for a in session.get_outputs()),
    )


@lru_cache(maxsize=64)
def _cached_session(path: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # pipeline --grid
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def get_session(path: Path | str, threads: int | None = None) -> ort.InferenceSession:
    """The process-wide session for this file (sessions are thread-safe for `run`)."""
    with _lock:
        return _cached_session(str(Path(path).resolve()), threads or default_threads())
