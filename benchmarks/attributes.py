"""Face analysis on real LFW photos: gender accuracy, age error, emotion sanity, latency,
and clustering purity / pair-F1.

    python -m benchmarks.attributes                    # everything
    python -m benchmarks.attributes --skip-clustering  # attributes and latency only
    python -m benchmarks.attributes --smoke            # a few people (what the test runs)

- Gender / age: AgeGender (`genderage.onnx`) on up to `--images` photos of each person of
  `benchmarks/data/lfw_gender.csv` (gender and birth year written by hand, see its header);
  SCRFD-500M finds the faces, the one nearest the centre is the subject. Age error is
  against 2003 - birth year (LFW news photos are from about 2002-2004).
- Emotion: MiniXception RAF-DB on hand-picked smiling / plainly-not-smiling photos.
- Latency: median ms per face of each real attribute model, batch 1 and batch 8, at 1 and
  2 onnxruntime threads, with the SCRFD-500M detector (640 canvas) as the baseline.
- Clustering: ArcFace int8 embeddings of every photo of LFW people with at least
  `--min-images` photos (up to `--max-per-person` each) plus `--distractors` one-photo
  people, grouped by `facedb.clustering` (mutual k-NN + connected components) over a sweep
  of thresholds; purity and pair precision / recall / F1 against the names.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from benchmarks.embedding_cache import embed_paths, pick_face
from benchmarks.paths import REPO, shared_dir
from facedb.calibration import load_calibration
from facedb.clustering import ClusterConfig, cluster_labels, default_threshold, score_clusters
from facedb.models import SessionSettings, resolve_model
from facedb.models.graphs import select_graph
from facedb.vision.analysis.agegender import AgeGenderModel
from facedb.vision.analysis.emotion import MiniXceptionModel
from facedb.vision.detect import Detector, load_detector
from facedb.vision.embed import file_sha256
from facedb.vision.types import Face

LABELS = REPO / "benchmarks" / "data" / "lfw_gender.csv"
PHOTO_YEAR = 2003
# Looked at by hand: broad smiles, and faces that are plainly not smiling.
SMILING = [
    ("Cameron_Diaz", 1), ("Cameron_Diaz", 3), ("Jennifer_Aniston", 2), ("Tom_Cruise", 1),
    ("Tiger_Woods", 2), ("Kate_Hudson", 1), ("Bill_Clinton", 4),
]  # fmt: skip
NOT_SMILING = [
    ("Tiger_Woods", 1), ("Jennifer_Aniston", 1), ("Kate_Hudson", 2), ("Serena_Williams", 1),
]  # fmt: skip
THRESHOLDS = (0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50)
NEIGHBOURS = (5, 10, 20)


def lfw_dir() -> Path:
    return shared_dir() / "data" / "lfw"


def photo(name: str, number: int) -> Path:
    return lfw_dir() / "images" / name / f"{name}_{number:04d}.jpg"


def read_labels() -> list[dict[str, str]]:
    with LABELS.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise OSError(f"cannot read {path}")
    return np.asarray(image)


def main_face(detector: Detector, image: np.ndarray) -> Face | None:
    faces = detector.detect(image)
    return faces[pick_face(faces, image.shape[:2], "centre")] if faces else None


# ---- gender and age -----------------------------------------------------------------------


def gender_and_age(detector: Detector, model: AgeGenderModel, images: int, people: int) -> None:
    rows = read_labels()[: people or None]
    right = {"female": [0, 0], "male": [0, 0]}
    first_right = first_total = 0
    age_errors: list[float] = []
    for row in rows:
        for number in range(1, images + 1):
            path = photo(row["name"], number)
            if not path.exists():
                continue
            image = read_image(path)
            face = main_face(detector, image)
            if face is None:
                continue
            result = model.predict(image, [face])[0]
            tally = right[row["gender"]]
            tally[0] += result.gender == row["gender"]
            tally[1] += 1
            if number == 1:
                first_right += result.gender == row["gender"]
                first_total += 1
            if row["birth_year"]:
                age_errors.append(result.age - (PHOTO_YEAR - int(row["birth_year"])))
    total = sum(t[1] for t in right.values())
    correct = sum(t[0] for t in right.values())
    print(f"\n== AgeGender gender accuracy ({len(rows)} people, up to {images} photos each)")
    print(f"all photos      {correct}/{total} = {correct / max(total, 1):.1%}")
    for gender, (ok, count) in right.items():
        print(f"  {gender:<8}      {ok}/{count} = {ok / max(count, 1):.1%}")
    print(f"photo 1 only    {first_right}/{first_total} = {first_right / max(first_total, 1):.1%}"
          "  (the sample tests/vision/analysis asserts on)")  # fmt: skip
    if age_errors:
        errors = np.abs(age_errors)
        print(f"\n== AgeGender age vs {PHOTO_YEAR} - birth year ({len(age_errors)} photos)")
        bias = float(np.mean(age_errors))
        print(f"MAE {errors.mean():.1f} years, median {np.median(errors):.1f}, "
              f"mean signed error {bias:+.1f} (positive: predicted older)")  # fmt: skip


# ---- emotion ------------------------------------------------------------------------------


def emotion_sanity(detector: Detector, model: MiniXceptionModel) -> None:
    print("\n== Emotion (MiniXception RAF-DB) on hand-labelled LFW photos")
    for expected, people in (("smiling", SMILING), ("not smiling", NOT_SMILING)):
        for name, number in people:
            image = read_image(photo(name, number))
            face = main_face(detector, image)
            if face is None:
                print(f"{expected:<12} {name}_{number:04d}: no face")
                continue
            result = model.predict(image, [face])[0]
            print(f"{expected:<12} {name}_{number:04d}: {result.label:<9} "
                  f"{result.confidence:.2f}  P(happy) {result.scores['happy']:.2f}")  # fmt: skip


# ---- latency ------------------------------------------------------------------------------


def median_ms(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def per_face_ms(
    model: AgeGenderModel | MiniXceptionModel,
    image: np.ndarray,
    face: Face,
    batch: int,
    repeats: int,
) -> float:
    return median_ms(lambda: model.predict(image, [face] * batch), repeats) / batch


def latency(repeats: int) -> None:
    models = shared_dir() / "models"
    image = read_image(photo("Colin_Powell", 1))
    print("\n== Latency, median ms per face (onnxruntime sequential, CPU)")
    print(f"{'model':<28} {'threads':>7} {'batch 1':>9} {'batch 8':>9}")
    for threads in (1, 2):
        detector = load_detector(f"scrfd:{models / 'scrfd_500m_kps.onnx'}", threads=threads)
        face = main_face(detector, image)
        assert face is not None
        detect_ms = median_ms(lambda: detector.detect(image), repeats)  # noqa: B023 (run now)
        print(f"{'SCRFD-500M detect (baseline)':<28} {threads:>7} {detect_ms:>9.2f} {'-':>9}")
        attribute_models = (
            ("AgeGender", AgeGenderModel.from_spec(
                f"agegender:{models / 'genderage.onnx'}", SessionSettings(threads))),
            ("MiniXception RAF-DB", MiniXceptionModel.from_spec(
                f"minixception:{models / 'emotion_minixception_rafdb.onnx'}",
                SessionSettings(threads))),
        )  # fmt: skip
        for label, model in attribute_models:
            print(f"{label:<28} {threads:>7} {per_face_ms(model, image, face, 1, repeats):>9.2f} "
                  f"{per_face_ms(model, image, face, 8, repeats):>9.2f}")  # fmt: skip
    print("2D106, FairFace, MobileGaze, BiSeNet, XSeg: no real weights here, not timed")


# ---- clustering ---------------------------------------------------------------------------


def clustering_sample(min_images: int, max_per_person: int, distractors: int) -> list[Path]:
    folders = sorted(p for p in (lfw_dir() / "images").iterdir() if p.is_dir())
    paths: list[Path] = []
    singles: list[Path] = []
    for folder in folders:
        images = sorted(folder.glob("*.jpg"))
        if len(images) >= min_images:
            paths += images[:max_per_person]
        elif len(images) == 1:
            singles.append(images[0])
    step = max(len(singles) // max(distractors, 1), 1)
    return paths + singles[::step][:distractors]


def clustering(args: argparse.Namespace) -> None:
    models = shared_dir() / "models"
    recognizer = f"arcface:{models / 'arcface_w600k_mbf_int8.onnx'}"
    detector = f"scrfd:{models / 'scrfd_500m_kps.onnx'}"
    paths = clustering_sample(args.min_images, args.max_per_person, args.distractors)
    result = embed_paths(paths, detector, recognizer, progress=not args.smoke)
    truth = [Path(p).parent.name for p in result.paths]
    people = len(set(truth))
    # The graph embed_paths ran (by default the int8 file's float32 rewrite) and its calibration.
    sha = file_sha256(select_graph(resolve_model(recognizer)).path)
    calibrated = default_threshold(sha, len(paths)) if load_calibration(sha) else None
    print(f"\n== Clustering LFW: {len(paths)} photos of {people} people "
          f"(>= {args.min_images} photos, <= {args.max_per_person} each, "
          f"+{args.distractors} one-photo people); ArcFace (int8 file, default graph)")  # fmt: skip
    far_1e3 = load_calibration(sha)
    one_to_one = round(far_1e3.threshold_for_far(1e-3), 4) if far_1e3 else None
    print(f"(1:1 FAR 1e-3 threshold: {one_to_one}; default: {calibrated and round(calibrated, 4)})")
    print(f"{'threshold':>9} {'k':>3} {'groups':>6} {'purity':>7} {'pair P':>7} {'pair R':>7} "
          f"{'pair F1':>7} {'ms':>7}")  # fmt: skip
    sweep = sorted({*THRESHOLDS, *(round(t, 4) for t in (calibrated, one_to_one) if t)})
    for threshold in sweep:
        for k in NEIGHBOURS:
            start = time.perf_counter()
            labels = cluster_labels(result.embeddings, ClusterConfig(threshold, k))
            elapsed = (time.perf_counter() - start) * 1000
            s = score_clusters(labels.tolist(), truth)
            mark = (
                "  <- default (calibrated FPIR 0.1 % at N faces)"
                if threshold == round(calibrated or -9, 4) and k == 10
                else ""
            )
            print(f"{threshold:>9.3f} {k:>3} {s.groups:>6} {s.purity:>7.3f} "
                  f"{s.pair_precision:>7.3f} {s.pair_recall:>7.3f} {s.pair_f1:>7.3f} "
                  f"{elapsed:>7.1f}{mark}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3, help="photos per labelled person")
    parser.add_argument("--people", type=int, default=0, help="labelled people (0 = all)")
    parser.add_argument("--repeats", type=int, default=30, help="latency repetitions")
    parser.add_argument("--min-images", type=int, default=6)
    parser.add_argument("--max-per-person", type=int, default=10)
    parser.add_argument("--distractors", type=int, default=500)
    parser.add_argument("--skip-clustering", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a few of everything")
    args = parser.parse_args(argv)
    if args.smoke:
        args.images, args.people, args.repeats = 1, 6, 2
        args.min_images, args.max_per_person, args.distractors = 25, 3, 5
    models = shared_dir() / "models"
    detector = load_detector(f"scrfd:{models / 'scrfd_500m_kps.onnx'}")
    agegender = AgeGenderModel.from_spec(f"agegender:{models / 'genderage.onnx'}")
    emotion = MiniXceptionModel.from_spec(
        f"minixception:{models / 'emotion_minixception_rafdb.onnx'}"
    )
    gender_and_age(detector, agegender, args.images, args.people)
    emotion_sanity(detector, emotion)
    latency(args.repeats)
    if not args.skip_clustering:
        clustering(args)


if __name__ == "__main__":
    main()
