"""SCRFD-500M, the product's default detector, on real photos (full LFW dev-test set)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedb.vision.detect import DetectorConfig, load_detector
from facedb.vision.detect.base import iou_one_to_many
from tests.paths import EDGE, LFW, SCRFD
from tests.vision.test_detect_real import central_face, lfw_pair_images, plausible_landmarks


@pytest.fixture(scope="module")
def scrfd():
    return load_detector(SCRFD)


def test_scrfd_finds_a_face_in_every_lfw_dev_test_image(scrfd) -> None:
    paths = lfw_pair_images()
    missed, implausible = [], []
    for path in paths:
        faces = scrfd.detect(cv2.imread(str(path)))
        if not faces:
            missed.append(path.name)
        elif not plausible_landmarks(central_face(faces, (250, 250))):
            implausible.append(path.name)
    assert len(missed) <= 0.01 * len(paths), missed
    assert len(implausible) <= 0.02 * len(paths), implausible


def test_scrfd_two_people(scrfd) -> None:
    faces = scrfd.detect(cv2.imread(str(EDGE / "group" / "fr_two_people.jpg")))
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    # Obama is on the left, Biden on the right.
    assert sorted(f.box[0] for f in faces)[0] < 400 < sorted(f.box[0] for f in faces)[1]


def test_scrfd_lfw_face_is_centred_with_ordered_landmarks(scrfd) -> None:
    image = cv2.imread(str(LFW / "images" / "George_W_Bush" / "George_W_Bush_0001.jpg"))
    faces = scrfd.detect(image)
    assert len(faces) == 1
    centre = (faces[0].box[:2] + faces[0].box[2:]) / 2
    assert np.all(np.abs(centre - 125) < 30)  # deep-funneled LFW faces are centred
    assert plausible_landmarks(faces[0])


def test_native_scale_and_upscaled_runs_find_the_same_face() -> None:
    image = cv2.imread(str(LFW / "images" / "George_W_Bush" / "George_W_Bush_0001.jpg"))
    native = load_detector(SCRFD).detect(image)
    upscaled = load_detector(SCRFD, DetectorConfig(upscale=True)).detect(image)
    assert iou_one_to_many(native[0].box, upscaled[0].box[None])[0] > 0.8
    assert np.abs(native[0].landmarks - upscaled[0].landmarks).max() < 6


def test_grey_image_is_accepted(scrfd) -> None:
    image = cv2.imread(str(EDGE / "group" / "fr_two_people.jpg"), cv2.IMREAD_GRAYSCALE)
    assert len(scrfd.detect(image)) == 2


def test_max_faces_keeps_the_largest(scrfd) -> None:
    image = cv2.imread(str(EDGE / "group" / "insightface_t1.jpg"))
    one = load_detector(SCRFD, DetectorConfig(max_faces=1)).detect(image)
    everyone = scrfd.detect(image)
    assert len(one) == 1
    assert one[0].area == pytest.approx(max(f.area for f in everyone))


def test_input_size_on_the_dynamic_model(scrfd) -> None:
    image = cv2.imread(str(EDGE / "group" / "uniface_src_meeting.jpg"))
    small = load_detector(SCRFD, DetectorConfig(input_size=(320, 320)))
    canvas, _ = small.prepare(image)
    assert canvas.shape[:2] == (224, 320)  # 1280x853 shrunk to 320x213
    assert 3 <= len(small.detect(image)) <= len(scrfd.detect(image))
