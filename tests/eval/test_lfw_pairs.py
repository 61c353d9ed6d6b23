"""The benchmarks' one LFW pairs parser: View 2 folds as the official pairs.txt defines them."""

from __future__ import annotations

import numpy as np

from benchmarks.paths import shared_dir
from facedb.lfw_pairs import read_pairs
from tests.paths import LFW, SHARED


def test_view2_has_ten_folds_of_300_same_then_300_different() -> None:
    pairs = read_pairs(LFW / "pairs.txt")
    assert len(pairs.same) == 6000
    for fold in range(10):
        rows = np.flatnonzero(pairs.fold == fold)
        assert rows.tolist() == list(range(600 * fold, 600 * (fold + 1)))
        assert pairs.same[rows[:300]].all() and not pairs.same[rows[300:]].any()
    first = pairs.images[pairs.first[0]]
    assert first == LFW / "images" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    assert all(p.is_file() for p in pairs.images)


def test_view1_pairs_get_interleaved_folds_holding_both_kinds() -> None:
    pairs = read_pairs(LFW / "pairsDevTest.txt")
    assert len(pairs.same) == 1000 and pairs.same.sum() == 500
    for fold in range(10):
        assert pairs.same[pairs.fold == fold].sum() == 50
    assert len(pairs.unique_images()) == len(set(pairs.images))


def test_benchmarks_find_shared_as_the_tests_do() -> None:
    assert shared_dir() == SHARED
