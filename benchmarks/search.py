"""Search benchmark: every index kind on clustered unit vectors, against exact search.

Vectors look like a face gallery: each identity has a centre, and 1-5 templates scattered
around it (cosine ~0.8 to the centre, ~0.64 between templates); queries are fresh templates
of enrolled identities. Centres are not isotropic: real ArcFace embeddings (1.5k LFW faces)
have a PCA spectrum decaying like i^-0.76 (participation ratio ~185 of 512 dimensions), so
centres are drawn from a Gaussian with that spectrum in a random basis. `--isotropic` draws
them uniformly on the sphere instead: the worst case for every approximate index.

For each N and index kind it prints build time (wall, and CPU seconds of all threads:
FAISS builds with every core unless --threads says otherwise), memory (serialised index
size, and per face; "RSS/face" is the growth of this process's resident set while the
snapshot is loaded back, i.e. everything a server holds: codes, re-rank store, id maps,
the live-id set), cold start (read_snapshot: checksum, FAISS read, id set), single-query
p50/p99 latency (one thread; wall clock, and CPU time, which a busy machine does not
inflate), batch QPS (all threads), recall@1 and recall@10 against exact
search (IndexFlatIP) in the same run, and identity@1 (the top hit is the right person).

    python -m benchmarks.search                       # N = 10k, 100k, 1M; every kind
    python -m benchmarks.search --sizes 100k,1M --kinds flat,ivf,ivf_sq8,ivf_pq  # no HNSW
    python -m benchmarks.search --sizes 10k,100k --kinds flat,ivf --json out.json
    python -m benchmarks.search --sizes 100k,1M --kinds flat,ivf --milvus  # + Milvus rows
    python -m benchmarks.search --sizes 1M --kinds ivf,ivf_pq --milvus --milvus-kinds ivf \
        --milvus-uri http://127.0.0.1:19530 --milvus-pid "$(pgrep -f 'milvus run standalone')"

`--milvus` adds the same kinds on the real Milvus core (a standalone server started here, or
`--milvus-uri URI`, with `--milvus-pid` to read that server's resident memory), built and
searched as facedb's Milvus backend does (benchmarks.milvus_search).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from facedb.index.snapshot import read_snapshot, write_snapshot
from facedb.index.vector_index import IndexKind, IndexParams, VectorIndex, ivf_nlist, ivf_nprobe

MODEL = "0" * 64  # the model SHA-256 recorded in the benchmark's snapshots
TEMPLATE_COSINE = 0.8
SPECTRUM_SLOPE = 0.76  # eigenvalue i ~ i^-0.76 (ArcFace on LFW)


@dataclass
class Row:
    n: int
    kind: str
    params: str
    build_s: float
    memory_mb: float
    p50_ms: float
    p99_ms: float
    cpu_p50_ms: float
    batch_qps: float
    recall1: float
    recall10: float
    identity1: float
    bytes_per_face: float = 0.0  # serialised index size / N
    load_s: float = 0.0  # cold start: read_snapshot of the written snapshot
    build_cpu_s: float = 0.0  # CPU seconds of every thread during the build
    threads: int = 0  # FAISS (OpenMP) threads of the build and the batch search
    rss_per_face: float = 0.0  # resident set growth / N while the snapshot loads


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def gallery(n: int, dim: int, queries: int, isotropic: bool = False, seed: int = 0):
    """(vectors, identity of each vector, queries, identity of each query)."""
    rng = np.random.default_rng(seed)
    per_identity = rng.integers(1, 6, size=n)  # more identities than needed; trimmed below
    owners = np.repeat(np.arange(n), per_identity)[:n]
    centres = _centres(owners[-1] + 1, dim, isotropic, rng)
    vectors = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # in chunks: bounded temporary memory at 1M
        stop = min(n, start + 100_000)
        vectors[start:stop] = _templates(centres[owners[start:stop]], rng)
    query_owners = rng.choice(owners, size=queries)
    return vectors, owners, _templates(centres[query_owners], rng), query_owners


def _centres(count: int, dim: int, isotropic: bool, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((count, dim), dtype=np.float32)
    if not isotropic:
        scale = np.arange(1, dim + 1, dtype=np.float32) ** np.float32(-SPECTRUM_SLOPE / 2)
        basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
        centres = (centres * scale) @ basis
    return _unit(centres)


def _templates(centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dim = centres.shape[1]
    spread = np.sqrt(1 / TEMPLATE_COSINE**2 - 1) / np.sqrt(dim)
    noise = rng.standard_normal(centres.shape, dtype=np.float32) * np.float32(spread)
    return _unit(centres + noise)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    # Brute force over the caller's array (no index copying it: 6 GB at 3M).
    return faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)[1]


def measure(kind, vectors, owners, queries, query_owners, truth, params, singles) -> list[Row]:
    """Build once, then time and score every search setting (nprobe / efSearch) asked for."""
    ids = np.arange(len(vectors), dtype=np.int64)
    start, cpu_start = time.perf_counter(), time.process_time()
    index = VectorIndex.build(kind, vectors.shape[1], ids, vectors, params[0])
    build_s, build_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    memory_mb, load_s, resident_mb = _cold_start(index)
    rows = []
    for search_params in _variants(kind, params):
        index.configure_search(search_params)
        row = Row(
            len(vectors),
            kind.value,
            _describe(kind, index, search_params),
            build_s,
            memory_mb,
            *_timed_search(index, queries, query_owners, owners, truth, singles),
        )
        row.bytes_per_face = memory_mb * 1e6 / len(vectors)
        row.load_s, row.build_cpu_s = load_s, build_cpu_s
        row.threads = faiss.omp_get_max_threads()
        row.rss_per_face = resident_mb * 1e6 / len(vectors)
        rows.append(row)
    return rows


def _cold_start(index: VectorIndex) -> tuple[float, float, float]:
    """(snapshot file MB, seconds to load it as a restarting server does, MB the load adds
    to the resident set). The load runs in a fresh process: this one's heap is full of
    freed build temporaries that a load would reuse without growing the resident set."""
    uid = uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        manifest = write_snapshot(
            directory, index, gallery_uid=uid, model_sha256=MODEL, watermark=0
        )
        file_mb = (directory / manifest.index_file).stat().st_size / 1e6
        loader = [sys.executable, "-m", "benchmarks.search", "--load", str(directory), uid]
        output = subprocess.run(loader, check=True, capture_output=True, text=True).stdout
    load_s, resident, _ = (float(value) for value in output.split())
    return file_mb, load_s, resident


def _load_snapshot(directory: str, uid: str) -> int:
    """--load: read the snapshot in `directory`, print seconds taken, MB resident added and
    the vectors loaded."""
    rss_before, start = rss_mb(), time.perf_counter()
    manifest = json.loads((Path(directory) / "manifest.json").read_text(encoding="utf-8"))
    loaded, _ = read_snapshot(
        Path(directory), gallery_uid=uid, model_sha256=MODEL, dim=manifest["dim"],
        params=IndexParams(),
    )  # fmt: skip
    print(time.perf_counter() - start, rss_mb() - rss_before, loaded.count)
    return 0


def _variants(kind: IndexKind, params: list[IndexParams]) -> list[IndexParams]:
    if kind is IndexKind.FLAT:
        return params[:1]
    if kind is IndexKind.HNSW:
        return list({p.hnsw_ef_search: p for p in params}.values())
    return list({p.ivf_nprobe: p for p in params}.values())


def measure_milvus(milvus, kind, vectors, owners, queries, query_owners, truth, params, singles):
    """The Milvus rows for `kind`: `milvus` is (backend, server pid or None)."""
    from benchmarks.milvus_search import MilvusCollectionBench

    backend, pid = milvus
    bench = MilvusCollectionBench(backend, kind, vectors, params[0], pid)
    rows = []
    try:
        for search_params in _variants(kind, params):

            def search(batch, k, p=search_params):
                return bench.search(batch, k, p)

            rows.append(
                Row(
                    len(vectors),
                    f"milvus {kind.value}",
                    f"{bench.describe(search_params)} (insert {bench.insert_s:.0f} s)",
                    bench.build_s,
                    bench.memory_mb,
                    *_timed_search(
                        _Searcher(search), queries, query_owners, owners, truth, singles
                    ),
                )
            )
    finally:
        bench.drop()
    return rows


class _Searcher:
    """Anything with .search(queries, k) -> (scores, ids), for _timed_search."""

    def __init__(self, search) -> None:
        self.search = search


def _timed_search(index, queries, query_owners, owners, truth, singles) -> tuple:
    latencies, cpu_times = [], []
    threads = faiss.omp_get_max_threads()
    # One thread per single query, as in the service (requests run side by side); OpenMP
    # teams spin-waiting on a busy machine would otherwise dominate sub-millisecond calls.
    faiss.omp_set_num_threads(1)
    for query in queries[:singles]:
        start, cpu_start = time.perf_counter(), time.thread_time()
        index.search(query[None], 10)
        latencies.append((time.perf_counter() - start) * 1000)
        cpu_times.append((time.thread_time() - cpu_start) * 1000)
    faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    _, found = index.search(queries, 10)
    batch_qps = len(queries) / (time.perf_counter() - start)
    recall10 = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    return (
        float(np.percentile(latencies, 50)),
        float(np.percentile(latencies, 99)),
        float(np.percentile(cpu_times, 50)),
        batch_qps,
        float(np.mean(found[:, 0] == truth[:, 0])),
        float(recall10),
        float(np.mean(owners[found[:, 0]] == query_owners)),
    )


def _describe(kind: IndexKind, index: VectorIndex, params: IndexParams) -> str:
    nlist = index.nlist or 0
    if kind is IndexKind.IVF_PQ:
        nprobe = ivf_nprobe(nlist, params, kind)
        refine = params.pq_refine_factor
        store = params.pq_rerank
        floor = params.pq_min_candidates
        return f"PQx4fs nlist={nlist} nprobe={nprobe} rerank {store} max({refine}k,{floor})"
    if kind in (IndexKind.IVF, IndexKind.IVF_SQ8):
        return f"nlist={nlist} nprobe={ivf_nprobe(nlist, params)}"
    if kind is IndexKind.HNSW:
        return f"M={params.hnsw_m} efC={params.hnsw_ef_construction} efS={params.hnsw_ef_search}"
    return "exact"


def print_table(rows: list[Row]) -> None:
    header = (
        "| N | index | parameters | threads | build s | build CPU s | memory MB | p50 ms "
        "| p99 ms | CPU p50 ms | batch QPS | recall@1 | recall@10 | identity@1 | bytes/face "
        "| RSS/face | load s |"
    )
    print(header)
    print("|" + "---|" * 17)
    for r in rows:
        print(
            f"| {r.n:,} | {r.kind} | {r.params} | {r.threads or '-'} | {r.build_s:.1f} "
            f"| {r.build_cpu_s:.0f} | {r.memory_mb:,.0f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_p50_ms:.2f} | {r.batch_qps:,.0f} "
            f"| {r.recall1:.4f} "
            f"| {r.recall10:.4f} | {r.identity1:.4f} | {r.bytes_per_face:,.0f} "
            f"| {r.rss_per_face:,.0f} | {r.load_s:.2f} |"
        )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--load"]:
        return _load_snapshot(argv[1], argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k,1M", help="comma-separated N values")
    parser.add_argument("--kinds", default=",".join(k.value for k in IndexKind))
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000, help="batch queries (recall)")
    parser.add_argument("--singles", type=int, default=300, help="queries timed one by one")
    parser.add_argument("--threads", type=int, default=0, help="FAISS threads (0: all cores)")
    parser.add_argument("--nlist", type=int, help="IVF lists (default: 2*sqrt(N))")
    parser.add_argument(
        "--nprobe",
        help="IVF lists probed, comma-separated values to compare (default: nlist/32, at least 16)",
    )
    parser.add_argument("--hnsw-m", type=int, default=IndexParams.hnsw_m)
    parser.add_argument("--ef-construction", type=int, default=IndexParams.hnsw_ef_construction)
    parser.add_argument(
        "--ef-search",
        default=str(IndexParams.hnsw_ef_search),
        help="HNSW efSearch, comma-separated values to compare",
    )
    parser.add_argument("--isotropic", action="store_true", help="centres uniform on the sphere")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--milvus", action="store_true", help="also every kind on Milvus")
    parser.add_argument("--milvus-uri", help="a running Milvus (default: start one here)")
    parser.add_argument("--milvus-pid", type=int, help="that server's pid (its memory)")
    parser.add_argument("--milvus-kinds", help="the kinds run on Milvus (default: --kinds)")
    args = parser.parse_args(argv)
    milvus, server = _start_milvus(args) if args.milvus else (None, None)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    base = IndexParams(
        hnsw_m=args.hnsw_m, hnsw_ef_construction=args.ef_construction, ivf_nlist=args.nlist
    )
    nprobes = [int(v) for v in args.nprobe.split(",")] if args.nprobe else [None]
    efs = [int(v) for v in args.ef_search.split(",")]
    params = [
        replace(base, ivf_nprobe=nprobe, hnsw_ef_search=ef) for nprobe in nprobes for ef in efs
    ]
    kinds = [IndexKind(kind) for kind in args.kinds.split(",")]
    milvus_kinds = {IndexKind(kind) for kind in (args.milvus_kinds or args.kinds).split(",")}
    rows: list[Row] = []
    for n in (parse_size(size) for size in args.sizes.split(",")):
        vectors, owners, queries, query_owners = gallery(n, args.dim, args.queries, args.isotropic)
        truth = exact_top(vectors, queries, 10)
        print(
            f"# N={n:,}: {owners[-1] + 1:,} identities, d={args.dim}, "
            f"IVF lists would be {ivf_nlist(n, base)}",
            file=sys.stderr,
        )
        for kind in kinds:
            new_rows = measure(
                kind, vectors, owners, queries, query_owners, truth, params, args.singles
            )
            print_table(new_rows)
            rows += new_rows
            if milvus is not None and kind in milvus_kinds:
                milvus_rows = measure_milvus(
                    milvus, kind, vectors, owners, queries, query_owners, truth, params,
                    args.singles,
                )  # fmt: skip
                print_table(milvus_rows)
                rows += milvus_rows
        del vectors
    if server is not None:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)  # its binaries and data
    print()
    print_table(rows)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump([asdict(row) for row in rows], out, indent=1)
    return 0


def _start_milvus(args):
    """((MilvusBackend, server pid or None), the server to stop or None)."""
    from facedb.index.milvus_backend import MilvusBackend

    if args.milvus_uri:
        return (MilvusBackend(args.milvus_uri, prefix="bench"), args.milvus_pid), None
    from tests.milvus_server import LocalMilvus

    server = LocalMilvus(Path(tempfile.mkdtemp(prefix="facedb-bench-milvus-")))
    print(f"# Milvus standalone up in {server.startup_seconds:.1f} s", file=sys.stderr)
    return (MilvusBackend(server.uri), server.pid), server


if __name__ == "__main__":
    sys.exit(main())
