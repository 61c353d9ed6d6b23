"""1:1 verification metrics on similarity scores, with numpy only: ROC, TAR@FAR, EER, AUC,
best-accuracy threshold and the LFW k-fold accuracy.

Decision rule everywhere (as in benchmarks/ijb_metrics.py): a pair "matches" when its
score is >= the threshold. `labels` are booleans, True for a same-person (genuine) pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Roc:
    """Operating points from the strictest threshold down: far[i], tar[i] at thresholds[i].

    The first point is (0, 0) at +inf; every distinct score adds one point, so ties move
    FAR and TAR together, as a threshold really would.
    """

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray


def _checked(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    if labels.all() or not labels.any():
        raise ValueError("need both genuine and impostor pairs")
    return scores, labels


def roc(scores: np.ndarray, labels: np.ndarray) -> Roc:
    scores, labels = _checked(scores, labels)
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], labels[order]
    true_accepts = np.cumsum(hits)
    false_accepts = np.cumsum(~hits)
    # Keep the last position of each run of equal scores: one point per distinct threshold.
    last_of_run = np.r_[ranked[1:] != ranked[:-1], True]
    tar = np.r_[0.0, true_accepts[last_of_run] / hits.sum()]
    far = np.r_[0.0, false_accepts[last_of_run] / (~hits).sum()]
    thresholds = np.r_[np.inf, ranked[last_of_run]]
    return Roc(far, tar, thresholds)


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the loosest threshold whose FAR is still <= `far`."""
    curve = roc(scores, labels)
    allowed = np.flatnonzero(curve.far <= far + 1e-12)
    best = allowed[-1]  # FAR and TAR only grow along the curve
    return float(curve.tar[best]), float(curve.thresholds[best])


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(equal error rate, threshold): where FAR meets FRR, linearly interpolated."""
    curve = roc(scores, labels)
    frr = 1.0 - curve.tar
    gap = curve.far - frr  # rises from -1 to +1 along the curve
    cross = int(np.flatnonzero(gap >= 0)[0])
    if cross == 0:
        return float(curve.far[0]), float(curve.thresholds[0])
    before, after = gap[cross - 1], gap[cross]
    weight = -before / (after - before)
    rate = curve.far[cross - 1] + weight * (curve.far[cross] - curve.far[cross - 1])
    low, high = curve.thresholds[cross], curve.thresholds[cross - 1]
    threshold = low if not np.isfinite(high) else high + weight * (low - high)
    return float(rate), float(threshold)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids; equals P(genuine > impostor), ties count half)."""
    curve = roc(scores, labels)
    return float(np.sum(np.diff(curve.far) * (curve.tar[1:] + curve.tar[:-1]) / 2))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy on these pairs.

    Candidate thresholds are midpoints between neighbouring distinct scores (and the two
    ends), so the choice generalises symmetrically to unseen pairs.
    """
    scores, labels = _checked(scores, labels)
    order = np.argsort(scores, kind="stable")
    ranked, hits = scores[order], labels[order]
    distinct = np.r_[ranked[1:] != ranked[:-1], True]
    # Threshold just above position i: everything at or below i is rejected.
    genuine_rejected = np.cumsum(hits)[distinct]
    impostors_rejected = np.cumsum(~hits)[distinct]
    correct = impostors_rejected + (hits.sum() - genuine_rejected)
    values = ranked[distinct]
    cuts = np.r_[(values[:-1] + values[1:]) / 2, values[-1] + 1.0]
    # Also allow accepting everything (threshold below the lowest score).
    correct = np.r_[hits.sum(), correct]
    cuts = np.r_[values[0] - 1.0, cuts]
    best = int(np.argmax(correct))
    return float(cuts[best]), float(correct[best] / len(scores))


def accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(labels, dtype=bool)))


@dataclass(frozen=True)
class FoldResult:
    accuracies: np.ndarray  # per fold, with the threshold chosen on the other folds
    thresholds: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def std(self) -> float:
        return float(self.accuracies.std())  # population std, as the LFW results page uses


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> FoldResult:
    """For each fold: pick the best-accuracy threshold on the other folds, score this one."""
    scores, labels = _checked(scores, labels)
    folds = np.asarray(folds)
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        held_out = folds == fold
        threshold, _ = best_threshold(scores[~held_out], labels[~held_out])
        thresholds.append(threshold)
        accuracies.append(accuracy(scores[held_out], labels[held_out], threshold))
    return FoldResult(np.array(accuracies), np.array(thresholds))
