"""Identify (1:N) and verify (1:1).

Identify: decode → detect → gates → embed → search → best face per identity → threshold.
Verify: the probe's largest face against a second image's, or against an enrolled
identity's own stored embeddings (never a gallery search: its cost must not grow with
the gallery).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from facedb.engine.analysis import checked_attributes, measured_attributes
from facedb.engine.core import EngineCore
from facedb.engine.enroll import face_box
from facedb.engine.errors import (
    InvalidRequestError,
    UnavailableError,
    check_min_sequence,
    require,
    store_errors,
)
from facedb.engine.filters import AttributeFilter, checked_filters
from facedb.engine.policy import GalleryPolicy
from facedb.engine.results import Candidate, IdentifyResult, ProbeResult, VerifyResult
from facedb.engine.telemetry import deadline_scope
from facedb.storage.errors import ModelSwitchedError
from facedb.storage.records import GalleryInfo, Hit
from facedb.vision.analysis import FaceAnalyzer
from facedb.vision.gates import Rejection
from facedb.vision.image import DecodedImage
from facedb.vision.pipeline import Analysis, AnalyzedFace, FacePipeline, Selection

DEFAULT_TOP_K = 5
MAX_TOP_K = 100
# Hits fetched per requested candidate: an identity with several faces takes several hits.
SEARCH_OVERFETCH = 4
# Reads of an identity's faces before giving up on one that changes under every read.
READ_ATTEMPTS = 3
# Embeddings of a probe: a second one when the gallery switched models between the first
# embedding and the search (a live reindex); a third switch that fast is refused (retry).
PROBE_ATTEMPTS = 2


class Identification:
    """The identify use case."""

    def __init__(self, core: EngineCore, analyzer: FaceAnalyzer | None = None) -> None:
        self.core = core
        self.analyzer = analyzer or FaceAnalyzer({})

    def identify(
        self,
        gallery: str,
        image: bytes,
        *,
        top_k: int = 0,
        threshold: float | None = None,
        target_fpir: float | None = None,
        all_faces: bool = False,
        timeout: float | None = None,
        attributes: Sequence[str] = (),
        min_sequence: int = 0,
        filters: Sequence[AttributeFilter] = (),
    ) -> IdentifyResult:
        """Candidates per probe face, best identity first; an empty list is "no match".
        With `attributes`, each probe face also carries those (facedb.engine.analysis);
        with `filters`, only faces whose stored attributes match them all are candidates
        (facedb.engine.filters). With `min_sequence`, the search waits until the index has
        applied that change."""
        top_k = _top_k(top_k)
        check_min_sequence(min_sequence)
        names = checked_attributes(self.analyzer, attributes) if attributes else ()
        with deadline_scope(timeout):
            info = self.core.usable_gallery(gallery)
            checked = checked_filters(info, filters)
            policy = self.core.policies.for_gallery(info)
            limit = policy.decision_threshold("identify", threshold, target_fpir)
            decoded = self.core.decode(image, None)
            select: Selection = "all" if all_faces else "largest"
            analysis, probes = self._search_probes(
                info, decoded, policy, select, min_sequence, (top_k, limit, checked)
            )
            if names:
                faces = [f.face for f in analysis.faces]
                with self.core.telemetry.stage("analyze"):
                    measured = measured_attributes(
                        self.analyzer, decoded.pixels, faces, names, decoded.scale
                    )
                probes = [replace(p, attributes=m) for p, m in zip(probes, measured, strict=True)]
        return IdentifyResult(probes, limit)

    def _search_probes(
        self,
        info: GalleryInfo,
        decoded: DecodedImage,
        policy: GalleryPolicy,
        select: Selection,
        min_sequence: int,
        search: tuple[int, float, tuple[AttributeFilter, ...]],
    ) -> tuple[Analysis, list[ProbeResult]]:
        """Probes embedded with the model of the gallery's live index, searched; embedded
        again when the index switched to another model in between (a live reindex)."""
        top_k, limit, filters = search
        for attempt in range(PROBE_ATTEMPTS):
            pipeline = self.core.probe_pipeline(info)
            analysis = self.core.analyze(decoded.pixels, policy.policies.search, select, pipeline)
            if attempt == 0:  # after the analysis: a head start
                self.core.wait_for_sequence(info.name, min_sequence)
            sha256 = pipeline.embedder.sha256
            try:
                probes = self._probes(
                    info.name, analysis, decoded.scale, top_k, limit, filters, sha256
                )
            except ModelSwitchedError:
                continue
            return analysis, probes
        raise UnavailableError(f"gallery {info.name!r} switched models during the search; retry")

    def _probes(
        self,
        gallery: str,
        analysis: Analysis,
        scale: float,
        top_k: int,
        limit: float,
        filters: tuple[AttributeFilter, ...] = (),
        model_sha256: str | None = None,
    ) -> list[ProbeResult]:
        vectors = {id(f): f.embedding for f in analysis.faces if f.embedding is not None}
        rows: list[list[Hit]] = []
        if vectors:
            matrix = np.stack(list(vectors.values()))
            k = top_k * SEARCH_OVERFETCH
            rows = self.core.filtered_search(gallery, matrix, k, filters, model_sha256)
        hits = dict(zip(vectors, rows, strict=True))
        results = []
        for analyzed in analysis.faces:
            if analyzed.rejection is not None:
                self.core.telemetry.rejection(analyzed.rejection.reason)
            candidates = best_per_identity(hits.get(id(analyzed), []), limit)[:top_k]
            box = face_box(analyzed, scale)
            score = float(analyzed.face.score)
            results.append(ProbeResult(box, score, candidates, analyzed.rejection))
        return results


class Verification:
    """The verify use case."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core

    def verify(
        self,
        image: bytes,
        *,
        reference_image: bytes | None = None,
        gallery: str = "",
        external_id: str = "",
        threshold: float | None = None,
        target_far: float | None = None,
        timeout: float | None = None,
        min_sequence: int = 0,
    ) -> VerifyResult:
        """Is the largest face of `image` the same person as the reference? With
        `min_sequence`, the gallery's index must have applied that change first."""
        check_min_sequence(min_sequence)
        if min_sequence and not gallery:
            raise InvalidRequestError("min_sequence needs a gallery")
        if (reference_image is None) == (not external_id):
            raise InvalidRequestError("give exactly one reference: reference_image or external_id")
        if external_id and not gallery:
            raise InvalidRequestError("external_id needs a gallery")
        with deadline_scope(timeout):
            policy = self._policy(gallery)
            limit = policy.decision_threshold("verify", threshold, target_far)
            pipeline = self._pipeline(gallery)
            probe = self._largest_face(image, policy, pipeline)
            if gallery:
                self.core.wait_for_sequence(gallery, min_sequence)
            if reference_image is not None:
                reference = self._largest_face(reference_image, policy, pipeline)
                return _compare_faces(probe, reference, limit)
            return self._compare_identity(probe, gallery, external_id, limit)

    def _policy(self, gallery: str) -> GalleryPolicy:
        if not gallery:
            return self.core.policies.without_gallery(self.core.model.sha256)
        return self.core.policies.for_gallery(self.core.usable_gallery(gallery))

    def _pipeline(self, gallery: str) -> FacePipeline | None:
        """Probes compared with an identity's stored embeddings: the gallery row's model."""
        if not gallery:
            return None
        with store_errors():
            return self.core.writer_pipeline(self.core.catalog.get_gallery(gallery))

    def _compare_identity(
        self, probe: _Probe, gallery: str, external_id: str, limit: float
    ) -> VerifyResult:
        require(external_id, "external_id")
        with self.core.telemetry.stage("compare"):  # NOT_FOUND before a refused probe
            face_ids, stored = self._stored_faces(gallery, external_id)
        if isinstance(probe, Rejection):
            return VerifyResult(0.0, False, limit, rejection=probe)
        box = face_box(probe.face, probe.scale)
        if not face_ids:
            return VerifyResult(0.0, False, limit, probe_box=box)
        scores = stored @ probe.embedding
        best = int(np.argmax(scores))
        score = float(scores[best])
        return VerifyResult(
            score, score >= limit, limit, probe_box=box, reference_face_id=face_ids[best]
        )

    def _stored_faces(self, gallery: str, external_id: str) -> tuple[tuple[int, ...], np.ndarray]:
        """The identity's face ids and their stored embeddings, row for row (both in face id
        order; read again if a write to the identity came between the two reads)."""
        for _ in range(READ_ATTEMPTS):
            with store_errors():
                vectors = self.core.catalog.identity_embeddings(gallery, external_id)
                face_ids = self.core.catalog.get_identity(gallery, external_id).face_ids
            if len(face_ids) == len(vectors):
                return face_ids, np.asarray(vectors, np.float32)
        raise RuntimeError(f"identity {external_id!r} kept changing while it was read")

    def _largest_face(
        self, image: bytes, policy: GalleryPolicy, pipeline: FacePipeline | None
    ) -> _Probe:
        decoded = self.core.decode(image, None)
        search = policy.policies.search
        analysis = self.core.analyze(decoded.pixels, search, "largest", pipeline)
        if analysis.rejection is not None:
            self.core.telemetry.rejection(analysis.rejection.reason)
            return analysis.rejection
        return _Face.of(analysis.accepted[0], decoded.scale)


@dataclass(frozen=True)
class _Face:
    """A probe's largest face, embedded."""

    face: AnalyzedFace
    embedding: np.ndarray
    scale: float  # decoded pixels per original pixel

    @staticmethod
    def of(face: AnalyzedFace, scale: float) -> _Face:
        assert face.embedding is not None  # accepted faces are embedded
        return _Face(face, face.embedding, scale)


_Probe = _Face | Rejection


def _compare_faces(probe: _Probe, reference: _Probe, limit: float) -> VerifyResult:
    if isinstance(probe, Rejection):
        return VerifyResult(0.0, False, limit, rejection=probe)
    if isinstance(reference, Rejection):
        return VerifyResult(0.0, False, limit, rejection=reference)
    score = float(np.dot(probe.embedding, reference.embedding))
    return VerifyResult(
        score,
        score >= limit,
        limit,
        probe_box=face_box(probe.face, probe.scale),
        reference_box=face_box(reference.face, reference.scale),
    )


def best_per_identity(hits: Sequence[Hit], threshold: float) -> list[Candidate]:
    """Each identity once, with its best face's score, best first, at or above threshold."""
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.score >= threshold and (
            hit.external_id not in best or hit.score > best[hit.external_id].score
        ):
            best[hit.external_id] = hit
    ranked = sorted(best.values(), key=lambda h: h.score, reverse=True)
    return [
        Candidate(h.external_id, h.display_name, float(h.score), h.face_id, dict(h.metadata or {}))
        for h in ranked
    ]


def _top_k(top_k: int) -> int:
    if top_k < 0:
        raise InvalidRequestError("top_k must not be negative")
    return min(top_k or DEFAULT_TOP_K, MAX_TOP_K)
