"""The int8 ArcFace fixture runs as its float32 rewrite by default: written once into the
model cache by source SHA-256, calibrated, batch-safe; `int8` keeps the file as given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facedb.calibration import load_calibration
from facedb.cli import main
from facedb.models.errors import ModelSpecError
from facedb.models.graphs import GRAPH_ENV, rewrite_name
from facedb.models.optimize import source_sha256_of
from facedb.vision.embed import load_embedder
from tests.faces import lfw_crops
from tests.paths import ARCFACE, MODELS

INT8 = MODELS / "arcface_w600k_mbf_int8.onnx"
INT8_SHA = "7caa7fb0ad6c37b33e6c59f6411084b487aaabd596bba645d2cce391a5871120"
# The rewrite's bytes depend on the source only: this is the SHA-256 the calibration in
# facedb/calibration_data was built for.
FLOAT32_SHA = "3116935fcae0edadeabdc21025c761de5c739fd57728087497a5be5c262dd424"


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graphs")


@pytest.fixture
def cache(module_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One model cache for the module's tests, so the rewrite is written once here."""
    monkeypatch.setenv("FACEDB_MODEL_DIR", str(module_cache))
    return module_cache


def test_the_default_runs_the_float32_rewrite_written_once(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    embedder = load_embedder(ARCFACE, threads=1)
    rewrite = cache / rewrite_name(INT8_SHA)
    assert embedder.spec.path == rewrite and embedder.name == "arcface_w600k_mbf_int8-float32"
    assert embedder.sha256 == FLOAT32_SHA and source_sha256_of(rewrite) == INT8_SHA
    assert embedder.batch_limit > 1
    written = rewrite.stat().st_mtime_ns
    assert load_embedder(ARCFACE, threads=1).spec.path == rewrite
    assert rewrite.stat().st_mtime_ns == written  # found again, not rewritten
    assert sorted(p.name for p in cache.iterdir()) == [rewrite.name]  # no temporary left

    # Its own calibration, found by its SHA-256; the int8 file keeps its own.
    calibration = load_calibration(embedder.sha256)
    assert calibration is not None and calibration.model_sha256 == FLOAT32_SHA
    int8 = load_calibration(INT8_SHA)
    assert int8 is not None and int8.model_sha256 == INT8_SHA

    monkeypatch.setenv("FACEDB_RECOGNIZER", ARCFACE)
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out
    assert f"runs as its float32 rewrite: {rewrite}  SHA-256 {FLOAT32_SHA[:12]}" in table
    assert f"{rewrite}  of SHA-256 {INT8_SHA[:12]}" in table


def test_a_face_embeds_the_same_alone_and_in_a_batch_by_default(cache: Path) -> None:
    """The graph the server now batches: one face's vector does not depend on its batch."""
    crops = lfw_crops()
    embedder = load_embedder(ARCFACE, threads=1)
    assert len(crops) <= embedder.batch_limit  # one session.run for the whole batch
    batched = embedder.embed(crops)
    alone = np.concatenate([embedder.embed(crop[None]) for crop in crops])
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_int8_keeps_the_file_as_given(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = load_embedder(ARCFACE, threads=1, graph="int8")
    assert kept.spec.path == INT8 and kept.sha256 == INT8_SHA and kept.batch_limit == 1
    monkeypatch.setenv(GRAPH_ENV, "int8")
    assert load_embedder(ARCFACE, threads=1).spec.path == INT8
    monkeypatch.setenv(GRAPH_ENV, "fp16")
    with pytest.raises(ModelSpecError, match=r"float32 or int8.*FACEDB_RECOGNIZER_GRAPH"):
        load_embedder(ARCFACE, threads=1)
    # A file that is not dynamic-int8 runs as given whatever the setting.
    monkeypatch.delenv(GRAPH_ENV)
    other = MODELS / "mobilefacenet512.onnx"
    assert load_embedder(f"mobileface:{other}", threads=1).spec.path == other.resolve()


def test_processes_starting_at_once_write_one_whole_file(tmp_path: Path) -> None:
    cache = tmp_path / "fresh"
    env = {**os.environ, "FACEDB_MODEL_DIR": str(cache)}
    env.pop(GRAPH_ENV, None)
    code = "import sys; from facedb.vision.embed import load_embedder as load\n"
    code += "print(load(sys.argv[1]).sha256)"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, ARCFACE], env=env, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    digests = {p.communicate(timeout=120)[0].decode().strip() for p in processes}
    assert all(p.returncode == 0 for p in processes)
    assert digests == {FLOAT32_SHA}
    assert sorted(p.name for p in cache.iterdir()) == [rewrite_name(INT8_SHA)]
