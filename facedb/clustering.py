"""Group unlabelled face embeddings into people (storage-agnostic: embeddings in, groups out).

The rule, in full:

1. A FAISS exact inner-product index over the unit embeddings gives every face its `k`
   nearest neighbours (cosine similarity).
2. Two faces are linked when each is among the other's `k` nearest neighbours (a mutual
   k-NN edge) and their cosine is at least `threshold`.
3. The groups are the connected components of that graph, largest first; a face with no
   link is a group of one.

Mutual edges are what keeps connected components from chaining unrelated people through
one ambiguous face (a face that looks a little like everyone is rarely in everyone's own
top k). The threshold must still be a 1:N one, not a 1:1 one: each face's top k are the
*closest* impostors among N faces, not random ones. The default (`default_threshold`) is
the recognizer's calibrated identification threshold at FPIR 0.1 % for a gallery of N
faces: only one face in a thousand has an impostor above it.

Measured on LFW (`python -m benchmarks.attributes`: 3,181 photos of 811 people, ArcFace
int8, k = 10): the 1:1 FAR 1e-3 threshold (0.239) chains nearly everything into a few giant
groups (purity 0.085, pair-F1 0.005); the default (0.449 at N = 3,181) gives purity 0.999,
pair precision 0.998, recall 0.984, pair-F1 0.991; 0.40 gives 0.970, 0.50 gives 0.978.

Cost: one k-NN search, O(N^2 d) for the exact index; `MAX_FACES` bounds a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

MAX_FACES = 100_000
FALLBACK_THRESHOLD = 0.45  # for a recognizer without a calibration file (best on LFW above)
DEFAULT_FPIR = 1e-3


@dataclass(frozen=True)
class ClusterConfig:
    threshold: float = FALLBACK_THRESHOLD  # minimum cosine of a link
    neighbours: int = 10  # k of the mutual k-NN graph

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be a cosine in [-1, 1], got {self.threshold}")
        if not 1 <= self.neighbours <= 1000:
            raise ValueError(f"neighbours must be in 1..1000, got {self.neighbours}")


def default_threshold(model_sha256: str, faces: int) -> float:
    """The recognizer's calibrated FPIR 0.1 % threshold for `faces` faces, or
    FALLBACK_THRESHOLD without a calibration file."""
    from facedb.calibration import load_calibration

    calibration = load_calibration(model_sha256)
    if calibration is None:
        return FALLBACK_THRESHOLD
    return float(calibration.threshold_for_fpir(DEFAULT_FPIR, max(int(faces), 1)))


def mutual_knn_edges(
    embeddings: np.ndarray, config: ClusterConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) index arrays of the mutual k-NN links at or above the threshold."""
    count, dim = embeddings.shape
    k = min(config.neighbours + 1, count)  # +1: every face finds itself first
    index = faiss.IndexFlatIP(dim)
    index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
    scores, neighbours = index.search(np.ascontiguousarray(embeddings, dtype=np.float32), k)
    rows = np.repeat(np.arange(count), k)
    cols = neighbours.ravel()
    keep = (cols >= 0) & (cols != rows) & (scores.ravel() >= config.threshold)
    rows, cols = rows[keep], cols[keep]
    # Mutual: the pair appears in both directions among the kept neighbour lists.
    forward = set(zip(rows.tolist(), cols.tolist(), strict=True))
    mutual = [(a, b) for a, b in forward if a < b and (b, a) in forward]
    if not mutual:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.array(mutual, dtype=np.int64)
    return pairs[:, 0], pairs[:, 1]


def cluster_labels(embeddings: np.ndarray, config: ClusterConfig | None = None) -> np.ndarray:
    """A group label per face (0 = the largest group), by the rule in the module docstring."""
    config = config or ClusterConfig()
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2:
        raise ValueError(f"expected (N, d) embeddings, got shape {embeddings.shape}")
    count = len(embeddings)
    if count > MAX_FACES:
        raise ValueError(f"{count} faces: at most {MAX_FACES} can be clustered at once")
    if count == 0:
        return np.zeros(0, np.int64)
    if not np.isfinite(embeddings).all():
        raise ValueError("embeddings must be finite")
    first, second = mutual_knn_edges(embeddings, config)
    graph = coo_matrix((np.ones(len(first)), (first, second)), shape=(count, count))
    _, raw = connected_components(graph, directed=False)
    # Renumber by size, largest first, ties by first member, so labels are stable.
    sizes = np.bincount(raw)
    first_member = np.full(len(sizes), count)
    np.minimum.at(first_member, raw, np.arange(count))
    order = sorted(range(len(sizes)), key=lambda c: (-sizes[c], first_member[c]))
    relabel = np.empty(len(sizes), np.int64)
    relabel[order] = np.arange(len(sizes))
    return relabel[raw]


def cluster_faces(embeddings: np.ndarray, config: ClusterConfig | None = None) -> list[list[int]]:
    """The groups as lists of face indices, largest first."""
    labels = cluster_labels(embeddings, config)
    groups: list[list[int]] = [[] for _ in range(int(labels.max()) + 1 if len(labels) else 0)]
    for face, label in enumerate(labels.tolist()):
        groups[label].append(face)
    return groups


@dataclass(frozen=True)
class ClusterScores:
    purity: float  # share of faces whose group's majority identity is their own
    pair_precision: float  # same-group pairs that are the same person
    pair_recall: float  # same-person pairs that share a group
    pair_f1: float
    groups: int


def score_clusters(labels: Sequence[int], truth: Sequence[str]) -> ClusterScores:
    """Purity and pair precision / recall / F1 of predicted groups against identities."""
    predicted = np.asarray(labels)
    _, identity = np.unique(np.asarray(truth), return_inverse=True)
    # Contingency counts n_ij: faces in group i with identity j.
    table = coo_matrix(
        (np.ones(len(predicted)), (predicted, identity)),
        shape=(int(predicted.max()) + 1, int(identity.max()) + 1),
    ).toarray()
    purity = float(table.max(axis=1).sum() / len(predicted))
    together = float((table * (table - 1) / 2).sum())
    group_pairs = float((table.sum(axis=1) * (table.sum(axis=1) - 1) / 2).sum())
    person_pairs = float((table.sum(axis=0) * (table.sum(axis=0) - 1) / 2).sum())
    precision = together / group_pairs if group_pairs else 1.0
    recall = together / person_pairs if person_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ClusterScores(purity, precision, recall, f1, int(table.shape[0]))
