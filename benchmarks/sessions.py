"""onnxruntime sessions and recognizer files for benchmarks that compare session settings.

`ort_session` builds a session with facedb's options (facedb.models.session) plus an
explicit intra-op spinning choice, so a benchmark can swap it into a facedb model or give
it to a peer library; `float32_recognizer` is `facedb models optimize` output, written once.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from benchmarks.paths import BENCH_OUT
from facedb.models.optimize import optimize_model
from facedb.models.session import CPU_PROVIDERS, create_session
from facedb.vision.embed.base import file_sha256


def ort_session(path: Path, threads: int, spinning: bool = True) -> ort.InferenceSession:
    return create_session(str(path), threads, spinning, CPU_PROVIDERS)


def float32_recognizer(source: Path) -> Path:
    """`facedb models optimize` output for `source`, under bench-out/models/."""
    target = BENCH_OUT / "models" / f"{source.stem}-f32-{file_sha256(source)[:12]}.onnx"
    if not target.is_file():
        optimize_model(source, target)
    return target
