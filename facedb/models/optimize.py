"""Rewrite a dynamic-int8 ONNX graph as float32 with its exact dequantized weights.

onnxruntime's dynamic quantization stores int8 weights and, at run time, quantizes every
activation with one scale picked for the whole input tensor (DynamicQuantizeLinear). Two
costs follow: the integer kernels are slower than float ones on CPUs without VNNI, and a
face's embedding depends on the other faces in its batch, so such a graph must run one
face at a time. For each integer node the quantizer wrote the pattern

    x -> DynamicQuantizeLinear -> (x_q, x_scale, x_zp)
    ConvInteger(x_q, W_q, x_zp, W_zp) or MatMulInteger(...)
        -> Cast(float) -> Mul(., x_scale * W_scale)

which this module replaces by `Conv(x, W)` / `MatMul(x, W)` with W = (W_q - W_zp) * W_scale,
the very weights the int8 graph multiplies by. Only activation rounding goes away, so the
result is a plain float32 graph whose outputs never depend on the batch.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facedb.models.store import sha256_file

if TYPE_CHECKING:  # onnx is imported on use: only this command needs it
    import onnx

SOURCE_KEY = "facedb.rewritten_from_sha256"
INTEGER_OPS = {"ConvInteger": "Conv", "MatMulInteger": "MatMul"}
DYNAMIC_QUANTIZE = "DynamicQuantizeLinear"


class GraphRewriteError(ValueError):
    """The graph is not the dynamic-int8 pattern this module knows how to undo."""


@dataclass(frozen=True)
class OptimizeReport:
    source: Path
    destination: Path
    rewritten: int  # integer nodes turned into float ones
    nodes_before: int
    nodes_after: int


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:  # onnx is a declared dependency; this guards broken installs
        raise GraphRewriteError("the onnx package is needed: pip install onnx") from exc
    return onnx


@dataclass
class _Graph:
    """Lookups over one graph: who produces and who consumes each tensor, the weights."""

    model: onnx.ModelProto
    producer: dict[str, onnx.NodeProto]
    consumers: dict[str, list[onnx.NodeProto]]
    weights: dict[str, np.ndarray]

    @classmethod
    def of(cls, model: onnx.ModelProto) -> _Graph:
        numpy_helper = _onnx().numpy_helper
        producer = {out: node for node in model.graph.node for out in node.output}
        consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in model.graph.node:
            for name in node.input:
                consumers[name].append(node)
        weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        return cls(model, producer, consumers, weights)

    def only_consumer(self, tensor: str, op_type: str) -> onnx.NodeProto:
        users = self.consumers.get(tensor, [])
        if len(users) != 1 or users[0].op_type != op_type:
            found = [u.op_type for u in users]
            raise GraphRewriteError(f"{tensor} should feed one {op_type}, feeds {found}")
        return users[0]

    def weight(self, name: str, default: float | None = None) -> np.ndarray:
        if not name and default is not None:
            return np.array(default, np.float32)  # an omitted optional input
        if name not in self.weights:
            raise GraphRewriteError(f"{name} is not a constant weight")
        return self.weights[name]


@dataclass(frozen=True)
class _Rewrite:
    """One integer node and what replaces it."""

    integer: onnx.NodeProto
    removed: tuple[onnx.NodeProto, ...]  # the Cast and the output-scale Mul
    replacement: onnx.NodeProto
    weight_name: str
    weight: np.ndarray


def is_dynamic_int8(path: Path) -> bool:
    """True for graphs that quantize activations at run time (cheap: a byte search)."""
    return DYNAMIC_QUANTIZE.encode() in Path(path).read_bytes()


def _weight_scale(graph: _Graph, scale_product: str, activation_scale: str) -> np.ndarray:
    """W_scale from the Mul(x_scale, W_scale) that feeds the output rescale."""
    node = graph.producer.get(scale_product)
    if node is None or node.op_type != "Mul" or activation_scale not in node.input:
        raise GraphRewriteError(f"{scale_product} is not x_scale * W_scale")
    other = next(name for name in node.input if name != activation_scale)
    return graph.weight(other).astype(np.float32)


def _per_output_channel(values: np.ndarray, op_type: str, weight_ndim: int) -> np.ndarray:
    """Shape a per-tensor or per-channel scale / zero point to broadcast over the weight."""
    if values.ndim == 0 or op_type == "MatMul":  # MatMul weights are (K, N): per column N
        return values
    return values.reshape(-1, *([1] * (weight_ndim - 1)))  # Conv weights: (C_out, ...)


def _plan(graph: _Graph, node: onnx.NodeProto, index: int) -> _Rewrite:
    helper = _onnx().helper
    inputs = [*node.input, "", "", ""][:4]
    activation_q, weight_q, _, weight_zp = inputs
    quantize = graph.producer.get(activation_q)
    if quantize is None or quantize.op_type != DYNAMIC_QUANTIZE:
        raise GraphRewriteError(f"{node.name or node.op_type}: input is not {DYNAMIC_QUANTIZE}")
    cast = graph.only_consumer(node.output[0], "Cast")
    rescale = graph.only_consumer(cast.output[0], "Mul")
    scale_product = next(name for name in rescale.input if name != cast.output[0])
    op_type = INTEGER_OPS[node.op_type]
    quantized = graph.weight(weight_q).astype(np.float32)
    zero = _per_output_channel(graph.weight(weight_zp, 0.0), op_type, quantized.ndim)
    scale = _weight_scale(graph, scale_product, quantize.output[1])
    scale = _per_output_channel(scale, op_type, quantized.ndim)
    weight = ((quantized - zero.astype(np.float32)) * scale).astype(np.float32)
    weight_name = f"{weight_q.removesuffix('_quantized')}_dequantized_{index}"
    replacement = helper.make_node(
        op_type,
        [quantize.input[0], weight_name],
        [rescale.output[0]],  # downstream nodes keep reading the same tensor
        name=node.name or f"{op_type}_{index}",
    )
    replacement.attribute.extend(node.attribute)  # strides, pads, groups... as they were
    return _Rewrite(node, (cast, rescale), replacement, weight_name, weight)


def _unused_nodes(nodes: list[onnx.NodeProto], outputs: set[str]) -> Iterator[int]:
    """Indices of nodes none of whose outputs is read (repeated until nothing changes)."""
    dead: set[int] = set()
    while True:
        read = set(outputs)
        for i, node in enumerate(nodes):
            if i not in dead:
                read.update(node.input)
        newly = {
            i
            for i, node in enumerate(nodes)
            if i not in dead and not any(out in read for out in node.output)
        }
        if not newly:
            return iter(sorted(dead))
        dead |= newly


def _batch_follows_input(model: onnx.ModelProto) -> None:
    """Give the outputs the input's batch axis (quantizer exports often declare batch 1
    on the outputs only) and drop recorded intermediate shapes, which may say the same."""
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if len(dims) > 0:
            dims[0].CopyFrom(batch)
    del model.graph.value_info[:]


def dequantize_dynamic(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A float32 copy of a dynamic-int8 model, and how many integer nodes it rewrote."""
    onnx_ = _onnx()
    graph = _Graph.of(model)
    integer_nodes = [n for n in model.graph.node if n.op_type in INTEGER_OPS]
    if not integer_nodes:
        raise GraphRewriteError("no ConvInteger / MatMulInteger node: not a dynamic-int8 graph")
    plans = {id(n): _plan(graph, n, i) for i, n in enumerate(integer_nodes)}
    removed = {id(r) for plan in plans.values() for r in plan.removed}
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if id(node) in plans:
            nodes.append(plans[id(node)].replacement)  # same place: order stays topological
        elif id(node) not in removed:
            nodes.append(node)
    outputs = {o.name for o in model.graph.output}
    dead = set(_unused_nodes(nodes, outputs))  # quantizers and scale products left unread
    nodes = [n for i, n in enumerate(nodes) if i not in dead]

    result = onnx_.ModelProto()
    result.CopyFrom(model)
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    read = {name for node in nodes for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in read]
    added = [onnx_.numpy_helper.from_array(p.weight, p.weight_name) for p in plans.values()]
    del result.graph.initializer[:]
    result.graph.initializer.extend([*kept, *added])
    _batch_follows_input(result)
    result.producer_name = "facedb.models.optimize"
    onnx_.checker.check_model(result)
    return result, len(plans)


def stamp_source(model: onnx.ModelProto, source_sha256: str) -> None:
    """Record which file this graph was rewritten from (metadata `SOURCE_KEY`): the model
    cache finds a graph's rewrite by it, and the bytes stay a function of the source only,
    so every rewrite of one file has one SHA-256 (and so one calibration)."""
    entry = model.metadata_props.add()
    entry.key, entry.value = SOURCE_KEY, source_sha256


def source_sha256_of(path: Path) -> str | None:
    """The source SHA-256 stamped by `stamp_source`, read without the onnx package."""
    data = Path(path).read_bytes()
    at = data.find(SOURCE_KEY.encode())
    if at < 0:
        return None
    match = re.search(rb"[0-9a-f]{64}", data[at : at + 128])
    return match.group().decode() if match else None


def optimize_model(source: Path, destination: Path) -> OptimizeReport:
    """Write the float32 rewrite of the dynamic-int8 graph `source` to `destination`."""
    onnx = _onnx()
    source, destination = Path(source), Path(destination)
    if not source.is_file():
        raise GraphRewriteError(f"{source}: no such file")
    if destination.exists() and source.resolve() == destination.resolve():
        raise GraphRewriteError("SRC and DST are the same file")
    try:
        model = onnx.load(str(source))
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise GraphRewriteError(f"{source}: not an ONNX model ({exc})") from exc
    try:
        float_model, rewritten = dequantize_dynamic(model)
    except GraphRewriteError as exc:
        raise GraphRewriteError(f"{source}: {exc}") from exc
    stamp_source(float_model, sha256_file(source))
    destination.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(float_model, str(destination))
    return OptimizeReport(
        source, destination, rewritten, len(model.graph.node), len(float_model.graph.node)
    )
