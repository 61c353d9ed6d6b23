"""The recognizers one engine serves galleries with, by SHA-256 of the model file.

A server starts with one recognizer; a gallery reindexed to another model (here or by
another process) names that model's SHA-256 in its row. The engine then loads that model
from the model store (`FACEDB_MODEL_DIR`, found by content) and runs it beside the first,
sharing the detector and gates: each gallery's probes are embedded with the model its live
index holds (`Catalog.serving_model`), so an old index and the old model stay together
until the switch.

The family of a file found by SHA-256 comes from the registry entry with that digest, else
it is the family of the recognizer the server was started with (e.g. the float32 rewrite of
an int8 ArcFace file); preprocessing overrides (`?mean=...`) are not recorded, so a model
that needs them is reached through the registry or by starting the server with it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from facedb.engine.errors import FailedPreconditionError
from facedb.models.errors import ModelSpecError, ModelUnavailableError
from facedb.models.registry import REGISTRY
from facedb.models.spec import ModelSpec
from facedb.models.store import find_local, model_dirs, scan
from facedb.storage.records import GalleryInfo, ModelInfo
from facedb.vision.embed import Embedder, load_embedder
from facedb.vision.pipeline import FacePipeline

log = logging.getLogger(__name__)


class Recognizers:
    """SHA-256 → the pipeline that embeds with that model (thread-safe; loads once)."""

    def __init__(self, primary: FacePipeline, threads: int | None = None) -> None:
        self.primary = primary
        self.model = model_info(primary.embedder)
        self._threads = threads
        self._pipelines: dict[str, FacePipeline] = {self.model.sha256: primary}
        self._lock = threading.Lock()  # one loader at a time: a model loads once

    def loaded(self) -> list[ModelInfo]:
        with self._lock:
            return [model_info(p.embedder) for p in self._pipelines.values()]

    def for_sha256(self, sha256: str, name: str = "") -> FacePipeline:
        """The pipeline of that model, loaded from the model store on first use;
        FailedPreconditionError (with what to do) when no local file has that digest."""
        found = self._pipelines.get(sha256)
        if found is not None:
            return found
        with self._lock:
            found = self._pipelines.get(sha256)
            if found is None:
                found = self._load(sha256, name)
                self._pipelines[sha256] = found
            return found

    def add(self, embedder: Embedder) -> None:
        """Serve galleries of `embedder`'s model with it (a reindex loaded it already)."""
        with self._lock:
            if embedder.sha256 not in self._pipelines:
                self._pipelines[embedder.sha256] = self._pipeline(embedder)

    def for_gallery(self, info: GalleryInfo) -> FacePipeline:
        """The pipeline of the gallery's model (its SQL row: what new faces are stored as)."""
        try:
            pipeline = self.for_sha256(info.model_sha256, info.model_name)
        except FailedPreconditionError as error:
            raise FailedPreconditionError(
                f"gallery {info.name!r} holds embeddings of {info.model_name} "
                f"(sha256 {info.model_sha256[:12]}…, dim {info.dim}) but this server runs "
                f"{self.model.name} (sha256 {self.model.sha256[:12]}…, dim {self.model.dim}) "
                f"and {error}; put that file in a FACEDB_MODEL_DIR directory, start the "
                "server with that recognizer, or reindex the gallery"
            ) from error
        if int(pipeline.embedder.dim) != info.dim:
            raise FailedPreconditionError(
                f"gallery {info.name!r} has dimension {info.dim} but its model "
                f"{info.model_name} gives {pipeline.embedder.dim}"
            )
        return pipeline

    def _load(self, sha256: str, name: str) -> FacePipeline:
        spec = locate(sha256, self.primary.embedder.spec.family)
        if spec is None:
            raise FailedPreconditionError(
                f"no file with sha256 {sha256[:12]}… ({name or 'unknown model'}) was found "
                f"in the model directories {', '.join(str(d) for d in model_dirs())}"
            )
        try:
            # The file with that digest exactly, never its float32 rewrite (another SHA-256).
            embedder = load_embedder(spec, threads=self._threads, graph="int8")
        except (ModelSpecError, ModelUnavailableError, ValueError, OSError) as error:
            raise FailedPreconditionError(f"{spec.path} could not be loaded: {error}") from error
        log.info("loaded recognizer %s (%s) beside %s", spec.name, spec.path, self.model.name)
        return self._pipeline(embedder)

    def _pipeline(self, embedder: Embedder) -> FacePipeline:
        """The first pipeline's detector and gates with another recognizer (no batcher)."""
        primary = self.primary
        return FacePipeline(primary.detector, embedder, primary.gates, primary.stage)


def locate(sha256: str, fallback_family: str) -> ModelSpec | None:
    """A local model file with this SHA-256, as a spec: a registry model's, else any
    `.onnx` file in the model directories (of `fallback_family`)."""
    entry = next((e for e in REGISTRY.values() if e.sha256 == sha256), None)
    if entry is not None:
        path = find_local(entry)
        if path is None:
            return None
        return ModelSpec(entry.family, path, entry.name, None, dict(entry.options))
    for directory in model_dirs():
        found: Path | None = scan(directory).get(sha256)
        if found is not None:
            return ModelSpec(fallback_family, found.resolve(), found.stem)
    return None


def model_info(embedder: Embedder) -> ModelInfo:
    return ModelInfo(embedder.name, embedder.sha256, int(embedder.dim))
