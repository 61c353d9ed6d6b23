"""Fixtures shared by every test area."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import SHARED


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found at {SHARED} (set FACEDB_SHARED)")
    return SHARED
