"""Calibration arithmetic and file handling, on synthetic scores with known distributions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from facedb.calibration import (
    PACKAGE_DIR,
    Calibration,
    build_calibration,
    expected_fpir,
    load_calibration,
)

SIGMA = 0.07  # impostor cosine spread, about that of real recognizers


def gaussian_far(threshold: float) -> float:
    return 0.5 * math.erfc(threshold / (SIGMA * math.sqrt(2)))


def synthetic(impostors: int, seed: int = 0) -> Calibration:
    rng = np.random.default_rng(seed)
    return build_calibration(
        "synthetic",
        "AB" * 32,
        genuine=rng.normal(0.6, 0.1, 2000),
        impostor=rng.normal(0.0, SIGMA, impostors),
        nonmated_scores=rng.normal(0.0, SIGMA, (1000, 400)),
        provenance={"data": "synthetic"},
    )


@pytest.fixture(scope="module")
def large() -> Calibration:
    return synthetic(400_000)


def test_far_threshold_is_near_the_true_quantile_when_measurable(large):
    far = gaussian_far(large.threshold_for_far(1e-3))
    assert 0.7e-3 <= far <= 1e-3  # a little conservative (sampling margin), never above


@pytest.mark.parametrize("target", [1e-5, 1e-7, 1e-9])
def test_far_threshold_is_conservative_beyond_the_data(large, target):
    # 400,000 impostors cannot measure these: the fitted tail must err on the safe side.
    assert gaussian_far(large.threshold_for_far(target)) <= target


def test_small_samples_give_conservative_thresholds():
    small = synthetic(1500, seed=1)
    assert gaussian_far(small.threshold_for_far(1e-3)) <= 1e-3
    assert small.far_points[-1].method == "tail"


def test_thresholds_rise_as_the_target_rate_falls(large):
    fars = [1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8]
    thresholds = [large.threshold_for_far(f) for f in fars]
    assert thresholds == sorted(thresholds)
    with pytest.raises(ValueError):
        large.threshold_for_far(0.0)


def test_fpir_threshold_rises_with_gallery_size(large):
    sizes = [1, 10, 100, 400, 1000, 100_000, 10**8]
    thresholds = [large.threshold_for_fpir(0.01, n) for n in sizes]
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]
    # One enrolled face: FPIR is the pair false-accept rate.
    one = large.threshold_for_fpir(0.01, 1)
    assert one == pytest.approx(large.threshold_for_far(0.01), abs=0.01)


@pytest.mark.parametrize("size", [10, 100, 400])
def test_fpir_threshold_meets_the_target_for_independent_scores(large, size):
    far = gaussian_far(large.threshold_for_fpir(0.01, size))
    assert 0.005 <= 1 - (1 - far) ** size <= 0.015


def test_extrapolated_sizes_stay_conservative(large):
    far = gaussian_far(large.threshold_for_fpir(0.01, 1_000_000))
    assert 1 - (1 - far) ** 1_000_000 <= 0.01
    assert any(t.extrapolated for t in large.fpir_tables)


def test_expected_fpir_is_exact_for_subsets():
    # One probe, 2 of 4 gallery scores above the threshold: a random pair of entries misses
    # both with probability C(2,2)/C(4,2) = 1/6.
    assert expected_fpir(np.array([2]), 4, 2) == pytest.approx(5 / 6)
    assert expected_fpir(np.array([0, 4]), 4, 1) == pytest.approx(0.5)


def test_file_round_trip_and_lookup(tmp_path: Path, large):
    path = large.save(tmp_path)
    loaded = load_calibration("ab" * 32, search_dirs=[tmp_path])
    assert loaded is not None and path.name.startswith("synthetic-abab")
    assert loaded.default_verify_threshold() == large.default_verify_threshold()
    assert loaded.default_identify_threshold(5000) == large.default_identify_threshold(5000)
    assert load_calibration("cd" * 32, search_dirs=[tmp_path]) is None
    data = json.loads(path.read_text())
    assert data["provenance"]["counts"]["impostor_pairs"] == 400_000


def test_foreign_and_broken_files_are_skipped(tmp_path: Path, large):
    (tmp_path / "a-broken.json").write_text("{not json")
    (tmp_path / "b-other.json").write_text(json.dumps({"model": {"sha256": "ab" * 32}}))
    large.save(tmp_path)
    assert load_calibration("ab" * 32, search_dirs=[tmp_path]) is not None


def test_environment_directories_come_first(tmp_path: Path, large, monkeypatch):
    large.save(tmp_path)
    monkeypatch.setenv("FACEDB_CALIBRATION_DIRS", str(tmp_path))
    assert load_calibration("AB" * 32) is not None


def test_shipped_calibration_files_are_valid():
    files = sorted(PACKAGE_DIR.glob("*.json"))
    assert files, "no calibration shipped"
    for path in files:
        calibration = Calibration.from_json(json.loads(path.read_text()))
        assert len(calibration.model_sha256) == 64
        assert -1.0 < calibration.default_verify_threshold() < 1.0
        assert calibration.provenance["counts"]["impostor_pairs"] > 0
