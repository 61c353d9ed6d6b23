"""Model specifications: a registry name or `FAMILY:PATH[?overrides]` resolved to a local file.

Examples::

    SCRFD_500M_KPS                                      # registry name (cache, local dir, download)
    arcface:../shared/models/arcface_w600k_mbf_int8.onnx  # local file of a known family
    mobileface:/m/fr.onnx?order=bgr&mean=127.5&std=127.5 # with preprocessing overrides

The top of `facedb.models`' dependency order: families → registry → store → spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast
from urllib.parse import parse_qsl

from facedb.models.errors import ModelSpecError
from facedb.models.families import FAMILIES, ChannelOrder, Preprocessing, default_preprocessing
from facedb.models.registry import lookup
from facedb.models.store import ensure_model

__all__ = ["ModelSpec", "ModelSpecError", "Preprocessing", "parse_local_spec", "resolve_model"]


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
        return FAMILIES[self.family].task

    def preprocessing_or(self, default: Preprocessing) -> Preprocessing:
        return self.preprocessing or default


def _triple(text: str) -> tuple[float, float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ModelSpecError(
            f"expected one or three comma-separated numbers, got {text!r}"
        ) from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ModelSpecError(f"expected one or three comma-separated numbers, got {text!r}")
    return (values[0], values[1], values[2])


def _parse_overrides(query: str, family: str) -> tuple[Preprocessing | None, dict[str, str]]:
    """`order`, `mean`, `std` (completed with the family's defaults) and the other options."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    order = params.pop("order", None)
    mean = params.pop("mean", None)
    std = params.pop("std", None)
    if order is None and mean is None and std is None:
        return None, params
    if order is not None and order.upper() not in ("RGB", "BGR"):
        raise ModelSpecError(f"order must be rgb or bgr, got {order!r}")
    base = default_preprocessing(family)
    pre = Preprocessing(
        channel_order=cast(ChannelOrder, order.upper()) if order else base.channel_order,
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
    """Resolve a spec string to a local file; registry models come from the cache, a local
    model directory (found by SHA-256) or, when `download`, their release URL."""
    local = parse_local_spec(text)
    if local is not None:
        return local
    name, _, query = text.partition("?")
    entry = lookup(name)
    path = ensure_model(entry, download=download)
    preprocessing, options = _parse_overrides(query, entry.family)
    return ModelSpec(entry.family, path, entry.name, preprocessing, {**entry.options, **options})
