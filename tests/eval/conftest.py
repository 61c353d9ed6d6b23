"""Held-out LFW embeddings for the calibration checks, computed once per test session.

The shipped calibration of the ArcFace fixture's default graph (the int8 file's float32
rewrite, `facedb.models.graphs`) was measured on LFW View 2 folds 1-5 (`facedb calibrate
--folds 1-5`), as the int8 graph's was; everything here comes from folds 6-10, whose people are
disjoint from folds 1-5 (`people.txt`), so the checks measure on data the calibration
never saw, through the same code path (`facedb.cli.eval`) and pipeline settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from facedb.cli.eval import (
    Embeddings,
    LabelledPair,
    SearchSet,
    embed_images,
    pipeline_analyzer,
    read_pairs,
    read_people_folds,
    read_search_set,
)
from tests.paths import ARCFACE, LFW, SCRFD

HELD_OUT_FOLDS = (6, 7, 8, 9, 10)
# LFW photos are 250x250: a 256x256 canvas holds them at native scale, as the 640 canvas
# would (upscale=False), for a sixth of the detector's work. The calibration used the same.
DETECTOR_INPUT = (256, 256)
WORKERS = 2  # images in parallel; each onnxruntime session runs one thread (FACEDB_ORT_THREADS)


@dataclass(frozen=True)
class HeldOut:
    pairs: list[LabelledPair]  # folds 6-10 of pairs.txt
    search: SearchSet  # gallery and distractor images of the folds 6-10 people
    embeddings: Embeddings
    model_sha256: str


@pytest.fixture(scope="session")
def analyzer(shared_dir):
    return pipeline_analyzer(SCRFD, ARCFACE, threads=1, detector_input=DETECTOR_INPUT)


@pytest.fixture(scope="session")
def held_out(analyzer) -> HeldOut:
    analyze, _, sha256 = analyzer
    pairs = [p for p in read_pairs(LFW / "pairs.txt") if p.fold in HELD_OUT_FOLDS]
    impostor_pairs = [p for p in pairs if not p.mated]
    fold_of = read_people_folds(LFW / "people.txt")
    search = read_search_set(LFW / "gallery_probe.csv", fold_of, HELD_OUT_FOLDS)
    paths = [path for pair in impostor_pairs for path in (pair.path_a, pair.path_b)]
    paths += [path for _, path in search.gallery + search.distractors]
    embeddings = embed_images(analyze, paths, workers=WORKERS)
    return HeldOut(impostor_pairs, search, embeddings, sha256)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)
