"""Every fixture detector on real photos: LFW detection, landmarks, agreement, group counts.

Each detector runs once over a fixed sample of 300 LFW `pairsDevTest.txt` images (evenly
spaced through the sorted list; the full set is in benchmarks/detect.py, and SCRFD-500M's
full run is in test_detect_scrfd.py). Face-count ranges were measured with these files.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facedb.vision.detect import Detector, load_detector
from facedb.vision.detect.base import iou_one_to_many
from facedb.vision.types import Face
from tests.paths import DATA, EDGE, LFW, MODELS

FIXTURES: dict[str, str] = {
    "scrfd_500m": f"scrfd:{MODELS / 'scrfd_500m_kps.onnx'}",
    "scrfd_2.5g": f"scrfd:{MODELS / 'scrfd_2.5g_kps_640.onnx'}",
    "retinaface_mnet025": f"retinaface:{MODELS / 'retinaface_mnet025_640.onnx'}",
    "yolov5n_0.5": f"yolov5face:{MODELS / 'yolov5n_0.5_face_640.onnx'}",
    "yolov8_lite_t": f"yolov8face:{MODELS / 'yolov8_lite_t_face_640.onnx'}",
    "yunet": f"yunet:{MODELS / 'yunet_2023mar.onnx'}",
}
SAMPLE_SIZE = 300

# photo → (min, max) faces at score 0.5, the same for every fixture detector
GROUP_COUNTS: dict[str, tuple[int, int]] = {
    "group/fr_two_people.jpg": (2, 2),
    "group/insightface_t1.jpg": (6, 6),
    "group/openface_longoria_cooper.jpg": (2, 2),
    "group/uniface_src_meeting.jpg": (4, 6),
    "group/face_alignment_grid3x3.jpg": (9, 9),
    "group/remotecv_multiple_faces_bw.jpg": (6, 6),
    "group/ultralight_2.jpg": (4, 4),
    "group/ultralight_9.jpg": (7, 9),
    "group/ultralight_1.jpg": (45, 60),  # school group, ~60 small faces
    "group/deepface_couple.jpg": (2, 2),  # 2280x1588: shrunk to the canvas
    "large/uniface_scientists_solvay.png": (22, 32),  # 29 small faces
    "format_variants/thumbor_giunchedi-grayscale.jpg": (1, 1),
    "resolution_variants/fr_obama-240p.jpg": (1, 1),
    "no_face/skimage_chelsea.png": (0, 0),  # a cat
    "no_face/skimage_coffee.png": (0, 0),
    "no_face/thumbor_balloon.jpg": (0, 0),
}


def lfw_pair_images() -> list[Path]:
    """Unique images named by pairsDevTest.txt, sorted."""
    images: set[Path] = set()
    for line in (LFW / "pairsDevTest.txt").read_text().splitlines()[1:]:
        fields = line.split()
        pairs = (
            [fields[0:2], [fields[0], fields[2]]]
            if len(fields) == 3
            else [fields[0:2], fields[2:4]]
        )
        images.update(LFW / "images" / n / f"{n}_{int(i):04d}.jpg" for n, i in pairs)
    return sorted(images)


def central_face(faces: list[Face], image_hw: tuple[int, int]) -> Face:
    """The face nearest the image centre: LFW's subject (others are bystanders)."""
    middle = np.array([image_hw[1], image_hw[0]]) / 2
    return min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - middle)))


def plausible_landmarks(face: Face) -> bool:
    """Frontal-face geometry: ordered left to right, eyes above nose above mouth, in the box."""
    points, box = face.landmarks, face.box
    margin = 0.1 * np.array([face.width, face.height])
    inside = np.all((points >= box[:2] - margin) & (points <= box[2:] + margin))
    left_to_right = points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]
    top_to_bottom = points[:2, 1].max() < points[2, 1] < points[3:, 1].min()
    return bool(inside and left_to_right and top_to_bottom)


@pytest.fixture(scope="module")
def lfw_sample() -> list[np.ndarray]:
    paths = lfw_pair_images()
    assert len(paths) > 1500
    picks = np.linspace(0, len(paths) - 1, SAMPLE_SIZE).round().astype(int)
    return [cv2.imread(str(paths[i])) for i in picks]


@pytest.fixture(scope="module")
def detectors() -> dict[str, Detector]:
    return {name: load_detector(spec) for name, spec in FIXTURES.items()}


_found: dict[str, list[list[Face]]] = {}


def lfw_detections(name: str, detectors: dict[str, Detector], sample) -> list[list[Face]]:
    """Each detector's faces on the sample, computed once per test session."""
    if name not in _found:
        _found[name] = [detectors[name].detect(image) for image in sample]
    return _found[name]


@pytest.mark.parametrize("name", list(FIXTURES))
def test_lfw_faces_found_with_plausible_landmarks(name, detectors, lfw_sample) -> None:
    detections = lfw_detections(name, detectors, lfw_sample)
    found = [faces for faces in detections if faces]
    assert len(found) >= 0.99 * len(detections)
    subjects = [central_face(faces, (250, 250)) for faces in found]
    assert sum(plausible_landmarks(f) for f in subjects) >= 0.98 * len(subjects)
    for face in subjects:
        assert face.box.dtype == np.float32 and face.landmarks.shape == (5, 2)
        assert 0.5 <= face.score <= 1.0


@pytest.mark.parametrize("name", [n for n in FIXTURES if n != "scrfd_500m"])
def test_lfw_boxes_agree_with_scrfd(name, detectors, lfw_sample) -> None:
    reference = lfw_detections("scrfd_500m", detectors, lfw_sample)
    detections = lfw_detections(name, detectors, lfw_sample)
    agree = 0
    for ref_faces, faces in zip(reference, detections, strict=True):
        if ref_faces and faces:
            subject = central_face(ref_faces, (250, 250)).box
            agree += iou_one_to_many(subject, np.stack([f.box for f in faces])).max() > 0.5
    assert agree >= 0.98 * len(detections)


@pytest.mark.parametrize("name", list(FIXTURES))
def test_face_counts_on_edge_photos(name, detectors) -> None:
    wrong = {}
    for relative, (low, high) in GROUP_COUNTS.items():
        image = cv2.imread(str(EDGE / relative))
        count = len(detectors[name].detect(image))
        if not low <= count <= high:
            wrong[relative] = count
    assert not wrong, f"{name}: counts out of range {wrong}"


@pytest.mark.parametrize("name", list(FIXTURES))
def test_group_photo_faces_are_ordered_and_inside_the_image(name, detectors) -> None:
    image = cv2.imread(str(EDGE / "group" / "insightface_t1.jpg"))
    faces = detectors[name].detect(image)
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)
    height, width = image.shape[:2]
    for face in faces:
        assert 0 <= face.box[0] < face.box[2] <= width and 0 <= face.box[1] < face.box[3] <= height
        assert plausible_landmarks(face)


def test_yunet_matches_opencv_facedetectoryn(detectors) -> None:
    """An independent decoder of the same file: OpenCV's FaceDetectorYN on the same canvas."""
    yunet = detectors["yunet"]
    reference = cv2.FaceDetectorYN.create(str(MODELS / "yunet_2023mar.onnx"), "", (640, 640))
    reference.setScoreThreshold(0.5)
    reference.setNMSThreshold(0.4)
    for relative in ("group/insightface_t1.jpg", "group/uniface_src_meeting.jpg"):
        image = cv2.imread(str(EDGE / relative))
        canvas, placement = yunet.prepare(image)
        ours = yunet.detect(image)
        _, rows = reference.detect(canvas)
        assert rows is not None and len(rows) == len(ours)
        rows = rows[np.argsort(-rows[:, 14])]
        for face, row in zip(ours, rows, strict=True):
            box = np.array([row[0], row[1], row[0] + row[2], row[1] + row[3]])
            expected_box = placement.to_original(box.reshape(2, 2)).reshape(4)
            np.testing.assert_allclose(face.box, expected_box, atol=0.5)
            expected_points = placement.to_original(row[4:14].reshape(5, 2))
            np.testing.assert_allclose(face.landmarks, expected_points, atol=0.5)
            assert face.score == pytest.approx(row[14], abs=1e-3)


def test_shared_dir_has_the_fixture_files() -> None:
    assert all((MODELS / spec.split(":", 1)[1]).is_file() for spec in FIXTURES.values())
    assert (DATA / "edge" / "labels.csv").is_file()


@pytest.mark.parametrize("name", list(FIXTURES))
def test_degenerate_image_sizes_give_no_faces(name, detectors) -> None:
    for shape in ((1, 1, 3), (3000, 20, 3), (20, 3000, 3)):
        assert detectors[name].detect(np.zeros(shape, np.uint8)) == []
