"""`OnnxModel` and the session factory on tiny graphs built here (per-channel means out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from facedb.models import FAMILIES, OnnxModel, SessionSettings, get_session, resolve_model
from facedb.models.session import session_for
from tests.paths import MODELS

SPINNING = "session.intra_op.allow_spinning"


def channel_means_graph(path: Path, *, batch: int | str = "N", size: int | str = "H") -> Path:
    """(batch, 3, size, size) float → (batch, 3) mean of each channel."""
    width = size if isinstance(size, int) else "W"
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["pixels"], ["means"], axes=[2, 3], keepdims=0)],
        "channel_means",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [batch, 3, size, width])],
        [helper.make_tensor_value_info("means", TensorProto.FLOAT, [batch, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


class ProbeModel(OnnxModel):
    family = "arcface"  # RGB, (x - 127.5) / 127.5
    default_input_hw = (8, 8)


def coloured(count: int = 1, size: int = 8) -> np.ndarray:
    """BGR images (10 + i, 100, 200): image i's blue channel is 10 + i."""
    images = np.zeros((count, size, size, 3), np.uint8)
    images[..., 0] = 10 + np.arange(count, dtype=np.uint8)[:, None, None]
    images[..., 1], images[..., 2] = 100, 200
    return images


def test_family_preprocessing_channel_order_and_resize(tmp_path: Path) -> None:
    model = ProbeModel.from_spec(f"arcface:{channel_means_graph(tmp_path / 'm.onnx')}")
    assert model.preprocessing == FAMILIES["arcface"].preprocessing
    assert model.input_name == "pixels" and model.input_hw == (8, 8)
    tensor = model.to_tensor(coloured(size=20))  # resized to the declared 8x8
    assert tensor.shape == (1, 3, 8, 8) and tensor.dtype == np.float32
    (means,) = model.run(tensor)
    expected = [(v - 127.5) / 127.5 for v in (200, 100, 10)]  # RGB first
    np.testing.assert_allclose(means[0], expected, atol=1e-6)


def test_spec_override_and_wrong_family(tmp_path: Path) -> None:
    path = channel_means_graph(tmp_path / "m.onnx")
    model = ProbeModel.from_spec(f"arcface:{path}?order=bgr&mean=0&std=1")
    (means,) = model.run_batched(coloured())
    np.testing.assert_allclose(means[0], [10, 100, 200], atol=1e-4)
    with pytest.raises(ValueError, match="needs a 'arcface' model"):
        ProbeModel(resolve_model(f"mobileface:{path}"))


@pytest.mark.parametrize(("batch", "query", "limit"), [(1, "", 1), ("N", "?batch=2", 2)])
def test_run_batched_keeps_rows_in_order(tmp_path: Path, batch, query, limit) -> None:
    path = channel_means_graph(tmp_path / "m.onnx", batch=batch, size=8)
    model = ProbeModel.from_spec(f"arcface:{path}{query}")
    assert model.batch_limit == limit
    (means,) = model.run_batched(coloured(5))
    assert means.shape == (5, 3)
    expected = [(10 + i - 127.5) / 127.5 for i in range(5)]
    np.testing.assert_allclose(means[:, 2], expected, atol=1e-6)


def test_unbatched_default_runs_every_image_at_once(tmp_path: Path) -> None:
    model = ProbeModel.from_spec(f"arcface:{channel_means_graph(tmp_path / 'm.onnx')}")
    assert model.batch_limit == OnnxModel.max_batch
    with pytest.raises(ValueError, match="uint8"):
        model.to_tensor(np.zeros((1, 8, 8, 3), np.float32))


def test_spinning_and_threads_reach_the_session(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FACEDB_ORT_SPINNING", raising=False)
    path = channel_means_graph(tmp_path / "m.onnx")
    quiet = get_session(path, 1, allow_spinning=False)
    spinning = get_session(path, 1, allow_spinning=True)
    default = get_session(path, 1)
    assert quiet.get_session_options().get_session_config_entry(SPINNING) == "0"
    assert spinning.get_session_options().get_session_config_entry(SPINNING) == "1"
    assert default.get_session_options().intra_op_num_threads == 1
    with pytest.raises(RuntimeError, match=SPINNING):  # unset: onnxruntime's default applies
        default.get_session_options().get_session_config_entry(SPINNING)
    assert session_for(path, SessionSettings(1, False)) is quiet  # one per file and settings
    assert len({id(quiet), id(spinning), id(default)}) == 3


def test_spinning_default_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    path = channel_means_graph(tmp_path / "m.onnx")
    monkeypatch.setenv("FACEDB_ORT_SPINNING", "off")
    options = get_session(path, 1).get_session_options()
    assert options.get_session_config_entry(SPINNING) == "0"
    assert get_session(path, 1, allow_spinning=True) is not get_session(path, 1)
    monkeypatch.setenv("FACEDB_ORT_SPINNING", "sometimes")
    with pytest.raises(ValueError, match="FACEDB_ORT_SPINNING"):
        get_session(path, 1)


def test_unavailable_provider_is_named(tmp_path: Path) -> None:
    path = channel_means_graph(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"NoSuchExecutionProvider.*available: .*CPU"):
        get_session(path, providers=("NoSuchExecutionProvider",))
    assert "CPUExecutionProvider" in ort.get_available_providers()


def test_every_family_base_loads_through_from_spec() -> None:
    from facedb.vision.detect.scrfd import SCRFDDetector
    from facedb.vision.embed import ArcFaceEmbedder
    from facedb.vision.liveness import LivenessModel
    from facedb.vision.quality import FiqaModel

    runtime = SessionSettings(threads=1, allow_spinning=False)
    files = {
        SCRFDDetector: "scrfd:scrfd_500m_kps.onnx",
        ArcFaceEmbedder: "arcface:arcface_w600k_mbf_int8.onnx",
        LivenessModel: "minifasnet:minifasnet_v2.onnx",
        FiqaModel: "fiqa:face_quality_fiqa.onnx",
    }
    for cls, spec in files.items():
        family, _, name = spec.partition(":")
        model = cls.from_spec(f"{family}:{MODELS / name}", runtime)
        assert isinstance(model, OnnxModel) and model.family == family
        options = model.session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.get_session_config_entry(SPINNING) == "0"
