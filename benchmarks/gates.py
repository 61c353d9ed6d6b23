"""Quality and liveness gates on real photos: spoof APCER / BPCER, edge cases, LFW refusals.

    python -m benchmarks.gates                 # everything (about 1,700 images)
    python -m benchmarks.gates --lfw-limit 200 # a quicker LFW sample

Every image is decoded with EXIF orientation honoured, SCRFD-500M finds the faces, the
largest is aligned to the 112 ArcFace template and judged by `FaceGates` (MiniFASNet V2 +
V1SE fused, face_quality_fiqa) at the enrollment policy.

- spoof/: per-sample table (P(live) per model and fused, decision), then APCER (share of
  fakes judged live) and BPCER (share of live faces judged spoof) at the policy's
  `min_liveness`, separately for full frames and for the face-only crops, which MiniFASNet
  was not made for (it expects the face with its surroundings).
- edge/tiny_face, edge/blurred, edge/no_face and LFW pairsDevTest: refusals per reason.
  These are not live captures, so they are judged with `require_liveness=False`; the share
  that a liveness gate would refuse is printed beside.
- percentiles of every quality signal per set (the numbers behind GatePolicy's defaults).
- bench-out/gates_liveness.png: fused P(live) histogram for live vs fake samples.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.paths import BENCH_OUT, shared_dir
from facedb.lfw_pairs import read_pairs
from facedb.vision.align import align_face
from facedb.vision.detect import Detector, load_detector
from facedb.vision.gates import FaceAssessment, FaceGates, GatePolicy
from facedb.vision.image import decode_image
from facedb.vision.liveness import LivenessChecker

FULL_FRAME_SOURCES = ("silent_face", "silent_face_history", "doubango")
SIGNALS: tuple[str, ...] = ("inter_ocular", "face_size", "detection_score", "sharpness")
SIGNALS += ("brightness", "clipped_fraction", "yaw", "pitch", "roll", "learned_quality")


@dataclass(frozen=True)
class Judged:
    """One image's outcome: its largest face's assessment, or None when no face was found."""

    path: Path
    assessment: FaceAssessment | None
    per_model: tuple[float, ...] = ()  # P(live) of each liveness model

    @property
    def outcome(self) -> str:
        if self.assessment is None:
            return "NO_FACE"
        rejection = self.assessment.rejection
        return "ACCEPTED" if rejection is None else str(rejection.reason)


@dataclass
class Bench:
    detector: Detector
    gates: FaceGates
    policy: GatePolicy

    def judge(self, path: Path, policy: GatePolicy | None = None) -> Judged:
        image = decode_image(path)
        faces = self.detector.detect(image)
        if not faces:
            return Judged(path, None)
        face = max(faces, key=lambda f: f.area)
        aligned = align_face(image, face.landmarks)
        assessment = self.gates.assess(image, face, aligned, policy or self.policy)
        per_model: tuple[float, ...] = ()
        if isinstance(self.gates.liveness, LivenessChecker):
            per_model = tuple(float(s) for s in self.gates.liveness.per_model(image, [face])[:, 0])
        return Judged(path, assessment, per_model)


def build(models: Path, threads: int | None) -> Bench:
    detector = load_detector(f"scrfd:{models / 'scrfd_500m_kps.onnx'}", threads=threads)
    gates = FaceGates.from_specs(
        [
            f"minifasnet:{models / 'minifasnet_v2.onnx'}",
            f"minifasnet:{models / 'minifasnet_v1se.onnx'}",
        ],
        f"fiqa:{models / 'face_quality_fiqa.onnx'}",
        threads=threads,
    )
    return Bench(detector, gates, GatePolicy.enrollment())


# ----------------------------------------------------------------------------- spoof


def run_spoof(bench: Bench, data: Path) -> list[tuple[dict[str, str], Judged]]:
    with open(data / "spoof" / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [(row, bench.judge(data / row["path"])) for row in rows]


def print_spoof_table(results: list[tuple[dict[str, str], Judged]]) -> None:
    print(f"{'file':34} {'label':5} {'source':20} {'V2':>6} {'V1SE':>6} {'fused':>6}  decision")
    for row, judged in results:
        scores = [f"{s:6.3f}" for s in judged.per_model] or ["     -"] * 2
        fused = judged.assessment.liveness if judged.assessment else None
        fused_text = f"{fused:6.3f}" if fused is not None else "     -"
        name = Path(row["path"]).name
        print(
            f"{name:34} {row['label']:5} {row['source']:20} {' '.join(scores)} {fused_text}  "
            f"{judged.outcome}"
        )


def error_rates(results: Iterable[tuple[dict[str, str], Judged]], threshold: float) -> str:
    """APCER / BPCER of the liveness decision alone (fused P(live) >= threshold = live)."""
    fakes: list[float] = []
    lives: list[float] = []
    for row, judged in results:
        if judged.assessment is None or judged.assessment.liveness is None:
            continue
        (fakes if row["label"] == "fake" else lives).append(judged.assessment.liveness)
    apcer = sum(s >= threshold for s in fakes)
    bpcer = sum(s < threshold for s in lives)
    return (
        f"APCER {apcer}/{len(fakes)} = {_pct(apcer, len(fakes))}, "
        f"BPCER {bpcer}/{len(lives)} = {_pct(bpcer, len(lives))}"
    )


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "n/a"


def plot_liveness(
    results: list[tuple[dict[str, str], Judged]], threshold: float, out: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = [i / 20 for i in range(21)]
    for label, colour in (("live", "tab:green"), ("fake", "tab:red")):
        for full, hatch in ((True, None), (False, "//")):
            scores = [
                j.assessment.liveness
                for r, j in results
                if j.assessment is not None
                and j.assessment.liveness is not None
                and r["label"] == label
                and (r["source"] in FULL_FRAME_SOURCES) == full
            ]
            kind = "full frame" if full else "face crop"
            ax.hist(
                scores,
                bins=bins,
                alpha=0.5,
                color=colour,
                hatch=hatch,
                label=f"{label}, {kind} (n={len(scores)})",
            )
    ax.axvline(threshold, color="black", linestyle="--", label=f"min_liveness {threshold}")
    ax.set(
        xlabel="fused P(live), MiniFASNet V2 + V1SE",
        ylabel="images",
        title="Liveness scores on shared/data/spoof",
    )
    ax.legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- sets


def edge_sets(data: Path) -> dict[str, list[Path]]:
    edge = data / "edge"
    return {
        name: sorted(p for p in (edge / name).rglob("*") if p.is_file())
        for name in ("tiny_face", "blurred", "no_face")
    }


def refusals(judged: Sequence[Judged]) -> str:
    counts = Counter(j.outcome for j in judged)
    return ", ".join(f"{k} {v} ({_pct(v, len(judged))})" for k, v in counts.most_common())


def would_fail_liveness(judged: Sequence[Judged], threshold: float) -> str:
    scores = [
        j.assessment.liveness for j in judged if j.assessment and j.assessment.liveness is not None
    ]
    below = sum(s < threshold for s in scores)
    return f"{below}/{len(scores)} ({_pct(below, len(scores))})"


def signal_percentiles(judged: Sequence[Judged]) -> dict[str, np.ndarray]:
    reports = [j.assessment.quality for j in judged if j.assessment is not None]
    table = {}
    for name in SIGNALS:
        values = [getattr(r, name) for r in reports if getattr(r, name) is not None]
        if name in ("yaw", "pitch", "roll"):
            values = [abs(v) for v in values]
        table[name] = np.percentile(values, [0, 1, 50, 99, 100]) if values else np.full(5, np.nan)
    return table


def print_signals(by_set: Mapping[str, Sequence[Judged]]) -> None:
    print("\nsignal percentiles (0 / 1 / 50 / 99 / 100; pose as |angle|):")
    for name, judged in by_set.items():
        if not any(j.assessment for j in judged):
            continue  # nothing was detected (no_face)
        table = signal_percentiles(judged)
        print(f"  {name}:")
        for signal, values in table.items():
            print(f"    {signal:17}" + " ".join(f"{v:9.3f}" for v in values))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=shared_dir())
    parser.add_argument("--lfw-limit", type=int, default=0, help="first N LFW images (0 = all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=BENCH_OUT)
    args = parser.parse_args(argv)
    data, models = args.shared / "data", args.shared / "models"
    bench = build(models, args.threads)
    threshold = bench.policy.min_liveness

    spoof = run_spoof(bench, data)
    print(f"== spoof/ at the enrollment policy (min_liveness {threshold})")
    print_spoof_table(spoof)
    full = [(r, j) for r, j in spoof if r["source"] in FULL_FRAME_SOURCES]
    crops = [(r, j) for r, j in spoof if r["source"] not in FULL_FRAME_SOURCES]
    print(f"full frames ({len(full)}): {error_rates(full, threshold)}")
    print(f"face-only crops ({len(crops)}): {error_rates(crops, threshold)}")
    plot = args.out / "gates_liveness.png"
    plot_liveness(spoof, threshold, plot)

    no_liveness = dataclasses.replace(bench.policy, require_liveness=False)
    lfw = read_pairs(data / "lfw" / "pairsDevTest.txt").unique_images()
    lfw = lfw[: args.lfw_limit] if args.lfw_limit else lfw
    by_set = {
        name: [bench.judge(p, no_liveness) for p in paths]
        for name, paths in edge_sets(data).items()
    }
    by_set["lfw_pairsDevTest"] = [bench.judge(p, no_liveness) for p in lfw]

    print("\n== refusals at the enrollment policy (liveness not enforced: not live captures)")
    print(f"{'set':18} {'images':>6}  outcomes  [liveness < {threshold} would refuse]")
    for name, judged in by_set.items():
        spoofed = would_fail_liveness(judged, threshold)
        print(f"{name:18} {len(judged):6}  {refusals(judged)}  [{spoofed}]")
    for blurred in by_set["blurred"]:
        detail = (
            blurred.assessment.rejection.message
            if blurred.assessment and blurred.assessment.rejection
            else ""
        )
        print(f"  blurred/{blurred.path.name}: {blurred.outcome} {detail}")
    print_signals(by_set)
    print(f"\nwrote {plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
