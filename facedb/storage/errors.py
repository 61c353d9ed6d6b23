"""Storage errors. The service maps each class to one gRPC status code."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the catalog raises on purpose."""


class NotFoundError(StoreError, LookupError):
    """A gallery, identity or face that does not exist (NOT_FOUND)."""


class AlreadyExistsError(StoreError):
    """A gallery name or identity that is already taken (ALREADY_EXISTS)."""


class ConflictError(StoreError):
    """The request contradicts the stored state, e.g. a face from another model
    (FAILED_PRECONDITION)."""


class InvalidArgumentError(StoreError, ValueError):
    """Malformed input, e.g. an embedding of the wrong dimension (INVALID_ARGUMENT)."""


class SchemaError(StoreError):
    """The database schema is missing or not at the revision this code expects."""


class SwitchingError(StoreError):
    """The gallery moved to another model in SQL and this process has not switched its
    index yet: a write must not add vectors of the old model (UNAVAILABLE: retry)."""


class ModelSwitchedError(StoreError):
    """A search's probe was embedded by another model than the one the gallery's live index
    holds now (it switched in between): embed again with that model."""

    def __init__(self, message: str, model_sha256: str) -> None:
        super().__init__(message)
        self.model_sha256 = model_sha256
