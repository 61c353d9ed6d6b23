"""JSON shapes of the HTTP API (pydantic models, so /openapi.json is generated from them).

Field names are the protobuf field names of facedb.v1, so a gRPC and an HTTP client read
the same words. Engine results become these models here; requests carrying images are
validated by the same models whether they came as JSON (base64) or multipart uploads.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from facedb import engine as eng
from facedb.storage.api_keys import ApiKeyRecord
from facedb.storage.records import IdentityInfo, ModelInfo
from facedb.vision.gates import Rejection


def _image_bytes(value: Any) -> Any:
    """Base64 text (JSON) → bytes; bytes (a multipart upload) pass through."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                "not valid base64: send the image file's bytes base64-encoded"
            ) from None
    return value


# An image: base64 text in JSON bodies, a file part in multipart bodies.
ImageData = Annotated[
    bytes,
    BeforeValidator(_image_bytes),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]


# ------------------------------------------------------------------------ requests


class ThresholdsBody(BaseModel):
    """Cosine thresholds; unset or 0 means the model's calibrated default."""

    identify: float = 0.0
    verify: float = 0.0
    duplicate: float = 0.0


class GatePolicyBody(BaseModel):
    enrollment_overrides: dict[str, float] = Field(default_factory=dict)
    search_overrides: dict[str, float] = Field(default_factory=dict)
    enrollment_liveness: bool | None = None
    search_liveness: bool | None = None


class CreateGalleryBody(BaseModel):
    name: str
    embedding_model: str = ""
    thresholds: ThresholdsBody = Field(default_factory=ThresholdsBody)
    gate_policy: GatePolicyBody = Field(default_factory=GatePolicyBody)
    store_crops: bool = True


class UpdateIdentityBody(BaseModel):
    display_name: str | None = None  # unset: keep the current one
    metadata: dict[str, str] | None = None
    replace_metadata: bool = False  # true: metadata replaces the current map; false: merged


class EnrollBody(BaseModel):
    external_id: str
    images: list[ImageData] = Field(min_length=1)
    display_name: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    allow_multiple_faces: bool = False
    allow_duplicate: bool = False


class EnrollBatchBody(BaseModel):
    items: list[EnrollBody] = Field(min_length=1)


class IdentifyBody(BaseModel):
    image: ImageData
    top_k: int = 0  # 0: 5
    threshold: float | None = None
    target_fpir: float | None = None
    all_faces: bool = False


class VerifyBody(BaseModel):
    image: ImageData
    reference_image: ImageData | None = None
    gallery: str = ""
    external_id: str = ""
    threshold: float | None = None
    target_far: float | None = None


# ----------------------------------------------------------------------- responses


class ErrorDetail(BaseModel):
    code: int  # the HTTP status
    status: str  # the gRPC status name: NOT_FOUND, INVALID_ARGUMENT, …
    message: str
    reason: str | None = None  # a finer reason code when there is one (e.g. an image error)


class ErrorResponse(BaseModel):
    error: ErrorDetail


class EmbeddingModel(BaseModel):
    name: str
    sha256: str
    dim: int


class Thresholds(BaseModel):
    identify: float
    verify: float
    duplicate: float


class GatePolicy(BaseModel):
    enrollment_overrides: dict[str, float]
    search_overrides: dict[str, float]
    enrollment_liveness: bool | None
    search_liveness: bool | None


class Gallery(BaseModel):
    name: str
    model: EmbeddingModel
    thresholds: Thresholds  # effective values (defaults filled in)
    gate_policy: GatePolicy
    store_crops: bool
    identity_count: int
    face_count: int


class GalleryList(BaseModel):
    galleries: list[Gallery]


class RejectionOut(BaseModel):
    reason: str  # NO_FACE, FACE_TOO_SMALL, BLURRY, …, DUPLICATE
    value: float
    threshold: float
    message: str
    duplicate_of: str | None = None


class ImageOutcome(BaseModel):
    index: int
    accepted: bool
    face_id: int | None
    quality: float | None
    liveness: float | None
    rejection: RejectionOut | None


class Identity(BaseModel):
    external_id: str
    display_name: str | None
    metadata: dict[str, Any]
    face_ids: list[int]


class IdentityList(BaseModel):
    identities: list[Identity]
    next_page_token: str  # empty on the last page


class EnrollResponse(BaseModel):
    identity: Identity | None  # null when nothing was accepted for a new identity
    created: bool
    outcomes: list[ImageOutcome]


class EnrollItemResult(BaseModel):
    index: int
    external_id: str
    created: bool
    outcomes: list[ImageOutcome]
    error: ErrorDetail | None  # the whole item failed (e.g. an undecodable image)


class EnrollSummary(BaseModel):
    items: int
    identities_created: int
    images_accepted: int
    images_rejected: int
    items_failed: int
    rejections_by_reason: dict[str, int]


class EnrollBatchResponse(BaseModel):
    items: list[EnrollItemResult]
    summary: EnrollSummary


class Box(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float


class Candidate(BaseModel):
    external_id: str
    display_name: str | None
    score: float
    face_id: int
    metadata: dict[str, Any]


class ProbeFace(BaseModel):
    box: Box
    detection_score: float
    candidates: list[Candidate]  # ranked, at or above the threshold; empty: no match
    rejection: RejectionOut | None


class IdentifyResponse(BaseModel):
    faces: list[ProbeFace]
    threshold: float


class VerifyResponse(BaseModel):
    score: float
    match: bool
    threshold: float
    probe_box: Box | None
    reference_box: Box | None
    reference_face_id: int | None
    rejection: RejectionOut | None


class DeleteIdentityResponse(BaseModel):
    faces_removed: int


class GalleryStats(BaseModel):
    name: str
    identities: int
    faces: int
    model: EmbeddingModel


class Stats(BaseModel):
    galleries: list[GalleryStats]
    identities: int
    faces: int
    loaded_model: EmbeddingModel


class CreateApiKeyBody(BaseModel):
    name: str = ""
    role: str
    galleries: list[str] = Field(default_factory=lambda: ["*"])
    view_crops: bool | None = None  # unset: true for admin and enroll keys, false for search
    rate_limit: float = 0.0  # requests per second per server process; 0: no limit
    expires_in_seconds: int = 0  # 0: does not expire


class ApiKey(BaseModel):
    key_id: str
    name: str
    role: str
    galleries: list[str]
    view_crops: bool
    rate_limit: float | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyList(BaseModel):
    api_keys: list[ApiKey]


class IssuedApiKey(BaseModel):
    key: str  # the secret: shown once, stored only as its SHA-256
    api_key: ApiKey


class Caller(BaseModel):
    """The calling key's grants (never the key): what the console may offer."""

    key_id: str
    role: str
    galleries: list[str]
    view_crops: bool


class Health(BaseModel):
    status: str


# --------------------------------------------------------------- engine → response


def model_out(model: ModelInfo) -> EmbeddingModel:
    return EmbeddingModel(name=model.name, sha256=model.sha256, dim=model.dim)


def gallery_out(gallery: eng.Gallery) -> Gallery:
    gates = gallery.gates
    return Gallery(
        name=gallery.name,
        model=model_out(gallery.model),
        thresholds=Thresholds(
            identify=gallery.thresholds.identify or 0.0,
            verify=gallery.thresholds.verify or 0.0,
            duplicate=gallery.thresholds.duplicate or 0.0,
        ),
        gate_policy=GatePolicy(
            enrollment_overrides=dict(gates.enrollment),
            search_overrides=dict(gates.search),
            enrollment_liveness=gates.enrollment_liveness,
            search_liveness=gates.search_liveness,
        ),
        store_crops=gallery.store_crops,
        identity_count=gallery.identity_count,
        face_count=gallery.face_count,
    )


def rejection_out(rejection: Rejection | None, duplicate_of: str | None = None) -> Any:
    if rejection is None:
        return None
    return RejectionOut(
        reason=str(rejection.reason),
        value=rejection.value,
        threshold=rejection.threshold,
        message=rejection.message,
        duplicate_of=duplicate_of,
    )


def outcome_out(outcome: eng.ImageOutcome) -> ImageOutcome:
    return ImageOutcome(
        index=outcome.index,
        accepted=outcome.accepted,
        face_id=outcome.face_id,
        quality=outcome.quality,
        liveness=outcome.liveness,
        rejection=rejection_out(outcome.rejection, outcome.duplicate_of),
    )


def identity_out(identity: IdentityInfo) -> Identity:
    return Identity(
        external_id=identity.external_id,
        display_name=identity.display_name,
        metadata=dict(identity.metadata or {}),
        face_ids=list(identity.face_ids),
    )


def enroll_out(result: eng.EnrollResult) -> EnrollResponse:
    return EnrollResponse(
        identity=identity_out(result.identity) if result.identity else None,
        created=result.created,
        outcomes=[outcome_out(o) for o in result.outcomes],
    )


def box_out(box: tuple[float, float, float, float] | None) -> Box | None:
    return None if box is None else Box(x1=box[0], y1=box[1], x2=box[2], y2=box[3])


def identify_out(result: eng.IdentifyResult) -> IdentifyResponse:
    faces = [
        ProbeFace(
            box=Box(x1=p.box[0], y1=p.box[1], x2=p.box[2], y2=p.box[3]),
            detection_score=p.detection_score,
            candidates=[
                Candidate(
                    external_id=c.external_id,
                    display_name=c.display_name,
                    score=c.score,
                    face_id=c.face_id,
                    metadata=dict(c.metadata),
                )
                for c in p.candidates
            ],
            rejection=rejection_out(p.rejection),
        )
        for p in result.faces
    ]
    return IdentifyResponse(faces=faces, threshold=result.threshold)


def verify_out(result: eng.VerifyResult) -> VerifyResponse:
    return VerifyResponse(
        score=result.score,
        match=result.match,
        threshold=result.threshold,
        probe_box=box_out(result.probe_box),
        reference_box=box_out(result.reference_box),
        reference_face_id=result.reference_face_id,
        rejection=rejection_out(result.rejection),
    )


def stats_out(galleries: list[eng.GalleryStats], loaded: ModelInfo) -> Stats:
    return Stats(
        galleries=[
            GalleryStats(
                name=g.name, identities=g.identities, faces=g.faces, model=model_out(g.model)
            )
            for g in galleries
        ],
        identities=sum(g.identities for g in galleries),
        faces=sum(g.faces for g in galleries),
        loaded_model=model_out(loaded),
    )


def api_key_out(record: ApiKeyRecord) -> ApiKey:
    return ApiKey(
        key_id=record.key_id,
        name=record.name,
        role=record.role,
        galleries=list(record.galleries),
        view_crops=record.view_crops,
        rate_limit=record.rate_limit,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
    )


def issued_out(secret: str, record: ApiKeyRecord) -> IssuedApiKey:
    return IssuedApiKey(key=secret, api_key=api_key_out(record))


def summary_out(items: list[EnrollItemResult]) -> EnrollSummary:
    reasons: dict[str, int] = {}
    accepted = rejected = 0
    for item in items:
        for outcome in item.outcomes:
            if outcome.accepted:
                accepted += 1
            elif outcome.rejection is not None:
                rejected += 1
                reasons[outcome.rejection.reason] = reasons.get(outcome.rejection.reason, 0) + 1
    return EnrollSummary(
        items=len(items),
        identities_created=sum(i.created for i in items),
        images_accepted=accepted,
        images_rejected=rejected,
        items_failed=sum(i.error is not None for i in items),
        rejections_by_reason=reasons,
    )
