"""Micro-batching with real recognizers on real LFW faces: safe, merged, each caller its rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facedb.models.optimize import optimize_model
from facedb.vision.batching import EmbeddingBatcher
from facedb.vision.embed import Embedder, load_embedder
from tests.faces import lfw_crops
from tests.paths import ARCFACE, MODELS


@pytest.fixture(scope="module")
def arcface_f32(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The int8 ArcFace fixture as the batch-safe float32 graph (`facedb models optimize`)."""
    path = tmp_path_factory.mktemp("batching") / "arcface_f32.onnx"
    optimize_model(MODELS / "arcface_w600k_mbf_int8.onnx", path)
    return f"arcface:{path}"


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """Aligned crops of real LFW faces: two photos each of five people."""
    return lfw_crops()


# Float32 graphs with a dynamic batch dimension: the ones the server batches.
BATCHABLE = ["arcface_f32", f"mobileface:{MODELS / 'mobilefacenet128_relu6.onnx'}"]


@pytest.fixture(params=BATCHABLE, ids=["arcface-f32", "mobilefacenet128"])
def embedder(request: pytest.FixtureRequest) -> Embedder:
    spec = request.param
    if spec == "arcface_f32":
        spec = request.getfixturevalue("arcface_f32")
    return load_embedder(spec, threads=1)


@pytest.fixture
def batcher(embedder: Embedder) -> Iterator[EmbeddingBatcher]:
    # A long window so that the threads below surely meet in the worker's runs.
    batcher = EmbeddingBatcher(embedder, wait_ms=50)
    yield batcher
    batcher.close()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def test_a_face_embeds_the_same_alone_and_among_other_faces(
    embedder: Embedder, crops: np.ndarray
) -> None:
    assert embedder.batch_limit >= len(crops)  # the whole batch is one session.run
    alone = np.concatenate([embedder.embed(crop[None]) for crop in crops])
    together = embedder.embed(crops)
    reversed_order = embedder.embed(crops[::-1])[::-1]
    assert cosines(alone, together).min() > 0.99999
    assert cosines(alone, reversed_order).min() > 0.99999


def test_concurrent_callers_get_their_own_rows_from_merged_runs(
    batcher: EmbeddingBatcher, crops: np.ndarray
) -> None:
    direct = batcher.embedder.embed(crops)
    # Each caller sends a different slice (1-3 faces), several times, all at once.
    slices = [slice(i, i + 1 + i % 3) for i in range(len(crops) - 2)]
    start = threading.Barrier(len(slices))

    def call(part: slice) -> list[np.ndarray]:
        start.wait()
        return [batcher.embed(crops[part]) for _ in range(3)]

    with ThreadPoolExecutor(len(slices)) as pool:
        answers = list(pool.map(call, slices))
    for part, rows in zip(slices, answers, strict=True):
        for got in rows:
            assert got.shape == direct[part].shape
            assert cosines(got, direct[part]).min() > 0.99999
    counts = batcher.counts
    assert counts.submissions == 3 * len(slices)
    assert counts.runs < counts.submissions  # calls were merged
    assert 1 < counts.largest_batch <= batcher.max_batch


def test_a_caller_past_its_deadline_is_not_embedded(embedder: Embedder, crops: np.ndarray) -> None:
    batcher = EmbeddingBatcher(embedder, wait_ms=0, deadline=lambda: time.monotonic() - 1)
    try:
        with pytest.raises(TimeoutError, match="embed stage"):
            batcher.embed(crops[:2])
        assert (batcher.counts.expired, batcher.counts.runs) == (1, 0)
    finally:
        batcher.close()


def test_after_close_the_batcher_refuses_and_its_thread_is_gone(
    embedder: Embedder, crops: np.ndarray
) -> None:
    batcher = EmbeddingBatcher(embedder, wait_ms=0)
    assert batcher.embed(crops[:1]).shape == (1, embedder.dim)
    batcher.close()
    assert not any(t.name == "facedb-embedding-batcher" and t.is_alive() for t in _batchers())
    with pytest.raises(RuntimeError, match="closed"):
        batcher.embed(crops[:1])


def _batchers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "facedb-embedding-batcher"]


def test_a_per_batch_int8_graph_is_passed_straight_through(crops: np.ndarray) -> None:
    int8 = load_embedder(ARCFACE, threads=1, graph="int8")  # the file as given
    assert int8.batch_limit == 1
    batcher = EmbeddingBatcher(int8, wait_ms=5)
    assert not batcher.batched
    np.testing.assert_array_equal(batcher.embed(crops[:2]), int8.embed(crops[:2]))
    assert batcher.counts.submissions == 0
    batcher.close()


def one_face_only_graph(path: Path) -> Path:
    """A tiny graph declaring a dynamic batch but reshaping to (1, 3): any run of more than
    one crop fails inside onnxruntime, as a broken model would."""
    mean = helper.make_node("ReduceMean", ["input"], ["mean"], axes=[2, 3], keepdims=0)
    shape = numpy_helper.from_array(np.array([1, 3], np.int64), "shape")
    reshape = helper.make_node("Reshape", ["mean", "shape"], ["embedding"])
    graph = helper.make_graph(
        [mean, reshape],
        "one_face_only",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 3])],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_failed_run_reaches_its_callers_and_the_worker_goes_on(
    tmp_path: Path, crops: np.ndarray
) -> None:
    graph = one_face_only_graph(tmp_path / "one_face_only.onnx")
    embedder = load_embedder(f"arcface:{graph}", threads=1)
    batcher = EmbeddingBatcher(embedder, wait_ms=500)
    start = threading.Barrier(2)

    def call(index: int) -> BaseException | np.ndarray:
        start.wait()
        try:
            return batcher.embed(crops[index : index + 1])
        except Exception as error:  # the test looks at what each caller got
            return error

    try:
        with ThreadPoolExecutor(2) as pool:
            merged = list(pool.map(call, [0, 1]))
        assert batcher.counts.runs == 1  # both callers were in the one failed run
        assert all(isinstance(answer, Exception) for answer in merged), merged
        alone = batcher.embed(crops[2:3])  # a later caller, alone in its run, is served
        np.testing.assert_allclose(alone, embedder.embed(crops[2:3]))
    finally:
        batcher.close()
