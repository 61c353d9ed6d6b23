"""The engine: decoding, the face pipeline, gates and the catalog composed into requests.

The engine knows nothing of gRPC: it takes plain values, returns dataclasses and raises
`EngineError` subclasses whose `status` names the gRPC code the service answers with.
A refused face is an outcome (`Rejection`), never an exception. A failed request changes
nothing: images are all decoded before anything is written, and every write is one
all-or-nothing catalog call.

Modules, by use case: `enroll`, `search` (identify, verify), `galleries` (galleries,
identities, faces), `reindex`; shared: `policy` (a gallery's thresholds and gates),
`filters` (stored-attribute filters), `recognizers` (the models galleries are served with,
by SHA-256), `core` (the parts and common steps), `telemetry`
(stages, deadlines), `errors`, `results`; `facade` (`Engine`) and `factory` (`open_engine`).
"""

from facedb.engine.errors import (
    AlreadyExistsEngineError,
    DeadlineExceededError,
    EngineError,
    FailedPreconditionError,
    InvalidRequestError,
    NotFoundEngineError,
)
from facedb.engine.facade import Engine
from facedb.engine.factory import open_engine
from facedb.engine.filters import AttributeFilter
from facedb.engine.results import (
    Candidate,
    Deletion,
    EnrollItem,
    EnrollResult,
    Gallery,
    GalleryStats,
    GatePolicyOptions,
    IdentifyResult,
    ImageOutcome,
    ProbeResult,
    Thresholds,
    VerifyResult,
)
from facedb.engine.telemetry import NullObserver, Observer, check_deadline

__all__ = [
    "AlreadyExistsEngineError",
    "AttributeFilter",
    "Candidate",
    "DeadlineExceededError",
    "Deletion",
    "Engine",
    "EngineError",
    "EnrollItem",
    "EnrollResult",
    "FailedPreconditionError",
    "Gallery",
    "GalleryStats",
    "GatePolicyOptions",
    "IdentifyResult",
    "ImageOutcome",
    "InvalidRequestError",
    "NotFoundEngineError",
    "NullObserver",
    "Observer",
    "ProbeResult",
    "Thresholds",
    "VerifyResult",
    "check_deadline",
    "open_engine",
]
