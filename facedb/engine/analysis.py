"""Analyze (faces and their attributes), SearchFaces and ClusterFaces.

- Analyze: decode → detect → align → the search gates (quality, liveness, and OCCLUDED /
  EYES_CLOSED when such models run) → the attributes asked for by name
  (`facedb.vision.analysis.FaceAnalyzer`). Nothing is embedded or stored. At most
  `MAX_ANALYZED_FACES` faces, the best detections.
- SearchFaces: the enrolled faces nearest an enrolled face (itself left out) or a raw
  embedding of the loaded model, at or above a threshold (the gallery's identify
  threshold unless given), best first; optionally only faces whose stored attributes
  match filters (facedb.engine.filters, post-filtering).
- ClusterFaces: gallery faces (listed, or all of them) or raw embeddings grouped into
  people by `facedb.clustering` (mutual k-NN graph + connected components).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facedb.clustering import ClusterConfig, cluster_faces, default_threshold
from facedb.engine.core import EngineCore
from facedb.engine.errors import (
    FailedPreconditionError,
    InvalidRequestError,
    NotFoundEngineError,
    check_min_sequence,
    require,
    store_errors,
)
from facedb.engine.filters import AttributeFilter, checked_filters
from facedb.engine.results import Box
from facedb.engine.telemetry import deadline_scope
from facedb.vision.align import align_faces
from facedb.vision.analysis import AttributeRequestError, FaceAnalyzer, parse_attributes
from facedb.vision.gates import FaceAssessment, GateConfigError, Rejection
from facedb.vision.types import Face

MAX_ANALYZED_FACES = 64  # bounds one Analyze request's model runs
DEFAULT_SEARCH_K = 10
MAX_SEARCH_K = 1000
MAX_CLUSTER_FACES = 10_000  # exact k-NN is O(N^2 d): ~5e10 multiply-adds at 10k x 512
DEFAULT_NEIGHBOURS = 10


@dataclass(frozen=True)
class AnalyzedFaceResult:
    box: Box  # original-image pixels
    detection_score: float
    landmarks: list[tuple[float, float]]  # the detector's 5 points, original pixels
    quality: dict[str, float]
    liveness: float | None
    rejection: Rejection | None
    attributes: dict[str, Any] = field(default_factory=dict)  # FaceAttributes.to_dict()


@dataclass(frozen=True)
class AnalyzeResult:
    faces: list[AnalyzedFaceResult]
    attributes: tuple[str, ...]


@dataclass(frozen=True)
class FaceMatch:
    face_id: int
    external_id: str
    score: float


@dataclass(frozen=True)
class SearchFacesResult:
    matches: list[FaceMatch]
    threshold: float


@dataclass(frozen=True)
class ClusterResult:
    clusters: list[list[int]]  # face ids (gallery) or positions (raw embeddings)
    threshold: float


class FaceAnalysis:
    """The Analyze, SearchFaces and ClusterFaces use cases."""

    def __init__(self, core: EngineCore, analyzer: FaceAnalyzer | None) -> None:
        self.core = core
        self.analyzer = analyzer or FaceAnalyzer({})

    # ---- Analyze --------------------------------------------------------------------------

    def analyze(
        self,
        image: bytes,
        attributes: Sequence[str] = (),
        *,
        gallery: str = "",
        timeout: float | None = None,
    ) -> AnalyzeResult:
        names = self._attributes(attributes)
        with deadline_scope(timeout):
            if gallery:
                policy = self.core.policies.for_gallery(self.core.usable_gallery(gallery))
            else:
                policy = self.core.policies.without_gallery(self.core.model.sha256)
            decoded = self.core.decode(image, None)
            pixels = decoded.pixels
            with self.core.telemetry.stage("detect"):
                faces = self.core.pipeline.detector.detect(pixels)[:MAX_ANALYZED_FACES]
            assessments = self._assess(pixels, faces, policy.policies.search)
            with self.core.telemetry.stage("analyze"):
                measured = self.analyzer.analyze(pixels, faces, names)
        results = []
        for face, assessment, attrs in zip(faces, assessments, measured, strict=True):
            results.append(_face_result(face, decoded.scale, assessment, attrs.to_dict()))
        return AnalyzeResult(results, names)

    def _attributes(self, attributes: Sequence[str]) -> tuple[str, ...]:
        return checked_attributes(self.analyzer, attributes)

    def _assess(self, pixels: np.ndarray, faces: list[Face], policy: Any) -> list[Any]:
        gates = self.core.pipeline.gates
        if gates is None or not faces:
            return [None] * len(faces)
        crops = align_faces(pixels, [face.landmarks for face in faces])
        try:
            with self.core.telemetry.stage("gates"):
                return list(gates.assess_batch(pixels, faces, crops, policy))
        except GateConfigError as error:
            raise FailedPreconditionError(str(error)) from error

    # ---- SearchFaces ----------------------------------------------------------------------

    def search_faces(
        self,
        gallery: str,
        *,
        face_id: int | None = None,
        embedding: Sequence[float] | None = None,
        top_k: int = 0,
        threshold: float | None = None,
        min_sequence: int = 0,
        timeout: float | None = None,
        filters: Sequence[AttributeFilter] = (),
    ) -> SearchFacesResult:
        if (face_id is None) == (embedding is None):
            raise InvalidRequestError("give exactly one query: face_id or embedding")
        check_min_sequence(min_sequence)
        top_k = _bounded("top_k", top_k, DEFAULT_SEARCH_K, MAX_SEARCH_K)
        info = self.core.usable_gallery(gallery)
        checked = checked_filters(info, filters)
        policy = self.core.policies.for_gallery(info)
        limit = policy.decision_threshold("identify", threshold, None)
        if face_id is not None:
            vector = self._stored_embeddings(gallery, [int(face_id)])[1]
            if len(vector) == 0:
                raise NotFoundEngineError(f"face {face_id} is not in gallery {gallery!r}")
            query = vector[:1]
        else:
            query = self._raw_embeddings([embedding or []])
        with deadline_scope(timeout):
            self.core.wait_for_sequence(gallery, min_sequence)
        k = top_k + (face_id is not None)
        hits = self.core.filtered_search(gallery, query, k, checked)[0]
        matches = [
            FaceMatch(h.face_id, h.external_id, float(h.score))
            for h in hits
            if h.face_id != face_id and h.score >= limit
        ][:top_k]
        return SearchFacesResult(matches, limit)

    # ---- ClusterFaces ---------------------------------------------------------------------

    def cluster_faces(
        self,
        *,
        gallery: str = "",
        face_ids: Sequence[int] = (),
        embeddings: Sequence[Sequence[float]] = (),
        threshold: float | None = None,
        neighbours: int = 0,
    ) -> ClusterResult:
        if gallery and embeddings:
            raise InvalidRequestError("give a gallery (and face_ids) or embeddings, not both")
        if not gallery and face_ids:
            raise InvalidRequestError("face_ids need a gallery")
        if not gallery and not embeddings:
            raise InvalidRequestError("nothing to cluster: give a gallery or embeddings")
        k = _bounded("neighbours", neighbours, DEFAULT_NEIGHBOURS, 1000)
        model_sha256 = self.core.model.sha256
        if gallery:
            model_sha256 = self.core.usable_gallery(gallery).model_sha256
            ids, vectors = self._stored_embeddings(gallery, list(face_ids) or None)
            missing = sorted(set(face_ids) - set(ids.tolist()))
            if missing:
                raise NotFoundEngineError(
                    f"face(s) {', '.join(map(str, missing[:10]))} not in gallery {gallery!r}"
                )
        else:
            vectors = self._raw_embeddings(embeddings)
            ids = np.arange(len(vectors))
        if threshold is None:
            threshold = default_threshold(model_sha256, len(vectors))
        try:
            config = ClusterConfig(float(threshold), k)
        except ValueError as error:
            raise InvalidRequestError(str(error)) from error
        with self.core.telemetry.stage("cluster"):
            groups = cluster_faces(vectors, config)
        return ClusterResult([[int(ids[i]) for i in g] for g in groups], config.threshold)

    # ---- helpers --------------------------------------------------------------------------

    def _stored_embeddings(
        self, gallery: str, face_ids: list[int] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        require(gallery, "gallery")
        if face_ids is not None and len(face_ids) > MAX_CLUSTER_FACES:
            raise InvalidRequestError(f"at most {MAX_CLUSTER_FACES:,} faces per request")
        with store_errors():
            too_many = self.core.catalog.get_gallery(gallery).face_count > MAX_CLUSTER_FACES
            if face_ids is None and too_many:
                raise InvalidRequestError(
                    f"gallery {gallery!r} has more than {MAX_CLUSTER_FACES:,} faces: "
                    "list the face_ids to cluster"
                )
            return self.core.catalog.face_embeddings(gallery, face_ids)

    def _raw_embeddings(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        if len(rows) > MAX_CLUSTER_FACES:
            raise InvalidRequestError(f"at most {MAX_CLUSTER_FACES:,} embeddings per request")
        dim = self.core.model.dim
        bad = [i for i, row in enumerate(rows) if len(row) != dim]
        if bad:
            raise InvalidRequestError(
                f"embedding {bad[0]} has {len(rows[bad[0]])} values; the loaded model "
                f"{self.core.model.name} gives {dim}"
            )
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(rows), dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.isfinite(vectors).all() or (norms == 0).any():
            raise InvalidRequestError("embeddings must be finite and non-zero")
        return vectors / norms


def checked_attributes(analyzer: FaceAnalyzer, attributes: Sequence[str]) -> tuple[str, ...]:
    """Validated names: unknown → INVALID_ARGUMENT; model not run → FAILED_PRECONDITION."""
    try:
        names = parse_attributes(attributes)
    except AttributeRequestError as error:
        raise InvalidRequestError(str(error)) from error
    try:
        analyzer.kinds_for(names)
    except AttributeRequestError as error:
        running = ", ".join(sorted(analyzer.models)) or "none"
        raise FailedPreconditionError(f"{error}; this server runs: {running}") from error
    return names


def measured_attributes(
    analyzer: FaceAnalyzer,
    pixels: np.ndarray,
    faces: Sequence[Face],
    names: Sequence[str],
    scale: float,
) -> list[dict[str, Any]]:
    """Each face's asked attributes as JSON-ready dicts, 106 points in original pixels."""
    if not names or not faces:
        return [{} for _ in faces]
    return [_scaled_attributes(r.to_dict(), scale) for r in analyzer.analyze(pixels, faces, names)]


def _bounded(name: str, value: int, default: int, maximum: int) -> int:
    if value < 0 or value > maximum:
        raise InvalidRequestError(f"{name} must be between 0 and {maximum}, got {value}")
    return value or default


def _face_result(
    face: Face, scale: float, assessment: FaceAssessment | None, attributes: dict[str, Any]
) -> AnalyzedFaceResult:
    original = face.scaled(1.0 / scale)
    box = original.box
    quality: dict[str, float] = {}
    if assessment is not None:
        quality = {k: float(v) for k, v in assessment.quality.to_dict().items() if v is not None}
    return AnalyzedFaceResult(
        box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        detection_score=float(face.score),
        landmarks=[(float(x), float(y)) for x, y in original.landmarks],
        quality=quality,
        liveness=None if assessment is None else assessment.liveness,
        rejection=None if assessment is None else assessment.rejection,
        attributes=_scaled_attributes(attributes, scale),
    )


def _scaled_attributes(attributes: dict[str, Any], scale: float) -> dict[str, Any]:
    """106 landmarks back to original-image pixels when the image was downscaled."""
    points = (attributes.get("landmarks_106") or {}).get("points")
    if not points or scale == 1.0:
        return attributes
    scaled = [[x / scale, y / scale] for x, y in points]
    return {**attributes, "landmarks_106": {"points": scaled}}
