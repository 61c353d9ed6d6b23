"""Model specifications: a registry name or `FAMILY:PATH[?overrides]` resolved to a local file.

Examples::

    SCRFD_500M_KPS                                      # registry name (downloaded on first use)
    arcface:../shared/models/arcface_w600k_mbf_int8.onnx  # local file of a known family
    mobileface:/m/fr.onnx?order=bgr&mean=127.5&std=127.5 # with preprocessing overrides
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl

ChannelOrder = Literal["RGB", "BGR"]

FAMILIES: dict[str, str] = {
    "retinaface": "detect",
    "scrfd": "detect",
    "yolov5face": "detect",
    "yolov8face": "detect",
    "yunet": "detect",
    "arcface": "embed",
    "adaface": "embed",
    "mobileface": "embed",
    "sphereface": "embed",
    "minifasnet": "liveness",
    "fiqa": "quality",
    # face analysis (facedb.vision.analysis); one family per preprocessing/decoding convention
    "landmark106": "landmarks",
    "agegender": "attributes",
    "fairface": "attributes",
    "affectnet": "attributes",
    "minixception": "attributes",
    "mobilegaze": "gaze",
    "bisenet": "parsing",
    "xseg": "segmentation",
}


class ModelSpecError(ValueError):
    """A model specification that cannot be understood or resolved."""


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become the network's input tensor: order, then (x - mean) / std per channel."""

    channel_order: ChannelOrder
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class ModelSpec:
    """A model resolved to a file on disk, with its family and any preprocessing override."""

    family: str
    path: Path
    name: str
    preprocessing: Preprocessing | None = None  # None: the family's own default
    options: dict[str, str] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return FAMILIES[self.family]

    def preprocessing_or(self, default: Preprocessing) -> Preprocessing:
        return self.preprocessing or default


def _triple(text: str) -> tuple[float, float, float]:
    values = [float(v) for v in text.split(",")]
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ModelSpecError(f"expected one or three comma-separated numbers, got {text!r}")
    return (values[0], values[1], values[2])


def _parse_overrides(query: str, family: str) -> tuple[Preprocessing | None, dict[str, str]]:
    params = dict(parse_qsl(query, keep_blank_values=True))
    order = params.pop("order", None)
    mean = params.pop("mean", None)
    std = params.pop("std", None)
    if order is None and mean is None and std is None:
        return None, params
    if order is not None and order.upper() not in ("RGB", "BGR"):
        raise ModelSpecError(f"order must be rgb or bgr, got {order!r}")
    from facedb.models.defaults import default_preprocessing  # family defaults live there

    base = default_preprocessing(family)
    pre = Preprocessing(
        channel_order=order.upper() if order else base.channel_order,  # type: ignore[arg-type]
        mean=_triple(mean) if mean else base.mean,
        std=_triple(std) if std else base.std,
    )
    return pre, params


def parse_local_spec(text: str) -> ModelSpec | None:
    """`FAMILY:PATH[?query]` → ModelSpec, or None when `text` is not of that form."""
    family, sep, rest = text.partition(":")
    if not sep or family.lower() not in FAMILIES:
        return None
    family = family.lower()
    path_text, _, query = rest.partition("?")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ModelSpecError(f"model file for {family!r} not found: {path}")
    preprocessing, options = _parse_overrides(query, family)
    return ModelSpec(family, path.resolve(), path.stem, preprocessing, options)


def resolve_model(text: str, *, download: bool = True) -> ModelSpec:
    """Resolve a spec string to a local file, downloading registry models when needed."""
    local = parse_local_spec(text)
    if local is not None:
        return local
    from facedb.models.registry import lookup
    from facedb.models.store import ensure_model

    name, _, query = text.partition("?")
    entry = lookup(name)
    path = ensure_model(entry, download=download)
    preprocessing, options = _parse_overrides(query, entry.family)
    preprocessing = preprocessing or entry.preprocessing  # an entry may pin its own
    spec = ModelSpec(entry.family, path, entry.name, preprocessing, dict(entry.options))
    return replace(spec, options={**spec.options, **options})
