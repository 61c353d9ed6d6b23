"""Embed many photos (one face each) through the production `FacePipeline`, cached on disk.

    from benchmarks.embedding_cache import embed_paths
    result = embed_paths(paths, "scrfd:...onnx", "arcface:...onnx", flip=True)
    result.embeddings  # (N, dim) float32, row i for paths[i]

Each photo is decoded with `decode_image` and analysed by `FacePipeline.analyze` (detect,
align, embed: what the service runs), and the face nearest the centre (or the largest) is
kept. The cache file under `bench-out/cache/` is keyed by content (both models' SHA-256s,
the recognizer's preprocessing and options, flip, the face choice and the list of paths),
so a changed model or setting never reuses stale numbers.

Every photo gets an embedding. When the detector finds no face at its normal threshold a
second pipeline with a low threshold is asked; when even that fails the photo gets the mean
landmarks of the others (scaled to its size), aligned and embedded by the same pipeline,
which suits benchmark sets of roughly centred faces such as deep-funneled LFW. `fallback`
records which photos needed which rescue.
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

from benchmarks.paths import BENCH_OUT
from facedb.vision.align import align_faces
from facedb.vision.detect import DetectorConfig, load_detector
from facedb.vision.embed import file_sha256
from facedb.vision.image import decode_image
from facedb.vision.pipeline import FacePipeline
from facedb.vision.types import Face

DEFAULT_CACHE = BENCH_OUT / "cache"
CACHE_VERSION = 2  # 2: one pass through FacePipeline (1 cached landmarks and raw outputs)
RESCUE_THRESHOLD = 0.1  # second-chance detector score threshold

Choice = Literal["centre", "largest"]

# fallback codes
DETECTED, LOW_THRESHOLD, MEAN_LANDMARKS = 0, 1, 2


@dataclass(frozen=True)
class EmbeddingSet:
    paths: list[str]
    embeddings: np.ndarray  # (N, dim) float32, unit rows
    fallback: np.ndarray  # (N,) int8: DETECTED, LOW_THRESHOLD or MEAN_LANDMARKS
    seconds: float  # wall time of decode + pipeline when computed (not when read from cache)

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


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")  # one per writer
    np.savez(partial, allow_pickle=False, **arrays)
    partial.replace(path)  # readers never see half a file


# ---- choosing the face -----------------------------------------------------------------------


def pick_face(faces: Sequence[Face], image_hw: tuple[int, int], choose: Choice) -> int:
    """Index of the chosen face: the largest, or the one whose box centre is nearest the
    image centre (LFW's subject)."""
    if choose == "largest":
        return max(range(len(faces)), key=lambda i: faces[i].area)
    centre = np.array([image_hw[1], image_hw[0]], np.float32) / 2

    def distance(i: int) -> float:
        box = faces[i].box
        return float(np.linalg.norm((box[:2] + box[2:]) / 2 - centre))

    return min(range(len(faces)), key=distance)


def _mean_relative_landmarks(
    points: np.ndarray, sizes: np.ndarray, found: np.ndarray
) -> np.ndarray:
    """The average face position as a fraction of the photo's (width, height)."""
    relative = points[found] / sizes[found][:, None, :]
    return relative.mean(axis=0)


@dataclass
class _Run:
    """Per-photo results as they are filled in."""

    embeddings: list[np.ndarray | None]
    points: np.ndarray  # (N, 5, 2) chosen face's landmarks
    sizes: np.ndarray  # (N, 2) width, height
    fallback: np.ndarray

    @classmethod
    def empty(cls, count: int) -> _Run:
        return cls(
            [None] * count,
            np.zeros((count, 5, 2), np.float32),
            np.zeros((count, 2), np.float32),
            np.full(count, MEAN_LANDMARKS, np.int8),
        )


def _analyse_all(
    paths: Sequence[str],
    pipelines: tuple[FacePipeline, FacePipeline],
    choose: Choice,
    run: _Run,
    progress: bool,
) -> None:
    for i, path in enumerate(tqdm(paths, desc="pipeline", disable=not progress, leave=False)):
        image = decode_image(path)
        run.sizes[i] = (image.shape[1], image.shape[0])
        for code, pipeline in ((DETECTED, pipelines[0]), (LOW_THRESHOLD, pipelines[1])):
            faces = pipeline.analyze(image, select="all").accepted
            if faces:
                chosen = faces[pick_face([f.face for f in faces], image.shape[:2], choose)]
                run.embeddings[i] = chosen.embedding
                run.points[i] = chosen.face.landmarks
                run.fallback[i] = code
                break


def _rescue_missing(paths: Sequence[str], pipeline: FacePipeline, run: _Run) -> None:
    missing = np.flatnonzero(run.fallback == MEAN_LANDMARKS)
    if len(missing) == 0:
        return
    relative = _mean_relative_landmarks(run.points, run.sizes, run.fallback != MEAN_LANDMARKS)
    for i in missing.tolist():
        crops = align_faces(decode_image(paths[i]), [relative * run.sizes[i]])
        run.embeddings[i] = pipeline.embed_aligned(crops)[0]


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
    """One unit embedding per photo (see the module docstring), from the cache when possible."""
    names = [str(p) for p in paths]
    pipeline = FacePipeline.from_specs(detector_spec, recognizer_spec, flip=flip, threads=threads)
    recognizer = pipeline.embedder.spec  # the graph that runs (an int8 file's float32 rewrite)
    key = _key(
        {
            "v": CACHE_VERSION,
            "detector": file_sha256(pipeline.detector.spec.path),
            "recognizer": file_sha256(recognizer.path),
            "preprocessing": asdict(recognizer.preprocessing) if recognizer.preprocessing else None,
            "options": recognizer.options,
            "flip": flip,
            "choose": choose,
            "rescue": RESCUE_THRESHOLD,
            "paths": _paths_digest(names),
        }
    )
    cache = cache_dir / f"embeddings-{recognizer.name}-{'flip-' if flip else ''}{key}.npz"
    cached = _load(cache)
    if cached is not None:
        return EmbeddingSet(
            names, cached["embeddings"], cached["fallback"], float(cached["seconds"])
        )
    rescue = FacePipeline(
        load_detector(
            detector_spec, DetectorConfig(score_threshold=RESCUE_THRESHOLD), threads=threads
        ),
        pipeline.embedder,
    )
    run = _Run.empty(len(names))
    start = time.perf_counter()
    _analyse_all(names, (pipeline, rescue), choose, run, progress)
    _rescue_missing(names, pipeline, run)
    seconds = time.perf_counter() - start
    embeddings = np.stack([e for e in run.embeddings if e is not None]).astype(np.float32)
    _save(
        cache,
        {"embeddings": embeddings, "fallback": run.fallback, "seconds": np.array(seconds)},
    )
    return EmbeddingSet(names, embeddings, run.fallback, seconds)
