"""Which graph of a recognizer file runs: the file as given, or its batch-safe float32 rewrite.

A dynamic-int8 recognizer (DynamicQuantizeLinear) is slower than its float32 rewrite on
this kind of CPU and must run one face at a time (`optimize.py`). So by default a loader
given such a file runs the rewrite instead: written once into the model cache, named by
the source's SHA-256 (`float32-<first 16 hex digits>.onnx`) and stamped inside with the
whole digest, then found again by that name in any model directory. The rewrite has its
own SHA-256, so galleries and calibrations bind to it, not to the int8 file.

`FACEDB_RECOGNIZER_GRAPH=int8` (or `graph="int8"`) keeps the file as given. Several
processes may start at once: each writes a temporary file beside the destination and
renames it into place, and every writer produces the same bytes, so whichever rename wins
is the same file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Literal

from facedb.models.errors import ModelSpecError
from facedb.models.onnx_model import quantizes_per_batch
from facedb.models.optimize import GraphRewriteError, optimize_model, source_sha256_of
from facedb.models.spec import ModelSpec
from facedb.models.store import file_digest, model_dir, model_dirs, written_in_place

log = logging.getLogger(__name__)

RecognizerGraph = Literal["float32", "int8"]
GRAPHS: tuple[RecognizerGraph, ...] = ("float32", "int8")
GRAPH_ENV = "FACEDB_RECOGNIZER_GRAPH"
DEFAULT_GRAPH: RecognizerGraph = "float32"  # chosen by the table in docs/DESIGN.md
REWRITE_PREFIX = "float32-"


def parse_graph(text: str | None) -> RecognizerGraph:
    """ "float32" | "int8" (None or empty: FACEDB_RECOGNIZER_GRAPH, else the default)."""
    value = (text or os.environ.get(GRAPH_ENV, "") or DEFAULT_GRAPH).strip().lower()
    if value not in GRAPHS:
        raise ModelSpecError(
            f"recognizer graph must be {' or '.join(GRAPHS)}, got {value!r} "
            f"(--recognizer-graph / {GRAPH_ENV})"
        )
    return value


def rewrite_name(source_sha256: str) -> str:
    return f"{REWRITE_PREFIX}{source_sha256[:16]}.onnx"


def find_rewrite(source_sha256: str) -> Path | None:
    """The float32 rewrite of the file with this SHA-256 in a model directory, if any."""
    for directory in model_dirs():
        path = directory / rewrite_name(source_sha256)
        if path.is_file() and source_sha256_of(path) == source_sha256:
            return path
    return None


def cached_rewrites() -> list[tuple[Path, str]]:
    """(file, source SHA-256) of every float32 rewrite in the model directories."""
    found = []
    for directory in model_dirs():
        for path in sorted(directory.glob(f"{REWRITE_PREFIX}*.onnx")):
            source = source_sha256_of(path)
            if source is not None:
                found.append((path, source))
    return found


def write_rewrite(source: Path, source_sha256: str) -> Path:
    """Write the float32 rewrite of `source` into the cache (temp file, then rename)."""
    destination = model_dir() / rewrite_name(source_sha256)
    with written_in_place(destination) as temp:
        optimize_model(source, temp)
    log.info("wrote the float32 rewrite of %s to %s", source, destination)
    return destination


def rewrite_for(source: Path) -> Path:
    """The float32 rewrite of the dynamic-int8 file `source`: found, else written once."""
    digest = file_digest(source)
    return find_rewrite(digest) or write_rewrite(source, digest)


def select_graph(spec: ModelSpec, graph: str | None = None) -> ModelSpec:
    """`spec` itself, or (graph float32, a dynamic-int8 file) its float32 rewrite, named
    `<name>-float32`. A graph the rewrite does not understand, or a cache that cannot be
    written, keeps the file as given (logged): slower and unbatched, but working."""
    if parse_graph(graph) == "int8" or not quantizes_per_batch(spec.path):
        return spec
    try:
        path = rewrite_for(spec.path)
    except (GraphRewriteError, OSError) as exc:
        log.warning("running %s as given (int8, one face at a time): %s", spec.name, exc)
        return spec
    return replace(spec, path=path, name=f"{spec.name}-float32")
