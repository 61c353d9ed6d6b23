"""benchmarks/attributes.py runs end to end on a few people (the full run prints the figures)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.paths import REPO


def test_attributes_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.attributes", "--smoke"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for heading in ("gender accuracy", "Emotion", "Latency", "Clustering LFW"):
        assert heading in out
    assert "pair F1" in out and "SCRFD-500M detect (baseline)" in out
