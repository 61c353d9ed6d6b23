"""The Milvus rows of benchmarks.search: the same gallery, queries and truth as FAISS.

Each kind is built the way facedb's Milvus backend builds it (`MilvusBackend.create_collection`
with `choose_layout`), then flushed and timed until Milvus reports every row indexed. Memory
is the growth of the Milvus server's resident set while the collection is built and loaded
(the server holds the index, the raw vectors of growing segments and its own caches).
Searches use Bounded consistency, as the service does.
"""

from __future__ import annotations

import sys
import time
import uuid

import numpy as np

from benchmarks.search import rss_mb
from facedb.index.manager import GalleryRef
from facedb.index.milvus_backend import VECTOR, Layout, MilvusBackend, choose_layout
from facedb.index.vector_index import IndexKind, IndexParams

INDEX_WAIT_S = 3600.0


def server_rss_mb(pid: int | None) -> float:
    """Resident memory of the Milvus server process (0 when it runs elsewhere)."""
    return 0.0 if pid is None else rss_mb(pid)


class MilvusCollectionBench:
    """One collection of the benchmark gallery, built as the facedb backend builds it."""

    def __init__(self, backend: MilvusBackend, kind: IndexKind, vectors: np.ndarray,
                 params: IndexParams, server_pid: int | None) -> None:  # fmt: skip
        self.backend, self.params = backend, params
        dim = vectors.shape[1]
        ref = GalleryRef(0, uuid.uuid4().hex, "bench", "0" * 64, dim, kind.value)
        self.layout: Layout = choose_layout(len(vectors), kind.value, params, dim)
        rss_before = server_rss_mb(server_pid)
        start = time.perf_counter()
        ids = np.arange(len(vectors), dtype=np.int64)
        self.name = backend.create_collection(ref, self.layout, ids, vectors, params)
        self.insert_s = time.perf_counter() - start
        print(f"# Milvus {self.layout}: {len(vectors):,} rows inserted in {self.insert_s:.0f} s",
              file=sys.stderr)  # fmt: skip
        try:
            backend.client.flush(self.name)
            self._wait_indexed(len(vectors))
        except BaseException:  # interrupted or timed out: leave nothing on a shared server
            self.drop()
            raise
        self.build_s = time.perf_counter() - start
        self.memory_mb = server_rss_mb(server_pid) - rss_before

    def _wait_indexed(self, total: int) -> None:
        client = self.backend.client
        (index_name,) = client.list_indexes(self.name)
        start = time.monotonic()
        deadline, shown = start + INDEX_WAIT_S, -1
        while time.monotonic() < deadline:
            indexed = int(client.describe_index(self.name, index_name).get("indexed_rows", 0))
            if indexed >= total:
                return
            if indexed != shown:  # progress of long builds (segments indexed over time)
                elapsed = time.monotonic() - start
                print(f"# Milvus: {indexed:,} of {total:,} rows indexed after {elapsed:.0f} s",
                      file=sys.stderr)  # fmt: skip
                shown = indexed
            time.sleep(0.5)
        raise TimeoutError(f"Milvus did not index {self.name} in {INDEX_WAIT_S} s")

    def describe(self, params: IndexParams) -> str:
        knobs = self.layout.search_params(params, 10)
        shown = " ".join(f"{key}={value}" for key, value in knobs.items())
        nlist = f"nlist={self.layout.nlist} " if self.layout.nlist else ""
        return f"Milvus {self.layout.index_type} {nlist}{shown}".strip()

    def search(self, queries: np.ndarray, k: int, params: IndexParams) -> tuple[None, np.ndarray]:
        """(None, ids (Q, k)) with -1 for empty slots, Bounded consistency."""
        results = self.backend.client.search(
            self.name,
            data=list(np.ascontiguousarray(queries, dtype=np.float32)),
            limit=k,
            anns_field=VECTOR,
            search_params={"metric_type": "IP", "params": self.layout.search_params(params, k)},
            consistency_level="Bounded",
        )
        found = np.full((len(queries), k), -1, dtype=np.int64)
        for row, hits in enumerate(results):
            for rank, hit in enumerate(hits[:k]):
                found[row, rank] = hit["id"]
        return None, found

    def drop(self) -> None:
        self.backend.drop_collection(self.name)
