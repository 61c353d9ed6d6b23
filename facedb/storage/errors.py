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
