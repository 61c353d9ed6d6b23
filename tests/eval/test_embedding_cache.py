"""The benchmarks' embedding cache runs the production FacePipeline and reuses its file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.embedding_cache import DETECTED, embed_paths
from facedb.vision.image import decode_image
from facedb.vision.pipeline import FacePipeline
from tests.paths import ARCFACE, LFW, SCRFD


def test_cache_gives_the_pipeline_embeddings_and_reuses_its_file(tmp_path: Path) -> None:
    paths = sorted((LFW / "images" / "Colin_Powell").glob("*.jpg"))[:4]
    first = embed_paths(paths, SCRFD, ARCFACE, threads=1, cache_dir=tmp_path, progress=False)
    assert first.embeddings.shape == (4, 512) and (first.fallback == DETECTED).all()
    assert np.allclose(np.linalg.norm(first.embeddings, axis=1), 1.0, atol=1e-5)
    pipeline = FacePipeline.from_specs(SCRFD, ARCFACE, threads=1)
    for path, vector in zip(paths, first.embeddings, strict=True):
        accepted = pipeline.analyze(decode_image(path)).accepted
        assert any(np.allclose(f.embedding, vector, atol=1e-6) for f in accepted)
    (cache_file,) = tmp_path.glob("embeddings-*.npz")
    again = embed_paths(paths, SCRFD, ARCFACE, threads=1, cache_dir=tmp_path, progress=False)
    assert np.array_equal(again.embeddings, first.embeddings)
    assert list(tmp_path.glob("embeddings-*.npz")) == [cache_file]
    flipped = embed_paths(
        paths, SCRFD, ARCFACE, flip=True, threads=1, cache_dir=tmp_path, progress=False
    )
    assert len(list(tmp_path.glob("embeddings-*.npz"))) == 2  # flip is its own entry
    assert (np.einsum("ij,ij->i", flipped.embeddings, first.embeddings) > 0.9).all()
