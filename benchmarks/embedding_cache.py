"""Embed many photos (one face each) with a detector + recognizer, cached on disk.

    from benchmarks.embedding_cache import embed_paths
    result = embed_paths(paths, "scrfd:...onnx", "arcface:...onnx", flip=True)
    result.embeddings  # (N, dim) float32, row i for paths[i]

Two caches under `bench-out/cache/`, both keyed by content (model SHA-256s, settings and
the list of paths), so a changed model or setting never reuses stale numbers:
- `landmarks-*.npz`: the chosen face's 5 points per photo for one detector (shared by every
  recognizer run: detection is done once);
- `raw-*.npz`: one recognizer's raw outputs on those crops (`raw-*-mirror-*`: on their
  mirror images, for flip test-time augmentation).

Every photo gets an embedding. When the detector finds no face at its normal threshold it
is asked again at a low one; when even that fails the photo gets the mean landmarks of the
others (scaled to its size), which suits benchmark sets of roughly centred faces such as
deep-funneled LFW. `fallback` records which photos needed which rescue.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from facedb.models import ModelSpec, resolve_model
from facedb.vision.align import align_faces
from facedb.vision.detect import Detector, DetectorConfig, load_detector
from facedb.vision.embed import Embedder, file_sha256, l2_normalise, load_embedder
from facedb.vision.image import decode_image
from facedb.vision.types import Face

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / "bench-out" / "cache"
CACHE_VERSION = 1
RESCUE_THRESHOLD = 0.1  # second-chance detector score threshold
EMBED_CHUNK = 64  # crops aligned and embedded together (the embedder sub-batches)

Choice = Literal["centre", "largest"]

# fallback codes
DETECTED, LOW_THRESHOLD, MEAN_LANDMARKS = 0, 1, 2


def shared_dir() -> Path:
    """../shared beside the repository, or FACEDB_SHARED (as tests/paths.py)."""
    return Path(os.environ.get("FACEDB_SHARED", REPO.parent / "shared")).resolve()


@dataclass(frozen=True)
class Landmarks:
    points: np.ndarray  # (N, 5, 2) float32, in each photo's pixels
    fallback: np.ndarray  # (N,) int8: DETECTED, LOW_THRESHOLD or MEAN_LANDMARKS
    seconds: float  # wall time of decoding + detection when computed


@dataclass(frozen=True)
class EmbeddingSet:
    paths: list[str]
    embeddings: np.ndarray  # (N, dim) float32, unit rows
    fallback: np.ndarray  # (N,) int8, as in Landmarks
    detect_seconds: float
    embed_seconds: float  # decoding + alignment + embedding, when computed

    def counts(self) -> dict[str, int]:
        names = {DETECTED: "detected", LOW_THRESHOLD: "low_threshold", MEAN_LANDMARKS: "mean"}
        return {name: int((self.fallback == code).sum()) for code, name in names.items()}


# ---- cache keys and files --------------------------------------------------------------------


def _key(parts: dict[str, object]) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _paths_digest(paths: Sequence[str]) -> str:
    # Absolute paths, so `../shared/...` and `/work/shared/...` share one cache entry.
    absolute = [os.path.abspath(p) for p in paths]
    return hashlib.sha256("\n".join(absolute).encode()).hexdigest()


def _load(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError):  # a torn or foreign file: recompute it
        return None


def _save(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")  # one per writer
    np.savez(partial, **arrays)
    partial.replace(path)  # readers never see half a file


# ---- landmarks -------------------------------------------------------------------------------


def pick_face(faces: list[Face], image_hw: tuple[int, int], choose: Choice) -> Face:
    if choose == "largest":
        return max(faces, key=lambda f: f.area)
    centre = np.array([image_hw[1], image_hw[0]], np.float32) / 2
    return min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))


def _detect_one(
    image: np.ndarray, detectors: tuple[Detector, Detector], choose: Choice
) -> tuple[np.ndarray | None, int]:
    for code, detector in ((DETECTED, detectors[0]), (LOW_THRESHOLD, detectors[1])):
        faces = detector.detect(image)
        if faces:
            return pick_face(faces, image.shape[:2], choose).landmarks, code
    return None, MEAN_LANDMARKS


def _mean_relative_landmarks(
    points: np.ndarray, sizes: np.ndarray, found: np.ndarray
) -> np.ndarray:
    """The average face position as a fraction of the photo's (width, height)."""
    relative = points[found] / sizes[found][:, None, :]
    return relative.mean(axis=0)


def detect_landmarks(
    paths: Sequence[str],
    detector_spec: str,
    *,
    choose: Choice = "centre",
    threads: int | None = None,
    cache_dir: Path = DEFAULT_CACHE,
    progress: bool = True,
) -> Landmarks:
    detector = load_detector(detector_spec, threads=threads)
    key = _key(
        {
            "v": CACHE_VERSION,
            "detector": detector.spec.path.name,
            "sha256": file_sha256(detector.spec.path),
            "choose": choose,
            "rescue": RESCUE_THRESHOLD,
            "paths": _paths_digest(paths),
        }
    )
    cache = cache_dir / f"landmarks-{detector.spec.name}-{key}.npz"
    cached = _load(cache)
    if cached is not None:
        return Landmarks(cached["points"], cached["fallback"], float(cached["seconds"]))

    rescue = load_detector(
        detector_spec, DetectorConfig(score_threshold=RESCUE_THRESHOLD), threads=threads
    )
    points = np.zeros((len(paths), 5, 2), np.float32)
    sizes = np.zeros((len(paths), 2), np.float32)
    fallback = np.zeros(len(paths), np.int8)
    start = time.perf_counter()
    for i, path in enumerate(tqdm(paths, desc="detect", disable=not progress, leave=False)):
        image = decode_image(path)
        sizes[i] = (image.shape[1], image.shape[0])
        found, fallback[i] = _detect_one(image, (detector, rescue), choose)
        if found is not None:
            points[i] = found
    seconds = time.perf_counter() - start
    missing = fallback == MEAN_LANDMARKS
    if missing.any():
        points[missing] = (
            _mean_relative_landmarks(points, sizes, ~missing) * sizes[missing][:, None, :]
        )
    _save(cache, points=points, fallback=fallback, seconds=np.float64(seconds))
    return Landmarks(points, fallback, seconds)


# ---- embeddings ------------------------------------------------------------------------------


def _raw_outputs(
    paths: Sequence[str], points: np.ndarray, embedder: Embedder, mirror: bool, progress: bool
) -> np.ndarray:
    """The recognizer's unnormalised outputs for every photo's aligned crop (or its mirror)."""
    rows = []
    desc = f"{embedder.name}{' mirror' if mirror else ''}"
    bar = tqdm(total=len(paths), desc=desc, disable=not progress, leave=False)
    for start in range(0, len(paths), EMBED_CHUNK):
        chunk = range(start, min(start + EMBED_CHUNK, len(paths)))
        crops = np.concatenate([align_faces(decode_image(paths[i]), [points[i]]) for i in chunk])
        rows.append(embedder.raw(crops[:, :, ::-1] if mirror else crops))
        bar.update(len(chunk))
    bar.close()
    return np.concatenate(rows)


def _cached_raw(
    names: Sequence[str],
    marks: Landmarks,
    spec: ModelSpec,
    mirror: bool,
    options: _RunOptions,
) -> tuple[np.ndarray, float]:
    key = _key(
        {
            "v": CACHE_VERSION,
            "recognizer": file_sha256(spec.path),
            "preprocessing": asdict(spec.preprocessing) if spec.preprocessing else None,
            "options": spec.options,
            "mirror": mirror,
            "landmarks": hashlib.sha256(marks.points.tobytes()).hexdigest(),
            "paths": _paths_digest(names),
        }
    )
    cache = options.cache_dir / f"raw-{spec.name}-{'mirror-' if mirror else ''}{key}.npz"
    cached = _load(cache)
    if cached is not None:
        return cached["raw"], float(cached["seconds"])
    embedder = load_embedder(spec, threads=options.threads)
    start = time.perf_counter()
    raw = _raw_outputs(names, marks.points, embedder, mirror, options.progress)
    seconds = time.perf_counter() - start
    _save(cache, raw=raw, seconds=np.float64(seconds))
    return raw, seconds


@dataclass(frozen=True)
class _RunOptions:
    threads: int | None
    cache_dir: Path
    progress: bool


def embed_paths(
    paths: Sequence[str | Path],
    detector_spec: str,
    recognizer_spec: str,
    *,
    flip: bool = False,
    choose: Choice = "centre",
    threads: int | None = None,
    cache_dir: Path = DEFAULT_CACHE,
    progress: bool = True,
) -> EmbeddingSet:
    """One unit embedding per photo (see the module docstring), from the cache when possible.

    The cache keeps the recognizer's raw outputs for the crops and, when `flip` is asked,
    for their mirrors; the flip embedding is their normalised sum, exactly what
    `Embedder(flip=True)` computes, so a flip run after a plain one costs one pass, not two.
    """
    names = [str(p) for p in paths]
    options = _RunOptions(threads, cache_dir, progress)
    marks = detect_landmarks(
        names, detector_spec, choose=choose, threads=threads, cache_dir=cache_dir, progress=progress
    )
    spec = resolve_model(recognizer_spec)
    raw, seconds = _cached_raw(names, marks, spec, False, options)
    if flip:
        mirrored, mirror_seconds = _cached_raw(names, marks, spec, True, options)
        raw, seconds = raw + mirrored, seconds + mirror_seconds
    embeddings = l2_normalise(raw)
    return EmbeddingSet(names, embeddings, marks.fallback, marks.seconds, seconds)
