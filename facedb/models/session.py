"""onnxruntime sessions: created once per (file, settings) per process, then reused.

`SessionSettings` are the knobs of the runtime, not of a model: intra-op threads, whether
idle worker threads spin (`session.intra_op.allow_spinning`) and the execution providers.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

_ORT_DTYPES: dict[str, type[np.floating]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
}
_lock = threading.Lock()

CPU_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)
_SPINNING_VALUES = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}


def default_threads() -> int:
    """Intra-op threads per session: FACEDB_ORT_THREADS, else every core of the machine."""
    return int(os.environ.get("FACEDB_ORT_THREADS", "0")) or (os.cpu_count() or 1)


def default_allow_spinning() -> bool | None:
    """FACEDB_ORT_SPINNING (1/0, true/false, on/off), else False: idle intra-op threads
    sleep instead of spinning. The detector and recognizer sessions take turns, and a
    spinning idle session takes the core the busy one needs: measured with
    `python -m benchmarks.pipeline --grid`, 1 worker x 2 threads ran at 0.62x of 1 x 1 with
    spinning and 1.42x without (docs/DESIGN.md, "Threads and sessions")."""
    text = os.environ.get("FACEDB_ORT_SPINNING", "").strip().lower()
    if not text:
        return False
    if text not in _SPINNING_VALUES:
        raise ValueError(f"FACEDB_ORT_SPINNING must be 1 or 0, got {text!r}")
    return _SPINNING_VALUES[text]


@dataclass(frozen=True)
class SessionSettings:
    """How a session runs. `None` fields take the defaults above when the session is made."""

    threads: int | None = None  # intra-op threads; None: default_threads()
    allow_spinning: bool | None = None  # None: default_allow_spinning()
    providers: tuple[str, ...] = CPU_PROVIDERS  # in order of preference

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: the default), got {self.threads}")
        if not self.providers:
            raise ValueError("at least one execution provider is needed")


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
        shape = self.input.shape
        if len(shape) != 4:
            return None
        h, w = shape[2], shape[3]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None

    def fixed_batch(self) -> int | None:
        b = self.input.shape[0] if self.input.shape else None
        return b if isinstance(b, int) else None


def _tensor_info(arg: ort.NodeArg) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) and d > 0 else (d or None) for d in arg.shape)
    return TensorInfo(arg.name, shape, _ORT_DTYPES.get(arg.type, np.float32))


def inspect_model(session: ort.InferenceSession) -> ModelIO:
    return ModelIO(
        inputs=tuple(_tensor_info(a) for a in session.get_inputs()),
        outputs=tuple(_tensor_info(a) for a in session.get_outputs()),
    )


def _check_providers(providers: tuple[str, ...]) -> None:
    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise ValueError(
            f"execution provider(s) {', '.join(missing)} not available in this onnxruntime "
            f"build (available: {', '.join(available)})"
        )


def create_session(
    path: str, threads: int, allow_spinning: bool | None, providers: tuple[str, ...]
) -> ort.InferenceSession:
    """A new session with facedb's options (benchmarks make their own; code uses
    `get_session`, which keeps one per file and settings)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if allow_spinning is not None:
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
        )
    return ort.InferenceSession(path, sess_options=options, providers=list(providers))


_cached_session = lru_cache(maxsize=64)(create_session)


def get_session(
    path: Path | str,
    threads: int | None = None,
    *,
    allow_spinning: bool | None = None,
    providers: tuple[str, ...] = CPU_PROVIDERS,
) -> ort.InferenceSession:
    """The process-wide session for this file and settings (sessions are thread-safe for
    `run`). `threads` None or 0 means `default_threads()`; `allow_spinning` None means
    `default_allow_spinning()`; an unavailable provider is a ValueError naming the available
    ones."""
    settings = SessionSettings(threads, allow_spinning, tuple(providers))
    return session_for(path, settings)


def session_for(path: Path | str, settings: SessionSettings) -> ort.InferenceSession:
    """`get_session` with the settings as one value."""
    _check_providers(settings.providers)
    threads = settings.threads or default_threads()
    spinning = (
        default_allow_spinning() if settings.allow_spinning is None else settings.allow_spinning
    )
    with _lock:
        return _cached_session(str(Path(path).resolve()), threads, spinning, settings.providers)
