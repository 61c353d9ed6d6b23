"""Cache, download and verification against a real HTTP server serving the real model files."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from facedb.models import store
from facedb.models.registry import RegistryEntry, lookup
from facedb.models.spec import ModelSpecError, resolve_model
from facedb.models.store import ModelUnavailableError, download_models, ensure_model
from tests.paths import MODELS

SCRFD = lookup("SCRFD_500M_KPS")


def _fixture_sha256(filename: str) -> str:
    """The digest models.json records for a real file in MODELS (independent of our code)."""
    records = json.loads((MODELS / "models.json").read_text())
    return next(r["sha256"] for r in records if r["file"] == filename)


def _yunet_entry() -> RegistryEntry:
    return RegistryEntry(
        name="TEST_YUNET",
        family="yunet",
        variant="2023mar",
        task="detect",
        url="https://example.invalid/releases/yunet_2023mar.onnx",
        sha256=_fixture_sha256("yunet_2023mar.onnx"),
        filename="test_yunet.onnx",
        license="MIT",
    )


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens here any more: connection refused


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_registry_sha_matches_the_real_fixture_file() -> None:
    # The premise of the download tests: upstream's SCRFD_500M_KPS is byte-identical to ours.
    assert _fixture_sha256("scrfd_500m_kps.onnx") == SCRFD.sha256


def test_download_from_mirror_verifies_and_caches(mirror, monkeypatch, model_env: Path) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS) + "/")
    path = ensure_model(SCRFD)
    assert path == model_env / "scrfd_500m.onnx"
    assert store.sha256_file(path) == SCRFD.sha256
    assert _leftovers(model_env) == ["scrfd_500m.onnx"]  # no temp file left behind
    # Cached now: works with downloads disabled and the mirror gone.
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", _closed_port_url())
    assert ensure_model(SCRFD, download=False) == path


def test_checksum_mismatch_leaves_nothing(mirror, monkeypatch, tmp_path, model_env) -> None:
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    (fake_dir / "scrfd_500m_kps.onnx").write_bytes(os.urandom(4096))
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(fake_dir))
    with pytest.raises(ModelUnavailableError, match="SHA-256 mismatch"):
        ensure_model(SCRFD)
    assert _leftovers(model_env) == []


def test_unreachable_names_url_and_path(monkeypatch, model_env: Path) -> None:
    base = _closed_port_url()
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", base)
    with pytest.raises(ModelUnavailableError) as info:
        ensure_model(SCRFD)
    message = str(info.value)
    assert f"{base}/scrfd_500m_kps.onnx" in message
    assert str(model_env / "scrfd_500m.onnx") in message
    assert "3 attempt" in message
    assert _leftovers(model_env) == []


def test_download_disabled_raises_without_trying(model_env: Path) -> None:
    with pytest.raises(ModelUnavailableError) as info:
        ensure_model(SCRFD, download=False)
    assert SCRFD.url in str(info.value)  # no mirror set: the upstream URL is named
    assert str(model_env / "scrfd_500m.onnx") in str(info.value)
    assert "downloads are disabled" in str(info.value)


def test_corrupted_cache_file_is_replaced(mirror, monkeypatch, model_env: Path) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    path = ensure_model(SCRFD)
    path.write_bytes(b"not a model")  # size and mtime change, so it is hashed again
    assert ensure_model(SCRFD) == path
    assert store.sha256_file(path) == SCRFD.sha256


def test_corrupted_cache_without_download_is_removed(mirror, monkeypatch, model_env) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    path = ensure_model(SCRFD)
    path.write_bytes(b"broken")
    with pytest.raises(ModelUnavailableError, match="failed its SHA-256 check"):
        ensure_model(SCRFD, download=False)
    assert not path.exists()


def test_verification_is_remembered_until_the_file_changes(mirror, monkeypatch) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    path = ensure_model(SCRFD)
    hashed: list[Path] = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda p: hashed.append(p) or real(p))
    ensure_model(SCRFD)
    ensure_model(SCRFD)
    assert hashed == []  # unchanged file: no re-hash
    assert store.file_digest(path, rehash=True) == SCRFD.sha256
    assert hashed == [path]


def test_parallel_download_of_two_models(mirror, monkeypatch, model_env: Path) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    paths = download_models([SCRFD, _yunet_entry()], workers=2)
    assert [p.name for p in paths] == ["scrfd_500m.onnx", "test_yunet.onnx"]
    assert _leftovers(model_env) == ["scrfd_500m.onnx", "test_yunet.onnx"]


def test_parallel_download_lists_every_failure(mirror, monkeypatch) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    missing_a = replace(_yunet_entry(), name="MISSING_A", url="https://x.invalid/a.onnx")
    missing_b = replace(_yunet_entry(), name="MISSING_B", url="https://x.invalid/b.onnx")
    with pytest.raises(ModelUnavailableError) as info:
        download_models([missing_a, SCRFD, missing_b])
    message = str(info.value)
    assert "2 of 3 models unavailable" in message
    assert "MISSING_A" in message and "MISSING_B" in message and "404" in message
    assert store.cached_path(SCRFD).is_file()  # the good one still arrived


def test_resolve_registry_name_end_to_end(mirror, monkeypatch, model_env: Path) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    spec = resolve_model("scrfd_500m_kps")
    assert (spec.family, spec.name, spec.task) == ("scrfd", "SCRFD_500M_KPS", "detect")
    assert spec.path == model_env / "scrfd_500m.onnx" and spec.path.is_file()
    assert spec.preprocessing is None  # family default applies


def test_resolve_registry_name_with_overrides(mirror, monkeypatch) -> None:
    monkeypatch.setenv("FACEDB_MODEL_MIRROR", mirror(MODELS))
    spec = resolve_model("SCRFD_500M_KPS?order=bgr&std=1")
    assert spec.preprocessing is not None
    assert spec.preprocessing.channel_order == "BGR"
    assert spec.preprocessing.mean == (127.5, 127.5, 127.5)  # family default kept
    assert spec.preprocessing.std == (1.0, 1.0, 1.0)


def test_resolve_local_spec_with_overrides() -> None:
    spec = resolve_model(f"scrfd:{MODELS / 'scrfd_500m_kps.onnx'}?order=bgr&mean=127.5&std=127.5")
    assert spec.family == "scrfd" and spec.path == (MODELS / "scrfd_500m_kps.onnx").resolve()
    assert spec.preprocessing is not None
    assert spec.preprocessing.channel_order == "BGR"
    assert spec.preprocessing.mean == (127.5, 127.5, 127.5)
    assert spec.preprocessing.std == (127.5, 127.5, 127.5)


def test_liveness_entries_carry_their_crop_scale() -> None:
    assert lookup("MINIFASNET_V2").options == {"crop_scale": "2.7"}
    assert lookup("minifasnet_v1se").options == {"crop_scale": "4.0"}


def test_unknown_name_and_missing_file_are_clear() -> None:
    with pytest.raises(ModelSpecError, match=r"unknown model 'NO_SUCH_MODEL'.*SCRFD_500M_KPS"):
        resolve_model("NO_SUCH_MODEL")
    with pytest.raises(ModelSpecError, match=r"not found: /nonexistent/model\.onnx"):
        resolve_model("arcface:/nonexistent/model.onnx")


def test_registry_is_complete_and_consistent() -> None:
    expected = {
        "RETINAFACE_MNET_025", "RETINAFACE_MNET_050", "RETINAFACE_MNET_V1", "RETINAFACE_MNET_V2",
        "RETINAFACE_RESNET18", "RETINAFACE_RESNET34", "SCRFD_500M_KPS", "SCRFD_10G_KPS",
        "YOLOV5N_FACE", "YOLOV5S_FACE", "YOLOV5M_FACE", "YOLOV8_LITE_S_FACE", "YOLOV8N_FACE",
        "ARCFACE_MNET", "ARCFACE_RESNET", "ADAFACE_IR_18", "ADAFACE_IR_101",
        "MOBILEFACE_MNET_025", "MOBILEFACE_MNET_V2", "MOBILEFACE_MNET_V3_SMALL",
        "MOBILEFACE_MNET_V3_LARGE", "SPHEREFACE_20", "SPHEREFACE_36",
        "MINIFASNET_V1SE", "MINIFASNET_V2",
    }  # fmt: skip
    from facedb.models.registry import REGISTRY
    from facedb.models.registry_analysis import ANALYSIS_TABLE

    expected |= {row[0] for row in ANALYSIS_TABLE}  # checked in tests/vision/analysis
    assert set(REGISTRY) == expected
    assert len({e.sha256 for e in REGISTRY.values()}) == len(expected)
    assert len({e.filename for e in REGISTRY.values()}) == len(expected)
    for entry in REGISTRY.values():
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
        assert entry.url.startswith("https://github.com/yakhyo/")
        assert (entry.embedding_size == 512) == (entry.task == "embed")
    assert lookup("yolov8n").name == "YOLOV8N_FACE"
    assert lookup("sphere20").name == "SPHEREFACE_20"
