"""5-point similarity alignment: exact on synthetic points, right on a real LFW photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedb.vision.align import (
    ARCFACE_TEMPLATE,
    align_face,
    alignment_matrix,
    estimate_similarity,
    template_for,
)
from facedb.vision.detect import load_detector
from tests.paths import LFW, SCRFD


def similarity(scale: float, angle_degrees: float, tx: float, ty: float) -> np.ndarray:
    angle = np.deg2rad(angle_degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([scale * rotation, [[tx], [ty]]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize(
    ("scale", "angle", "tx", "ty"),
    [(1.0, 0.0, 0.0, 0.0), (0.37, 23.0, -14.0, 80.5), (2.6, -170.0, 3.0, -9.0)],
)
def test_recovers_a_known_similarity_exactly(scale, angle, tx, ty) -> None:
    src = np.random.default_rng(7).uniform(0, 250, size=(5, 2))
    truth = similarity(scale, angle, tx, ty)
    estimated = estimate_similarity(src, apply(truth, src))
    np.testing.assert_allclose(estimated, truth, atol=1e-9)


def test_least_squares_fit_averages_noise() -> None:
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 200, size=(50, 2))
    truth = similarity(0.8, 12.0, 5.0, -7.0)
    estimated = estimate_similarity(src, apply(truth, src) + rng.normal(0, 0.5, size=(50, 2)))
    np.testing.assert_allclose(estimated[:, :2], truth[:, :2], atol=0.01)
    np.testing.assert_allclose(estimated[:, 2], truth[:, 2], atol=0.5)


def test_never_returns_a_reflection() -> None:
    # Mirror the template left-right: the best *similarity* cannot swap the eyes back,
    # so it must keep a positive determinant and leave a residual.
    mirrored = ARCFACE_TEMPLATE * [-1.0, 1.0] + [112.0, 0.0]
    matrix = estimate_similarity(mirrored, ARCFACE_TEMPLATE)
    assert np.linalg.det(matrix[:, :2]) > 0
    residual = np.abs(apply(matrix, mirrored) - ARCFACE_TEMPLATE).max()
    assert residual > 5.0


def test_degenerate_points_are_refused() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        estimate_similarity(np.ones((5, 2)), ARCFACE_TEMPLATE)
    with pytest.raises(ValueError):
        estimate_similarity(np.zeros((5, 2)), np.zeros((4, 2)))


def test_template_sizes() -> None:
    np.testing.assert_allclose(template_for(224), ARCFACE_TEMPLATE * 2)
    at_128 = template_for(128)
    np.testing.assert_allclose(at_128[:, 1], ARCFACE_TEMPLATE[:, 1])
    np.testing.assert_allclose(at_128[:, 0], ARCFACE_TEMPLATE[:, 0] + 8)
    np.testing.assert_allclose(template_for(256)[:, 0], (ARCFACE_TEMPLATE[:, 0] + 8) * 2)
    for bad in (0, 100, 120):
        with pytest.raises(ValueError):
            template_for(bad)


def bright_centroid(image: np.ndarray, x: float, y: float, radius: int = 6) -> np.ndarray:
    """Intensity-weighted centre of the pixels within `radius` of (x, y)."""
    left, top = round(x) - radius, round(y) - radius
    window = image[top : top + 2 * radius + 1, left : left + 2 * radius + 1, 0].astype(float)
    ys, xs = np.mgrid[: window.shape[0], : window.shape[1]]
    weight = window.sum()
    return np.array([(xs * window).sum() / weight + left, (ys * window).sum() / weight + top])


def test_warp_moves_marked_pixels_onto_the_template() -> None:
    # Five bright dots at known landmarks of a rotated, scaled "face": after alignment each
    # dot must sit on its template point (this checks the warp's direction, not just the fit).
    image = np.zeros((300, 400, 3), np.uint8)
    landmarks = apply(similarity(2.1, 17.0, 120.0, 20.0), ARCFACE_TEMPLATE)
    for x, y in landmarks:
        # Sub-pixel centres (shift=4: coordinates in 1/16 px) so the dots sit exactly there.
        centre = (round(x * 16), round(y * 16))
        cv2.circle(image, centre, 6 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    crop = align_face(image, landmarks)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    for x, y in ARCFACE_TEMPLATE:
        assert np.abs(bright_centroid(crop, x, y) - (x, y)).max() < 0.5
    assert crop[:8, :8].max() == 0  # outside the dots (and the image) stays black


def test_border_outside_the_image_is_black() -> None:
    image = np.full((120, 120, 3), 90, np.uint8)
    landmarks = ARCFACE_TEMPLATE - [30.0, 40.0]  # the face hangs off the top-left corner
    crop = align_face(image, landmarks)
    assert crop[:30, :30].max() == 0
    assert crop[-20:, -20:].min() == 90


def test_aligned_lfw_face_has_its_eyes_at_the_template_points() -> None:
    detector = load_detector(SCRFD)
    image = cv2.imread(str(LFW / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg"))
    (face,) = detector.detect(image)
    crop = align_face(image, face.landmarks, size=224)
    # Detect again on the aligned crop, pasted on a black canvas so the face is not at the
    # edge: an independent reading of where the eyes ended up.
    canvas = np.zeros((448, 448, 3), np.uint8)
    canvas[112:336, 112:336] = crop
    (again,) = detector.detect(canvas)
    found = again.landmarks - 112.0
    # The detector finds the points where the warp said it put them ...
    warped = apply(alignment_matrix(face.landmarks, 224), face.landmarks)
    assert np.abs(found - warped).max() < 0.03 * 224  # landmark noise: a few px
    # ... and the eyes are level and on the template, up to this face's own proportions.
    expected = template_for(224)
    assert np.abs(found[:2] - expected[:2]).max() < 0.04 * 224
    assert np.abs(found - expected).max() < 0.06 * 224
    # The fitted matrix maps the detected points close to the template (a real face is
    # not exactly the template, so a few pixels of residual are expected).
    residual = apply(alignment_matrix(face.landmarks), face.landmarks) - ARCFACE_TEMPLATE
    assert np.abs(residual).max() < 6.0
