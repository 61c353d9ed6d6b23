"""Shared by the analysis tests: the real fixture models and LFW photos with their main face."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from facedb.vision.detect import Detector, load_detector
from facedb.vision.types import Face
from tests.paths import LFW, MODELS, REPO, SCRFD

AGEGENDER = f"agegender:{MODELS / 'genderage.onnx'}"
EMOTION = f"minixception:{MODELS / 'emotion_minixception_rafdb.onnx'}"
GENDER_LABELS = REPO / "benchmarks" / "data" / "lfw_gender.csv"


@lru_cache(maxsize=1)
def detector() -> Detector:
    return load_detector(SCRFD)


def lfw_path(name: str, number: int) -> Path:
    return LFW / "images" / name / f"{name}_{number:04d}.jpg"


def main_face(image: np.ndarray) -> Face:
    """Deep-funneled LFW centres the subject; other people may be in the photo."""
    faces = detector().detect(image)
    centre = np.array(image.shape[1::-1]) / 2
    return min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))


def load(name: str, number: int) -> tuple[np.ndarray, Face]:
    image = cv2.imread(str(lfw_path(name, number)))
    return image, main_face(image)


def gender_labels() -> list[tuple[str, str]]:
    with GENDER_LABELS.open() as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return [(row["name"], row["gender"]) for row in rows]
