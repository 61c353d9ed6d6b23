"""IJB-B/C style template evaluation of the full pipeline (detect → align → embed).

    python -m benchmarks.make_protocol            # once: bench-out/protocol from LFW
    python -m benchmarks.ijb [--protocol DIR] [--detector SPEC] [--recognizer SPEC] [--flip]

Every image of the protocol is embedded (benchmarks.embedding_cache, cached on disk); a
template's feature is the mean of its media features, a media's feature the mean of its
images' embeddings, L2-normalised at the end — so a media with many frames counts once.
Then:
- 1:1 verification over the listed template pairs: TAR at FAR = 1e-5 … 1e-1;
- 1:N open-set identification, probes against gallery G1 and against G2 (a probe whose
  subject is not in the searched gallery is non-mated and counts for FPIR): TPIR at rank 1
  at FPIR = 1% and 10%, and the closed-set CMC at ranks 1, 5, 10.
ROC and DET plots and a JSON report go to `bench-out/ijb[-NAME]/`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from benchmarks import metrics
from benchmarks.embedding_cache import DEFAULT_CACHE, embed_paths
from benchmarks.ijb_metrics import (
    SearchOutcome,
    cmc,
    det_curve,
    search_outcome,
    tpir_at_fpir,
)
from benchmarks.make_protocol import BENCH_OUT, SHARED, default_protocol_dir, make_protocol

FARS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
FPIRS = (0.01, 0.1)
RANKS = (1, 5, 10)
DET_FLOOR = 1e-4
DEFAULT_DETECTOR = f"scrfd:{SHARED / 'models' / 'scrfd_500m_kps.onnx'}"
DEFAULT_RECOGNIZER = f"arcface:{SHARED / 'models' / 'arcface_w600k_mbf_int8.onnx'}"


# ---- protocol -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IjbProtocol:
    subject_of: dict[int, str]  # template → subject
    media: dict[int, dict[int, list[str]]]  # template → media → absolute image paths
    pairs: np.ndarray  # (n, 3) int64: template_a, template_b, label (1 = mated)
    galleries: dict[str, list[int]]  # "G1" / "G2" → template ids
    probes: list[int]

    def image_paths(self) -> list[str]:
        return sorted(
            {p for by_media in self.media.values() for ps in by_media.values() for p in ps}
        )


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _read_int_rows(path: Path, columns: int) -> np.ndarray:
    """A headed CSV of integers, fast for millions of rows (csv would take minutes)."""
    text = path.read_text().split("\n", 1)[1]
    values = np.array(text.replace(",", " ").split(), dtype=np.int64)
    return values.reshape(-1, columns)


def read_protocol(protocol_dir: Path) -> IjbProtocol:
    info = json.loads((protocol_dir / "protocol.json").read_text())
    data_root = Path(info["data_root"])
    subject_of = {
        int(r["template_id"]): r["subject_id"] for r in _read_csv(protocol_dir / "templates.csv")
    }
    media: dict[int, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in _read_csv(protocol_dir / "media.csv"):
        media[int(row["template_id"])][int(row["media_id"])].append(str(data_root / row["path"]))
    galleries = {
        name: [int(r["template_id"]) for r in _read_csv(protocol_dir / f"gallery_{name}.csv")]
        for name in ("G1", "G2")
    }
    probes = [int(r["template_id"]) for r in _read_csv(protocol_dir / "probes.csv")]
    pairs = _read_int_rows(protocol_dir / "verify_pairs.csv", 3)
    return IjbProtocol(subject_of, {t: dict(m) for t, m in media.items()}, pairs, galleries, probes)


# ---- templates ------------------------------------------------------------------------------


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def template_features(
    protocol: IjbProtocol, embedding_of: dict[str, np.ndarray]
) -> tuple[dict[int, int], np.ndarray]:
    """(template id → row, (T, dim) unit features): mean within media, then across media."""
    ids = sorted(protocol.media)
    rows = []
    for template_id in ids:
        media_means = [
            np.mean([embedding_of[p] for p in paths], axis=0)
            for paths in protocol.media[template_id].values()
        ]
        rows.append(_unit(np.mean(media_means, axis=0)))
    return {t: i for i, t in enumerate(ids)}, np.stack(rows).astype(np.float32)


# ---- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    mated_pairs: int
    nonmated_pairs: int
    tar_at_far: list[tuple[float, float, float]]  # (far, tar, threshold)


@dataclass(frozen=True)
class SearchResult:
    gallery: str
    gallery_templates: int
    mated_probes: int
    nonmated_probes: int
    tpir_at_fpir: list[tuple[float, float, float]]  # (fpir, tpir, threshold)
    cmc: dict[int, float]


def verify(
    protocol: IjbProtocol, row_of: dict[int, int], features: np.ndarray
) -> tuple[VerifyResult, np.ndarray, np.ndarray]:
    a = np.array([row_of[t] for t in protocol.pairs[:, 0]])
    b = np.array([row_of[t] for t in protocol.pairs[:, 1]])
    scores = np.einsum("ij,ij->i", features[a], features[b])
    labels = protocol.pairs[:, 2] == 1
    rows = [(far, *metrics.tar_at_far(scores, labels, far)) for far in FARS]
    return VerifyResult(int(labels.sum()), int((~labels).sum()), rows), scores, labels


def search(
    protocol: IjbProtocol, row_of: dict[int, int], features: np.ndarray, gallery: str
) -> tuple[SearchResult, SearchOutcome]:
    gallery_ids = protocol.galleries[gallery]
    gallery_features = features[[row_of[t] for t in gallery_ids]]
    probe_features = features[[row_of[t] for t in protocol.probes]]
    outcome = search_outcome(
        probe_features @ gallery_features.T,
        [protocol.subject_of[t] for t in protocol.probes],
        [protocol.subject_of[t] for t in gallery_ids],
    )
    rows = [(fpir, tpir, threshold) for fpir, threshold, tpir in tpir_at_fpir(outcome, FPIRS)]
    result = SearchResult(
        gallery,
        len(gallery_ids),
        int(outcome.mated.sum()),
        int((~outcome.mated).sum()),
        rows,
        cmc(outcome, RANKS),
    )
    return result, outcome


@dataclass(frozen=True)
class IjbReport:
    protocol: str
    detector: str
    recognizer: str
    flip: bool
    images: int
    templates: int
    detection_fallbacks: dict[str, int]
    verify: VerifyResult
    search: list[SearchResult]


def evaluate(
    protocol_dir: Path,
    detector: str = DEFAULT_DETECTOR,
    recognizer: str = DEFAULT_RECOGNIZER,
    *,
    flip: bool = False,
    out_dir: Path | None = None,
    cache_dir: Path = DEFAULT_CACHE,
    threads: int | None = None,
    progress: bool = True,
) -> IjbReport:
    """Run the whole evaluation; writes plots and report.json when `out_dir` is given."""
    protocol = read_protocol(protocol_dir)
    paths = protocol.image_paths()
    embedded = embed_paths(
        paths,
        detector,
        recognizer,
        flip=flip,
        threads=threads,
        cache_dir=cache_dir,
        progress=progress,
    )
    row_of, features = template_features(
        protocol, dict(zip(paths, embedded.embeddings, strict=True))
    )
    verify_result, scores, labels = verify(protocol, row_of, features)
    searches = [search(protocol, row_of, features, name) for name in ("G1", "G2")]
    report = IjbReport(
        str(protocol_dir),
        detector,
        recognizer,
        flip,
        len(paths),
        len(row_of),
        embedded.counts(),
        verify_result,
        [s[0] for s in searches],
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_roc(scores, labels, out_dir / "roc.png")
        plot_det({s[0].gallery: s[1] for s in searches}, out_dir / "det.png")
        (out_dir / "report.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


# ---- plots ----------------------------------------------------------------------------------


def plot_roc(scores: np.ndarray, labels: np.ndarray, path: Path) -> None:
    curve = metrics.roc(scores, labels)
    figure, axes = plt.subplots(figsize=(6, 4.5))
    keep = curve.far > 0  # log axis
    axes.semilogx(curve.far[keep], curve.tar[keep])
    axes.set(xlabel="FAR", ylabel="TAR", title="1:1 verification (templates)", xlim=(1e-6, 1))
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_det(outcomes: dict[str, SearchOutcome], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for name, outcome in outcomes.items():
        fpir, fnir = det_curve(outcome)
        keep = fpir > 0
        # An FNIR of 0 has no place on a log axis: draw it at the floor of the plot.
        axes.loglog(fpir[keep], np.maximum(fnir[keep], DET_FLOOR), label=f"gallery {name}")
    axes.set(
        xlabel="FPIR",
        ylabel="FNIR (rank 1)",
        title="1:N open-set identification (DET)",
        xlim=(1e-4, 1),
        ylim=(DET_FLOOR, 1),
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# ---- report ---------------------------------------------------------------------------------


def _percent(value: float) -> str:
    return "   n/a" if math.isnan(value) else f"{100 * value:6.2f}"


def format_report(report: IjbReport) -> str:
    verify_result = report.verify
    lines = [
        f"protocol {report.protocol}: {report.images} images, {report.templates} templates",
        f"detector {report.detector}",
        f"recognizer {report.recognizer} (flip={report.flip})",
        f"detection fallbacks: {report.detection_fallbacks}",
        "",
        f"1:1 verification: {verify_result.mated_pairs} mated, "
        f"{verify_result.nonmated_pairs} non-mated template pairs",
        "| FAR | TAR % | threshold |",
        "|---|---|---|",
    ]
    lines += [
        f"| {far:.0e} | {_percent(tar)} | {t:.4f} |" for far, tar, t in verify_result.tar_at_far
    ]
    lines += ["", "1:N open-set identification (TPIR at rank 1; CMC closed-set)"]
    header = " | ".join(f"TPIR@FPIR={f:g}" for f in FPIRS)
    ranks = " | ".join(f"rank-{r}" for r in RANKS)
    lines += [f"| gallery | size | mated / non-mated probes | {header} | {ranks} |"]
    lines += ["|---" * (3 + len(FPIRS) + len(RANKS)) + "|"]
    for s in report.search:
        tpirs = " | ".join(f"{_percent(tpir)} (t={t:.3f})" for _, tpir, t in s.tpir_at_fpir)
        cmcs = " | ".join(_percent(s.cmc[r]) for r in RANKS)
        lines.append(
            f"| {s.gallery} | {s.gallery_templates} | {s.mated_probes} / {s.nonmated_probes} "
            f"| {tpirs} | {cmcs} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", type=Path, default=None, help="default bench-out/protocol")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR)
    parser.add_argument("--recognizer", default=DEFAULT_RECOGNIZER)
    parser.add_argument("--flip", action="store_true", help="add the mirrored crop's embedding")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="default bench-out/ijb-NAME")
    args = parser.parse_args(argv)
    protocol_dir = args.protocol or default_protocol_dir(small=False)
    if not (protocol_dir / "protocol.json").is_file() and args.protocol is None:
        make_protocol(protocol_dir)
    out_dir = args.out or BENCH_OUT / f"ijb-{protocol_dir.name}"
    report = evaluate(
        protocol_dir,
        args.detector,
        args.recognizer,
        flip=args.flip,
        out_dir=out_dir,
        threads=args.threads,
    )
    print(format_report(report))
    print(f"\nplots and report.json in {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
