"""Milvus as the index backend: one collection per gallery, fed by the SQL change log.

The collection is a rebuildable view of SQL, like a FAISS snapshot. Rows are keyed by face
id (INT64 primary key) and written with upsert / delete, so replaying a change twice is
harmless. What the collection reflects is recorded in a small manifest beside the FAISS
snapshots (`<index_dir>/<gallery uid>/milvus.json`): the collection name, the model and
the change-log watermark. Opening replays the log after that watermark, then compares the
collection's row count (read with Strong consistency) with SQL; a missing or foreign
manifest, a missing collection or a count mismatch rebuilds the collection from SQL.

Rebuilds (a new kind, a new model) fill a new collection while the old one serves and
switch over under the gallery's write lock; the old collection is dropped afterwards.

Consistency: searches ask for Bounded staleness (Milvus's default window is 5 s), except
within that window after this process wrote to the collection, when they ask for Session
consistency (pymilvus sends the timestamp of this process's last write as the guarantee
timestamp): a writer always reads its own writes, and other readers pay no time-tick wait.
Strong can be configured for every search. Faces deleted in SQL are also dropped by the
catalog's SQL label lookup, so a stale replica never returns a removed face.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from facedb.index.backend import MILVUS, IndexBackendError, LiveIndex, Prepared, id_matrix
from facedb.index.manager import GalleryRef, IndexSource
from facedb.index.rwlock import ReadWriteLock
from facedb.index.vector_index import (
    AUTO,
    IndexKind,
    IndexParams,
    choose_kind,
    ivf_nlist,
    ivf_nprobe,
)

log = logging.getLogger(__name__)

MANIFEST = "milvus.json"
FORMAT = 1
PRIMARY, VECTOR = "face_id", "embedding"
CONSISTENCY_LEVELS = ("Strong", "Bounded", "Session", "Eventually")
BOUNDED_WINDOW_S = 6.0  # Milvus's graceful time (5 s) plus a margin
# Rows per request: 32 MB of 512-d float32, under the 64 MB gRPC limit. Milvus's cost is
# per request more than per row (16k-row requests fill a collection ~1.7x faster than 4k).
INSERT_BATCH = 16_384
MAX_TOP_K = 16_384  # Milvus refuses larger limits
SCAN_BATCH = 8192
SLOW_CALLS = 30  # a collection's build or load may take this many request timeouts
MAX_HIDDEN = 1024  # more recent removals than this: search with Strong consistency instead

# The Milvus index type for each facedb kind, and its build / search parameters.
FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW = "FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW"
_KIND_TO_TYPE = {
    IndexKind.FLAT: FLAT,
    IndexKind.IVF: IVF_FLAT,
    IndexKind.IVF_SQ8: IVF_SQ8,
    IndexKind.IVF_PQ: IVF_PQ,
    IndexKind.HNSW: HNSW,
}
_TYPE_TO_KIND = {index_type: kind for kind, index_type in _KIND_TO_TYPE.items()}
_TIER = {FLAT: 0, IVF_FLAT: 1, IVF_SQ8: 1, HNSW: 1, IVF_PQ: 2}
# Milvus trains an IVF index per segment, not per collection. With 2.3's defaults
# (segment.maxSize 512 MB, sealProportion 0.23) 1M rows of 512 floats were sealed in
# segments of 65,536-81,920 rows, which compaction then merged up to 245,760: nlist is
# sized for 320 MiB of vectors (163,840 rows at d 512), between the two.
SEGMENT_VECTOR_BYTES = 320 * 2**20


class MilvusIndexError(IndexBackendError):
    """Milvus could not be reached or refused a request; the message says which."""


@dataclass(frozen=True)
class Layout:
    """A Milvus index type with its parameters (what a collection is built with)."""

    index_type: str
    nlist: int = 0

    @property
    def kind(self) -> IndexKind:
        return _TYPE_TO_KIND[self.index_type]

    def build_params(self, params: IndexParams, dim: int) -> dict[str, Any]:
        if self.index_type == HNSW:
            return {"M": params.hnsw_m, "efConstruction": params.hnsw_ef_construction}
        if self.index_type == IVF_PQ:
            # 8-bit codes of ~8 dimensions each (m must divide the dimension).
            m = next(m for m in range(max(1, dim // 8), 0, -1) if dim % m == 0)
            return {"nlist": self.nlist, "m": m, "nbits": 8}
        if self.nlist:
            return {"nlist": self.nlist}
        return {}

    def search_params(self, params: IndexParams, k: int) -> dict[str, Any]:
        if self.index_type == HNSW:
            return {"ef": max(k, params.hnsw_ef_search)}
        if self.nlist:
            return {"nprobe": ivf_nprobe(self.nlist, params, self.kind)}
        return {}


def segment_rows(dim: int) -> int:
    """Rows of `dim` floats in one sealed Milvus segment."""
    return SEGMENT_VECTOR_BYTES // (4 * dim)


def choose_layout(count: int, requested: str, params: IndexParams, dim: int) -> Layout:
    """The kind FAISS would use for `count` vectors (exact while small, IVF beyond), as a
    Milvus index type. IVF lists: 2 sqrt of the rows of one segment (what each index is
    trained on; k-means costs rows x nlist): at 1M, lists sized for the whole collection
    (2000) took ~45 min to index, 809 took 10 min, recall@1 1.000."""
    kind = choose_kind(count, requested, params)
    if kind in (IndexKind.IVF, IndexKind.IVF_SQ8, IndexKind.IVF_PQ):
        rows = min(count, segment_rows(dim))
        return Layout(_KIND_TO_TYPE[kind], max(1, min(ivf_nlist(rows, params), 65_536)))
    return Layout(_KIND_TO_TYPE[kind])


@dataclass(frozen=True)
class Manifest:
    format: int
    gallery_uid: str
    model_sha256: str
    dim: int
    collection: str
    index_type: str
    nlist: int
    watermark: int


class MilvusBackend:
    """Galleries as Milvus collections on the server at `uri` (standalone or distributed)."""

    name = MILVUS

    def __init__(
        self,
        uri: str,
        consistency: str = "Bounded",
        token: str = "",
        timeout: float = 30.0,
        prefix: str = "facedb",
    ) -> None:
        if consistency not in CONSISTENCY_LEVELS:
            raise ValueError(f"Milvus consistency must be one of {', '.join(CONSISTENCY_LEVELS)}")
        self.uri, self.consistency, self.prefix = uri, consistency, prefix
        # Per call, in whole seconds: pymilvus bounds its retries of an unreachable server
        # by an int `timeout` only (without one it retries 75 times, minutes of back-off).
        self.call_timeout = max(1, math.ceil(timeout))
        self._owner = ""  # names this index directory's collections (see _stem)
        try:
            # A connection of its own: pymilvus shares one per URI otherwise, and closing
            # one catalog would cut off every other catalog of the process.
            alias = f"facedb-{uuid.uuid4().hex[:12]}"
            self.client = MilvusClient(uri=uri, token=token, timeout=timeout, alias=alias)
        except MilvusException as error:
            raise MilvusIndexError(f"cannot reach Milvus at {uri}: {error.message}") from error

    def close(self) -> None:
        with contextlib.suppress(MilvusException):
            self.client.close()

    # ---- opening --------------------------------------------------------------------------

    def open(
        self, source: IndexSource, ref: GalleryRef, root: Path, params: IndexParams
    ) -> MilvusIndex:
        self._claim(root)
        directory = root / ref.uid
        problem, manifest = self._check_manifest(directory, ref)
        if manifest is None:
            log.info("gallery %r: building the Milvus collection from SQL (%s)", ref.name, problem)
            return self._rebuilt(source, ref, directory, params)
        index = MilvusIndex(self, ref, directory, source, params, manifest)
        index.catch_up()
        expected, held = source.count(ref), index.strong_count()
        if held != expected:
            log.warning(
                "gallery %r: Milvus holds %d faces after replay, SQL %d: rebuilding",
                ref.name,
                held,
                expected,
            )
            return self._rebuilt(source, ref, directory, params)
        log.info(
            "gallery %r: opened Milvus collection %s at change %d, replayed to %d (%d faces)",
            ref.name,
            manifest.collection,
            manifest.watermark,
            index.watermark,
            held,
        )
        return index

    def _check_manifest(self, directory: Path, ref: GalleryRef) -> tuple[str, Manifest | None]:
        path = directory / MANIFEST
        if not path.is_file():
            return "no manifest", None
        try:
            manifest = Manifest(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as error:
            return f"manifest is corrupt: {error}", None
        if manifest.format != FORMAT or manifest.gallery_uid != ref.uid:
            return "manifest is of another format or gallery", None
        if manifest.model_sha256 != ref.model_sha256 or manifest.dim != ref.dim:
            return f"collection made by another model ({manifest.model_sha256[:12]})", None
        if not self._call(self.client.has_collection, manifest.collection):
            return f"collection {manifest.collection} is missing", None
        return "", manifest

    def _rebuilt(
        self, source: IndexSource, ref: GalleryRef, directory: Path, params: IndexParams
    ) -> MilvusIndex:
        watermark, ids, vectors = source.everything(ref)
        layout = choose_layout(len(ids), ref.kind, params, ref.dim)
        collection = self.create_collection(ref, layout, ids, vectors, params)
        manifest = Manifest(
            FORMAT, ref.uid, ref.model_sha256, ref.dim, collection, layout.index_type,
            layout.nlist, watermark,
        )  # fmt: skip
        index = MilvusIndex(self, ref, directory, source, params, manifest)
        index.catch_up()  # changes committed while the collection filled
        index.snapshot()
        self.drop_collections_of(ref, keep=collection)
        return index

    # ---- rebuilds -------------------------------------------------------------------------

    def prepare(self, source: IndexSource, ref: GalleryRef, params: IndexParams) -> Prepared:
        watermark, ids, vectors = source.everything(ref)
        layout = choose_layout(len(ids), ref.kind, params, ref.dim)
        collection = self.create_collection(ref, layout, ids, vectors, params)
        return Prepared(ref, watermark, (collection, layout))

    def prepare_from(
        self,
        ref: GalleryRef,
        vectors: dict[int, np.ndarray],
        watermark: int,
        params: IndexParams,
    ) -> Prepared:
        ids, matrix = id_matrix(vectors, ref.dim)
        layout = choose_layout(len(ids), ref.kind, params, ref.dim)
        collection = self.create_collection(ref, layout, ids, matrix, params)
        return Prepared(ref, watermark, (collection, layout))

    def install(self, live: LiveIndex, prepared: Prepared, source: IndexSource | None) -> None:
        index = _milvus(live)
        collection, layout = prepared.handle
        watermark = prepared.watermark
        if source is not None:  # changes committed while the collection filled
            changes = source.replay(prepared.ref, watermark)
            self.write(collection, changes.added_ids, changes.added_vectors, changes.removed)
            watermark = changes.watermark
        old = index.switch(prepared.ref, collection, layout, watermark)
        self.drop_collection(old)  # searches on it finished: the switch waited for them

    def discard(self, prepared: Prepared) -> None:
        self.drop_collection(prepared.handle[0])

    def drop(self, ref: GalleryRef, root: Path) -> None:
        """The gallery was deleted: drop its collections and its manifest."""
        self._claim(root)
        self.drop_collections_of(ref)
        with contextlib.suppress(FileNotFoundError):
            (root / ref.uid / MANIFEST).unlink()

    def drop_collection(self, collection: str) -> None:
        with contextlib.suppress(MilvusIndexError):
            self._call(self.client.drop_collection, collection)

    def drop_collections_of(self, ref: GalleryRef, keep: str | None = None) -> None:
        """Drop the gallery's collections other than `keep` (left over by crashed builds)."""
        for name in self._call(self.client.list_collections):
            if name.startswith(self._stem(ref)) and name != keep:
                self.drop_collection(name)

    def _claim(self, root: Path) -> None:
        """Servers sharing one Milvus each keep their own collections: a random token kept
        in the index directory names this directory's, so that cleaning up after a crashed
        build never drops another server's collection."""
        if self._owner:
            return
        path = root / "milvus-owner"
        if not path.is_file():
            root.mkdir(parents=True, exist_ok=True)
            path.write_text(uuid.uuid4().hex[:8], encoding="utf-8")
        self._owner = path.read_text(encoding="utf-8").strip()

    def _stem(self, ref: GalleryRef) -> str:
        return f"{self.prefix}_{self._owner}_{ref.uid}_"

    # ---- collections ----------------------------------------------------------------------

    def create_collection(
        self,
        ref: GalleryRef,
        layout: Layout,
        ids: np.ndarray,
        vectors: np.ndarray,
        params: IndexParams,
    ) -> str:
        """A new loaded collection holding `ids` / `vectors`, named for the gallery."""
        name = f"{self._stem(ref)}{uuid.uuid4().hex[:8]}"
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(PRIMARY, DataType.INT64, is_primary=True)
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=ref.dim)
        index_params = self.client.prepare_index_params()
        index_params.add_index(
            field_name=VECTOR,
            index_type=layout.index_type,
            metric_type="IP",
            params=layout.build_params(params, ref.dim),
        )
        self._call(
            self.client.create_collection,
            name,
            schema=schema,
            index_params=index_params,
            consistency_level="Bounded",
            slow=True,
        )
        self._fill(name, ids, vectors)
        log.info(
            "gallery %r: Milvus collection %s (%s) holds %d faces",
            ref.name,
            name,
            layout.index_type,
            len(ids),
        )
        return name

    def _fill(self, collection: str, ids: np.ndarray, vectors: np.ndarray) -> None:
        """A new, empty collection: plain inserts (no key to replace, unlike upserts)."""
        for rows in _row_batches(ids, vectors):
            self._call(self.client.insert, collection, rows)

    def write(
        self,
        collection: str,
        added_ids: np.ndarray | None,
        added_vectors: np.ndarray | None,
        removed: np.ndarray | None,
    ) -> None:
        """Idempotent: upserts keyed by face id, deletes of ids that may be gone already."""
        if removed is not None and len(removed):
            self._call(self.client.delete, collection, ids=[int(i) for i in removed])
        if added_ids is None or not len(added_ids) or added_vectors is None:
            return
        for rows in _row_batches(added_ids, added_vectors):
            self._call(self.client.upsert, collection, rows)

    def _call(self, method: Any, *args: Any, slow: bool = False, **kwargs: Any) -> Any:
        """One Milvus request, within `call_timeout` (`slow`: building or loading a
        collection, SLOW_CALLS times that); any refusal or connection failure is a
        MilvusIndexError (the service answers UNAVAILABLE: retryable)."""
        kwargs.setdefault("timeout", self.call_timeout * (SLOW_CALLS if slow else 1))
        try:
            return method(*args, **kwargs)
        except MilvusException as error:
            raise MilvusIndexError(f"Milvus at {self.uri}: {error.message}") from error
        except grpc.RpcError as error:  # one pymilvus lets through unwrapped
            raise MilvusIndexError(f"Milvus at {self.uri}: {error}") from error


class MilvusIndex:
    """One gallery's Milvus collection, seen through the LiveIndex protocol."""

    def __init__(
        self,
        backend: MilvusBackend,
        ref: GalleryRef,
        directory: Path,
        source: IndexSource,
        params: IndexParams,
        manifest: Manifest,
    ) -> None:
        self.ref = ref
        self.directory = directory
        self._backend = backend
        self._client = backend.client
        self._source = source
        self._params = params
        self._collection = manifest.collection
        self._layout = Layout(manifest.index_type, manifest.nlist)
        self._watermark = manifest.watermark
        # A write Milvus refused leaves the collection behind SQL: the watermark stops at
        # the last change known applied, and the next write or open replays from there.
        self._behind_since: int | None = None
        self._count = 0
        self._last_write = -math.inf
        # Ids this process removed, with when: Session consistency covers this process's
        # upserts but not (on Milvus 2.3) its deletes, so a search within the window asks
        # for that many more hits and drops these ids itself.
        self._recently_removed: dict[int, float] = {}
        self._lock = ReadWriteLock()
        self._snapshot_lock = threading.Lock()
        self._dirty = True
        self._deleted = False
        self._load()

    def _load(self) -> None:
        self._backend._call(self._client.load_collection, self._collection, slow=True)
        self._count = self.strong_count()

    @property
    def collection(self) -> str:
        return self._collection

    @property
    def kind(self) -> IndexKind:
        """The facedb kind the collection's Milvus index type stands for."""
        return self._layout.kind

    @property
    def count(self) -> int:
        return self._count

    @property
    def watermark(self) -> int:
        return self._watermark

    @property
    def dirty(self) -> bool:
        return self._dirty

    def strong_count(self) -> int:
        rows = self._backend._call(
            self._client.query,
            self._collection,
            filter="",
            output_fields=["count(*)"],
            consistency_level="Strong",
        )
        return int(rows[0]["count(*)"])

    def ids(self) -> np.ndarray:
        """Every face id the collection holds (Strong: every acknowledged write counted).
        Pages by primary key: a query with a limit returns the smallest keys first."""
        found: list[int] = []
        with self._lock.read():
            last = -1
            while True:
                rows = self._backend._call(
                    self._client.query,
                    self._collection,
                    filter=f"{PRIMARY} > {last}",
                    output_fields=[PRIMARY],
                    limit=SCAN_BATCH,
                    consistency_level="Strong",
                )
                batch = [int(row[PRIMARY]) for row in rows]
                found.extend(batch)
                if len(batch) < SCAN_BATCH:
                    break
                last = max(batch)
        return np.asarray(sorted(set(found)), dtype=np.int64)

    def search(
        self, queries: np.ndarray, k: int, threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.ref.dim)
        k = max(1, min(k, MAX_TOP_K))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        with self._lock.read():
            if not self._count:
                return scores, ids
            hidden = self._hidden()
            level = self._consistency()
            if len(hidden) > MAX_HIDDEN:
                hidden, level = set(), "Strong"
            limit = min(k + len(hidden), MAX_TOP_K)
            results = self._backend._call(
                self._client.search,
                self._collection,
                data=list(queries),
                limit=limit,
                anns_field=VECTOR,
                search_params={
                    "metric_type": "IP",
                    "params": self._layout.search_params(self._params, limit),
                },
                consistency_level=level,
            )
        for row, hits in enumerate(results):
            kept = [hit for hit in hits if hit["id"] not in hidden][:k]
            for rank, hit in enumerate(kept):
                scores[row, rank], ids[row, rank] = hit["distance"], hit["id"]
        if threshold is not None:
            ids = np.where(scores >= threshold, ids, -1)
        return scores, ids

    def _hidden(self) -> set[int]:
        """Ids removed by this process that a Bounded / Session search may still return."""
        horizon = time.monotonic() - BOUNDED_WINDOW_S
        recent = self._recently_removed
        if recent and min(recent.values()) < horizon:
            self._recently_removed = recent = {i: t for i, t in recent.items() if t >= horizon}
        return set(recent)

    def _consistency(self) -> str:
        configured = self._backend.consistency
        if configured == "Strong":
            return configured
        if time.monotonic() - self._last_write < BOUNDED_WINDOW_S:
            return "Session"  # read this process's own writes (its last write's timestamp)
        return configured

    def apply(
        self,
        seq: int | None,
        added_ids: np.ndarray | None = None,
        added_vectors: np.ndarray | None = None,
        removed: np.ndarray | None = None,
    ) -> None:
        with self._lock.write():
            if self._behind_since is not None:
                self._catch_up_locked(self._behind_since)
            before = self._watermark
            try:
                self._backend.write(self._collection, added_ids, added_vectors, removed)
            except MilvusIndexError:
                self._behind_since = before
                raise
            self._count += (0 if added_ids is None else len(added_ids)) - (
                0 if removed is None else len(removed)
            )
            self._last_write = time.monotonic()
            if removed is not None:
                self._recently_removed.update((int(i), self._last_write) for i in removed)
            if seq is not None:
                self._watermark = max(self._watermark, seq)
            self._dirty = True

    def catch_up(self) -> int:
        """Apply the change log after the watermark (idempotent); returns the watermark."""
        with self._lock.write():
            self._catch_up_locked(self._watermark)
        return self._watermark

    def _catch_up_locked(self, since: int) -> None:
        changes = self._source.replay(self.ref, since)
        self._backend.write(
            self._collection, changes.added_ids, changes.added_vectors, changes.removed
        )
        if len(changes.added_ids) or len(changes.removed):
            self._last_write = time.monotonic()
            self._count = self.strong_count()
        self._watermark = max(self._watermark, changes.watermark)
        self._behind_since = None
        self._dirty = True

    def switch(self, ref: GalleryRef, collection: str, layout: Layout, watermark: int) -> str:
        """Serve from `collection` from now on; returns the old collection's name."""
        self._backend._call(self._client.load_collection, collection, slow=True)
        count = self._strong_count_of(collection)
        with self._lock.write():
            old = self._collection
            self.ref, self._collection, self._layout = ref, collection, layout
            self._watermark, self._count, self._behind_since = watermark, count, None
            self._last_write = time.monotonic()
            self._dirty = True
        return old

    def _strong_count_of(self, collection: str) -> int:
        rows = self._backend._call(
            self._client.query,
            collection,
            filter="",
            output_fields=["count(*)"],
            consistency_level="Strong",
        )
        return int(rows[0]["count(*)"])

    def snapshot(self) -> bool:
        """Flush the collection and record its watermark in the manifest."""
        with self._snapshot_lock, self._lock.read():
            if not self._dirty or self._deleted:
                return False
            watermark = self._watermark if self._behind_since is None else self._behind_since
            manifest = Manifest(
                FORMAT, self.ref.uid, self.ref.model_sha256, self.ref.dim, self._collection,
                self._layout.index_type, self._layout.nlist, watermark,
            )  # fmt: skip
            # No flush: every acknowledged write is already in Milvus's own log (a flush
            # only seals segments, which Milvus does by itself, and costs ~2 s).
            _write_manifest(self.directory, manifest)
            self._dirty = self._behind_since is not None
        return True

    def discard_snapshot(self) -> None:
        """Nothing to do: removals are applied inside Milvus, no local file holds vectors."""

    def delete(self) -> None:
        """The gallery is gone: drop its collection and manifest; write nothing again."""
        with self._snapshot_lock, self._lock.write():
            self._deleted = True
            self._backend.drop_collection(self._collection)
            with contextlib.suppress(FileNotFoundError):
                (self.directory / MANIFEST).unlink()

    def needs_rebuild(self) -> str | None:
        wanted = choose_layout(self._count, self.ref.kind, self._params, self.ref.dim)
        current = self._layout
        if _TIER[wanted.index_type] > _TIER[current.index_type]:
            return f"{self._count} vectors: {wanted.index_type} suits better than {current}"
        if wanted.index_type != current.index_type and self.ref.kind != AUTO:
            return f"{wanted.index_type} wanted, the collection is {current.index_type}"
        if current.nlist and wanted.nlist > 2 * current.nlist:
            return f"{self._count} vectors outgrew {current.nlist} IVF lists"
        return None


def _row_batches(ids: np.ndarray, vectors: np.ndarray) -> Iterator[list[dict[str, Any]]]:
    matrix = np.asarray(vectors, dtype=np.float32)
    for start in range(0, len(ids), INSERT_BATCH):
        stop = start + INSERT_BATCH
        yield [
            {PRIMARY: int(face_id), VECTOR: vector}
            for face_id, vector in zip(ids[start:stop], matrix[start:stop], strict=True)
        ]


def _milvus(live: LiveIndex) -> MilvusIndex:
    if not isinstance(live, MilvusIndex):
        raise TypeError(f"the Milvus backend cannot manage a {type(live).__name__}")
    return live


def _write_manifest(directory: Path, manifest: Manifest) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MANIFEST
    temporary = path.with_name(f".{MANIFEST}.{uuid.uuid4().hex[:8]}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump(asdict(manifest), stream, indent=1)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)  # the commit point: the old manifest or the new one
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
