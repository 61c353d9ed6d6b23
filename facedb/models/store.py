"""The model cache directory: download on first use, SHA-256 verified, written atomically.

TODO(models helper): implement.
"""

from __future__ import annotations

import os
from pathlib import Path

from facedb.models.registry import RegistryEntry


def model_dir() -> Path:
    return Path(os.environ.get("FACEDB_MODEL_DIR", "~/.facedb/models")).expanduser()


def ensure_model(entry: RegistryEntry, *, download: bool = True) -> Path:
    raise NotImplementedError
