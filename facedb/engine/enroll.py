"""Enroll: decode → detect → select → gates → align → embed → duplicate check → write.

Every image is decoded and analysed before anything is written, and the write is one
all-or-nothing catalog call, so a failed request changes nothing. A refused image (no
face, a failed gate, a face that already belongs to another identity) is an outcome.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from facedb.engine.core import EngineCore
from facedb.engine.errors import InvalidRequestError, require, store_errors
from facedb.engine.policy import GalleryPolicy
from facedb.engine.results import Box, EnrollItem, EnrollResult, ImageOutcome
from facedb.engine.telemetry import deadline_scope
from facedb.storage.errors import NotFoundError
from facedb.storage.records import GalleryInfo, IdentityInfo, NewFace
from facedb.vision.crops import encode_crop_png
from facedb.vision.gates import FaceAssessment, Reason, Rejection
from facedb.vision.pipeline import AnalyzedFace, Selection

# Nearest faces looked at for a duplicate: enough to see past the identity's own faces.
DUPLICATE_SEARCH_K = 16


@dataclass(frozen=True)
class _Embedded:
    """One enrollment image whose face was accepted and embedded, before the write."""

    index: int
    source_sha256: str
    face: AnalyzedFace
    embedding: np.ndarray
    scale: float  # decoded pixels per original pixel


class Enrollment:
    """The enroll use case."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core

    def enroll(self, item: EnrollItem, timeout: float | None = None) -> EnrollResult:
        """Enroll the accepted images of one identity (created if new); one outcome each."""
        require(item.external_id, "external_id")
        if not item.images:
            raise InvalidRequestError("no images: send at least one image to enroll")
        with deadline_scope(timeout):
            info = self.core.usable_gallery(item.gallery)
            decoded = [self.core.decode(data, index) for index, data in enumerate(item.images)]
            policy = self.core.policies.for_gallery(info)
            select: Selection = "largest" if item.allow_multiple_faces else "single"
            refused: dict[int, ImageOutcome] = {}
            embedded: list[_Embedded] = []
            for index, (data, image) in enumerate(zip(item.images, decoded, strict=True)):
                result = self._analyze(index, data, image.pixels, image.scale, policy, select)
                if isinstance(result, ImageOutcome):
                    refused[index] = result
                else:
                    embedded.append(result)
            with self.core.write_locks.held(item.gallery):
                return self._check_and_write(info, policy, item, embedded, refused)

    def _analyze(
        self,
        index: int,
        data: bytes,
        pixels: np.ndarray,
        scale: float,
        policy: GalleryPolicy,
        select: Selection,
    ) -> _Embedded | ImageOutcome:
        analysis = self.core.analyze(pixels, policy.policies.enrollment, select)
        if analysis.rejection is not None:
            self.core.telemetry.rejection(analysis.rejection.reason)
            return ImageOutcome(index, rejection=analysis.rejection)
        face = analysis.accepted[0]
        assert face.embedding is not None  # accepted faces are embedded
        digest = hashlib.sha256(data).hexdigest()
        return _Embedded(index, digest, face, face.embedding, scale)

    def _check_and_write(
        self,
        info: GalleryInfo,
        policy: GalleryPolicy,
        item: EnrollItem,
        embedded: list[_Embedded],
        refused: dict[int, ImageOutcome],
    ) -> EnrollResult:
        existing = self._find_identity(item.gallery, item.external_id)
        if not item.allow_duplicate and embedded:
            refused |= self._duplicates(item, embedded, policy.duplicate)
            embedded = [e for e in embedded if e.index not in refused]
        face_ids = self._write(info, item, existing, embedded) if embedded else []
        outcomes = dict(refused)
        for accepted, face_id in zip(embedded, face_ids, strict=True):
            outcomes[accepted.index] = _accepted(accepted, face_id)
        ordered = [outcomes[index] for index in range(len(item.images))]
        identity = self._find_identity(item.gallery, item.external_id) if face_ids else existing
        created = existing is None and bool(face_ids)
        return EnrollResult(item.external_id, created, identity, ordered)

    def _duplicates(
        self, item: EnrollItem, embedded: list[_Embedded], threshold: float
    ) -> dict[int, ImageOutcome]:
        """The images whose face is already another identity's, refused as DUPLICATE."""
        vectors = np.stack([e.embedding for e in embedded])
        hits = self.core.search(item.gallery, vectors, k=DUPLICATE_SEARCH_K)
        refused = {}
        for candidate, row in zip(embedded, hits, strict=True):
            other = next((h for h in row if h.external_id != item.external_id), None)
            if other is not None and other.score >= threshold:
                score = float(other.score)
                refused[candidate.index] = _duplicate(
                    candidate.index, other.external_id, score, threshold
                )
                self.core.telemetry.rejection(Reason.DUPLICATE)
        return refused

    def _write(
        self,
        info: GalleryInfo,
        item: EnrollItem,
        existing: IdentityInfo | None,
        embedded: list[_Embedded],
    ) -> list[int]:
        faces = [self._new_face(e, info.store_crops) for e in embedded]
        with self.core.telemetry.stage("write"), store_errors():
            return self.core.catalog.add_faces(
                item.gallery,
                item.external_id,
                faces,
                display_name=item.display_name or None,
                metadata=_merged(existing, item.metadata),
            )

    def _new_face(self, embedded: _Embedded, store_crops: bool) -> NewFace:
        analyzed = embedded.face
        face = analyzed.face.scaled(1.0 / embedded.scale)  # back to original-image pixels
        return NewFace(
            embedding=embedded.embedding,
            box=face_box(analyzed, embedded.scale),
            landmarks=face.landmarks.astype(float).tolist(),
            detector_score=float(face.score),
            quality=_quality_signals(analyzed.assessment),
            liveness_score=liveness_score(analyzed.assessment),
            source_sha256=embedded.source_sha256,
            crop=encode_crop_png(analyzed.aligned) if store_crops else None,
            model_sha256=self.core.model.sha256,
        )

    def _find_identity(self, gallery: str, external_id: str) -> IdentityInfo | None:
        try:
            return self.core.catalog.get_identity(gallery, external_id)
        except NotFoundError:
            return None


def face_box(face: AnalyzedFace, scale: float) -> Box:
    """The face's box in original-image pixels (the image may have been downscaled)."""
    box = face.face.scaled(1.0 / scale).box
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def liveness_score(assessment: FaceAssessment | None) -> float | None:
    return None if assessment is None else assessment.liveness


def _accepted(embedded: _Embedded, face_id: int) -> ImageOutcome:
    assessment = embedded.face.assessment
    return ImageOutcome(
        embedded.index,
        face_id=face_id,
        # The learned quality score, when the server runs a quality model.
        quality=None if assessment is None else assessment.quality.learned_quality,
        liveness=liveness_score(assessment),
    )


def _duplicate(index: int, owner: str, score: float, threshold: float) -> ImageOutcome:
    rejection = Rejection(
        Reason.DUPLICATE,
        score,
        threshold,
        f"this face already belongs to identity {owner!r} "
        f"(similarity {score:.3f} >= {threshold:.3f})",
    )
    return ImageOutcome(index, rejection=rejection, duplicate_of=owner)


def _quality_signals(assessment: FaceAssessment | None) -> dict[str, Any] | None:
    """Every measured signal, stored with the face (the gates may change; the facts don't)."""
    return None if assessment is None else assessment.quality.to_dict()


def _merged(
    existing: IdentityInfo | None, metadata: dict[str, Any] | None
) -> dict[str, Any] | None:
    if not metadata:
        return None if existing is None else dict(existing.metadata)
    return {**(existing.metadata if existing else {}), **metadata}
