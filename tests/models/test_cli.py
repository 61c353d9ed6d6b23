"""`facedb models ...` through the real command entry point and a real local mirror."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facedb.cli import main
from facedb.models.registry import REGISTRY
from tests.paths import MODELS


def _list_json(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    assert main(["models", "list", "--json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_list_shows_every_model_uncached(capsys, model_env: Path) -> None:
    rows = _list_json(capsys)
    assert set(rows) == set(REGISTRY)
    arcface = rows["ARCFACE_MNET"]
    assert arcface["family"] == "arcface" and arcface["task"] == "embed"
    assert arcface["embedding_size"] == 512
    assert rows["MINIFASNET_V1SE"]["options"] == {"crop_scale": "4.0"}
    assert all(row["cache"] == "missing" for row in rows.values())
    assert rows["SCRFD_500M_KPS"]["path"] == str(model_env / "scrfd_500m.onnx")


def test_download_then_list_and_verify(capsys, mirror, monkeypatch, model_env: Path) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    assert main(["models", "download", "scrfd_500m_kps"]) == 0
    assert f"SCRFD_500M_KPS: {model_env / 'scrfd_500m.onnx'}" in capsys.readouterr().out

    rows = _list_json(capsys)
    assert rows["SCRFD_500M_KPS"]["cache"] == "OK"
    assert rows["SCRFD_500M_KPS"]["size_bytes"] == 2524817
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out
    assert "SCRFD_500M_KPS" in table and "2.5 MB  OK" in table

    # The default recognizer, ARCFACE_MNET, is in use and missing: verify fails (issue 10).
    assert main(["models", "verify"]) == 1
    report = capsys.readouterr().out
    assert "SCRFD_500M_KPS             OK  [in use: detector]" in report
    assert "ARCFACE_MNET               missing  [in use: recognizer]" in report
    assert main(["models", "verify", "scrfd_500m_kps"]) == 0


def test_verify_flags_a_damaged_file(capsys, mirror, monkeypatch, model_env: Path) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    assert main(["models", "download", "SCRFD_500M_KPS"]) == 0
    path = model_env / "scrfd_500m.onnx"
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF  # same size; a flipped byte is only caught by re-hashing
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["models", "verify"]) == 1
    assert "SCRFD_500M_KPS             BAD" in capsys.readouterr().out


def test_download_failures_are_reported(capsys, mirror, monkeypatch) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    assert main(["models", "download", "SCRFD_500M_KPS", "ARCFACE_MNET"]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 models unavailable" in err and "w600k_mbf.onnx" in err
    assert main(["models", "download", "NOPE"]) == 1
    assert "unknown model 'NOPE'" in capsys.readouterr().err
    assert main(["models", "download"]) == 1
    assert "--all" in capsys.readouterr().err
