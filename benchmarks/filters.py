"""Attribute filters: what post-filtering costs and what it misses, against exact answers.

A gallery of clustered unit vectors (benchmarks.search's model of ArcFace embeddings) in
a real SQLite (or `--database-url`) catalog, each face stored with an age and a gender
(per identity: gender at random, age 18-80 plus +-2 years per photo). For filters of
falling selectivity it runs the steps of `EngineCore.filtered_search` (index search for
k x 8 hits, capped, one `Catalog.face_attributes` read, `filters.matching`) and prints:

- p50 / p99 latency per query, beside the unfiltered k-search (the baseline, same run);
- recall@k: the share of the EXACT filtered top-k (brute force over the matching faces)
  that the post-filter returns, and the share of queries that got fewer than k matches.

    python -m benchmarks.filters                      # 10k faces, 200 queries, k = 10
    python -m benchmarks.filters --size 50k --queries 500 --k 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.search import gallery, parse_size
from facedb.engine.filters import AttributeFilter, matching, overfetched
from facedb.storage.catalog import Catalog, GalleryConfig, NewFace

DIM = 512
MODEL = "0" * 64
GALLERY = f"filters-{uuid.uuid4().hex[:8]}"  # unique in a shared --database-url
FILTERS: dict[str, tuple[AttributeFilter, ...]] = {
    "gender = female": (AttributeFilter("gender", equals="female"),),
    "age 30-40": (AttributeFilter("age", min=30, max=40),),
    "female, age 30-40": (
        AttributeFilter("gender", equals="female"),
        AttributeFilter("age", min=30, max=40),
    ),
    "age 30-31": (AttributeFilter("age", min=30, max=31),),
    "age 30-30.2": (AttributeFilter("age", min=30, max=30.2),),
}


@dataclass
class Row:
    filter: str
    selectivity: float  # share of the gallery's faces that match
    p50_ms: float
    p99_ms: float
    recall: float
    short: float  # queries answered with fewer than k matches though k exist


def stored_attributes(owners: np.ndarray, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    count = int(owners.max()) + 1
    genders = rng.choice(["female", "male"], size=count)
    ages = rng.uniform(18, 80, size=count)
    jitter = rng.uniform(-2, 2, size=len(owners))
    return [
        {"age": round(float(ages[o] + j), 1), "gender": str(genders[o])}
        for o, j in zip(owners, jitter, strict=True)
    ]


def build(
    catalog: Catalog, vectors: np.ndarray, owners: np.ndarray, attributes: list
) -> np.ndarray:
    """Face ids, row for row, enrolled one identity per call."""
    catalog.create_gallery(
        GalleryConfig(GALLERY, "bench", MODEL, DIM, stored_attributes=("age", "gender"))
    )
    face_ids = np.empty(len(vectors), dtype=np.int64)
    for owner in np.unique(owners):
        rows = np.flatnonzero(owners == owner)
        faces = [NewFace(vectors[r], attributes=attributes[r], model_sha256=MODEL) for r in rows]
        face_ids[rows] = catalog.add_faces(GALLERY, f"p{owner}", faces)
    return face_ids


def filtered_search(
    catalog: Catalog, query: np.ndarray, k: int, filters: tuple[AttributeFilter, ...]
) -> list[int]:
    """EngineCore.filtered_search's steps, without the engine (no filters: one k-search)."""
    if not filters:
        return [h.face_id for h in catalog.search(GALLERY, query[None], k)[0]]
    (hits,) = catalog.search(GALLERY, query[None], overfetched(k, filters))
    stored = catalog.face_attributes(GALLERY, [h.face_id for h in hits])
    return [h.face_id for h in matching(hits, stored, filters)][:k]


def timed(search: Callable[[np.ndarray], list[int]], queries: np.ndarray) -> tuple:
    seconds, answers = [], []
    for query in queries:
        start = time.perf_counter()
        answers.append(search(query))
        seconds.append(time.perf_counter() - start)
    return np.percentile(seconds, 50) * 1e3, np.percentile(seconds, 99) * 1e3, answers


def measure(catalog, vectors, face_ids, attributes, queries, k) -> list[Row]:
    rows = []
    p50, p99, _ = timed(partial(filtered_search, catalog, k=k, filters=()), queries)
    rows.append(Row("none (baseline)", 1.0, p50, p99, 1.0, 0.0))
    for label, filters in FILTERS.items():
        keep = np.array([all(f.matches(a) for f in filters) for a in attributes])
        p50, p99, answers = timed(partial(filtered_search, catalog, k=k, filters=filters), queries)
        truth = _exact(vectors[keep], face_ids[keep], queries, k)
        found = [len(set(a) & set(t)) / max(1, len(t)) for a, t in zip(answers, truth, strict=True)]
        short = [len(a) < len(t) for a, t in zip(answers, truth, strict=True)]
        rows.append(
            Row(label, float(keep.mean()), p50, p99, float(np.mean(found)), float(np.mean(short)))
        )
    return rows


def _exact(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> list[list[int]]:
    if len(ids) == 0:
        return [[] for _ in queries]
    scores = queries @ vectors.T
    top = np.argsort(-scores, axis=1)[:, :k]
    return [list(ids[row]) for row in top]


def print_table(rows: list[Row], n: int, k: int) -> None:
    print(f"\nN = {n:,} faces, k = {k}, post-filter fetches k x 8 (at most 4,096) hits\n")
    print("| filter | matching faces | p50 ms | p99 ms | recall@k vs exact | queries short of k |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.filter} | {r.selectivity:.1%} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.recall:.3f} | {r.short:.1%} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="10k", help="faces in the gallery")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args(argv)
    n = parse_size(args.size)
    vectors, owners, queries, _ = gallery(n, DIM, args.queries, seed=7)
    attributes = stored_attributes(owners, seed=8)
    with tempfile.TemporaryDirectory() as root:
        url = args.database_url or f"sqlite:///{Path(root) / 'filters.sqlite3'}"
        with Catalog.open(url, Path(root) / "index", snapshot_interval=None) as catalog:
            start = time.perf_counter()
            face_ids = build(catalog, vectors, owners, attributes)
            print(f"enrolled {n:,} faces in {time.perf_counter() - start:.1f} s", file=sys.stderr)
            rows = measure(catalog, vectors, face_ids, attributes, queries, args.k)
    print_table(rows, n, args.k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
