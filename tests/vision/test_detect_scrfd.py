"""SCRFD on real photos: the default detector of the product."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedb.vision.detect import DetectorConfig, load_detector
from tests.paths import EDGE, LFW, SCRFD


@pytest.fixture(scope="module")
def scrfd():
    return load_detector(SCRFD)


def test_scrfd_two_people(scrfd) -> None:
    faces = scrfd.detect(cv2.imread(str(EDGE / "group" / "fr_two_people.jpg")))
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    # Obama is on the left, Biden on the right; both heads sit in the top half of the photo.
    assert sorted(f.box[0] for f in faces)[0] < 400 < sorted(f.box[0] for f in faces)[1]


def test_scrfd_lfw_face_is_centred_with_ordered_landmarks(scrfd) -> None:
    image = cv2.imread(str(LFW / "images" / "George_W_Bush" / "George_W_Bush_0001.jpg"))
    faces = scrfd.detect(image)
    assert len(faces) == 1
    face = faces[0]
    centre = (face.box[:2] + face.box[2:]) / 2
    assert np.all(np.abs(centre - 125) < 30)  # deep-funneled LFW faces are centred
    eyes, nose, mouth = face.landmarks[:2], face.landmarks[2], face.landmarks[3:]
    assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]
    assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()


def test_scrfd_max_faces_keeps_the_largest() -> None:
    detector = load_detector(SCRFD, DetectorConfig(max_faces=1))
    faces = detector.detect(cv2.imread(str(EDGE / "group" / "insightface_t1.jpg")))
    everyone = load_detector(SCRFD).detect(cv2.imread(str(EDGE / "group" / "insightface_t1.jpg")))
    assert len(faces) == 1
    assert faces[0].area == pytest.approx(max(f.area for f in everyone))
