"""Where the real models and photos live (../shared beside the repo, or FACEDB_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEDB_SHARED", REPO.parent / "shared")).resolve()
MODELS = SHARED / "models"
DATA = SHARED / "data"
LFW = DATA / "lfw"
EDGE = DATA / "edge"
SPOOF = DATA / "spoof"

SCRFD = f"scrfd:{MODELS / 'scrfd_500m_kps.onnx'}"
ARCFACE = f"arcface:{MODELS / 'arcface_w600k_mbf_int8.onnx'}"
