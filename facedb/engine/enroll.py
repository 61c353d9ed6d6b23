"""Enroll: decode → detect → select → gates → align → embed → duplicate check → write.

Every image is analysed before anything is written; the duplicate check and the write are
one catalog call (`Catalog.enroll`: one SQL transaction under the gallery's lock, which
holds across server processes), so a failed request changes nothing. A refused image
(unreadable, no face, a failed gate, a face that already belongs to another identity) is
an outcome; the identity's other images still count.

A gallery created with `stored_attributes` (age, gender, ...) gets them measured on each
accepted face while its image is decoded (`facedb.vision.analysis.FaceAnalyzer`) and stored
with the face, for audit; they come back in that image's outcome (and in a replay's, read
from the stored faces, so a deleted face's attributes are gone there too).

Images are decoded one at a time and let go once analysed, so a request costs one image's
memory whatever its count; the count and the total decoded pixels are capped
(`max_images_per_request`, `max_request_pixels`) and the deadline is checked between images.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from facedb.engine.analysis import checked_attributes, measured_attributes
from facedb.engine.core import EngineCore, image_label
from facedb.engine.errors import (
    FailedPreconditionError,
    InvalidRequestError,
    NotFoundEngineError,
    require,
    store_errors,
)
from facedb.engine.policy import GalleryPolicy
from facedb.engine.receipts import outcomes_of, receipt_of
from facedb.engine.results import Box, EnrollItem, EnrollResult, ImageOutcome
from facedb.engine.telemetry import deadline_scope
from facedb.engine.validation import (
    check_display_name,
    check_image_names,
    check_metadata,
    check_request_id,
)
from facedb.storage.records import (
    DuplicateOf,
    EnrollOutcome,
    EnrollRequest,
    GalleryInfo,
    NewFace,
)
from facedb.vision.analysis import FaceAnalyzer
from facedb.vision.crops import encode_crop_png
from facedb.vision.gates import FaceAssessment, GatePolicy, Reason, Rejection
from facedb.vision.image import DecodedImage
from facedb.vision.pipeline import AnalyzedFace, FacePipeline, Selection

# Nearest faces looked at for a duplicate: enough to see past the identity's own faces.
DUPLICATE_SEARCH_K = 16


@dataclass(frozen=True)
class _Embedded:
    """One enrollment image whose face was accepted and embedded, before the write."""

    index: int
    image_name: str
    source_sha256: str
    face: AnalyzedFace
    embedding: np.ndarray
    scale: float  # decoded pixels per original pixel
    attributes: dict[str, Any] | None  # the gallery's stored attributes; None: it has none


class Enrollment:
    """The enroll use case."""

    def __init__(self, core: EngineCore, analyzer: FaceAnalyzer | None = None) -> None:
        self.core = core
        self.analyzer = analyzer or FaceAnalyzer({})

    def enroll(self, item: EnrollItem, timeout: float | None = None) -> EnrollResult:
        """Enroll the accepted images of one identity (created if new); one outcome each."""
        self._check_request(item)
        with deadline_scope(timeout):
            replayed = self._replayed(item)
            if replayed is not None:
                return replayed  # a retry: answered from the first call's receipt
            info = self.core.usable_gallery(item.gallery)
            policy = self.core.policies.for_gallery(info)
            stored = self._stored_attributes(info)
            pipeline = self.core.writer_pipeline(info)
            refused, embedded = self._analyze_each(item, policy, stored, pipeline)
            return self._write(info, policy, item, embedded, refused)

    def _stored_attributes(self, info: GalleryInfo) -> tuple[str, ...]:
        """The gallery's stored attributes, checked before any image is looked at: a server
        without their models refuses the whole request rather than store faces without them."""
        try:
            return checked_attributes(self.analyzer, info.stored_attributes)
        except (InvalidRequestError, FailedPreconditionError) as error:
            raise FailedPreconditionError(
                f"gallery {info.name!r} stores {', '.join(info.stored_attributes)} with each "
                f"face, and this server cannot measure them: {error}"
            ) from error

    def _check_request(self, item: EnrollItem) -> None:
        require(item.external_id, "external_id")
        if not item.images:
            raise InvalidRequestError("no images: send at least one image to enroll")
        limit = self.core.settings.max_images_per_request
        if len(item.images) > limit:
            raise InvalidRequestError(
                f"{len(item.images)} images in one request; the limit is {limit} "
                "(max_images_per_request): split the identity's photos over several calls"
            )
        check_display_name(item.display_name)
        check_metadata(item.metadata)
        check_image_names(item.image_names, len(item.images))
        check_request_id(item.request_id)

    def _analyze_each(
        self,
        item: EnrollItem,
        policy: GalleryPolicy,
        stored: tuple[str, ...],
        pipeline: FacePipeline,
    ) -> tuple[dict[int, ImageOutcome], list[_Embedded]]:
        select: Selection = "largest" if item.allow_multiple_faces else "single"
        budget = PixelBudget(self.core.settings.max_request_pixels)
        refused: dict[int, ImageOutcome] = {}
        embedded: list[_Embedded] = []
        for index, data in enumerate(item.images):
            name = item.image_names[index] if item.image_names else ""
            try:
                image = self.core.decode(data, index, name)
            except InvalidRequestError as error:  # this image's problem, not the request's
                refused[index] = _invalid_image(index, name, str(error))
                continue
            budget.spend(image.pixels, image_label(index, name))
            gates = policy.policies.enrollment
            result = self._analyze(index, name, data, image, gates, select, pipeline)
            if stored and isinstance(result, _Embedded):
                result = self._with_attributes(result, image, stored)
            del image  # the pixels go before the next image is decoded
            if isinstance(result, ImageOutcome):
                refused[index] = result
            else:
                embedded.append(result)
        return refused, embedded

    def _analyze(
        self,
        index: int,
        name: str,
        data: bytes,
        image: DecodedImage,
        policy: GatePolicy | None,
        select: Selection,
        pipeline: FacePipeline,
    ) -> _Embedded | ImageOutcome:
        analysis = self.core.analyze(image.pixels, policy, select, pipeline)
        if analysis.rejection is not None:
            self.core.telemetry.rejection(analysis.rejection.reason)
            box = face_box(analysis.faces[0], image.scale) if analysis.faces else None
            return ImageOutcome(index, rejection=analysis.rejection, box=box, image_name=name)
        face = analysis.accepted[0]
        assert face.embedding is not None  # accepted faces are embedded
        digest = hashlib.sha256(data).hexdigest()
        return _Embedded(index, name, digest, face, face.embedding, image.scale, None)

    def _with_attributes(
        self, embedded: _Embedded, image: DecodedImage, names: tuple[str, ...]
    ) -> _Embedded:
        """The accepted face's stored attributes, measured while its pixels are at hand."""
        with self.core.telemetry.stage("analyze"):
            (measured,) = measured_attributes(
                self.analyzer, image.pixels, [embedded.face.face], names, image.scale
            )
        return replace(embedded, attributes=measured)

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
        threshold = policy.duplicate

        def ordered(written: EnrollOutcome) -> list[ImageOutcome]:
            outcomes = dict(refused)
            for face, face_id, duplicate in zip(
                embedded, written.face_ids, written.duplicates, strict=True
            ):
                outcomes[face.index] = _written(face, face_id, duplicate, threshold)
            return [outcomes[index] for index in range(len(item.images))]

        request = EnrollRequest(
            external_id=item.external_id,
            faces=[self._new_face(e, info) for e in embedded],
            display_name=item.display_name or None,
            metadata=item.metadata or None,
            duplicate_threshold=None if item.allow_duplicate else threshold,
            duplicate_k=DUPLICATE_SEARCH_K,
            request_id=item.request_id,
            receipt=lambda written: receipt_of(ordered(written)),
        )
        stage = self.core.telemetry.stage("write") if embedded else nullcontext()
        with stage, store_errors():
            written = self.core.catalog.enroll(item.gallery, request)
        if written.receipt is not None:  # another call with this request id got there first
            return self._replay(item, written)
        outcomes = ordered(written)
        for outcome in outcomes:
            if outcome.duplicate_of is not None:
                self.core.telemetry.rejection(Reason.DUPLICATE)
        return EnrollResult(
            item.external_id,
            written.created,
            written.identity,
            outcomes,
            sequence=written.sequence or 0,
        )

    def _replayed(self, item: EnrollItem) -> EnrollResult | None:
        if not item.request_id:
            return None
        probe = EnrollRequest(item.external_id, [], request_id=item.request_id)
        with store_errors():
            found = self.core.catalog.enrollment_receipt(item.gallery, probe)
        return None if found is None else self._replay(item, found)

    def _replay(self, item: EnrollItem, found: EnrollOutcome) -> EnrollResult:
        """The first call's outcomes; stored attributes are read back from the faces (the
        receipt keeps none, so that deleting a face deletes them everywhere)."""
        assert found.receipt is not None
        outcomes = [self._stored_on(item.gallery, o) for o in outcomes_of(found.receipt)]
        return EnrollResult(
            item.external_id,
            False,
            found.identity,
            outcomes,
            replayed=True,
            sequence=found.sequence or 0,
        )

    def _stored_on(self, gallery: str, outcome: ImageOutcome) -> ImageOutcome:
        if outcome.face_id is None:
            return outcome
        try:
            with store_errors():
                attributes = self.core.catalog.get_face(gallery, outcome.face_id).attributes
        except NotFoundEngineError:  # deleted since the first call
            return outcome
        return replace(outcome, attributes=attributes)

    def _new_face(self, embedded: _Embedded, info: GalleryInfo) -> NewFace:
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
            crop=encode_crop_png(analyzed.aligned) if info.store_crops else None,
            model_sha256=info.model_sha256,  # `writer_pipeline(info)` embedded it
            attributes=embedded.attributes,
        )


def _written(
    embedded: _Embedded, face_id: int | None, duplicate: DuplicateOf | None, threshold: float
) -> ImageOutcome:
    if face_id is not None:
        return _accepted(embedded, face_id)
    if duplicate is None:  # the catalog writes every face it does not refuse
        raise RuntimeError(f"image {embedded.index}: neither written nor refused")
    return _duplicate(embedded.index, duplicate.external_id, duplicate.score, threshold)


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
        box=face_box(embedded.face, embedded.scale),
        image_name=embedded.image_name,
        attributes=embedded.attributes,
    )


def _invalid_image(index: int, name: str, message: str) -> ImageOutcome:
    return ImageOutcome(
        index, rejection=Rejection(Reason.INVALID_IMAGE, 0.0, 0.0, message), image_name=name
    )


class PixelBudget:
    """The decoded pixels one request may spend, over all of its images."""

    def __init__(self, limit: int) -> None:
        self.limit, self.spent = limit, 0

    def spend(self, pixels: np.ndarray, label: str) -> None:
        self.spent += int(pixels.shape[0]) * int(pixels.shape[1])
        if self.spent > self.limit:
            raise InvalidRequestError(
                f"the images up to {label} decode to {self.spent / 1e6:.1f} megapixels; one "
                f"request may decode at most {self.limit / 1e6:.1f} (max_request_pixels)"
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
