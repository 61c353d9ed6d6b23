"""One FAISS index over unit vectors (inner product = cosine), keyed by int64 face ids.

Kinds:
- flat:    IndexIDMap2(IndexFlatIP): exact; removal in place.
- ivf:     IndexIVFFlat (ids stored natively, so removal works in place); trained k-means.
- ivf_sq8: IndexIVFScalarQuantizer 8-bit: a quarter of the memory, slightly lower scores.
- hnsw:    IndexIDMap2(IndexHNSWFlat): fast, but HNSW cannot remove. A removed id is a
           tombstone filtered out during search (IDSelector), and its stored vector is
           overwritten with zeros so the embedding itself is gone; the owner rebuilds once
           tombstones pass a fraction of the index.
- ivf_pq:  IndexIDMap2(IndexRefine(IndexIVFPQFastScan, re-rank store)): 4-bit PQ codes (8
           dimensions per sub-quantizer) scanned with SIMD fast-scan pick k * refine_factor
           candidates (at least pq_min_candidates), which are re-ranked against the vectors
           kept beside the codes: float16 by default (IndexScalarQuantizer QT_fp16, half the
           bytes of float32 and the same top hit), float32 with pq_rerank="flat" (and in
           snapshots written before float16 re-rank existed: IndexRefineFlat). The coarse
           quantizer is an HNSW graph over the centroids; bulk adds assign with an exact
           scan of the centroids instead (a BLAS product, ~5x cheaper than the graph walk
           per vector). The refine part cannot remove, so removal takes the row out of the
           IVF lists (never a candidate again), zeroes its stored vector and records a
           tombstone; the owner rebuilds once tombstones pass a fraction of the index, as
           for HNSW.

"auto" picks flat up to AUTO_FLAT_MAX vectors, IVF up to AUTO_IVF_MAX and ivf_pq above; the
thresholds come from benchmarks/search.py (d = 512, face-like clustered vectors, 2 cores,
one thread per query, faiss-cpu 1.15 with AVX2):
- exact search costs ~0.25 ms of CPU per 1k vectors (10k: 2.6 ms, 100k: 24 ms), so it stays
  exact up to 20k vectors (~5 ms);
- IVF with nlist = 2*sqrt(N) and nprobe = max(48, nlist/30) keeps recall@1 >= 0.99 against
  exact search from 10k to 1M (1M: nprobe 64, recall@1 0.996, 10.9 ms CPU per query;
  ivf_sq8: 0.990, 6.6 ms, a quarter of the memory); builds in ~2.5 min at 1M and removes
  in place, so rebuilds and deletions stay cheap;
- ivf_pq (nlist = 2*sqrt(N), nprobe = max(64, nlist/20), float16 re-rank of max(16k, 256)
  candidates): at 1M recall@1 1.000 at 0.8 ms of CPU per query (nprobe 64: 0.997 at 0.7 ms;
  recall@10 ~0.64: the codes order the non-mates roughly), ~1.15 KB resident per face; the
  build costs 76-94 CPU seconds, 64 s on 2 cores (k-means on a 100k sample ~41 s, exact
  list assignment ~32 s, codes and store ~21 s; the HNSW walk used to assign made it
  140-270 s, 933 s at one thread). IVF-Flat cannot
  get there: recall@1 0.99 needs ~3% of the float vectors scanned (1M: 16 ms), and 4096
  lists with an HNSW coarse quantizer reach only 0.984 at nprobe 64 (~10 ms). Default above
  AUTO_IVF_MAX; below it IVF-Flat is as fast and removes in place;
- HNSW (M 32, efSearch 64) is faster to search (100k: recall@1 1.0, 1.2 ms) but builds ~50x
  slower (378 s at 100k, hours at 1M) and cannot remove in place: opt-in per gallery.
This class is not thread-safe: GalleryIndex serialises writers against readers.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import faiss
import numpy as np


class IndexKind(StrEnum):
    FLAT = "flat"
    IVF = "ivf"
    IVF_SQ8 = "ivf_sq8"
    HNSW = "hnsw"
    IVF_PQ = "ivf_pq"


AUTO = "auto"
# Exact search stays below ~5 ms of CPU per query up to here (d = 512, see above).
AUTO_FLAT_MAX = 20_000
# IVF-Flat stays under ~5 ms per query up to here (it scans ~7.6k vectors at 100k).
AUTO_IVF_MAX = 100_000
MIN_IVF_SIZE = 1_000  # below this an IVF index has too few points to train its lists
# Vectors handed to FAISS per add call: bounds the temporaries FAISS allocates per call
# (coarse assignments, codes) at a million vectors without slowing the add.
ADD_BATCH = 65_536
# ivf_pq adds at least this many vectors at once with an exact scan of the centroids (one
# BLAS product per batch) instead of walking the HNSW graph once per vector.
BULK_ASSIGN_MIN = 4_096
PQ_RERANK_STORES = ("fp16", "flat")


@dataclass(frozen=True)
class IndexParams:
    flat_max: int = AUTO_FLAT_MAX  # "auto" uses exact search up to this many vectors
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None  # None: 2 * sqrt(n), at most n / 39 (k-means needs points)
    ivf_nprobe: int | None = None  # None: nlist / 30, at least 48 (ivf_pq: nlist / 20, >= 64)
    ivf_train_per_list: int = 50  # k-means training points per list (a sample of the data)
    ivf_max: int = AUTO_IVF_MAX  # "auto" uses IVF-Flat up to this many vectors, ivf_pq above
    pq_refine_factor: int = 16  # ivf_pq re-ranks k * this many fast-scan candidates ...
    pq_min_candidates: int = 256  # ... and at least this many (top-1 searches)
    pq_train_iterations: int = 10  # k-means rounds for ivf_pq (its lists are probed widely)
    pq_train_max: int = 131_072  # ivf_pq k-means sample cap (raised to 32 per list if lower)
    pq_rerank: str = "fp16"  # ivf_pq re-rank store: "fp16" (1 KB/face at d 512) or "flat"


def choose_kind(count: int, requested: str | None, params: IndexParams | None = None) -> IndexKind:
    """The index kind for a gallery of `count` vectors ("auto"/None decides by size)."""
    if requested and requested != AUTO:
        kind = IndexKind(requested)
    else:
        kind = _auto_kind(count, params or IndexParams())
    if kind in IVF_KINDS and count < MIN_IVF_SIZE:
        return IndexKind.FLAT  # too few vectors to train k-means; exact is best anyway
    return kind


IVF_KINDS = (IndexKind.IVF, IndexKind.IVF_SQ8, IndexKind.IVF_PQ)
# Kinds that cannot remove in place: removed ids are tombstones until a rebuild.
TOMBSTONE_KINDS = (IndexKind.HNSW, IndexKind.IVF_PQ)


def _auto_kind(count: int, params: IndexParams) -> IndexKind:
    if count <= params.flat_max:
        return IndexKind.FLAT
    return IndexKind.IVF if count <= params.ivf_max else IndexKind.IVF_PQ


def ivf_nlist(count: int, params: IndexParams) -> int:
    if params.ivf_nlist:
        return params.ivf_nlist
    return max(1, min(int(2 * math.sqrt(count)), count // 39, 65_536))


def ivf_nprobe(nlist: int, params: IndexParams, kind: IndexKind = IndexKind.IVF) -> int:
    if kind is IndexKind.IVF_PQ:
        # Scanning 4-bit codes is ~10x cheaper than floats, so probe ~5% of the lists
        # (1M, 2000 lists: nprobe 64 gives recall@1 0.997, 96 gives 1.000).
        return min(nlist, params.ivf_nprobe or max(64, nlist // 20))
    return min(nlist, params.ivf_nprobe or max(48, nlist // 30))


class VectorIndex:
    def __init__(self, kind: IndexKind, dim: int, index: faiss.Index, params: IndexParams):
        self.kind = kind
        self.dim = dim
        # Any: FAISS's SWIG classes grow attributes per subclass (nprobe, id_map, hnsw ...)
        # that its type stubs do not declare on faiss.Index.
        self.index: Any = index
        self.params = params
        self.tombstones: set[int] = set()
        self._selector: Any = None
        self._live: set[int] = set()
        self.configure_search(params)

    # ---- construction ---------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        kind: IndexKind,
        dim: int,
        ids: np.ndarray,
        vectors: np.ndarray,
        params: IndexParams | None = None,
    ) -> VectorIndex:
        params = params or IndexParams()
        vectors = _as_matrix(vectors, dim)
        index = _new_faiss_index(kind, dim, vectors, params)
        built = cls(kind, dim, index, params)
        built.add(np.asarray(ids, dtype=np.int64), vectors)
        return built

    @classmethod
    def read(
        cls, path: Path, kind: IndexKind, dim: int, tombstones: list[int], params: IndexParams
    ) -> VectorIndex:
        index = faiss.read_index(str(path))
        if index.d != dim:
            raise ValueError(f"index dimension {index.d} != {dim}")
        loaded = cls(kind, dim, index, params)
        loaded.tombstones = set(tombstones)
        loaded._live = set(loaded._stored_ids().tolist()) - loaded.tombstones
        loaded._refresh_selector()
        return loaded

    def write(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    def configure_search(self, params: IndexParams) -> None:
        """Apply the search-time knobs (IVF nprobe, HNSW efSearch) of `params`."""
        self.params = params
        if self.kind in (IndexKind.IVF, IndexKind.IVF_SQ8):
            self.index.nprobe = ivf_nprobe(self.index.nlist, self.params)
        elif self.kind is IndexKind.IVF_PQ:
            refine, ivf, quantizer = _pq_parts(self.index)
            refine.k_factor = self.params.pq_refine_factor
            ivf.nprobe = ivf_nprobe(ivf.nlist, self.params, self.kind)
            # The HNSW walk over the centroids must be wide enough to return nprobe lists.
            quantizer.hnsw.efSearch = max(64, 2 * ivf.nprobe)
        elif self.kind is IndexKind.HNSW:
            hnsw: Any = faiss.downcast_index(self.index.index)
            hnsw.hnsw.efSearch = self.params.hnsw_ef_search

    # ---- reads ----------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Live vectors (tombstones excluded)."""
        return len(self._live)

    @property
    def nlist(self) -> int | None:
        """Inverted lists of an IVF kind, None for the others."""
        if self.kind is IndexKind.IVF_PQ:
            return _pq_parts(self.index)[1].nlist
        return self.index.nlist if self.kind in IVF_KINDS else None

    @property
    def tombstone_ratio(self) -> float:
        return len(self.tombstones) / max(1, self.index.ntotal)

    def ids(self) -> np.ndarray:
        return np.fromiter(sorted(self._live), dtype=np.int64, count=len(self._live))

    def __contains__(self, face_id: int) -> bool:
        return int(face_id) in self._live

    def search(
        self, queries: np.ndarray, k: int, threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (Q, k), best first; empty slots have id -1."""
        queries = _as_matrix(queries, self.dim)
        k = max(1, min(k, max(1, self.count)))
        if self.tombstones and self.kind is IndexKind.HNSW:
            scores, ids = self.index.search(queries, k, params=self._search_params())
        elif self.kind is IndexKind.IVF_PQ:
            scores, ids = self.index.search(queries, k, params=self._refine_params(k))
        else:
            scores, ids = self.index.search(queries, k)
        if threshold is not None:
            ids = np.where(scores >= threshold, ids, -1)
        return scores, ids

    def _search_params(self) -> faiss.SearchParameters:
        # A new parameter object per call: FAISS rewrites `sel` while searching an IDMap.
        params: faiss.SearchParameters = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
            sel=self._selector, efSearch=self.params.hnsw_ef_search
        )
        return params

    def _refine_params(self, k: int) -> faiss.SearchParameters:
        # Per call, not on the shared index: concurrent searches may ask for different k.
        wanted = max(self.params.pq_refine_factor, math.ceil(self.params.pq_min_candidates / k))
        params = faiss.IndexRefineSearchParameters()
        params.k_factor = float(wanted)
        return params

    def _stored_ids(self) -> np.ndarray:
        if self.kind in (IndexKind.FLAT, IndexKind.HNSW, IndexKind.IVF_PQ):
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists: Any = self.index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(lists.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    # ---- writes ---------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors; ids already live are skipped (face embeddings never change in place,
        so replaying an add twice is harmless)."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = _as_matrix(vectors, self.dim)
        fresh = np.fromiter((int(i) not in self._live for i in ids), dtype=bool, count=len(ids))
        if not fresh.all():  # a mask copies: a fresh build would hold the gallery twice
            ids, vectors = ids[fresh], vectors[fresh]
        if not len(ids):
            return
        if self.tombstones.intersection(ids.tolist()):
            raise ValueError(f"{self.kind} cannot re-add a removed id; rebuild the index")
        with self._bulk_assignment(len(ids)):
            for start in range(0, len(ids), ADD_BATCH):
                stop = start + ADD_BATCH
                self.index.add_with_ids(vectors[start:stop], ids[start:stop])
        self._live.update(ids.tolist())

    @contextlib.contextmanager
    def _bulk_assignment(self, count: int) -> Iterator[None]:
        """For a large ivf_pq add, assign vectors to lists by an exact scan of the centroids
        (IndexFlatIP: one matrix product per batch) instead of the HNSW graph, whose walk
        at efSearch = 2 * nprobe costs ~5x more per vector. The graph returns afterwards;
        exact assignment is what the graph approximates, so the lists are the same or
        better. Safe: writers are serialised against readers (see the class docstring)."""
        if self.kind is not IndexKind.IVF_PQ or count < BULK_ASSIGN_MIN:
            yield
            return
        _, ivf, graph = _pq_parts(self.index)
        exact = faiss.IndexFlatIP(self.dim)
        exact.add(graph.reconstruct_n(0, ivf.nlist))
        ivf.quantizer = exact
        try:
            yield
        finally:
            ivf.quantizer = graph

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; returns how many were present."""
        doomed = [int(i) for i in np.asarray(ids, dtype=np.int64) if int(i) in self._live]
        if not doomed:
            return 0
        if self.kind is IndexKind.HNSW:
            self._bury(doomed)
        elif self.kind is IndexKind.IVF_PQ:
            self._unlist(doomed)
        else:
            self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(doomed, dtype=np.int64)))
        self._live.difference_update(doomed)
        return len(doomed)

    def _bury(self, doomed: list[int]) -> None:
        """HNSW removal: zero the stored vectors and filter the ids out of every search."""
        rows = self._rows_of(doomed)
        hnsw: Any = faiss.downcast_index(self.index.index)
        storage: Any = faiss.downcast_index(hnsw.storage)
        stored = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * self.dim)
        stored.reshape(storage.ntotal, self.dim)[rows] = 0.0
        self.tombstones.update(doomed)
        self._refresh_selector()

    def _unlist(self, doomed: list[int]) -> None:
        """ivf_pq removal: drop the rows from the IVF lists, zero their float vectors."""
        rows = self._rows_of(doomed)
        refine, ivf, _ = _pq_parts(self.index)
        ivf.remove_ids(faiss.IDSelectorBatch(rows))
        # IVF labels are row numbers of the refine store, so the row itself must stay.
        _zero_rows(faiss.downcast_index(refine.refine_index), rows)
        self.tombstones.update(doomed)

    def _rows_of(self, doomed: list[int]) -> np.ndarray:
        id_map = faiss.rev_swig_ptr(self.index.id_map.data(), self.index.ntotal)
        return np.flatnonzero(np.isin(id_map, np.asarray(doomed, dtype=np.int64)))

    def _refresh_selector(self) -> None:
        if not self.tombstones:
            self._selector = None
            return
        batch = faiss.IDSelectorBatch(np.fromiter(self.tombstones, dtype=np.int64))
        selector: Any = faiss.IDSelectorNot(batch)
        selector.referenced_batch = batch  # keep the inner selector alive
        self._selector = selector


def _new_faiss_index(
    kind: IndexKind, dim: int, vectors: np.ndarray, params: IndexParams
) -> faiss.Index:
    if kind is IndexKind.FLAT:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind is IndexKind.HNSW:
        hnsw = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = params.hnsw_ef_construction
        return faiss.IndexIDMap2(hnsw)
    if kind is IndexKind.IVF_PQ:
        return _trained_ivf_pq(dim, vectors, params)
    return _trained_ivf(kind, dim, vectors, params)


def _trained_ivf(
    kind: IndexKind, dim: int, vectors: np.ndarray, params: IndexParams
) -> faiss.Index:
    nlist = ivf_nlist(len(vectors), params)
    quantizer = faiss.IndexFlatIP(dim)
    index: faiss.Index
    if kind is IndexKind.IVF_SQ8:
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
    else:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(_training_sample(vectors, nlist * params.ivf_train_per_list))
    return index


def _trained_ivf_pq(dim: int, vectors: np.ndarray, params: IndexParams) -> faiss.Index:
    nlist = ivf_nlist(len(vectors), params)
    # An HNSW graph over the centroids: the coarse search (and the assignment of a few
    # added vectors) costs ~0.2 ms instead of a scan of all nlist centroids. Bulk adds
    # assign by that scan, batched (VectorIndex._bulk_assignment).
    quantizer = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.IndexIVFPQFastScan(
        quantizer, dim, nlist, _pq_subquantizers(dim), 4, faiss.METRIC_INNER_PRODUCT
    )
    # k-means assigns exactly while training; the centroids then go into the graph.
    exact_assigner = faiss.IndexFlatIP(dim)
    ivf.clustering_index = exact_assigner
    ivf.cp.niter = params.pq_train_iterations
    refine = faiss.IndexRefine(ivf, _rerank_store(dim, params))
    # A bounded sample: k-means costs sample x nlist x d per round, and 50 points per list
    # already place the centroids (the lists are probed widely, and re-ranking is exact).
    sample = min(nlist * params.ivf_train_per_list, max(params.pq_train_max, 32 * nlist))
    refine.train(_training_sample(vectors, sample))
    ivf.clustering_index = None  # type: ignore[assignment]  # the assigner is freed with this frame; drop the pointer
    return faiss.IndexIDMap2(refine)


def _zero_rows(storage: Any, rows: np.ndarray) -> None:
    """Overwrite the stored vectors (float32 IndexFlat or float16 IndexScalarQuantizer
    codes) of `rows` with zeros: the embedding itself is gone from memory and snapshots."""
    width = storage.code_size
    codes = faiss.rev_swig_ptr(storage.codes.data(), storage.ntotal * width)
    codes.reshape(storage.ntotal, width)[rows] = 0


def _pq_subquantizers(dim: int) -> int:
    """About 8 dimensions per 4-bit code (64 codes at d = 512); must divide dim."""
    return next(m for m in range(max(1, dim // 8), 0, -1) if dim % m == 0)


def _rerank_store(dim: int, params: IndexParams) -> faiss.Index:
    if params.pq_rerank not in PQ_RERANK_STORES:
        raise ValueError(f"pq_rerank must be one of {', '.join(PQ_RERANK_STORES)}")
    if params.pq_rerank == "flat":
        return faiss.IndexFlatIP(dim)
    # float16 keeps ~3 significant digits: cosine errors ~1e-4, far below the gap between
    # a face's best and second-best match (int8 codes measured recall@1 0.99 at 1M).
    return faiss.IndexScalarQuantizer(
        dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )


def _pq_parts(index: Any) -> tuple[Any, Any, Any]:
    """(refine, IVF, HNSW quantizer) of an ivf_pq index, built or read from disk
    (IndexRefine or IndexRefineFlat, IndexIVFPQFastScan, IndexHNSWFlat: Any, as for
    VectorIndex.index)."""
    refine: Any = faiss.downcast_index(index.index)
    ivf: Any = faiss.downcast_index(refine.base_index)
    return refine, ivf, faiss.downcast_index(ivf.quantizer)


def _training_sample(vectors: np.ndarray, size: int) -> np.ndarray:
    if len(vectors) == 0:
        raise ValueError("an IVF index needs vectors to train on")
    if len(vectors) <= size:
        return vectors
    rows = np.random.default_rng(0).choice(len(vectors), size, replace=False)
    return vectors[np.sort(rows)]


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise ValueError(f"expected vectors of dimension {dim}, got shape {matrix.shape}")
    return matrix
