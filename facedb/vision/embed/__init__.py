"""Face recognizers: aligned crops → unit embeddings. `load_embedder(spec)` picks the family."""

from __future__ import annotations

from facedb.models.errors import ModelSpecError
from facedb.models.graphs import select_graph
from facedb.models.session import SessionSettings
from facedb.models.spec import ModelSpec, resolve_model
from facedb.vision.embed.adaface import AdaFaceEmbedder
from facedb.vision.embed.arcface import ArcFaceEmbedder
from facedb.vision.embed.base import Embedder, file_sha256, l2_normalise
from facedb.vision.embed.mobileface import MobileFaceEmbedder
from facedb.vision.embed.sphereface import SphereFaceEmbedder

EMBEDDERS: dict[str, type[Embedder]] = {
    cls.family: cls
    for cls in (ArcFaceEmbedder, AdaFaceEmbedder, MobileFaceEmbedder, SphereFaceEmbedder)
}


def load_embedder(
    spec: str | ModelSpec,
    flip: bool = False,
    threads: int | None = None,
    *,
    allow_spinning: bool | None = None,
    graph: str | None = None,
) -> Embedder:
    """An embedder for a registry name, `FAMILY:PATH[?order=bgr&mean=..&std=..]` or a spec;
    `threads` and `allow_spinning` are the onnxruntime session settings (None: defaults).

    `graph` "float32" (the default; None: FACEDB_RECOGNIZER_GRAPH) runs a dynamic-int8 file
    as its batch-safe float32 rewrite from the model cache (`facedb.models.graphs`), "int8"
    runs the file as given."""
    resolved = resolve_model(spec) if isinstance(spec, str) else spec
    resolved = select_graph(resolved, graph)
    cls = EMBEDDERS.get(resolved.family)
    if cls is None:
        raise ModelSpecError(
            f"{resolved.name} is a {resolved.family!r} model, not a recognizer "
            f"(known: {', '.join(sorted(EMBEDDERS))})"
        )
    return cls(resolved, flip=flip, runtime=SessionSettings(threads, allow_spinning))


__all__ = [
    "EMBEDDERS",
    "AdaFaceEmbedder",
    "ArcFaceEmbedder",
    "Embedder",
    "MobileFaceEmbedder",
    "SphereFaceEmbedder",
    "file_sha256",
    "l2_normalise",
    "load_embedder",
]
