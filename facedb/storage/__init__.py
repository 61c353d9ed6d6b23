"""Storage: the SQL source of truth (tables, sessions, repository, errors) and the catalog
that writes SQL and the FAISS index together (facedb.storage.catalog)."""

from facedb.storage.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    SchemaError,
    StoreError,
)
from facedb.storage.records import (
    DuplicateOf,
    EnrollOutcome,
    EnrollRequest,
    FaceInfo,
    GalleryConfig,
    GalleryInfo,
    GallerySettings,
    Hit,
    IdentityInfo,
    ModelInfo,
    NewFace,
)

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "DuplicateOf",
    "EnrollOutcome",
    "EnrollRequest",
    "FaceInfo",
    "GalleryConfig",
    "GalleryInfo",
    "GallerySettings",
    "Hit",
    "IdentityInfo",
    "InvalidArgumentError",
    "ModelInfo",
    "NewFace",
    "NotFoundError",
    "SchemaError",
    "StoreError",
]
