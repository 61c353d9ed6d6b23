"""facedb.clustering: the mutual k-NN rule and the scores, on constructed embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from facedb.clustering import ClusterConfig, cluster_faces, cluster_labels, score_clusters


def people(counts: list[int], spread: float = 0.05, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Unit vectors around one random direction per person."""
    rng = np.random.default_rng(seed)
    rows = []
    for count in counts:
        centre = rng.normal(size=dim)
        for _ in range(count):
            rows.append(centre / np.linalg.norm(centre) + rng.normal(scale=spread, size=dim))
    vectors = np.array(rows, np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_separated_people_become_groups_largest_first() -> None:
    vectors = people([3, 5, 1, 2])
    groups = cluster_faces(vectors, ClusterConfig(threshold=0.5, neighbours=5))
    assert [sorted(g) for g in groups] == [[3, 4, 5, 6, 7], [0, 1, 2], [9, 10], [8]]
    labels = cluster_labels(vectors, ClusterConfig(threshold=0.5, neighbours=5))
    truth = ["a"] * 3 + ["b"] * 5 + ["c"] + ["d"] * 2
    scores = score_clusters(labels.tolist(), truth)
    assert (scores.purity, scores.pair_precision, scores.pair_recall, scores.pair_f1) == (
        1,
        1,
        1,
        1,
    )


def test_a_high_threshold_splits_and_mutual_edges_stop_chaining() -> None:
    vectors = people([4, 4])
    assert len(cluster_faces(vectors, ClusterConfig(threshold=0.999))) == 8
    # A face halfway between two people is no one's mutual neighbour with k = 1 when each
    # person's own faces are closer to each other than to it.
    bridge = vectors[0] + vectors[4]
    joined = np.vstack([vectors, bridge / np.linalg.norm(bridge)])
    groups = cluster_faces(joined, ClusterConfig(threshold=0.3, neighbours=1))
    assert not any({0, 4} <= set(g) for g in groups)


def test_scores_count_pairs() -> None:
    # Groups {a, a, b} and {b}: 1 of 3 grouped pairs is right; 1 of 2 same-person pairs kept.
    scores = score_clusters([0, 0, 0, 1], ["a", "a", "b", "b"])
    assert scores.pair_precision == pytest.approx(1 / 3)
    assert scores.pair_recall == pytest.approx(1 / 2)
    assert scores.purity == pytest.approx(3 / 4) and scores.groups == 2


def test_bad_input_is_refused() -> None:
    assert cluster_faces(np.zeros((0, 8), np.float32)) == []
    with pytest.raises(ValueError, match="finite"):
        cluster_faces(np.full((2, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        cluster_faces(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="threshold"):
        ClusterConfig(threshold=2.0)
    with pytest.raises(ValueError, match="neighbours"):
        ClusterConfig(neighbours=0)
