"""`facedb calibrate`: measure a recognizer's thresholds for target FAR / FPIR on labelled LFW.

    facedb calibrate --recognizer arcface:../shared/models/arcface_w600k_mbf_int8.onnx \\
        --lfw ../shared/data/lfw --folds 1-5 --out facedb/calibration_data

Data used, all from the chosen folds of LFW View 2 (`people.txt` splits the people into ten
folds and `pairs.txt` draws each fold's pairs from that fold's people, so the other folds
stay held out for measurement):
- 1:1: the folds' labelled pairs of `pairs.txt` (genuine and impostor), plus every
  (enrolled image, distractor image) pair of the folds' people from `gallery_probe.csv` as
  further impostors — about a million, so the FAR quantiles are measured instead of guessed.
- 1:N: the folds' `gallery` images enrolled one per person, searched by the folds'
  `distractor` images (people with a single image, never enrolled): the non-mated scores.
  The seven distractors who are an enrolled person under another name are left out.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facedb import lfw_pairs
from facedb.calibration import build_calibration
from facedb.models.graphs import GRAPHS, parse_graph

log = logging.getLogger(__name__)
DEFAULT_DETECTOR = "SCRFD_500M_KPS"

# LFW label noise: single-image "distractor" people who are someone enrolled
# under another spelling of the name (one is the identical photo). A search by them *should*
# match, so they are no non-mated probes. Found as the distractors scoring highest against
# the whole gallery (0.52-0.96), kept only where the two names are one person.
LFW_RENAMED_PEOPLE = frozenset(
    {
        "Cristina_Kirchner",  # Cristina_Fernandez
        "Gabrielle_Rose",  # Martha_Bowen, identical photo
        "Hasan_Wirayuda",  # Hassan_Wirajuda
        "John_Gruden",  # Jon_Gruden
        "Mireya_Elisa_Moscoso_Rodriguez",  # Mireya_Moscoso
        "Sung_Hong_Choi",  # Choi_Sung-hong
        "Wang_Nan",  # Nan_Wang
    }
)

Embeddings = dict[str, np.ndarray | None]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    parser = subparsers.add_parser(
        "calibrate", help="thresholds for target FAR / FPIR from labelled LFW data"
    )
    parser.add_argument("--recognizer", required=True, help="model spec of the recognizer")
    parser.add_argument(
        "--detector", default=None, help=f"detector spec (default: {DEFAULT_DETECTOR})"
    )
    parser.add_argument("--lfw", type=Path, default=None, help="LFW folder (default: ../shared)")
    parser.add_argument("--pairs", type=Path, default=None, help="LFW pairs file (pairs.txt)")
    parser.add_argument("--people", type=Path, default=None, help="LFW people file (people.txt)")
    parser.add_argument("--gallery-probe", type=Path, default=None, help="gallery_probe.csv")
    parser.add_argument("--folds", type=parse_folds, default=parse_folds("1-5"), help="e.g. 1-5")
    parser.add_argument("--flip", action="store_true", help="add the mirrored crop's embedding")
    parser.add_argument(
        "--recognizer-graph",
        choices=GRAPHS,
        default=None,
        help="float32 (default): a dynamic-int8 recognizer runs as its float32 rewrite; "
        "int8: as given (FACEDB_RECOGNIZER_GRAPH)",
    )
    parser.add_argument(
        "--detector-input",
        type=_parse_size,
        default=None,
        metavar="WxH",
        help="detector input size (dynamic detectors only)",
    )
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--workers", type=int, default=1, help="images analysed in parallel")
    parser.add_argument("--out", type=Path, default=Path("calibration"), help="output folder")
    parser.set_defaults(handler=run_calibrate)


def parse_folds(text: str) -> tuple[int, ...]:
    """`1-5` or `1,3,5` → 1-based fold numbers."""
    folds: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        try:
            folds.update(range(int(low), int(high or low) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected folds like 1-5 or 1,3,5: {text!r}"
            ) from None
    return tuple(sorted(folds))


def _parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


# ---- LFW files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledPair:
    path_a: str  # absolute image paths
    path_b: str
    mated: bool
    fold: int  # 1-based


def read_pairs(pairs_file: Path) -> list[LabelledPair]:
    """The pairs of an LFW pairs file (facedb.lfw_pairs), folds numbered from 1."""
    pairs = lfw_pairs.read_pairs(pairs_file)
    images = [str(path) for path in pairs.images]
    return [
        LabelledPair(images[a], images[b], bool(same), int(fold) + 1)
        for a, b, same, fold in zip(pairs.first, pairs.second, pairs.same, pairs.fold, strict=True)
    ]


def read_people_folds(people_file: Path) -> dict[str, int]:
    """people.txt: fold count, then per fold a count and `name<TAB>images` lines → name → fold."""
    lines = [line for line in people_file.read_text().splitlines() if line.strip()]
    fold_of: dict[str, int] = {}
    cursor, fold = 1, 0
    while cursor < len(lines):
        fold += 1
        count = int(lines[cursor])
        for line in lines[cursor + 1 : cursor + 1 + count]:
            fold_of[line.split()[0]] = fold
        cursor += 1 + count
    return fold_of


@dataclass(frozen=True)
class SearchSet:
    """A 1:N split: enrolled images (one per person) and non-mated probe images."""

    gallery: list[tuple[str, str]]  # (identity, absolute path)
    distractors: list[tuple[str, str]]


def read_search_set(
    gallery_probe: Path,
    fold_of: dict[str, int],
    folds: Sequence[int],
    exclude: frozenset[str] = LFW_RENAMED_PEOPLE,
) -> SearchSet:
    """The gallery and distractor rows of gallery_probe.csv for the people of `folds`."""
    data_root = gallery_probe.parent.parent  # paths in the CSV start with lfw/
    chosen = set(folds)
    gallery, distractors = [], []
    with gallery_probe.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if fold_of.get(row["identity"]) not in chosen or row["identity"] in exclude:
                continue
            entry = (row["identity"], str(data_root / row["path"]))
            if row["role"] == "gallery":
                gallery.append(entry)
            elif row["role"] == "distractor":
                distractors.append(entry)
    return SearchSet(gallery, distractors)


# ---- embedding ------------------------------------------------------------------------------


def embed_images(
    analyze: Callable[[str], np.ndarray | None], paths: Sequence[str], workers: int = 1
) -> Embeddings:
    """path → embedding of its largest face (None when no face), `workers` images at a time."""
    unique = sorted(set(paths))
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        # onnxruntime releases the GIL, so threads give real parallelism on the model runs.
        results = list(
            tqdm(pool.map(analyze, unique), total=len(unique), desc="embed", leave=False)
        )
    return dict(zip(unique, results, strict=True))


def pipeline_analyzer(
    detector: str,
    recognizer: str,
    *,
    flip: bool = False,
    threads: int | None = None,
    detector_input: tuple[int, int] | None = None,
    recognizer_graph: str | None = None,
) -> tuple[Callable[[str], np.ndarray | None], str, str]:
    """(path → embedding function, model name, model SHA-256) for a detector + recognizer."""
    from facedb.vision.detect import DetectorConfig
    from facedb.vision.image import decode_image
    from facedb.vision.pipeline import FacePipeline

    config = DetectorConfig(input_size=detector_input) if detector_input else None
    pipeline = FacePipeline.from_specs(
        detector,
        recognizer,
        detector_config=config,
        flip=flip,
        threads=threads,
        recognizer_graph=recognizer_graph,
    )

    def analyze(path: str) -> np.ndarray | None:
        analysis = pipeline.analyze(decode_image(path), select="largest")
        return analysis.embeddings[0] if analysis.accepted else None

    return analyze, pipeline.embedder.name, pipeline.embedder.sha256


# ---- scores ---------------------------------------------------------------------------------


def pair_scores(pairs: Sequence[LabelledPair], embeddings: Embeddings) -> tuple[np.ndarray, ...]:
    """(genuine, impostor) cosine scores of the pairs whose two images both have a face."""
    genuine: list[float] = []
    impostor: list[float] = []
    for pair in pairs:
        a, b = embeddings.get(pair.path_a), embeddings.get(pair.path_b)
        if a is None or b is None:
            continue
        (genuine if pair.mated else impostor).append(float(a @ b))
    return np.array(genuine), np.array(impostor)


def stack(
    entries: Sequence[tuple[str, str]], embeddings: Embeddings
) -> tuple[list[str], np.ndarray]:
    """(identities, (n, dim) matrix) of the entries whose image has a face."""
    kept = [(name, v) for name, path in entries if (v := embeddings.get(path)) is not None]
    if not kept:
        return [], np.zeros((0, 0), np.float32)
    return [k[0] for k in kept], np.stack([k[1] for k in kept])


def nonmated_matrix(search: SearchSet, embeddings: Embeddings) -> np.ndarray:
    """(distractors, gallery) scores; a distractor's own name is never enrolled."""
    gallery_names, gallery = stack(search.gallery, embeddings)
    _, probes = stack(search.distractors, embeddings)
    if set(gallery_names) & {name for name, _ in search.distractors}:
        raise ValueError("a distractor identity is also enrolled")
    return probes @ gallery.T


# ---- command --------------------------------------------------------------------------------


def _lfw_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    shared = Path(os.environ.get("FACEDB_SHARED", "../shared"))
    lfw = args.lfw or shared / "data" / "lfw"
    return (
        args.pairs or lfw / "pairs.txt",
        args.people or lfw / "people.txt",
        args.gallery_probe or lfw / "gallery_probe.csv",
    )


def run_calibrate(args: argparse.Namespace) -> int:
    pairs_file, people_file, gallery_probe = _lfw_paths(args)
    pairs = [p for p in read_pairs(pairs_file) if p.fold in args.folds]
    search = read_search_set(gallery_probe, read_people_folds(people_file), args.folds)
    detector = args.detector or os.environ.get("FACEDB_DETECTOR", DEFAULT_DETECTOR)
    analyze, name, sha256 = pipeline_analyzer(
        detector,
        args.recognizer,
        flip=args.flip,
        threads=args.threads,
        detector_input=args.detector_input,
        recognizer_graph=args.recognizer_graph,
    )
    paths = [p for pair in pairs for p in (pair.path_a, pair.path_b)]
    paths += [path for _, path in search.gallery + search.distractors]
    embeddings = embed_images(analyze, paths, args.workers)
    genuine, impostor = pair_scores(pairs, embeddings)
    nonmated = nonmated_matrix(search, embeddings)
    provenance = {
        "data": f"LFW View 2 folds {_fold_text(args.folds)}: {pairs_file.name} pairs; "
        f"{gallery_probe.name} gallery x distractor images of those folds' people",
        "detector": detector,
        "recognizer": args.recognizer,
        # The graph that ran: a dynamic-int8 file runs as its float32 rewrite by default.
        "recognizer_graph": parse_graph(args.recognizer_graph),
        "flip": args.flip,
        "detector_input": args.detector_input,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "images": len(embeddings),
        "images_without_face": sum(v is None for v in embeddings.values()),
        "listed_impostor_pairs": len(impostor),
        "excluded_label_noise": sorted(LFW_RENAMED_PEOPLE),
    }
    # Every enrolled x distractor comparison is an impostor pair too: many more samples.
    all_impostor = np.concatenate([impostor, nonmated.ravel()])
    calibration = build_calibration(name, sha256, genuine, all_impostor, nonmated, provenance)
    path = calibration.save(args.out)
    print(f"wrote {path}")
    print(f"verify threshold (FAR 1e-3): {calibration.default_verify_threshold():.4f}")
    for size in (100, 1000, 10_000, 100_000):
        threshold = calibration.default_identify_threshold(size)
        print(f"identify threshold (FPIR 1%, {size} enrolled): {threshold:.4f}")
    return 0


def _fold_text(folds: Sequence[int]) -> str:
    return ",".join(str(f) for f in folds)
