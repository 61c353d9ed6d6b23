"""`facedb models optimize`: the int8 ArcFace fixture rewritten as float32, on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedb.cli import main
from facedb.models.onnx_model import quantizes_per_batch
from facedb.models.optimize import is_dynamic_int8
from facedb.vision.embed import load_embedder
from tests.faces import lfw_crops
from tests.paths import ARCFACE, MODELS

INT8 = MODELS / "arcface_w600k_mbf_int8.onnx"


@pytest.fixture(scope="module")
def float_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("optimize") / "arcface_f32.onnx"
    assert main(["models", "optimize", str(INT8), str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """Aligned crops of real LFW faces: two photos each of five people."""
    return lfw_crops()


def test_the_rewrite_is_float_and_batchable(float_graph: Path) -> None:
    assert is_dynamic_int8(INT8)
    assert not is_dynamic_int8(float_graph)
    assert not quantizes_per_batch(float_graph)
    embedder = load_embedder(f"arcface:{float_graph}", threads=1)
    assert embedder.batch_limit > 1


def test_float_graph_matches_the_int8_original_on_real_faces(
    float_graph: Path, crops: np.ndarray
) -> None:
    original = load_embedder(ARCFACE, threads=1, graph="int8").embed(crops)
    optimized = load_embedder(f"arcface:{float_graph}", threads=1).embed(crops)
    cosines = np.einsum("ij,ij->i", original, optimized)
    assert cosines.min() >= 0.98, cosines
    # Still a recognizer: each face is nearer its own person's other photo than anyone else's.
    scores = optimized @ optimized.T
    np.fill_diagonal(scores, -1)
    partners = np.arange(len(crops)) ^ 1
    assert (scores.argmax(axis=1) == partners).all()


def test_a_face_embeds_the_same_alone_and_in_a_batch(float_graph: Path, crops: np.ndarray) -> None:
    embedder = load_embedder(f"arcface:{float_graph}", threads=1)
    batched = embedder.embed(crops)
    assert len(crops) <= embedder.batch_limit  # one session.run for the whole batch
    alone = np.concatenate([embedder.embed(crop[None]) for crop in crops])
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_optimize_refuses_a_float_graph_with_one_line(tmp_path: Path, capsys) -> None:
    source = MODELS / "mobilefacenet512.onnx"
    assert main(["models", "optimize", str(source), str(tmp_path / "out.onnx")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "not a dynamic-int8 graph" in error and source.name in error
    assert not (tmp_path / "out.onnx").exists()
