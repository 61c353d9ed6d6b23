"""Aligned 112x112 crops of real LFW faces, for tests of recognizers on prepared input."""

from __future__ import annotations

from functools import cache

import numpy as np

from facedb.vision.align import align_faces
from facedb.vision.detect import load_detector
from facedb.vision.image import decode_image
from tests.paths import LFW, SCRFD

PEOPLE = ("Aaron_Peirsol", "Abdullah_Gul", "Alejandro_Toledo", "Ann_Veneman", "Bill_Gates")


@cache
def lfw_crops(people: tuple[str, ...] = PEOPLE, per_person: int = 2) -> np.ndarray:
    """(len(people) * per_person, 112, 112, 3) BGR crops of each photo's largest face."""
    detector = load_detector(SCRFD, threads=1)
    found = []
    for person in people:
        for path in sorted((LFW / "images" / person).glob("*.jpg"))[:per_person]:
            image = decode_image(path)
            faces = detector.detect(image)
            assert faces, path
            found.append(align_faces(image, [max(faces, key=lambda f: f.area).landmarks])[0])
    return np.stack(found)
