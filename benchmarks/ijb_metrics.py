"""Open-set 1:N metrics (TPIR@FPIR, CMC, DET) on similarity scores (1:1 ones: metrics.py).

Decision rule everywhere: a comparison "matches" when its score is >= the threshold.

1:N definitions (NIST FRVT / IJB-C): a probe searches a gallery with one template per subject.
- A *mated* probe's subject is enrolled; its rank is 1 + the number of gallery entries that
  score strictly higher than its mate.
- FPIR(t): share of *non-mated* probes (subject not enrolled) whose best score is >= t.
- TPIR(t) at rank 1: share of mated probes whose mate is at rank 1 with a score >= t;
  FNIR = 1 - TPIR. The threshold for a target FPIR is set on the non-mated probes only.
- CMC(r): closed-set share of mated probes with rank <= r (no threshold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def threshold_at_rate(negative_scores: np.ndarray, rate: float) -> float:
    """The lowest threshold at which at most `rate` of the negative scores are >= it.

    With n scores sorted high to low, k = floor(rate * n) of them may pass: the threshold sits
    just above the (k+1)-th highest, so ties never push the realised rate above `rate`.
    """
    scores = np.sort(np.asarray(negative_scores, dtype=np.float64))[::-1]
    allowed = int(np.floor(rate * len(scores) + 1e-9))
    if allowed >= len(scores):
        return float(-np.inf)
    return float(np.nextafter(scores[allowed], np.inf))


@dataclass(frozen=True)
class SearchOutcome:
    """Per-probe results of searching one gallery."""

    mated: np.ndarray  # (P,) bool: the probe's subject is enrolled
    best_score: np.ndarray  # (P,) the top score over the gallery
    mate_score: np.ndarray  # (P,) score of the probe's mate (nan when non-mated)
    mate_rank: np.ndarray  # (P,) 1-based rank of the mate (0 when non-mated)

    @property
    def nonmated_best(self) -> np.ndarray:
        return self.best_score[~self.mated]


def search_outcome(
    scores: np.ndarray, probe_subjects: Sequence[str], gallery_subjects: Sequence[str]
) -> SearchOutcome:
    """Rank the gallery for every probe. `scores` is (P, G); one gallery entry per subject."""
    gallery_index = {s: i for i, s in enumerate(gallery_subjects)}
    if len(gallery_index) != len(gallery_subjects):
        raise ValueError("the gallery must hold one template per subject")
    mate = np.array([gallery_index.get(s, -1) for s in probe_subjects])
    mated = mate >= 0
    rows = np.arange(len(mate))
    mate_score = np.full(len(mate), np.nan)
    mate_score[mated] = scores[rows[mated], mate[mated]]
    mate_rank = np.zeros(len(mate), dtype=np.int64)
    higher = scores[mated] > mate_score[mated][:, None]
    mate_rank[mated] = 1 + higher.sum(axis=1)
    best = scores.max(axis=1) if scores.shape[1] else np.full(len(mate), -np.inf)
    return SearchOutcome(mated, best, mate_score, mate_rank)


def cmc(outcome: SearchOutcome, ranks: Sequence[int]) -> dict[int, float]:
    """Closed-set identification rate at each rank, over the mated probes."""
    rank = outcome.mate_rank[outcome.mated]
    return {r: float(np.mean(rank <= r)) for r in ranks}


def tpir_at_fpir(
    outcome: SearchOutcome, fpirs: Sequence[float]
) -> list[tuple[float, float, float]]:
    """(fpir, threshold, tpir at rank 1) for each target FPIR."""
    rows = []
    for fpir in fpirs:
        threshold = threshold_at_rate(outcome.nonmated_best, fpir)
        rows.append((fpir, threshold, tpir_at_threshold(outcome, threshold)))
    return rows


def tpir_at_threshold(outcome: SearchOutcome, threshold: float) -> float:
    hit = (outcome.mate_rank == 1) & (outcome.mate_score >= threshold)
    return float(np.mean(hit[outcome.mated]))


def det_curve(outcome: SearchOutcome) -> tuple[np.ndarray, np.ndarray]:
    """(fpir, fnir) over every distinct non-mated best score as a threshold."""
    nonmated = np.sort(outcome.nonmated_best)
    thresholds = np.unique(nonmated)[::-1]
    fpir = 1.0 - np.searchsorted(nonmated, thresholds, side="left") / len(nonmated)
    mate_ok = np.where(outcome.mate_rank[outcome.mated] == 1, outcome.mate_score[outcome.mated], -2)
    mate_sorted = np.sort(mate_ok)
    tpir = 1.0 - np.searchsorted(mate_sorted, thresholds, side="left") / max(len(mate_ok), 1)
    return fpir, 1.0 - tpir
