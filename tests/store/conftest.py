"""Storage fixtures: every test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from FACEDB_TEST_POSTGRES_URL (CI), else from `.ci/start-postgres`; if it
cannot be had the tests fail rather than skip. Each session gets its own database, dropped
at the end.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from facedb.index.backend import FAISS, MILVUS, open_backend
from facedb.storage.catalog import Catalog, GalleryConfig
from facedb.storage.db import migrate

# The 2 test cores are shared with other jobs: OpenMP threads that spin-wait for a busy
# sibling make small FAISS calls ten times slower, so the tests run FAISS single-threaded.
faiss.omp_set_num_threads(1)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# Index backends: FAISS in process, and a real Milvus standalone server started here. A
# module runs its `index_backend` tests on both by setting `INDEX_BACKENDS = BOTH_INDEXES`
# (the index suite: catalog, snapshots, crash, reindex, follower, replication); the others
# run on FAISS only, which keeps the suite within CI's time.
BOTH_INDEXES = [FAISS, pytest.param(MILVUS, marks=pytest.mark.milvus)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "index_backend" in metafunc.fixturenames:
        metafunc.parametrize("index_backend", getattr(metafunc.module, "INDEX_BACKENDS", [FAISS]))


_names = itertools.count()


class DatabaseFactory:
    """Creates empty databases of one backend and drops them afterwards."""

    def __init__(self, backend: str, root: Path, server: Callable[[], str]) -> None:
        self.backend, self.root, self._get_server = backend, root, server
        self._server_url: str | None = None
        self._created: list[str] = []

    def _server(self) -> str:
        if self._server_url is None:
            self._server_url = self._get_server()
        return self._server_url

    def create(self) -> str:
        name = f"facedb_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.root / name}.sqlite3"
        with self._admin() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return make_url(self._server()).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self._created:
            return
        with self._admin() as connection:
            for name in self._created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextmanager
    def _admin(self) -> Iterator[sa.Connection]:
        engine = sa.create_engine(self._server(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def databases(request, tmp_path_factory) -> Iterator[DatabaseFactory]:
    def server() -> str:
        return request.getfixturevalue("postgres_server")

    factory = DatabaseFactory(request.param, tmp_path_factory.mktemp(request.param), server)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def database_url(databases: DatabaseFactory) -> str:
    """A migrated database shared by the session (tests use their own galleries)."""
    url = databases.create()
    migrate(url)
    return url


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


OpenCatalog = Callable[..., Catalog]


@pytest.fixture
def open_catalog(index_backend: str, request) -> OpenCatalog:
    """`Catalog.open` with the parametrised index backend (a fresh client per catalog)."""
    uri = request.getfixturevalue("milvus_uri") if index_backend == MILVUS else None

    def opener(url: str, index_dir: Path, *args, **options) -> Catalog:
        backend = open_backend(index_backend, uri)
        return Catalog.open(url, index_dir, *args, backend=backend, **options)

    return opener


@pytest.fixture
def catalog(database_url: str, index_dir: Path, open_catalog: OpenCatalog) -> Iterator[Catalog]:
    opened = open_catalog(database_url, index_dir, migrate=False, snapshot_interval=None)
    yield opened
    opened.close()


def gallery_name(prefix: str = "g") -> str:
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:6]}"


def make_gallery(catalog: Catalog, dim: int = 512, **options) -> str:
    name = gallery_name()
    catalog.create_gallery(GalleryConfig(name, "test-model", "ab" * 32, dim, **options))
    return name


def unit_vectors(count: int, dim: int = 512, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
