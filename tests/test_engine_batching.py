"""The server's engine embeds through the micro-batcher when the recognizer batches safely."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from facedb.cli import main
from facedb.config import load_settings
from facedb.engine import EnrollItem, FailedPreconditionError, open_engine
from facedb.models.store import model_dir
from tests.paths import ARCFACE, LFW, MODELS, SCRFD

PHOTO = sorted((LFW / "images" / "Aaron_Peirsol").glob("*.jpg"))[0]


def _batchers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "facedb-embedding-batcher"]


def test_the_server_engine_batches_the_float32_rewrite_and_not_the_int8_graph(
    tmp_path: Path,
) -> None:
    photo = PHOTO.read_bytes()
    # The int8 fixture file, run as its float32 rewrite by default: batch-safe, batched.
    settings = load_settings(None, data_dir=tmp_path / "f32", detector=SCRFD, recognizer=ARCFACE)
    engine = open_engine(settings)
    try:
        assert engine.model.name == "arcface_w600k_mbf_int8-float32"
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
    off = load_settings(
        None,
        data_dir=tmp_path / "int8",
        detector=SCRFD,
        recognizer=ARCFACE,
        recognizer_graph="int8",
    )
    engine = open_engine(off)
    try:
        assert engine.batcher is None and engine.model.name == "arcface_w600k_mbf_int8"
    finally:
        engine.close()


def test_micro_batching_can_be_turned_off(tmp_path: Path) -> None:
    settings = load_settings(
        None, data_dir=tmp_path, detector=SCRFD, recognizer=ARCFACE, micro_batching=False
    )
    engine = open_engine(settings)
    try:
        assert engine.batcher is None
    finally:
        engine.close()


def test_an_int8_gallery_is_refused_by_a_float32_server_until_reindexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Galleries made before float32 became the default stay bound to the int8 SHA-256: a
    float32 server says to reindex, and `facedb reindex --model` moves them."""
    data_dir = tmp_path / "data"
    photo = PHOTO.read_bytes()
    common = {"data_dir": data_dir, "detector": SCRFD, "recognizer": ARCFACE}
    int8 = open_engine(load_settings(None, recognizer_graph="int8", **common))
    try:
        int8_sha = int8.model.sha256
        int8.create_gallery("old")
        item = EnrollItem("old", "aaron", [photo], allow_multiple_faces=True)
        assert int8.enroll(item).identity is not None
    finally:
        int8.close()
    float32 = open_engine(load_settings(None, **common))
    try:
        with pytest.raises(FailedPreconditionError, match="reindex the gallery"):
            float32.identify("old", photo)
    finally:
        float32.close()
    # With the int8 file in a model directory, the server serves that gallery with exactly
    # that file (found by its SHA-256), not with its rewrite.
    monkeypatch.setenv("FACEDB_MODEL_DIR", f"{model_dir()}{os.pathsep}{MODELS}")
    float32 = open_engine(load_settings(None, **common))
    try:
        top = float32.identify("old", photo).faces[0].candidates[0]
        assert top.external_id == "aaron" and top.score > 0.999  # the same graph's vector
        served = {m.sha256 for m in float32._core.recognizers.loaded()}
        assert int8_sha in served and float32.model.sha256 in served
    finally:
        float32.close()
    monkeypatch.undo()
    assert (
        main(["reindex", "--data-dir", str(data_dir), "--gallery", "old", "--model", ARCFACE]) == 0
    )
    float32 = open_engine(load_settings(None, **common))
    try:
        top = float32.identify("old", photo).faces[0].candidates[0]
        assert top.external_id == "aaron" and top.score > 0.99
    finally:
        float32.close()


@pytest.mark.parametrize("wait", ["-1", "soon", "nan"])
def test_a_bad_batch_wait_is_one_line(wait: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--batch-wait-ms", wait]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "--batch-wait-ms" in lines[0] and "milliseconds >= 0" in lines[0]
