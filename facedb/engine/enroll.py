"""Enroll: decode → detect → select → gates → align → embed → duplicate check → write.

Every image is decoded and analysed before anything is written; the duplicate check and
the write are one catalog call (`Catalog.enroll`: one SQL transaction under the gallery's
lock, which holds across server processes), so a failed request changes nothing. A refused
image (no face, a failed gate, a face that already belongs to another identity) is an
outcome.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from facedb.engine.core import EngineCore
from facedb.engine.errors import InvalidRequestError, require, store_errors
from facedb.engine.policy import GalleryPolicy
from facedb.engine.results import Box, EnrollItem, EnrollResult, ImageOutcome
from facedb.engine.telemetry import deadline_scope
from facedb.storage.records import DuplicateOf, EnrollRequest, GalleryInfo, NewFace
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
            return self._write(info, policy, item, embedded, refused)

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

    def _write(
        self,
        info: GalleryInfo,
        policy: GalleryPolicy,
        item: EnrollItem,
        embedded: list[_Embedded],
        refused: dict[int, ImageOutcome],
    ) -> EnrollResult:
        """One catalog call: identity lookup, duplicate check and write, atomic across
        processes (the catalog holds the gallery's lock and one SQL transaction)."""
        request = EnrollRequest(
            external_id=item.external_id,
            faces=[self._new_face(e, info.store_crops) for e in embedded],
            display_name=item.display_name or None,
            metadata=item.metadata or None,
            duplicate_threshold=None if item.allow_duplicate else policy.duplicate,
            duplicate_k=DUPLICATE_SEARCH_K,
        )
        stage = self.core.telemetry.stage("write") if embedded else nullcontext()
        with stage, store_errors():
            written = self.core.catalog.enroll(item.gallery, request)
        outcomes = dict(refused)
        for face, face_id, duplicate in zip(
            embedded, written.face_ids, written.duplicates, strict=True
        ):
            outcomes[face.index] = self._outcome(face, face_id, duplicate, policy.duplicate)
        ordered = [outcomes[index] for index in range(len(item.images))]
        return EnrollResult(item.external_id, written.created, written.identity, ordered)

    def _outcome(
        self,
        embedded: _Embedded,
        face_id: int | None,
        duplicate: DuplicateOf | None,
        threshold: float,
    ) -> ImageOutcome:
        if face_id is not None:
            return _accepted(embedded, face_id)
        if duplicate is None:  # the catalog writes every face it does not refuse
            raise RuntimeError(f"image {embedded.index}: neither written nor refused")
        self.core.telemetry.rejection(Reason.DUPLICATE)
        return _duplicate(embedded.index, duplicate.external_id, duplicate.score, threshold)

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
