"""LFW 1:1 verification, official View 2 protocol: 10 folds of 300 same + 300 different pairs.

    python -m benchmarks.lfw                                  # SCRFD-500M + ArcFace int8
    python -m benchmarks.lfw --recognizer mobileface:../shared/models/mobilefacenet512.onnx --flip
    python -m benchmarks.lfw --sweep                          # every fixture recognizer, ± flip

For each fold the threshold that maximises accuracy on the other nine folds is applied to
it; the score is the mean ± (population) std of the ten fold accuracies. Also printed: TAR
at FAR 1e-3 / 1e-2, EER and AUC over all pairs, the best overall threshold, how many photos
needed a detection fallback, and the time spent. A ROC plot and a JSON summary go to
`--out` (bench-out/ by default); embeddings are cached in bench-out/cache/.

The last line printed is `LFW accuracy: <mean>% ± <std>%`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks import metrics
from benchmarks.embedding_cache import DEFAULT_CACHE, EmbeddingSet, embed_paths
from benchmarks.paths import fixture_models, shared_dir
from facedb.lfw_pairs import Pairs, read_pairs

FARS = (1e-3, 1e-2)


def default_models() -> dict[str, str]:
    return fixture_models()


def sweep_recognizers() -> list[str]:
    """The five fixture recognizer files, each with the channel order it was trained on."""
    models = shared_dir() / "models"
    return [
        f"arcface:{models / 'arcface_w600k_mbf_int8.onnx'}",
        f"mobileface:{models / 'mobilefacenet512.onnx'}",
        f"mobileface:{models / 'mobilefacenet128_paddle.onnx'}?order=bgr",
        f"mobileface:{models / 'mobilefacenet128_relu6.onnx'}",
        f"mobileface:{models / 'mobilefacenet128_relu6_fp16.onnx'}",
    ]


# ---- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    detector: str
    recognizer: str
    flip: bool
    pairs: int
    fold_accuracies: list[float]
    mean: float
    std: float
    tar_at_far: dict[str, float]
    eer: float
    auc: float
    best_threshold: float
    fallbacks: dict[str, int]
    pipeline_seconds: float


def evaluate(
    pairs: Pairs, embedded: EmbeddingSet, detector: str, recognizer: str, flip: bool
) -> tuple[Result, np.ndarray]:
    """The protocol's figures, and the cosine score of every pair (for the ROC plot)."""
    vectors = embedded.embeddings
    scores = np.einsum("ij,ij->i", vectors[pairs.first], vectors[pairs.second])
    folds = metrics.kfold_accuracy(scores, pairs.same, pairs.fold)
    threshold, _ = metrics.best_threshold(scores, pairs.same)
    result = Result(
        detector=detector,
        recognizer=recognizer,
        flip=flip,
        pairs=len(scores),
        fold_accuracies=[float(a) for a in folds.accuracies],
        mean=folds.mean,
        std=folds.std,
        tar_at_far={f"{far:g}": metrics.tar_at_far(scores, pairs.same, far)[0] for far in FARS},
        eer=metrics.eer(scores, pairs.same)[0],
        auc=metrics.auc(scores, pairs.same),
        best_threshold=threshold,
        fallbacks=embedded.counts(),
        pipeline_seconds=embedded.seconds,
    )
    return result, scores


def run(
    pairs: Pairs, detector: str, recognizer: str, flip: bool, threads: int | None, progress: bool
) -> tuple[Result, np.ndarray]:
    embedded = embed_paths(
        pairs.images, detector, recognizer, flip=flip, threads=threads, progress=progress
    )
    return evaluate(pairs, embedded, detector, recognizer, flip)


# ---- output ----------------------------------------------------------------------------------


def label(recognizer: str, flip: bool) -> str:
    stem = Path(recognizer.partition(":")[2].partition("?")[0]).stem or recognizer
    return stem + (" +flip" if flip else "")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def print_result(result: Result) -> None:
    folds = " ".join(f"{100 * a:.2f}" for a in result.fold_accuracies)
    print(f"detector:   {result.detector}")
    print(f"recognizer: {result.recognizer}  flip={result.flip}")
    print(f"pairs: {result.pairs}; per-fold accuracy %: {folds}")
    tars = ", ".join(f"TAR@FAR={far}: {100 * tar:.2f}%" for far, tar in result.tar_at_far.items())
    print(f"{tars}; EER {100 * result.eer:.2f}%; AUC {result.auc:.5f}")
    print(f"best overall threshold (cosine): {result.best_threshold:.4f}")
    print(f"photos: {result.fallbacks} (low_threshold / mean = detection fallbacks)")
    print(f"time: pipeline {result.pipeline_seconds:.1f} s (0 when read from the cache)")


def plot_roc(curves: list[tuple[str, np.ndarray, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 5))
    for name, scores, same in curves:
        roc = metrics.roc(scores, same)
        keep = roc.far > 0  # a log axis cannot show FAR = 0
        axes.plot(roc.far[keep], roc.tar[keep], label=name, linewidth=1.2)
    axes.set_xscale("log")
    axes.set_xlim(1e-4, 1)
    axes.set_xlabel("false accept rate")
    axes.set_ylabel("true accept rate")
    axes.set_title("LFW View 2 ROC")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def save_json(results: list[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")


def print_table(results: list[Result]) -> None:
    print()
    print("| recognizer | LFW accuracy % | TAR@1e-3 % | TAR@1e-2 % | EER % | pipeline s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {label(r.recognizer, r.flip)} | {100 * r.mean:.2f} ± {100 * r.std:.2f} "
            f"| {100 * r.tar_at_far['0.001']:.2f} | {100 * r.tar_at_far['0.01']:.2f} "
            f"| {100 * r.eer:.2f} | {r.pipeline_seconds:.0f} |"
        )


# ---- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = default_models()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", default=defaults["detector"])
    parser.add_argument("--recognizer", default=defaults["recognizer"])
    parser.add_argument("--pairs", type=Path, default=shared_dir() / "data/lfw/pairs.txt")
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    parser.add_argument("--out", type=Path, default=DEFAULT_CACHE.parent)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument(
        "--sweep", action="store_true", help="every fixture recognizer, with and without flip"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pairs = read_pairs(args.pairs)
    runs = (
        [(r, flip) for flip in (False, True) for r in sweep_recognizers()]
        if args.sweep
        else [(args.recognizer, args.flip)]
    )
    results, curves = [], []
    for recognizer, flip in runs:
        result, scores = run(pairs, args.detector, recognizer, flip, args.threads, not args.quiet)
        print_result(result)
        print(f"LFW accuracy: {100 * result.mean:.2f}% ± {100 * result.std:.2f}%", flush=True)
        results.append(result)
        curves.append((label(recognizer, flip), scores, pairs.same))
    name = "lfw-sweep" if args.sweep else f"lfw-{slug(label(args.recognizer, args.flip))}"
    plot_roc(curves, args.out / f"{name}-roc.png")
    save_json(results, args.out / f"{name}.json")
    print(f"wrote {args.out / (name + '-roc.png')} and {name}.json", file=sys.stderr)
    if args.sweep:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
