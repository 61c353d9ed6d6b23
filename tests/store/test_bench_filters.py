"""Smoke test of benchmarks.filters: a small gallery, every filter row printed."""

from __future__ import annotations

from benchmarks import filters


def test_filters_benchmark_prints_its_table(capsys) -> None:
    assert filters.main(["--size", "300", "--queries", "5", "--k", "5"]) == 0
    printed = capsys.readouterr().out
    assert "| none (baseline) | 100.0% |" in printed
    assert all(f"| {label} |" in printed for label in filters.FILTERS)
