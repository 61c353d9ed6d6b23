"""Smoke test of benchmarks.labels: a small gallery, the search and memory tables printed
(the gRPC part loads the models: run by hand)."""

from __future__ import annotations

from benchmarks import labels


def test_labels_benchmark_prints_its_tables(capsys) -> None:
    argv = ["--size", "300", "--queries", "5", "--memory-size", "1000", "--skip", "grpc"]
    assert labels.main(argv) == 0
    printed = capsys.readouterr().out
    assert all(f"| {row} |" in printed for row in ("index only", "SQL labels (before)"))
    assert "| in memory (after) |" in printed
    assert "| face map (face id, identity id arrays) | 16,384 | 16.4 |" in printed
