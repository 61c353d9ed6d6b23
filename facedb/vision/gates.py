"""Gate policy before enrollment and search: reason codes, thresholds, per-face assessment.

TODO(gates helper): GatePolicy thresholds and FaceGates.assess (quality + liveness).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why an image or a face was refused (the wire values of the API's reason codes)."""

    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    FACE_TOO_SMALL = "FACE_TOO_SMALL"
    BLURRY = "BLURRY"
    BAD_POSE = "BAD_POSE"
    BAD_EXPOSURE = "BAD_EXPOSURE"
    LOW_DETECTION_SCORE = "LOW_DETECTION_SCORE"
    LOW_QUALITY = "LOW_QUALITY"
    SPOOF = "SPOOF"


@dataclass(frozen=True)
class Rejection:
    """A refusal with the measured value and the threshold it failed."""

    reason: Reason
    value: float
    threshold: float
    message: str
