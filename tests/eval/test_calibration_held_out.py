"""The shipped calibration of the ArcFace fixture as it runs by default (its float32 rewrite)
meets its targets on held-out LFW people (real models).

Calibrated on LFW View 2 folds 1-5, measured here on folds 6-10 (disjoint people).
"""

from __future__ import annotations

import numpy as np
import pytest

from facedb.calibration import PACKAGE_DIR, expected_fpir, load_calibration
from facedb.cli.eval import nonmated_matrix, pair_scores


@pytest.fixture(scope="module")
def calibration(held_out):
    found = load_calibration(held_out.model_sha256, search_dirs=[PACKAGE_DIR])
    assert found is not None, "no calibration shipped for the ArcFace fixture's default graph"
    assert "1-5" in found.provenance["data"] or "1,2,3,4,5" in found.provenance["data"]
    return found


@pytest.fixture(scope="module")
def nonmated(held_out) -> np.ndarray:
    """(distractors, gallery) scores of the folds 6-10 people."""
    return nonmated_matrix(held_out.search, held_out.embeddings)


def test_held_out_set_is_big_enough_to_measure_one_percent(held_out, nonmated):
    probes, gallery = nonmated.shape
    assert probes >= 1000 and gallery >= 800
    assert sum(v is None for v in held_out.embeddings.values()) < 0.01 * len(held_out.embeddings)


def test_verify_at_far_1e3_on_held_out_lfw_pairs(held_out, calibration):
    threshold = calibration.threshold_for_far(1e-3)
    _, impostor = pair_scores(held_out.pairs, held_out.embeddings)
    assert len(impostor) >= 1450  # folds 6-10: 1,500 listed impostor pairs
    accepted = np.count_nonzero(impostor >= threshold)
    print(f"listed pairs: {accepted} of {len(impostor)} accepted at {threshold:.4f}")
    # At most 3 of 1,500 (expected 1.5: a small sample, hence the million pairs below).
    assert accepted <= 2e-3 * len(impostor)


def test_verify_far_measured_on_a_million_held_out_impostor_pairs(calibration, nonmated):
    # Every (enrolled, distractor) pair of the held-out people is an impostor pair: enough of
    # them to see whether FAR 1e-3 is met, not merely not exceeded by a handful of pairs.
    threshold = calibration.threshold_for_far(1e-3)
    far = float(np.mean(nonmated >= threshold))
    print(f"cross pairs: FAR {far:.2e} of {nonmated.size} at {threshold:.4f}")
    assert 2e-4 <= far <= 2e-3
    # A stricter target gives a stricter threshold and fewer false accepts.
    assert np.mean(nonmated >= calibration.threshold_for_far(1e-4)) < far


def test_identify_at_fpir_1_percent_on_held_out_distractors(calibration, nonmated):
    gallery_size = nonmated.shape[1]
    threshold = calibration.threshold_for_fpir(0.01, gallery_size)
    fpir = float(np.mean(nonmated.max(axis=1) >= threshold))
    print(f"FPIR {fpir:.4f}, gallery {gallery_size}, {len(nonmated)} probes, t={threshold:.4f}")
    assert 0.005 <= fpir <= 0.02


@pytest.mark.parametrize("gallery_size", [30, 300])
def test_identify_threshold_scales_with_gallery_size(calibration, nonmated, gallery_size):
    # Expected FPIR over every `gallery_size`-subset of the held-out gallery (exact formula).
    threshold = calibration.threshold_for_fpir(0.01, gallery_size)
    counts = (nonmated >= threshold).sum(axis=1)
    fpir = expected_fpir(counts, nonmated.shape[1], gallery_size)
    print(f"FPIR {fpir:.4f} at gallery size {gallery_size}, t={threshold:.4f}")
    assert 0.005 <= fpir <= 0.02
    assert threshold < calibration.threshold_for_fpir(0.01, nonmated.shape[1])
