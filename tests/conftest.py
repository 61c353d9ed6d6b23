"""Fixtures shared by every test area."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.milvus_server import LocalMilvus
from tests.paths import REPO, SHARED


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found at {SHARED} (set FACEDB_SHARED)")
    return SHARED


# The real servers, one per session for every test folder (here, not in a folder's conftest:
# a fixture imported into a test module is another fixture, and would start a second one).


@pytest.fixture(scope="session")
def postgres_server() -> str:
    url = os.environ.get("FACEDB_TEST_POSTGRES_URL")
    if url:
        return url
    started = subprocess.run(
        [str(REPO / ".ci" / "start-postgres")], capture_output=True, text=True, check=False
    )
    if started.returncode != 0 or not started.stdout.strip():
        pytest.fail(f"PostgreSQL unavailable: .ci/start-postgres said {started.stderr[-2000:]}")
    return started.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory) -> Iterator[str]:
    """A real Milvus standalone server for the session (about 10-20 s to start), or the one
    FACEDB_TEST_MILVUS_URI names."""
    url = os.environ.get("FACEDB_TEST_MILVUS_URI")
    if url:
        yield url
        return
    server = LocalMilvus(tmp_path_factory.mktemp("milvus"))
    yield server.uri
    server.stop()
