"""Smoke test of benchmarks.replicas: two replica processes, a small cold start."""

from __future__ import annotations

import pytest

from benchmarks import replicas

pytestmark = pytest.mark.postgres


def test_replicas_benchmark_prints_its_tables(postgres_server, capsys) -> None:
    argv = ["--database-url", postgres_server, "--replicas", "2", "--enrolls", "10"]
    argv += ["--search-seconds", "0.3", "--cold", "1200", "--tail", "10"]
    assert replicas.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| 2 |" in printed and "full rebuild from SQL" in printed
