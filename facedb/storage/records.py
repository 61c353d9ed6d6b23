"""Plain values that cross the catalog's API (never live ORM objects)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

# An identity's whole metadata, as UTF-8 JSON (it travels with every hit and listing).
MAX_METADATA_BYTES = 16 * 1024


@dataclass(frozen=True)
class GallerySettings:
    """Per-gallery decision settings; None means "use the service default"."""

    match_threshold: float | None = None
    duplicate_threshold: float | None = None
    gate_policy: dict[str, Any] | None = None
    verify_threshold: float | None = None


@dataclass(frozen=True)
class GalleryConfig:
    name: str
    model_name: str
    model_sha256: str
    dim: int
    settings: GallerySettings = field(default_factory=GallerySettings)
    store_crops: bool = True
    index_kind: str | None = None  # flat | ivf | ivf_sq8 | hnsw | ivf_pq; None follows the catalog
    stored_attributes: tuple[str, ...] = ()  # names the caller stores with each face


@dataclass(frozen=True)
class GalleryInfo:
    id: int
    uid: str
    name: str
    model_name: str
    model_sha256: str
    dim: int
    settings: GallerySettings
    store_crops: bool
    index_kind: str | None
    created_at: datetime
    updated_at: datetime
    identity_count: int = 0
    face_count: int = 0
    stored_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """The embedding model a gallery's vectors come from."""

    name: str
    sha256: str
    dim: int


@dataclass(frozen=True)
class NewFace:
    """One face to enroll. The crop is opaque to storage (the caller encodes it)."""

    embedding: np.ndarray
    box: tuple[float, float, float, float] | None = None
    landmarks: list[list[float]] | None = None
    detector_score: float | None = None
    quality: dict[str, Any] | None = None
    liveness_score: float | None = None
    source_sha256: str | None = None
    crop: bytes | None = None
    # The model that made the embedding; checked against the gallery's model inside the
    # write transaction. None: the caller vouches that it is the gallery's current model.
    model_sha256: str | None = None
    # Measured attributes kept with the face (JSON-ready, opaque to storage); None: none.
    attributes: dict[str, Any] | None = None


@dataclass(frozen=True)
class FaceInfo:
    id: int
    external_id: str
    model_name: str
    model_sha256: str
    box: list[float] | None
    landmarks: list[list[float]] | None
    detector_score: float | None
    quality: dict[str, Any] | None
    liveness_score: float | None
    source_sha256: str | None
    has_crop: bool
    created_at: datetime
    attributes: dict[str, Any] | None = None


@dataclass(frozen=True)
class IdentityInfo:
    external_id: str
    display_name: str | None
    metadata: dict[str, Any]
    face_ids: tuple[int, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Hit:
    """One search result: a face, its identity and the cosine similarity."""

    face_id: int
    external_id: str
    score: float
    display_name: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class EnrollRequest:
    """Faces for one identity (created if new), written all at once by `Catalog.enroll`."""

    external_id: str
    faces: Sequence[NewFace]  # embedded faces, model_sha256 set
    display_name: str | None = None  # None keeps the stored one
    metadata: dict[str, Any] | None = None  # merged over the existing identity's metadata
    duplicate_threshold: float | None = None  # None: no duplicate check
    duplicate_k: int = 10  # nearest faces looked at per face for another identity's
    # Idempotency: with a request id, the first call's receipt (what `receipt` made of its
    # outcome, inside the same transaction) is kept; a retry writes nothing and gets it back.
    request_id: str = ""
    receipt: Callable[[EnrollOutcome], dict[str, Any]] | None = None


@dataclass(frozen=True)
class DuplicateOf:
    """A face refused because another identity already has one this similar (cosine)."""

    external_id: str
    score: float


@dataclass(frozen=True)
class Erasure:
    """An identity deleted: how many faces went, and the change-log sequence of the delete
    (0 when it had no faces, so nothing entered the log)."""

    faces_removed: int
    sequence: int


@dataclass(frozen=True)
class EnrollOutcome:
    identity: IdentityInfo | None  # after the write (the existing one if nothing written)
    created: bool  # identity created by this call
    face_ids: list[int | None]  # per request face; None where refused as duplicate
    duplicates: list[DuplicateOf | None]  # per request face
    sequence: int | None  # change-log sequence of the write (None if nothing written)
    receipt: dict[str, Any] | None = None  # set on a retry: the first call's receipt
