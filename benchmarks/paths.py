"""Where the benchmarks read and write: the repository, bench-out/, and ../shared.

Every benchmark finds the shared models and photos through `shared_dir()`, so one
`FACEDB_SHARED=/elsewhere` moves them all (the tests use the same rule, tests/paths.py).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_OUT = REPO / "bench-out"


def shared_dir() -> Path:
    """../shared beside the repository, or FACEDB_SHARED when set."""
    return Path(os.environ.get("FACEDB_SHARED", REPO.parent / "shared")).resolve()


def shared_model(name: str) -> Path:
    return shared_dir() / "models" / name


def fixture_models() -> dict[str, str]:
    """The fixture pipeline's specs: SCRFD-500M + the ArcFace w600k MBF int8 recognizer."""
    return {
        "detector": f"scrfd:{shared_model('scrfd_500m_kps.onnx')}",
        "recognizer": f"arcface:{shared_model('arcface_w600k_mbf_int8.onnx')}",
    }
