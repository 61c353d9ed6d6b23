"""Tiny ONNX graphs standing in for analysis families whose real weights are not here.

- `probe_graph`: one output row per crop, [mean of each input channel..., height, width],
  so a test reads back exactly what a family fed the network (size, colour order,
  normalisation, layout).
- `constant_graph`: outputs of the family's real shapes whose values the test chooses
  (the same for every crop of the batch), to prove the decoding.
- `dark_is_class_graph`: a BiSeNet-shaped parser that labels dark pixels as one class and
  everything else as skin, so its output depends on the real photo it is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INTS = TensorProto.INT64


def _save(nodes, inputs, outputs, initializers, path: Path) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _input(shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)


def probe_graph(path: Path, shape: list[int | str], layout: str = "NCHW") -> Path:
    """Output [N, C + 2]: per-channel means, then the input's H and W."""
    spatial = [2, 3] if layout == "NCHW" else [1, 2]
    hw = [2, 4] if layout == "NCHW" else [1, 3]
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["means"], axes=spatial, keepdims=0),
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Slice", ["shape", "hw0", "hw1"], ["hw_int"]),
        helper.make_node("Cast", ["hw_int"], ["hw"], to=TensorProto.FLOAT),
        helper.make_node("Slice", ["shape", "b0", "b1"], ["batch"]),
        helper.make_node("Concat", ["batch", "two"], ["rows_shape"], axis=0),
        helper.make_node("Expand", ["hw", "rows_shape"], ["hw_rows"]),
        helper.make_node("Concat", ["means", "hw_rows"], ["output"], axis=1),
    ]
    initializers = [
        helper.make_tensor("hw0", INTS, [1], [hw[0]]),
        helper.make_tensor("hw1", INTS, [1], [hw[1]]),
        helper.make_tensor("b0", INTS, [1], [0]),
        helper.make_tensor("b1", INTS, [1], [1]),
        helper.make_tensor("two", INTS, [1], [2]),
    ]
    channels = shape[1] if layout == "NCHW" else shape[3]
    width = channels + 2 if isinstance(channels, int) else "K"
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", width])]
    return _save(nodes, [_input(shape)], outputs, initializers, path)


def constant_graph(path: Path, shape: list[int | str], values: list[np.ndarray]) -> Path:
    """One output per array in `values`, each repeated along the batch axis."""
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Slice", ["shape", "b0", "b1"], ["batch"]),
    ]
    initializers = [
        helper.make_tensor("b0", INTS, [1], [0]),
        helper.make_tensor("b1", INTS, [1], [1]),
    ]
    outputs = []
    for k, value in enumerate(values):
        value = np.asarray(value, dtype=np.float32)
        initializers.append(numpy_helper.from_array(value[None], f"value{k}"))
        initializers.append(helper.make_tensor(f"dims{k}", INTS, [value.ndim], list(value.shape)))
        nodes.append(helper.make_node("Concat", ["batch", f"dims{k}"], [f"shape{k}"], axis=0))
        nodes.append(helper.make_node("Expand", [f"value{k}", f"shape{k}"], [f"out{k}"]))
        outputs.append(
            helper.make_tensor_value_info(f"out{k}", TensorProto.FLOAT, ["N", *value.shape])
        )
    return _save(nodes, [_input(shape)], outputs, initializers, path)


def dark_is_class_graph(
    path: Path, dark_class: int, *, classes: int = 19, skin_class: int = 1, size: int = 512
) -> Path:
    """[N, 3, size, size] ImageNet-normalised RGB → [N, classes, size, size] logits: the
    channel mean m gives `dark_class` the logit -10 m and skin the logit 15, so pixels
    with m < -1.5 (about RGB 36 and darker) are `dark_class`, the rest skin."""
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["m", "zero"], ["flat"]),
    ]
    initializers = [
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("minus_ten", TensorProto.FLOAT, [], [-10.0]),
    ]
    channels = []
    for index in range(classes):
        name = f"c{index}"
        if index == dark_class:
            nodes.append(helper.make_node("Mul", ["m", "minus_ten"], [name]))
        else:
            level = 15.0 if index == skin_class else -100.0
            initializers.append(helper.make_tensor(f"l{index}", TensorProto.FLOAT, [], [level]))
            nodes.append(helper.make_node("Add", ["flat", f"l{index}"], [name]))
        channels.append(name)
    nodes.append(helper.make_node("Concat", channels, ["logits"], axis=1))
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes, size, size])
    ]
    return _save(nodes, [_input(["N", 3, size, size])], outputs, initializers, path)


def bright_is_face_graph(path: Path, size: int = 256) -> Path:
    """An XSeg-shaped model: NHWC x / 255 in, P(face) = clip((mean - 0.15) x 10, 0, 1) out,
    so dark pixels (mean colour under about 38 of 255) read as occluded."""
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[3], keepdims=1),
        helper.make_node("Sub", ["m", "offset"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "gain"], ["scaled"]),
        helper.make_node("Clip", ["scaled", "lo", "hi"], ["mask"]),
    ]
    initializers = [
        helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        for name, value in (("offset", 0.15), ("gain", 10.0), ("lo", 0.0), ("hi", 1.0))
    ]
    outputs = [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", size, size, 1])]
    return _save(nodes, [_input(["N", size, size, 3])], outputs, initializers, path)


def face_layout_106(eye_aspect: float) -> np.ndarray:
    """A frontal face's 106 points in the 2D106 output's [-1, 1] crop coordinates, in
    insightface's grouping, with both eyes' height / width = `eye_aspect`."""
    points = np.zeros((106, 2))
    chin = np.linspace(np.pi, 0, 33)  # contour: ear to ear through the chin
    points[0:33] = np.stack([0.6 * np.cos(chin), 0.05 + 0.55 * np.sin(chin)], axis=1)
    ring = np.linspace(0, 2 * np.pi, 9, endpoint=False)
    for first, centre, cx in ((33, 38, -0.22), (87, 92, 0.22)):
        others = [i for i in range(first, first + 10) if i != centre]
        points[others] = np.stack(
            [cx + 0.1 * np.cos(ring), -0.1 + 0.1 * eye_aspect * np.sin(ring)], axis=1
        )
        points[centre] = (cx, -0.1)
    for first, cx in ((43, -0.22), (97, 0.22)):  # eyebrows
        points[first : first + 9] = np.stack(
            [np.linspace(cx - 0.12, cx + 0.12, 9), np.full(9, -0.25)], axis=1
        )
    points[72:87] = np.stack([np.zeros(15), np.linspace(-0.08, 0.15, 15)], axis=1)  # nose
    lips = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    points[52:72] = np.stack([0.16 * np.cos(lips), 0.3 + 0.05 * np.sin(lips)], axis=1)
    return points.reshape(212)
