"""The values the engine takes and returns: plain frozen dataclasses, no protobuf, no ORM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from facedb.storage.records import IdentityInfo, ModelInfo
from facedb.vision.gates import Rejection

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in original-image pixels


@dataclass(frozen=True)
class Thresholds:
    """Cosine thresholds; None = the model's calibrated default."""

    identify: float | None = None
    verify: float | None = None
    duplicate: float | None = None


@dataclass(frozen=True)
class GatePolicyOptions:
    """Per-gallery changes to the server's gate policies (threshold name → value)."""

    enrollment: dict[str, float] = field(default_factory=dict)
    search: dict[str, float] = field(default_factory=dict)
    enrollment_liveness: bool | None = None
    search_liveness: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "enrollment": dict(self.enrollment),
            "search": dict(self.search),
            "enrollment_liveness": self.enrollment_liveness,
            "search_liveness": self.search_liveness,
        }

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> GatePolicyOptions:
        data = data or {}
        return GatePolicyOptions(
            enrollment=dict(data.get("enrollment") or {}),
            search=dict(data.get("search") or {}),
            enrollment_liveness=data.get("enrollment_liveness"),
            search_liveness=data.get("search_liveness"),
        )


DEFAULT_THRESHOLDS = Thresholds()  # every threshold from the model's calibration
NO_GATE_OVERRIDES = GatePolicyOptions()  # the server's gate policies as they are


@dataclass(frozen=True)
class Gallery:
    """A gallery as the API shows it: stored settings plus the effective thresholds."""

    name: str
    model: ModelInfo
    thresholds: Thresholds  # effective values, defaults filled in
    gates: GatePolicyOptions
    store_crops: bool
    identity_count: int
    face_count: int
    stored_attributes: tuple[str, ...] = ()  # measured and stored with each enrolled face


@dataclass(frozen=True)
class GalleryStats:
    name: str
    identities: int
    faces: int
    model: ModelInfo  # the gallery's model in SQL
    # This process's live index (empty when not loaded): its model's SHA-256 (the old
    # model until a live reindex switched here) and kind.
    index_model_sha256: str = ""
    index_kind: str = ""
    index_faces: int = 0


@dataclass(frozen=True)
class EnrollItem:
    gallery: str
    external_id: str
    images: Sequence[bytes]
    display_name: str | None = None
    metadata: dict[str, Any] | None = None
    allow_multiple_faces: bool = False
    allow_duplicate: bool = False
    image_names: Sequence[str] = ()  # the client's name for each image (or none)
    request_id: str = ""  # idempotency key: a retry with the same key adds nothing


@dataclass(frozen=True)
class ImageOutcome:
    """One enrollment image: accepted (face_id set) or refused (rejection set)."""

    index: int
    face_id: int | None = None
    quality: float | None = None
    liveness: float | None = None
    rejection: Rejection | None = None
    duplicate_of: str | None = None
    box: Box | None = None  # the face enrolled or refused, original-image pixels
    image_name: str = ""
    # Accepted faces of a gallery with stored_attributes: what was stored with the face.
    attributes: dict[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        return self.face_id is not None


@dataclass(frozen=True)
class EnrollResult:
    external_id: str
    created: bool
    identity: IdentityInfo | None  # None when a new identity got no accepted face
    outcomes: list[ImageOutcome]
    replayed: bool = False  # a retry of a request id: the first call's outcomes
    sequence: int = 0  # the change-log sequence of the write (0: nothing written)


@dataclass(frozen=True)
class Deletion:
    """What a delete removed, and its change-log sequence (for read-your-writes)."""

    faces_removed: int
    sequence: int


@dataclass(frozen=True)
class Candidate:
    external_id: str
    display_name: str | None
    score: float
    face_id: int
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ProbeResult:
    box: Box  # original-image pixels
    detection_score: float
    candidates: list[Candidate]  # ranked; empty = no match
    rejection: Rejection | None = None
    attributes: dict[str, Any] = field(default_factory=dict)  # the attributes asked for


@dataclass(frozen=True)
class IdentifyResult:
    faces: list[ProbeResult]
    threshold: float


@dataclass(frozen=True)
class VerifyResult:
    score: float
    match: bool
    threshold: float
    probe_box: Box | None = None
    reference_box: Box | None = None
    reference_face_id: int | None = None
    rejection: Rejection | None = None
