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
from facedb.engine.analysis import AnalyzeResult, ClusterResult, SearchFacesResult
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
    # Attribute names (as for /v1/analyze) measured and stored with every enrolled face;
    # unknown: 400; a model the server does not run: 409.
    stored_attributes: list[str] = Field(default_factory=list)


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
    # One name per image, or none; multipart uploads default to each part's file name.
    image_names: list[str] = Field(default_factory=list)
    request_id: str = ""  # idempotency key: a retry with the same key writes nothing


class EnrollBatchBody(BaseModel):
    items: list[EnrollBody] = Field(min_length=1)


class AttributeFilterBody(BaseModel):
    """A condition on a stored attribute: `equals` a value, or `min`/`max` (numbers)."""

    name: str
    equals: str = ""
    min: float | None = None
    max: float | None = None

    def to_engine(self) -> eng.AttributeFilter:
        return eng.AttributeFilter(self.name, self.equals, self.min, self.max)


def engine_filters(filters: list[AttributeFilterBody]) -> list[eng.AttributeFilter]:
    return [f.to_engine() for f in filters]


class IdentifyBody(BaseModel):
    image: ImageData
    top_k: int = 0  # 0: 5
    threshold: float | None = None
    target_fpir: float | None = None
    all_faces: bool = False
    attributes: list[str] = Field(default_factory=list)  # measured on each probe face
    # Read-your-writes: wait until this server has applied that change of the gallery (the
    # `sequence` of an enroll/delete); 503 when it cannot before the deadline (replica lags).
    min_sequence: int = Field(0, ge=0)
    # Only faces whose stored attributes match all of them (unknown name: 400; an
    # attribute the gallery does not store: 409).
    filters: list[AttributeFilterBody] = Field(default_factory=list)


class VerifyBody(BaseModel):
    image: ImageData
    reference_image: ImageData | None = None
    gallery: str = ""
    external_id: str = ""
    threshold: float | None = None
    target_far: float | None = None
    # Read-your-writes: wait until this server has applied that change of the gallery (the
    # `sequence` of an enroll/delete); 503 when it cannot before the deadline (replica lags).
    min_sequence: int = Field(0, ge=0)


class AnalyzeBody(BaseModel):
    image: ImageData
    # Names (age, gender, emotion, …); unknown: 400; a model the server does not run: 409.
    attributes: list[str] = Field(default_factory=list)
    gallery: str = ""  # optional: judge the faces with this gallery's search gates


class SearchFacesBody(BaseModel):
    """Exactly one query: an enrolled face of the gallery, or a raw embedding."""

    face_id: int | None = None  # the face itself is left out of the matches
    embedding: list[float] | None = None  # the loaded model's dimension; normalised
    top_k: int = 0  # 0: 10; at most 1000
    threshold: float | None = None  # minimum cosine; unset: the gallery's identify threshold
    filters: list[AttributeFilterBody] = Field(default_factory=list)  # as in IdentifyBody


class ClusterFacesBody(BaseModel):
    face_ids: list[int] = Field(default_factory=list)  # empty: every face of the gallery
    threshold: float | None = None  # unset: the loaded model's calibrated FAR 1e-3 threshold
    neighbours: int = 0  # k of the mutual k-NN graph; 0: 10


class ClusterEmbeddingsBody(BaseModel):
    embeddings: list[list[float]] = Field(min_length=1)  # the loaded model's dimension
    threshold: float | None = None
    neighbours: int = 0


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
    stored_attributes: list[str]  # measured and stored with every enrolled face


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
    box: Box | None  # the face enrolled or refused; null when no face was found
    image_name: str  # the client's name for the image; empty when none was given
    attributes: FaceAttributes | None  # the gallery's stored attributes of an accepted face


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
    replayed: bool  # a retry of a request_id: the first call's answer, nothing written
    outcomes: list[ImageOutcome]
    sequence: int = 0  # change-log sequence of the write (0: nothing written); min_sequence


class EnrollItemResult(BaseModel):
    index: int
    external_id: str
    created: bool
    replayed: bool
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


class Point(BaseModel):
    x: float
    y: float


class Emotion(BaseModel):
    label: str
    confidence: float
    scores: dict[str, float]  # every class's probability


class Gaze(BaseModel):
    pitch: float  # radians
    yaw: float
    pitch_deg: float
    yaw_deg: float


class HeadPose(BaseModel):
    yaw: float  # degrees
    pitch: float
    roll: float


class Occlusion(BaseModel):
    eyes: float  # share of the region hidden, 0-1
    nose: float
    mouth: float


class FaceAttributes(BaseModel):
    """Only the attributes asked for are set; the others are null."""

    age: float | None = None  # years
    gender: str | None = None  # "female" / "male"
    gender_confidence: float | None = None
    race: str | None = None  # FairFace's 7 groups
    race_confidence: float | None = None
    age_group: str | None = None  # FairFace's 9 groups, e.g. "30-39"
    age_group_confidence: float | None = None
    emotion: Emotion | None = None
    landmarks_106: list[Point] | None = None
    gaze: Gaze | None = None
    parsing_class_shares: dict[str, float] | None = None  # BiSeNet's 19 classes
    segmentation_face_fraction: float | None = None  # XSeg: share of the crop that is face
    eyes_open: bool | None = None
    eye_openness: float | None = None
    mouth_open: bool | None = None
    mouth_openness: float | None = None
    head_pose: HeadPose | None = None  # from 106 landmarks
    occlusion: Occlusion | None = None
    glasses: bool | None = None
    sunglasses: bool | None = None
    hat: bool | None = None
    mask: bool | None = None


class ProbeFace(BaseModel):
    box: Box
    detection_score: float
    candidates: list[Candidate]  # ranked, at or above the threshold; empty: no match
    rejection: RejectionOut | None
    attributes: FaceAttributes | None  # null unless attributes were asked for


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


class AnalyzedFace(BaseModel):
    box: Box  # original-image pixels
    detection_score: float
    landmarks: list[Point]  # the detector's 5 points
    quality: dict[str, float]  # the gates' measurements (sharpness, yaw, …)
    liveness: float | None  # fused P(live); set when the server runs a liveness model
    rejection: RejectionOut | None  # the search gates' verdict; null: the face passes
    attributes: FaceAttributes


class AnalyzeResponse(BaseModel):
    faces: list[AnalyzedFace]  # best detection first; empty when there is no face
    attributes: list[str]  # the attributes measured


class FaceMatch(BaseModel):
    face_id: int
    external_id: str
    score: float  # cosine similarity


class SearchFacesResponse(BaseModel):
    matches: list[FaceMatch]  # best first
    threshold: float


class FaceCluster(BaseModel):
    face_ids: list[int]  # gallery faces (clustering a gallery)
    indices: list[int]  # positions in `embeddings` (clustering raw embeddings)


class ClusterFacesResponse(BaseModel):
    clusters: list[FaceCluster]  # largest first
    threshold: float


class DeleteIdentityResponse(BaseModel):
    faces_removed: int
    sequence: int = 0  # change-log sequence of the delete; pass as min_sequence


class GalleryStats(BaseModel):
    name: str
    identities: int
    faces: int
    model: EmbeddingModel  # the gallery's model in the database
    # This server's live index ("" when not loaded here): its model (the old one until a
    # live reindex has switched here) and kind.
    index_model_sha256: str = ""
    index_kind: str = ""
    index_faces: int = 0


class ReindexBody(BaseModel):
    """POST /v1/galleries/{gallery}/reindex: as the Reindex RPC, answered when done."""

    recognizer: str = ""  # registry name or FAMILY:PATH on the server; "": keep the model
    index_kind: str = ""  # auto, flat, ivf, ivf_sq8, ivf_pq, hnsw; "": unchanged
    batch_size: int = 0  # crops per embedder call; 0: 64


class ReindexResult(BaseModel):
    gallery: Gallery
    faces_done: int


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
        stored_attributes=list(gallery.stored_attributes),
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
        box=box_out(outcome.box),
        image_name=outcome.image_name,
        attributes=attributes_out(outcome.attributes) if outcome.attributes else None,
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
        replayed=result.replayed,
        outcomes=[outcome_out(o) for o in result.outcomes],
        sequence=result.sequence,
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
            attributes=attributes_out(p.attributes) if p.attributes else None,
        )
        for p in result.faces
    ]
    return IdentifyResponse(faces=faces, threshold=result.threshold)


# Attribute values that are one FaceAttributes field of the same name.
_SCALAR_ATTRIBUTES = (
    "age", "gender", "gender_confidence", "race", "race_confidence", "age_group",
    "age_group_confidence", "eyes_open", "eye_openness", "mouth_open", "mouth_openness",
    "glasses", "sunglasses", "hat", "mask",
)  # fmt: skip


def attributes_out(values: dict[str, Any]) -> FaceAttributes:
    """The engine's attribute dict (FaceAttributes.to_dict()) → the protobuf-shaped model."""
    out = FaceAttributes(**{n: values[n] for n in _SCALAR_ATTRIBUTES if values.get(n) is not None})
    if values.get("emotion"):
        out.emotion = Emotion(**values["emotion"])
    if values.get("landmarks_106"):
        out.landmarks_106 = [Point(x=x, y=y) for x, y in values["landmarks_106"]["points"]]
    if values.get("gaze"):
        out.gaze = Gaze(**values["gaze"])
    if values.get("head_pose"):
        out.head_pose = HeadPose(**values["head_pose"])
    if values.get("occlusion"):
        out.occlusion = Occlusion(**values["occlusion"])
    if values.get("parsing"):
        out.parsing_class_shares = dict(values["parsing"]["class_shares"])
    if values.get("segmentation"):
        out.segmentation_face_fraction = values["segmentation"]["face_fraction"]
    return out


def analyze_out(result: AnalyzeResult) -> AnalyzeResponse:
    faces = [
        AnalyzedFace(
            box=Box(x1=f.box[0], y1=f.box[1], x2=f.box[2], y2=f.box[3]),
            detection_score=f.detection_score,
            landmarks=[Point(x=x, y=y) for x, y in f.landmarks],
            quality=dict(f.quality),
            liveness=f.liveness,
            rejection=rejection_out(f.rejection),
            attributes=attributes_out(f.attributes),
        )
        for f in result.faces
    ]
    return AnalyzeResponse(faces=faces, attributes=list(result.attributes))


def search_faces_out(result: SearchFacesResult) -> SearchFacesResponse:
    matches = [
        FaceMatch(face_id=m.face_id, external_id=m.external_id, score=m.score)
        for m in result.matches
    ]
    return SearchFacesResponse(matches=matches, threshold=result.threshold)


def clusters_out(result: ClusterResult, *, gallery: bool) -> ClusterFacesResponse:
    """Members are face ids when a gallery was clustered, else positions in the request."""
    clusters = [
        FaceCluster(face_ids=m, indices=[]) if gallery else FaceCluster(face_ids=[], indices=m)
        for m in result.clusters
    ]
    return ClusterFacesResponse(clusters=clusters, threshold=result.threshold)


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
                name=g.name,
                identities=g.identities,
                faces=g.faces,
                model=model_out(g.model),
                index_model_sha256=g.index_model_sha256,
                index_kind=g.index_kind,
                index_faces=g.index_faces,
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
