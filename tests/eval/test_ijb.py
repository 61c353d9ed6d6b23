"""The IJB-style evaluation end to end on the small LFW protocol (real detector and recognizer)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.ijb import FARS, evaluate, format_report
from benchmarks.make_protocol import make_protocol
from tests.paths import ARCFACE, LFW, SCRFD


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_dir):
    root = tmp_path_factory.mktemp("ijb")
    protocol = make_protocol(root / "protocol", small=True, lfw_dir=LFW)
    out = root / "out"
    report = evaluate(
        protocol, SCRFD, ARCFACE, out_dir=out, cache_dir=root / "cache", threads=1, progress=False
    )
    return report, out


def test_verification_rates_are_finite_and_rise_with_far(run):
    report, _ = run
    tars = [tar for _, tar, _ in report.verify.tar_at_far]
    assert [far for far, _, _ in report.verify.tar_at_far] == list(FARS)
    assert all(math.isfinite(t) and 0.0 <= t <= 1.0 for t in tars)
    assert tars == sorted(tars)
    assert tars[-1] >= 0.95  # LFW templates at FAR 10%: this recognizer misses almost none
    thresholds = [t for _, _, t in report.verify.tar_at_far]
    assert thresholds == sorted(thresholds, reverse=True)


def test_open_set_search_on_both_galleries(run):
    report, _ = run
    assert [s.gallery for s in report.search] == ["G1", "G2"]
    for result in report.search:
        # Non-mated probes: the other gallery's people and the never-enrolled ones.
        assert result.nonmated_probes > result.mated_probes > 0
        (_, tpir_1, t_1), (_, tpir_10, t_10) = result.tpir_at_fpir
        assert 0.0 <= tpir_1 <= tpir_10 <= 1.0 and t_1 >= t_10
        ranks = [result.cmc[r] for r in (1, 5, 10)]
        assert ranks == sorted(ranks) and ranks[0] >= 0.9


def test_plots_and_report_are_written(run):
    report, out = run
    for name in ("roc.png", "det.png", "report.json"):
        assert (Path(out) / name).stat().st_size > 1000 or name == "report.json"
    text = format_report(report)
    assert "TAR" in text and "TPIR@FPIR=0.01" in text
    assert report.detection_fallbacks["detected"] >= 0.98 * report.images
