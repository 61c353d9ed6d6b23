"""Recognizers: the five real fixture files on real LFW pairs, and built graphs that prove
each family's preprocessing (AdaFace and SphereFace have no real file here)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from facedb.models.spec import ModelSpecError
from facedb.vision.align import align_face
from facedb.vision.detect import load_detector
from facedb.vision.embed import (
    AdaFaceEmbedder,
    ArcFaceEmbedder,
    MobileFaceEmbedder,
    SphereFaceEmbedder,
    file_sha256,
    load_embedder,
)
from tests.paths import ARCFACE, LFW, MODELS, SCRFD

RECOGNIZERS = {
    "arcface_int8": (ARCFACE, 512),
    "mobilefacenet512": (f"mobileface:{MODELS / 'mobilefacenet512.onnx'}", 512),
    "paddle128_bgr": (f"mobileface:{MODELS / 'mobilefacenet128_paddle.onnx'}?order=bgr", 128),
    "relu6_128": (f"mobileface:{MODELS / 'mobilefacenet128_relu6.onnx'}", 128),
    "relu6_128_fp16": (f"mobileface:{MODELS / 'mobilefacenet128_relu6_fp16.onnx'}", 128),
}
PAIRS_PER_KIND = 40


# ---- real recognizers on real LFW pairs -------------------------------------------------------


def lfw_image(name: str, number: str) -> Path:
    return LFW / "images" / name / f"{name}_{int(number):04d}.jpg"


def sample_pairs() -> list[tuple[Path, Path, bool]]:
    """40 same-person and 40 different-person pairs spread evenly over pairsDevTest."""
    rows = [line.split("\t") for line in (LFW / "pairsDevTest.txt").read_text().splitlines()[1:]]
    same, different = rows[:500], rows[500:]
    step = len(same) // PAIRS_PER_KIND
    pairs = [(lfw_image(n, a), lfw_image(n, b), True) for n, a, b in same[::step]]
    pairs += [(lfw_image(n, a), lfw_image(m, b), False) for n, a, m, b in different[::step]]
    return pairs


@pytest.fixture(scope="module")
def lfw_sample() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Aligned crops of every image in the sample, and (first, second, same) index arrays."""
    detector = load_detector(SCRFD)
    pairs = sample_pairs()
    index: dict[Path, int] = {}
    crops = []
    for path in (p for a, b, _ in pairs for p in (a, b)):
        if path not in index:
            image = cv2.imread(str(path))
            faces = detector.detect(image)
            centre = np.array(image.shape[1::-1]) / 2
            # Deep-funneled LFW puts the subject in the middle; others may be in the photo.
            face = min(faces, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))
            index[path] = len(crops)
            crops.append(align_face(image, face.landmarks))
    first = np.array([index[a] for a, _, _ in pairs])
    second = np.array([index[b] for _, b, _ in pairs])
    same = np.array([s for _, _, s in pairs])
    return np.stack(crops), first, second, same


def best_accuracy(scores: np.ndarray, same: np.ndarray) -> float:
    return max(float(((scores >= t) == same).mean()) for t in scores)


@pytest.mark.parametrize("key", list(RECOGNIZERS))
def test_real_recognizer_separates_lfw_pairs(key, lfw_sample) -> None:
    spec, dim = RECOGNIZERS[key]
    crops, first, second, same = lfw_sample
    embedder = load_embedder(spec)
    assert embedder.dim == dim
    embeddings = embedder.embed(crops)
    assert embeddings.shape == (len(crops), dim) and embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)

    # Batched (or looped, for a batch-1 file) equals one crop at a time.
    one_by_one = np.concatenate([embedder.embed(crops[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(embeddings[:3], one_by_one, atol=2e-3 if "fp16" in key else 1e-4)

    scores = (embeddings[first] * embeddings[second]).sum(axis=1)
    assert scores[same].mean() > scores[~same].mean() + 0.35
    assert best_accuracy(scores, same) >= 0.95


def test_flip_is_mirror_symmetric_and_changes_the_embedding(lfw_sample) -> None:
    crops = lfw_sample[0][:4]
    flipped = load_embedder(ARCFACE, flip=True)
    plain = load_embedder(ARCFACE)
    with_flip = flipped.embed(crops)
    # The sum of a crop's and its mirror's outputs does not care which of the two it got.
    np.testing.assert_allclose(with_flip, flipped.embed(crops[:, :, ::-1]), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(with_flip, axis=1), 1.0, atol=1e-5)
    without = plain.embed(crops)
    assert np.all((with_flip * without).sum(axis=1) > 0.9)
    assert not np.allclose(with_flip, without, atol=1e-3)


def test_identity_and_edge_cases() -> None:
    embedder = load_embedder(ARCFACE, graph="int8")  # the file as given
    assert isinstance(embedder, ArcFaceEmbedder) and embedder.family == "arcface"
    assert embedder.name == "arcface_w600k_mbf_int8"
    assert embedder.sha256 == "7caa7fb0ad6c37b33e6c59f6411084b487aaabd596bba645d2cce391a5871120"
    assert embedder.embed(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 512)
    assert embedder.embed(np.zeros((112, 112, 3), np.uint8)).shape == (1, 512)  # one crop
    with pytest.raises(ValueError, match="uint8"):
        embedder.embed(np.zeros((1, 112, 112, 3), np.float32))
    with pytest.raises(ModelSpecError, match="not a recognizer"):
        load_embedder(SCRFD)
    fp16 = load_embedder(RECOGNIZERS["relu6_128_fp16"][0])
    assert isinstance(fp16, MobileFaceEmbedder)
    assert fp16.input_dtype == np.float16 and fp16.batch_limit == 1
    # Dynamic int8 quantization scales each batch as a whole: run faces one by one so a
    # face's embedding never depends on its batch neighbours.
    assert embedder.batch_limit == 1
    assert load_embedder(RECOGNIZERS["relu6_128"][0]).batch_limit > 1


# ---- built graphs: what each family feeds the network ------------------------------------------


def channel_probe_graph(
    path: Path,
    *,
    size: int = 112,
    dtype: int = TensorProto.FLOAT,
    batch: int | str = "N",
    symbolic_dim: bool = False,
    extra_output: bool = False,
) -> Path:
    """A model whose output row is [mean of channel 0, 1, 2, pixel (0,0) of channel 0,
    height, width]: enough for a test to read back what the embedder fed it."""
    feature: int | str = "D" if symbolic_dim else 6
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["means4"], axes=[2, 3], keepdims=0),
        helper.make_node("Slice", ["input", "s0", "s1", "axes"], ["corner4"]),
        helper.make_node("Flatten", ["corner4"], ["corner"], axis=1),
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Slice", ["shape", "h0", "h1"], ["hw_int"]),
        helper.make_node("Cast", ["hw_int"], ["hw"], to=dtype),
        helper.make_node("Shape", ["input"], ["shape_b"]),
        helper.make_node("Slice", ["shape_b", "b0", "b1"], ["batch_1"]),
        helper.make_node("Concat", ["batch_1", "two"], ["tile_shape"], axis=0),
        helper.make_node("Expand", ["hw", "tile_shape"], ["hw_rows"]),
        helper.make_node("Concat", ["means4", "corner", "hw_rows"], ["output"], axis=1),
    ]
    ints = TensorProto.INT64
    initializers = [
        helper.make_tensor("s0", ints, [4], [0, 0, 0, 0]),
        helper.make_tensor("s1", ints, [4], [2**31, 1, 1, 1]),
        helper.make_tensor("axes", ints, [4], [0, 1, 2, 3]),
        helper.make_tensor("h0", ints, [1], [2]),
        helper.make_tensor("h1", ints, [1], [4]),
        helper.make_tensor("b0", ints, [1], [0]),
        helper.make_tensor("b1", ints, [1], [1]),
        helper.make_tensor("two", ints, [1], [2]),
    ]
    outputs = [helper.make_tensor_value_info("output", dtype, [batch, feature])]
    if extra_output:
        nodes.append(helper.make_node("ReduceMax", ["output"], ["norm"], axes=[1], keepdims=1))
        outputs.append(helper.make_tensor_value_info("norm", dtype, [batch, 1]))
    graph = helper.make_graph(
        nodes,
        "channel_probe",
        [helper.make_tensor_value_info("input", dtype, [batch, 3, size, size])],
        outputs,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def coloured_crops(count: int = 2) -> np.ndarray:
    """Flat BGR crops: blue 10, green 100, red 200, each crop a little brighter."""
    crops = np.zeros((count, 112, 112, 3), np.uint8)
    crops[...] = (10, 100, 200)
    crops += np.arange(count, dtype=np.uint8)[:, None, None, None]
    return crops


def normalised(value: float, mean: float = 127.5, std: float = 127.5) -> float:
    return (value - mean) / std


@pytest.mark.parametrize(
    ("family", "cls", "order"),
    [
        ("adaface", AdaFaceEmbedder, "BGR"),
        ("sphereface", SphereFaceEmbedder, "RGB"),
        ("arcface", ArcFaceEmbedder, "RGB"),
        ("mobileface", MobileFaceEmbedder, "RGB"),
    ],
)
def test_family_preprocessing(tmp_path, family, cls, order) -> None:
    path = channel_probe_graph(tmp_path / f"{family}.onnx")
    embedder = load_embedder(f"{family}:{path}")
    assert type(embedder) is cls and embedder.dim == 6
    raw = embedder.raw(coloured_crops())
    channels = (10, 100, 200) if order == "BGR" else (200, 100, 10)
    for row, brighter in enumerate((0, 1)):
        expected = [normalised(c + brighter) for c in channels]
        # ReduceMean over 12,544 float32 pixels drifts ~1e-5; the orders differ by > 0.5.
        np.testing.assert_allclose(raw[row, :3], expected, atol=1e-4)
        np.testing.assert_allclose(raw[row, 3], expected[0], atol=1e-6)
        np.testing.assert_allclose(raw[row, 4:], [112, 112])


def test_spec_overrides_preprocessing(tmp_path) -> None:
    path = channel_probe_graph(tmp_path / "ada.onnx")
    embedder = load_embedder(f"adaface:{path}?order=rgb&mean=0&std=255")
    raw = embedder.raw(coloured_crops(1))
    np.testing.assert_allclose(raw[0, :3], [200 / 255, 100 / 255, 10 / 255], atol=1e-4)


def test_input_size_dtype_and_batch_come_from_the_file(tmp_path) -> None:
    # A 128x128 float16 batch-1 file: crops are resized, cast, and fed one at a time.
    path = channel_probe_graph(tmp_path / "m.onnx", size=128, dtype=TensorProto.FLOAT16, batch=1)
    embedder = load_embedder(f"mobileface:{path}")
    assert embedder.input_hw == (128, 128) and embedder.batch_limit == 1
    raw = embedder.raw(coloured_crops(3))
    assert raw.dtype == np.float32 and raw.shape == (3, 6)
    np.testing.assert_allclose(raw[:, 4:], 128)
    np.testing.assert_allclose(raw[:, 0], [normalised(200 + i) for i in range(3)], atol=2e-3)


def test_symbolic_feature_axis_and_second_output(tmp_path) -> None:
    path = channel_probe_graph(tmp_path / "a.onnx", symbolic_dim=True, extra_output=True)
    embedder = load_embedder(f"adaface:{path}")
    assert embedder.dim == 6  # probed with one crop, and the (feature, norm) pair → feature
    unit = embedder.embed(coloured_crops())
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)


def test_sphereface_refuses_other_input_sizes(tmp_path) -> None:
    path = channel_probe_graph(tmp_path / "s.onnx", size=96)
    with pytest.raises(ValueError, match="112x112"):
        load_embedder(f"sphereface:{path}")
    assert load_embedder(f"mobileface:{path}").input_hw == (96, 96)


def test_batch_option_and_sha256(tmp_path) -> None:
    path = channel_probe_graph(tmp_path / "h.onnx")
    assert load_embedder(f"mobileface:{path}?batch=8").batch_limit == 8
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
