"""The requests the engine refuses, each naming the gRPC status the service answers with.

A refused *face* is never an exception (it is a `Rejection` in the result); these are
refused *requests*: bad arguments, missing things, a gallery of another model, a deadline.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

from facedb.storage.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    StoreError,
    SwitchingError,
)


class EngineError(Exception):
    """A request the engine refuses; `status` is the gRPC status code's name."""

    status = "INTERNAL"


class InvalidRequestError(EngineError):
    status = "INVALID_ARGUMENT"


class NotFoundEngineError(EngineError):
    status = "NOT_FOUND"


class AlreadyExistsEngineError(EngineError):
    status = "ALREADY_EXISTS"


class FailedPreconditionError(EngineError):
    status = "FAILED_PRECONDITION"


class DeadlineExceededError(EngineError):
    status = "DEADLINE_EXCEEDED"


class ReplicaLagError(EngineError):
    """This server's index has not applied a change the caller asked to read (retryable:
    another replica, or this one a moment later, may have)."""

    status = "UNAVAILABLE"


class UnavailableError(EngineError):
    """Retryable: e.g. the gallery is switching to another model on this server."""

    status = "UNAVAILABLE"


class AbortedError(EngineError):
    """A conflicting operation runs, e.g. a reindex of the same gallery in this process."""

    status = "ABORTED"


_STORE_ERRORS: dict[type[StoreError], type[EngineError]] = {
    NotFoundError: NotFoundEngineError,
    AlreadyExistsError: AlreadyExistsEngineError,
    ConflictError: FailedPreconditionError,
    InvalidArgumentError: InvalidRequestError,
    SwitchingError: UnavailableError,
}


def engine_error(error: StoreError) -> EngineError | StoreError:
    """The engine error a catalog error becomes (the message is kept: it says what)."""
    for store_type, engine_type in _STORE_ERRORS.items():
        if isinstance(error, store_type):
            return engine_type(str(error))
    return error


@contextmanager
def store_errors() -> Iterator[None]:
    """Catalog errors raised inside the block are re-raised as engine errors."""
    try:
        yield
    except StoreError as error:
        mapped = engine_error(error)
        if mapped is error:
            raise
        raise mapped from error


# Names and ids are stored in 256-character columns (gallery names: 128).
MAX_NAME_CHARS = 256


def require(value: str, what: str, max_chars: int = MAX_NAME_CHARS) -> None:
    """Refuse an empty, over-long or control-character name or id (the same on every
    database: PostgreSQL would refuse a NUL or an over-long value with a driver error)."""
    if not value:
        raise InvalidRequestError(f"missing {what}")
    if len(value) > max_chars:
        raise InvalidRequestError(
            f"{what} is {len(value):,} characters long; the limit is {max_chars}"
        )
    bad = first_control_character(value)
    if bad is not None:
        raise InvalidRequestError(f"{what} contains the control character {bad!r}")


def first_control_character(value: str) -> str | None:
    """The first control (Cc) or lone surrogate (Cs) character of `value`, if any."""
    return next((c for c in value if unicodedata.category(c) in ("Cc", "Cs")), None)


def check_cosine(name: str, value: float) -> None:
    """Refuse a threshold outside the range of a cosine similarity."""
    if not -1.0 <= value <= 1.0:
        raise InvalidRequestError(f"{name} is a cosine similarity in [-1, 1], got {value}")


def check_min_sequence(min_sequence: int) -> None:
    """A read-your-writes sequence is 0 (none) or a change sequence (positive)."""
    if min_sequence < 0:
        raise InvalidRequestError(
            f"min_sequence must be 0 or a change sequence, not {min_sequence}"
        )
