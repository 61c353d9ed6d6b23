"""The server's engine embeds through the micro-batcher when the recognizer batches safely."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from facedb.cli import main
from facedb.config import load_settings
from facedb.engine import open_engine
from facedb.models.optimize import optimize_model
from tests.paths import ARCFACE, LFW, MODELS, SCRFD

PHOTO = sorted((LFW / "images" / "Aaron_Peirsol").glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def arcface_f32(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("batching") / "arcface_f32.onnx"
    optimize_model(MODELS / "arcface_w600k_mbf_int8.onnx", path)
    return f"arcface:{path}"


def _batchers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "facedb-embedding-batcher"]


def test_the_server_engine_batches_a_safe_graph_and_not_the_int8_one(
    tmp_path: Path, arcface_f32: str
) -> None:
    photo = PHOTO.read_bytes()
    settings = load_settings(
        None, data_dir=tmp_path / "f32", detector=SCRFD, recognizer=arcface_f32
    )
    engine = open_engine(settings)
    try:
        assert engine.batcher is not None and engine.batcher.batched
        engine.create_gallery("g")
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: engine.identify("g", photo), range(4)))
        assert all(r.faces for r in results)
        assert engine.batcher.counts.submissions == 4
        assert engine.pipeline.embed == engine.batcher.embed
    finally:
        engine.close()
    assert not _batchers()
    off = load_settings(None, data_dir=tmp_path / "int8", detector=SCRFD, recognizer=ARCFACE)
    engine = open_engine(off)
    try:
        assert engine.batcher is None
    finally:
        engine.close()


def test_micro_batching_can_be_turned_off(tmp_path: Path, arcface_f32: str) -> None:
    settings = load_settings(
        None, data_dir=tmp_path, detector=SCRFD, recognizer=arcface_f32, micro_batching=False
    )
    engine = open_engine(settings)
    try:
        assert engine.batcher is None
    finally:
        engine.close()


@pytest.mark.parametrize("wait", ["-1", "soon", "nan"])
def test_a_bad_batch_wait_is_one_line(wait: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--batch-wait-ms", wait]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "--batch-wait-ms" in lines[0] and "milliseconds >= 0" in lines[0]
