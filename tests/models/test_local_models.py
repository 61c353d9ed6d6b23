"""Registry models without the network: found by SHA-256 in FACEDB_MODEL_DIR directories
whatever their file name, imported into the cache, and shown by `facedb models list`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from facedb.cli import main
from facedb.models import store
from facedb.models.registry import lookup
from facedb.models.spec import resolve_model
from tests.paths import MODELS

SCRFD_FILE = MODELS / "scrfd_500m_kps.onnx"  # byte-identical to registry SCRFD_500M_KPS
ARCFACE_FILE = MODELS / "arcface_w600k_mbf_int8.onnx"  # in no registry entry
YUNET_FILE = MODELS / "yunet_2023mar.onnx"  # in no registry entry


def linked(directory: Path, **names: Path) -> Path:
    """`directory` holding symlinks name.onnx → target (the real files, read in place)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, target in names.items():
        (directory / f"{name}.onnx").symlink_to(target)
    return directory


def test_registry_model_is_found_under_another_name(tmp_path, monkeypatch, model_env) -> None:
    usb = linked(tmp_path / "usb", face_detector_v2=SCRFD_FILE, other=YUNET_FILE)
    monkeypatch.setenv("FACEDB_MODEL_DIR", f"{model_env}{os.pathsep}{usb}")
    spec = resolve_model("SCRFD_500M_KPS", download=False)
    assert spec.path == usb / "face_detector_v2.onnx"
    assert (spec.family, spec.name) == ("scrfd", "SCRFD_500M_KPS")
    assert not model_env.exists()  # found in place: nothing copied, nothing downloaded


def test_model_dir_can_be_the_shared_models_directory(monkeypatch) -> None:
    monkeypatch.setenv("FACEDB_MODEL_DIR", str(MODELS))
    assert resolve_model("scrfd_500m_kps", download=False).path == SCRFD_FILE
    with pytest.raises(store.ModelUnavailableError, match=r"ARCFACE_MNET.*no file in .*models"):
        resolve_model("ARCFACE_MNET", download=False)


def test_digests_are_remembered_by_path_size_and_mtime(tmp_path, monkeypatch) -> None:
    directory = tmp_path / "models"
    directory.mkdir()
    copies = [directory / "a.onnx", directory / "b.onnx"]
    for copy in copies:
        copy.write_bytes(YUNET_FILE.read_bytes())
    hashed: list[Path] = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda p: hashed.append(p) or real(p))

    assert sorted(store.scan(directory).values()) == [copies[0]]  # one digest, first name
    assert sorted(hashed) == copies
    hashed.clear()
    store.scan(directory)
    assert hashed == []  # unchanged files: memo
    monkeypatch.setattr(store, "_digests", {})  # what a new process starts with
    monkeypatch.setattr(store, "_index_loaded", False)
    store.scan(directory)
    assert hashed == []  # the index on disk answered
    os.utime(copies[1], ns=(1, 1))  # same bytes, another version: hashed again
    store.scan(directory)
    assert hashed == [copies[1]]


def test_import_copies_registry_models_into_the_cache(tmp_path, capsys, model_env) -> None:
    source = linked(tmp_path / "src", det_500m=SCRFD_FILE, yunet=YUNET_FILE)
    assert main(["models", "import", str(source)]) == 0
    out = capsys.readouterr().out
    assert f"SCRFD_500M_KPS: {source / 'det_500m.onnx'} copied to" in out
    cached = model_env / lookup("SCRFD_500M_KPS").filename
    assert cached.read_bytes() == SCRFD_FILE.read_bytes() and not cached.is_symlink()
    assert cached.stat().st_mode & 0o777 == 0o644  # readable by other service accounts
    assert sorted(p.name for p in model_env.iterdir()) == [cached.name]  # no yunet, no temp
    assert main(["models", "import", str(source)]) == 0
    assert "already in the cache" in capsys.readouterr().out


def test_import_reports_nothing_found_and_bad_directories(tmp_path, capsys) -> None:
    assert main(["models", "import", str(linked(tmp_path / "src", x=YUNET_FILE))]) == 1
    assert "no registry model in" in capsys.readouterr().out
    assert main(["models", "import", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a directory" in err


def test_list_shows_local_models_in_use_and_a_legend(capsys, monkeypatch, model_env) -> None:
    monkeypatch.setenv("FACEDB_MODEL_DIR", f"{model_env}{os.pathsep}{MODELS}")
    monkeypatch.setenv("FACEDB_RECOGNIZER", f"arcface:{ARCFACE_FILE}")
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out
    scrfd = next(line for line in table.splitlines() if line.startswith("SCRFD_500M_KPS "))
    assert f"local  {SCRFD_FILE}  [in use: detector]" in scrfd
    assert "status: OK = in the cache" in table and "missing = not on this machine" in table
    assert f"recognizer: arcface {ARCFACE_FILE}" in table and "not in the registry" in table
    assert "runs as its float32 rewrite: not written yet" in table  # an empty cache

    assert main(["models", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["SCRFD_500M_KPS"]["status"] == "local"
    assert rows["SCRFD_500M_KPS"]["cache"] == "missing"
    assert rows["SCRFD_500M_KPS"]["path"] == str(SCRFD_FILE)
    recognizer = rows[f"arcface:{ARCFACE_FILE}"]
    assert recognizer["in_use"] == ["recognizer"] and recognizer["registry_twin"] is None
    assert recognizer["runs_as"] == {"graph": "float32", "path": None, "sha256": None}
    records = json.loads((MODELS / "models.json").read_text())
    assert recognizer["sha256"] == next(
        r["sha256"] for r in records if r["file"] == ARCFACE_FILE.name
    )


def test_verify_fails_when_a_model_in_use_is_missing(capsys, monkeypatch, model_env) -> None:
    assert main(["models", "verify"]) == 1  # nothing on this machine: both defaults missing
    captured = capsys.readouterr()
    assert "SCRFD_500M_KPS             missing  [in use: detector]" in captured.out
    assert captured.err.count("\n") == 1
    missing = "ARCFACE_MNET is missing (recognizer); SCRFD_500M_KPS is missing (detector)"
    assert missing in captured.err

    monkeypatch.setenv("FACEDB_MODEL_DIR", f"{model_env}{os.pathsep}{MODELS}")
    monkeypatch.setenv("FACEDB_RECOGNIZER", f"arcface:{ARCFACE_FILE}")
    assert main(["models", "verify"]) == 0  # SCRFD found by SHA-256, recognizer a local file
    out = capsys.readouterr().out
    assert "SCRFD_500M_KPS             local  [in use: detector]" in out
    assert f"recognizer: {ARCFACE_FILE}  present" in out

    monkeypatch.setenv("FACEDB_RECOGNIZER", f"arcface:{model_env / 'gone.onnx'}")
    assert main(["models", "verify"]) == 1
    assert "is missing (recognizer)" in capsys.readouterr().err
    assert main(["models", "verify", "ARCFACE_RESNET"]) == 1  # named: must be here
    assert main(["models", "verify", "NO_SUCH"]) == 2
    assert "unknown model 'NO_SUCH'" in capsys.readouterr().err
