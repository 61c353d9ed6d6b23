"""Detector layouts with no real file here, proven on tiny ONNX graphs built in the test.

Two kinds of graph:
- *echo* graphs compute their score outputs from the input tensor (one channel per FPN
  level, sampled where the level's anchors sit), so each decoded face's score is the
  normalised pixel the network saw there: colour order, mean, std, canvas size and image
  placement all show up in the scores and positions (MODEL_FACTS §1, §2);
- *crafted* graphs return constants with one confident prediction that must decode to a
  box and landmarks worked out by hand below, in original-image pixels.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facedb.models import ModelSpec, Preprocessing
from facedb.vision.detect import DetectorConfig, load_detector
from facedb.vision.types import Face

BIG = 2**62
KEEP_ALL = DetectorConfig(score_threshold=-1e6, nms_threshold=1.0)  # no filtering, no NMS


class Graph:
    """A small ONNX graph builder: every op returns the name of its (single) output."""

    def __init__(self, input_name: str, input_dims: list[int | str]) -> None:
        self.input = input_name
        self.input_dims = input_dims
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []

    def _name(self) -> str:
        return f"t{len(self.nodes) + len(self.initializers)}"

    def const(self, value: np.ndarray) -> str:
        name = self._name()
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: object) -> str:
        name = self._name()
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], **attrs))
        return name

    def output(self, value: str, name: str, dims: list[int | str]) -> None:
        self.nodes.append(helper.make_node("Identity", [value], [name]))
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))

    def save(self, path: Path) -> Path:
        graph = helper.make_graph(
            self.nodes,
            "synthetic",
            [helper.make_tensor_value_info(self.input, TensorProto.FLOAT, self.input_dims)],
            self.outputs,
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, path)
        return path

    # ---- building blocks ----

    def echo(self, channel: int, stride: int, offset: int) -> str:
        """(cells, 1): input channel sampled every `stride` pixels from `offset`, row-major."""
        sampled = self.op(
            "Slice",
            self.input,
            self.const(np.array([0, channel, offset, offset], np.int64)),
            self.const(np.array([1, channel + 1, BIG, BIG], np.int64)),
            self.const(np.array([0, 1, 2, 3], np.int64)),
            self.const(np.array([1, 1, stride, stride], np.int64)),
        )
        return self.op("Reshape", sampled, self.const(np.array([-1, 1], np.int64)))

    def repeat_rows(self, column: str, times: int) -> str:
        """(n, 1) → (n·times, 1), each row repeated `times` times consecutively."""
        if times == 1:
            return column
        wide = self.op("Concat", *([column] * times), axis=1)
        return self.op("Reshape", wide, self.const(np.array([-1, 1], np.int64)))

    def rows_like(self, column: str, row: np.ndarray) -> str:
        """(n, 1) column → (n, k) with every row equal to `row`."""
        zero = self.op("Mul", column, self.const(np.zeros((1, 1), np.float32)))
        return self.op("Add", zero, self.const(row.astype(np.float32)[None]))

    def constant_using_input(self, value: np.ndarray) -> str:
        """A constant output that still depends on the input (so the input is consumed)."""
        total = self.op("ReduceSum", self.input, keepdims=0)
        zero = self.op("Mul", total, self.const(np.array(0.0, np.float32)))
        return self.op("Add", self.const(value.astype(np.float32)), zero)


def spec(family: str, path: Path) -> ModelSpec:
    return ModelSpec(family, path, path.stem)


def two_colour_image(width: int = 100, height: int = 60) -> np.ndarray:
    """Left half BGR (10, 100, 200), right half BGR (250, 50, 0)."""
    image = np.empty((height, width, 3), np.uint8)
    image[:, : width // 2] = (10, 100, 200)
    image[:, width // 2 :] = (250, 50, 0)
    return image


def centre(face: Face) -> tuple[float, float]:
    return float(face.box[0] + face.box[2]) / 2, float(face.box[1] + face.box[3]) / 2


def canvas_pixel(image: np.ndarray, x: float, y: float, offset: tuple[int, int], pad: int):
    """BGR value the network saw at canvas (x, y) for an image pasted at `offset`, unscaled."""
    ix, iy = round(x) - offset[0], round(y) - offset[1]
    if 0 <= ix < image.shape[1] and 0 <= iy < image.shape[0]:
        return image[iy, ix].astype(np.float64)
    return np.full(3, pad, np.float64)


# ---------------------------------------------------------------------------------------
# SCRFD: the 10G registry layout (input `input.1`, dynamic H/W, 9 UNBATCHED outputs)
# ---------------------------------------------------------------------------------------

SCRFD_10G_NAMES = ["448", "471", "494", "451", "474", "497", "454", "477", "500"]


def scrfd_echo_graph(path: Path) -> Path:
    """Level i (stride 8/16/32) echoes input channel i at its anchor points (no +0.5)."""
    g = Graph("input.1", [1, 3, "height", "width"])
    scores, boxes, points = [], [], []
    for channel, stride in enumerate((8, 16, 32)):
        column = g.repeat_rows(g.echo(channel, stride, 0), 2)  # 2 anchors per cell
        scores.append(column)
        boxes.append(g.rows_like(column, np.full(4, 0.25)))  # box = anchor ± stride/4
        points.append(g.rows_like(column, np.zeros(10)))
    widths = [1] * 3 + [4] * 3 + [10] * 3
    for value, name, width in zip(scores + boxes + points, SCRFD_10G_NAMES, widths, strict=True):
        g.output(value, name, [f"n_{name}", width])
    return g.save(path)


def test_scrfd_echo_shows_rgb_mean_std_and_rounded_canvas(tmp_path: Path) -> None:
    detector = load_detector(spec("scrfd", scrfd_echo_graph(tmp_path / "scrfd10g.onnx")), KEEP_ALL)
    image = two_colour_image()  # 100x60: pasted unscaled on a 128x64 canvas (multiples of 32)
    faces = detector.detect(image)
    by_stride = {8: [], 16: [], 32: []}
    for face in faces:
        by_stride[round(face.width * 2)].append(face)
    assert {k: len(v) for k, v in by_stride.items()} == {
        8: 2 * 16 * 8,
        16: 2 * 8 * 4,
        32: 2 * 4 * 2,
    }
    assert max(centre(f)[0] for f in by_stride[8]) == pytest.approx(120)
    assert max(centre(f)[1] for f in by_stride[8]) == pytest.approx(56)
    for channel, stride in enumerate((8, 16, 32)):  # RGB: channel 0 is red
        for face in by_stride[stride]:
            bgr = canvas_pixel(image, *centre(face), (0, 0), pad=0)
            expected = (bgr[2 - channel] - 127.5) / 128.0
            assert face.score == pytest.approx(expected, abs=1e-5)


def test_scrfd_echo_upscale_fills_the_default_canvas(tmp_path: Path) -> None:
    path = scrfd_echo_graph(tmp_path / "scrfd10g.onnx")
    config = DetectorConfig(score_threshold=0.5, nms_threshold=1.0, upscale=True)
    detector = load_detector(spec("scrfd", path), config)
    canvas, placement = detector.prepare(two_colour_image())
    assert canvas.shape[:2] == (640, 640) and placement.scale_x == pytest.approx(6.4)
    faces = detector.detect(two_colour_image())
    # Only red (200) at stride 8 and blue (250) at stride 32 pass 0.5 once normalised.
    # Canvas anchor (80, 80) is original (12.5, 12.5), in the red half.
    near = [f for f in faces if np.allclose(centre(f), (12.5, 12.5), atol=1e-3)]
    assert near and all(f.width == pytest.approx(4 / 6.4) for f in near)
    assert near[0].score == pytest.approx((200 - 127.5) / 128, abs=1e-5)


def test_scrfd_input_size_sets_the_dynamic_canvas(tmp_path: Path) -> None:
    path = scrfd_echo_graph(tmp_path / "scrfd10g.onnx")
    config = DetectorConfig(score_threshold=-1e6, nms_threshold=1.0, input_size=(64, 64))
    detector = load_detector(spec("scrfd", path), config)
    canvas, placement = detector.prepare(two_colour_image())
    assert canvas.shape[:2] == (64, 64)  # 100x60 shrunk 0.64x to 64x38, canvas 64x64
    assert placement.scale_x == pytest.approx(0.64)


def scrfd_crafted_graph(path: Path, levels: int, batched: bool, hit: dict) -> Path:
    """Constant outputs for a `size`x`size` canvas; one confident anchor, given by `hit`."""
    strides = (8, 16, 32) if levels == 3 else (8, 16, 32, 64, 128)
    anchors = 2 if levels == 3 else 1
    g = Graph("input.1", [1, 3, "height", "width"])
    groups: list[list[np.ndarray]] = [[], [], []]
    for stride in strides:
        count = (hit["size"] // stride) ** 2 * anchors
        arrays = [np.zeros((count, 1)), np.ones((count, 4)), np.zeros((count, 10))]
        if stride == hit["stride"]:
            index = (hit["row"] * (hit["size"] // stride) + hit["col"]) * anchors + hit["anchor"]
            arrays[0][index] = 0.9
            arrays[1][index] = hit["distances"]
            arrays[2][index] = hit["offsets"]
        for group, array in zip(groups, arrays, strict=True):
            group.append(array)
    for number, array in enumerate(groups[0] + groups[1] + groups[2]):
        array = array[None] if batched else array
        g.output(g.constant_using_input(array), f"out{number}", list(array.shape))
    return g.save(path)


def test_scrfd_10g_layout_decodes_a_known_face_in_original_pixels(tmp_path: Path) -> None:
    offsets = np.array([-1.0, -0.5, 1.0, -0.5, 0.0, 0.5, -0.5, 1.5, 0.5, 1.5])
    hit = dict(
        size=640, stride=16, row=10, col=20, anchor=1, distances=[2, 3, 4, 5], offsets=offsets
    )
    path = scrfd_crafted_graph(tmp_path / "scrfd.onnx", levels=3, batched=False, hit=hit)
    faces = load_detector(spec("scrfd", path)).detect(np.zeros((1280, 1280, 3), np.uint8))
    assert len(faces) == 1
    # Anchor centre (20·16, 10·16) = (320, 160) on the canvas; the image was shrunk 0.5x.
    expected_box = np.array([320 - 32, 160 - 48, 320 + 64, 160 + 80]) * 2
    np.testing.assert_allclose(faces[0].box, expected_box, atol=1e-3)
    expected_points = (np.array([320, 160]) + offsets.reshape(5, 2) * 16) * 2
    np.testing.assert_allclose(faces[0].landmarks, expected_points, atol=1e-3)
    assert faces[0].score == pytest.approx(0.9)


def test_scrfd_five_level_batched_layout(tmp_path: Path) -> None:
    offsets = np.arange(10, dtype=np.float64) / 10
    hit = dict(size=640, stride=64, row=2, col=3, anchor=0, distances=[1, 1, 2, 2], offsets=offsets)
    path = scrfd_crafted_graph(tmp_path / "scrfd5.onnx", levels=5, batched=True, hit=hit)
    faces = load_detector(spec("scrfd", path)).detect(np.zeros((640, 640, 3), np.uint8))
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, [192 - 64, 128 - 64, 192 + 128, 128 + 128], atol=1e-3)
    expected_points = np.array([192, 128]) + offsets.reshape(5, 2) * 64
    np.testing.assert_allclose(faces[0].landmarks, expected_points, atol=1e-3)


def test_scrfd_without_keypoints_reports_unknown_landmarks(tmp_path: Path) -> None:
    g = Graph("input.1", [1, 3, 64, 64])
    arrays = [np.zeros((128, 1)), np.zeros((32, 1)), np.zeros((8, 1))]
    arrays[0][0] = 0.8
    arrays += [np.ones((128, 4)), np.ones((32, 4)), np.ones((8, 4))]
    for number, array in enumerate(arrays):
        g.output(g.constant_using_input(array), f"o{number}", list(array.shape))
    detector = load_detector(spec("scrfd", g.save(tmp_path / "nokps.onnx")))
    faces = detector.detect(np.zeros((64, 64, 3), np.uint8))
    assert not detector.has_landmarks
    assert len(faces) == 1 and np.isnan(faces[0].landmarks).all()
    np.testing.assert_allclose(faces[0].box, [-8, -8, 8, 8])


def test_scrfd_rejects_an_unknown_output_count(tmp_path: Path) -> None:
    g = Graph("input.1", [1, 3, 64, 64])
    for number in range(7):
        g.output(g.constant_using_input(np.zeros((8, 1))), f"o{number}", [8, 1])
    with pytest.raises(ValueError, match="6, 9, 10 or 15"):
        load_detector(spec("scrfd", g.save(tmp_path / "bad.onnx")))


# ---------------------------------------------------------------------------------------
# RetinaFace with a dynamic input
# ---------------------------------------------------------------------------------------


def test_retinaface_dynamic_echo_shows_bgr_mean_and_prior_centres(tmp_path: Path) -> None:
    g = Graph("input", [1, 3, "height", "width"])
    levels = [g.repeat_rows(g.echo(c, s, s // 2), 2) for c, s in enumerate((8, 16, 32))]
    face_column = g.op("Reshape", g.op("Concat", *levels, axis=0), g.const(np.array([1, -1, 1])))
    zeros = g.op("Mul", face_column, g.const(np.zeros((1, 1, 1), np.float32)))
    conf = g.op("Concat", zeros, face_column, axis=2)
    loc = g.op("Concat", *([zeros] * 4), axis=2)
    marks = g.op("Concat", *([zeros] * 10), axis=2)
    g.output(loc, "loc", [1, "n", 4])
    g.output(conf, "conf", [1, "n", 2])
    g.output(marks, "landmarks", [1, "n", 10])
    detector = load_detector(spec("retinaface", g.save(tmp_path / "rf.onnx")), KEEP_ALL)
    image = two_colour_image()
    faces = detector.detect(image)
    assert len(faces) == 2 * (16 * 8 + 8 * 4 + 4 * 2)  # 128x64 canvas
    level_of_width = {16: 0, 32: 0, 64: 1, 128: 1, 256: 2, 512: 2}
    mean_bgr = (104.0, 117.0, 123.0)
    for face in faces:
        channel = level_of_width[round(face.width)]  # BGR: channel 0 is blue
        bgr = canvas_pixel(image, *centre(face), (0, 0), pad=0)
        assert face.score == pytest.approx(bgr[channel] - mean_bgr[channel], abs=1e-4)
        np.testing.assert_allclose(face.landmarks, np.tile(centre(face), (5, 1)), atol=1e-3)


def test_retinaface_dynamic_decodes_a_known_face(tmp_path: Path) -> None:
    # 320x256 image → canvas 320x256 (already multiples of 32): 2·(40·32 + 20·16 + 10·8) priors.
    count = 2 * (40 * 32 + 20 * 16 + 10 * 8)
    index = 2 * 40 * 32 + (3 * 20 + 5) * 2 + 1  # stride 16, row 3, col 5, min size 128
    loc, conf, marks = np.zeros((1, count, 4)), np.zeros((1, count, 2)), np.zeros((1, count, 10))
    loc[0, index] = [0.5, -1.0, 0.0, 1.0]
    conf[0, :, 0], conf[0, index] = 1.0, [0.05, 0.95]
    marks[0, index] = [1.0, 0.0, -1.0, 0.0, 0.0, 0.5, 0.5, 1.0, -0.5, 1.0]
    g = Graph("input", [1, 3, "height", "width"])
    for order, (name, array) in enumerate([("conf", conf), ("loc", loc), ("marks", marks)]):
        g.output(g.constant_using_input(array), f"{order}{name}", [1, "n", array.shape[2]])
    faces = load_detector(spec("retinaface", g.save(tmp_path / "rf.onnx"))).detect(
        np.zeros((256, 320, 3), np.uint8)
    )
    assert len(faces) == 1 and faces[0].score == pytest.approx(0.95)
    prior_cx, prior_cy, prior_w, prior_h = 5.5 * 16, 3.5 * 16, 128.0, 128.0  # pixels
    cx, cy = prior_cx + 0.5 * 0.1 * prior_w, prior_cy - 1.0 * 0.1 * prior_h
    w, h = prior_w, prior_h * math.exp(0.2)
    np.testing.assert_allclose(
        faces[0].box, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], atol=1e-3
    )
    raw = marks[0, index].reshape(5, 2)
    expected_points = np.array([prior_cx, prior_cy]) + raw * 0.1 * np.array([prior_w, prior_h])
    np.testing.assert_allclose(faces[0].landmarks, expected_points, atol=1e-3)


# ---------------------------------------------------------------------------------------
# YOLOv5-Face, decoded [1, N, 16] layout (fixed 640 input)
# ---------------------------------------------------------------------------------------


def test_yolov5_decoded_echo_shows_letterbox_rgb_and_scale(tmp_path: Path) -> None:
    g = Graph("input", [1, 3, 640, 640])
    objectness = g.op("Reshape", g.echo(0, 16, 8), g.const(np.array([1, -1, 1])))
    rows, cols = np.mgrid[:40, :40]
    xy = np.stack([cols, rows], -1).reshape(1, -1, 2) * 16.0 + 8
    parts = [
        g.const(xy.astype(np.float32)),
        g.const(np.full((1, 1600, 2), 4, np.float32)),
        objectness,
        g.const(np.zeros((1, 1600, 10), np.float32)),
        g.const(np.ones((1, 1600, 1), np.float32)),
    ]
    g.output(g.op("Concat", *parts, axis=2), "output", [1, 1600, 16])
    detector = load_detector(spec("yolov5face", g.save(tmp_path / "y5.onnx")), KEEP_ALL)
    image = two_colour_image()
    faces = detector.detect(image)
    assert len(faces) == 1600
    offset = ((640 - 100) // 2, (640 - 60) // 2)  # centred at native scale, grey 114 around
    inside = 0
    for face in faces:
        x, y = centre(face)
        bgr = canvas_pixel(image, x + offset[0], y + offset[1], offset, pad=114)
        inside += 0 <= x < 100 and 0 <= y < 60
        assert face.score == pytest.approx(bgr[2] / 255.0, abs=1e-5)  # RGB: channel 0 red
    assert inside == 6 * 4  # centres 8 + 16k with 270 <= 8 + 16k < 370 and 290 <= ... < 350


def test_yolov5_decoded_crafted_row(tmp_path: Path) -> None:
    rows = np.zeros((1, 100, 16))
    points = [290, 310, 310, 310, 300, 320, 292, 335, 308, 335]
    rows[0, 42] = [300, 320, 40, 60, 0.9, *points, 0.8]
    g = Graph("data", [1, 3, 640, 640])
    g.output(g.constant_using_input(rows), "out", [1, 100, 16])
    faces = load_detector(spec("yolov5face", g.save(tmp_path / "y5.onnx"))).detect(
        np.zeros((200, 320, 3), np.uint8)
    )
    assert len(faces) == 1
    assert faces[0].score == pytest.approx(0.72)  # objectness × class
    offset = np.array([(640 - 320) // 2, (640 - 200) // 2])
    np.testing.assert_allclose(faces[0].box, [280 - 160, 290 - 220, 320 - 160, 350 - 220])
    np.testing.assert_allclose(faces[0].landmarks, np.reshape(points, (5, 2)) - offset)


def test_yolov5_rejects_other_layouts(tmp_path: Path) -> None:
    g = Graph("data", [1, 3, 640, 640])
    g.output(g.constant_using_input(np.zeros((1, 10, 15))), "out", [1, 10, 15])
    with pytest.raises(ValueError, match="YOLOv5-Face"):
        load_detector(spec("yolov5face", g.save(tmp_path / "bad.onnx")))


# ---------------------------------------------------------------------------------------
# YOLOv8-Face: DFL decoding on a crafted cell
# ---------------------------------------------------------------------------------------


def test_yolov8_crafted_dfl_cell(tmp_path: Path) -> None:
    g = Graph("images", [1, 3, 640, 640])
    levels = [np.full((1, 80, 640 // s, 640 // s), -20.0) for s in (8, 16, 32)]
    cell = levels[1][0, :, 7, 9]  # stride 16, row 7, col 9
    cell[: 4 * 16] = 0.0
    for side, bin_index in enumerate((2, 3, 4, 5)):
        cell[side * 16 + bin_index] = 40.0  # softmax puts all the mass on this bin
    cell[64] = 2.0  # class logit → sigmoid 0.881
    cell[65:] = np.tile([0.25, -0.5, 3.0], 5)
    for number, array in enumerate(levels):
        g.output(g.constant_using_input(array), f"o{number}", list(array.shape))
    faces = load_detector(spec("yolov8face", g.save(tmp_path / "y8.onnx"))).detect(
        np.zeros((480, 640, 3), np.uint8)
    )
    assert len(faces) == 1
    assert faces[0].score == pytest.approx(1 / (1 + math.exp(-2.0)), abs=1e-5)
    # Anchor (9.5, 7.5)·16; letterbox offset (0, 80); the box is clipped to the image.
    np.testing.assert_allclose(faces[0].box, [120, 0, 216, 200 - 80], atol=1e-3)
    np.testing.assert_allclose(faces[0].landmarks, np.tile([152, 96 - 80], (5, 1)), atol=1e-3)


def test_preprocessing_override_with_per_channel_std(tmp_path: Path) -> None:
    path = scrfd_echo_graph(tmp_path / "scrfd10g.onnx")
    override = Preprocessing("BGR", (10.0, 20.0, 30.0), (1.0, 2.0, 4.0))
    detector = load_detector(ModelSpec("scrfd", path, "probe", override), KEEP_ALL)
    image = two_colour_image()
    for face in detector.detect(image):
        channel = {8: 0, 16: 1, 32: 2}[round(face.width * 2)]  # BGR: channel 0 is blue
        bgr = canvas_pixel(image, *centre(face), (0, 0), pad=0)
        expected = (bgr[channel] - override.mean[channel]) / override.std[channel]
        assert face.score == pytest.approx(expected, abs=1e-5)


def test_yolov5_raw_heads_crafted_cell_with_custom_anchors(tmp_path: Path) -> None:
    g = Graph("data", [1, 3, 640, 640])
    heads = [np.full((1, 3, 640 // s, 640 // s, 16), -20.0) for s in (8, 16, 32)]
    cell = heads[1][0, 2, 5, 7]  # stride 16, anchor 2, row 5, col 7
    cell[:4] = 0.0  # sigmoid 0.5: xy at the cell centre, wh = anchor
    cell[4], cell[15] = 3.0, 3.0  # objectness and class logits
    cell[5:15] = np.tile([0.1, -0.2], 5)  # landmarks: raw · anchor + cell · stride
    for number, head in enumerate(heads):
        g.output(g.constant_using_input(head), f"stride_{8 << number}", list(head.shape))
    anchors = "4,5,8,10,13,16,23,29,43,55,50,60,146,217,231,300,335,433"
    model = ModelSpec(
        "yolov5face", g.save(tmp_path / "y5raw.onnx"), "raw", None, {"anchors": anchors}
    )
    faces = load_detector(model).detect(np.zeros((640, 640, 3), np.uint8))
    assert len(faces) == 1
    assert faces[0].score == pytest.approx((1 / (1 + math.exp(-3.0))) ** 2, abs=1e-5)
    cx, cy = (7 + 0.5) * 16, (5 + 0.5) * 16  # (2·0.5 − 0.5 + cell) · stride
    np.testing.assert_allclose(faces[0].box, [cx - 25, cy - 30, cx + 25, cy + 30], atol=1e-3)
    point = [0.1 * 50 + 7 * 16, -0.2 * 60 + 5 * 16]
    np.testing.assert_allclose(faces[0].landmarks, np.tile(point, (5, 1)), atol=1e-3)
