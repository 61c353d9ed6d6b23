"""SQL storage: the source of truth (SQLAlchemy 2 models, sessions, repository, errors)."""

from facedb.store.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    SchemaError,
    StoreError,
)
from facedb.store.records import (
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
