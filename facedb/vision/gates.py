"""Gate policy before enrollment and search: reason codes, thresholds, per-face assessment.

A face is measured (`facedb.vision.quality`), scored for liveness when a liveness model is
configured (`facedb.vision.liveness`), then checked in a fixed order: size → detection
score → pose → sharpness → exposure → learned quality → liveness. The first failed check
is the face's `Rejection`, with the measured value, the threshold, and a sentence.

How the defaults were chosen (SCRFD-500M at native scale, largest face, ArcFace 112 crop;
`python benchmarks/gates.py` reproduces every number). Over the 1,549 LFW pairsDevTest
images (news photos, faces ~95 px wide), percentiles 0.5 % / 1 % / 50 %:

- inter-ocular distance 28.4 / 31.2 / 43.2 px (min 17.9); the detected edge/tiny_face faces
  (19 of 49; the rest are not detected at all) are 8.2-12.1 px, their boxes 18-24 px wide.
  LFW box short side min 66 px.
- sharpness 32.4 / 39.8 / 160; the 4-px Gaussian-blurred astronaut 3.4, the heavily
  blurred screen-replay crops 26.4 and 32.6, the dim motion-blurred webcam crops 30.9, 37.2.
- detector score min 0.62, median 0.84; brightness 71.8 / 76.2 / 130 (min 52.9, max 207);
  clipped fraction 99th percentile 0.027, max 0.31.
- |yaw| 99th percentile 43.8°, max 66°; |pitch| 99th 33°, max 40° (median pitch -4.7°:
  the nose of LFW faces sits a little lower than the template's); |roll| max 24°.
- learned quality (face_quality_fiqa) 0.105 / 0.111 / 0.60; the 4-px blur scores 0.100, so
  on these photos the model is a floor, not the blur detector: sharpness is.
- liveness (fused MiniFASNet V2 + V1SE) on the full-frame spoof samples: live 0.879, 0.999,
  1.000; fake 0.001, 0.270, 0.292. 0.5 sits in the middle of that gap. LFW photos are not
  live captures (re-encoded 250x250 news crops): 10 % of them score below 0.5, so a liveness
  gate only makes sense on camera captures.

With the enrollment defaults, 98.4 % of those LFW images pass (BAD_POSE 0.8 %, BLURRY 0.6 %,
FACE_TOO_SMALL 0.1 %, BAD_EXPOSURE 0.1 %), every detected tiny face is FACE_TOO_SMALL, and
every detected edge/blurred face is refused (the strongly blurred ones as BLURRY).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

import numpy as np

from facedb.models.session import SessionSettings
from facedb.vision.analysis.signals import FaceSignals, SignalModels
from facedb.vision.liveness import LivenessChecker
from facedb.vision.quality import FiqaModel, QualityReport, measure_quality
from facedb.vision.types import Face


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
    DUPLICATE = "DUPLICATE"  # decided after embedding: the face already belongs to another identity
    INVALID_IMAGE = "INVALID_IMAGE"  # the image could not be decoded or is over a size limit
    OCCLUDED = "OCCLUDED"  # eyes, nose or mouth covered (needs a parsing or XSeg model)
    EYES_CLOSED = "EYES_CLOSED"  # needs a 106-landmark or parsing model


@dataclass(frozen=True)
class Rejection:
    """A refusal with the measured value and the threshold it failed."""

    reason: Reason
    value: float
    threshold: float
    message: str


class GateConfigError(ValueError):
    """A policy that these gates cannot apply (e.g. liveness required, no liveness model)."""


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds a face must meet. The field defaults are the enrollment policy.

    Every threshold is a float so a gallery can override any of them by name; a check is a
    no-op at its neutral value (0 for a minimum, 180° for a pose, 1.0 for a fraction).
    `min_quality` applies only when the gates have a learned quality model. The liveness
    check applies when `require_liveness` is set; the gates then refuse to run without a
    liveness model rather than let faces through unchecked.
    """

    min_face_size: float = 40.0  # px, shorter side of the detector box
    min_inter_ocular: float = 24.0  # px between the eye centres
    min_detection_score: float = 0.6
    max_yaw: float = 45.0  # degrees
    max_pitch: float = 40.0
    max_roll: float = 30.0
    min_sharpness: float = 35.0  # variance of the Laplacian on the aligned inner face
    min_brightness: float = 50.0  # mean grey level of the aligned inner face
    max_brightness: float = 220.0
    max_clipped_fraction: float = 0.25  # share of inner-face pixels ≤ 5 or ≥ 250
    min_quality: float = 0.1  # learned quality, when a model is configured
    min_liveness: float = 0.5  # fused P(live)
    require_liveness: bool = True
    # Analysis signals (facedb.vision.analysis.signals): checked only when a model that
    # measures them is configured. Not yet measured on real weights (none are available
    # here for parsing / XSeg / 2D106): the values follow the signals' geometry.
    max_occlusion: float = 0.5  # share of a region's disc (eyes, nose, mouth) covered
    min_eye_openness: float = 0.12  # the more open eye's height / width

    @classmethod
    def enrollment(cls) -> GatePolicy:
        """Strict: what goes into a gallery must be large, sharp, frontal and live."""
        return cls()

    @classmethod
    def search(cls) -> GatePolicy:
        """Lenient: a probe is only searched, so take what the recognizer can still use.

        Liveness is scored but not enforced: search probes come from anywhere (CCTV
        stills, scanned photos) where "photo of a photo" is not an attack.
        """
        return cls(
            min_face_size=20.0,
            min_inter_ocular=10.0,
            min_detection_score=0.5,
            max_yaw=60.0,
            max_pitch=50.0,
            max_roll=45.0,
            min_sharpness=10.0,
            min_brightness=25.0,
            max_brightness=240.0,
            max_clipped_fraction=0.5,
            min_quality=0.0,
            require_liveness=False,
            max_occlusion=0.8,
            min_eye_openness=0.0,
        )

    @classmethod
    def none(cls) -> GatePolicy:
        """Every check off (signals are still measured and reported)."""
        return cls(
            min_face_size=0.0,
            min_inter_ocular=0.0,
            min_detection_score=0.0,
            max_yaw=180.0,
            max_pitch=180.0,
            max_roll=180.0,
            min_sharpness=0.0,
            min_brightness=0.0,
            max_brightness=255.0,
            max_clipped_fraction=1.0,
            min_quality=0.0,
            min_liveness=0.0,
            require_liveness=False,
            max_occlusion=1.0,
            min_eye_openness=0.0,
        )

    def to_dict(self) -> dict[str, float | bool]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: GatePolicy | None = None) -> GatePolicy:
        """A policy from stored JSON: keys override `base` (the enrollment policy if None)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown gate setting(s): {', '.join(unknown)}")
        # Any: each value's type matches its own field (checked by _coerce), not one union.
        values: dict[str, Any] = {
            name: _coerce(name, value, known[name].type) for name, value in data.items()
        }
        return dataclasses.replace(base or cls(), **values)


def _coerce(name: str, value: Any, annotation: Any) -> float | bool:
    if annotation in (bool, "bool"):
        if not isinstance(value, bool):
            raise ValueError(f"gate setting {name} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"gate setting {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        # A NaN compares false with everything: it would silently switch the gate off.
        raise ValueError(f"gate setting {name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FaceAssessment:
    """Everything the gates measured about one face, and their verdict."""

    quality: QualityReport
    liveness: float | None  # fused P(live), None without a liveness model
    rejection: Rejection | None
    signals: FaceSignals | None = None  # with landmark / parsing / XSeg models configured

    @property
    def accepted(self) -> bool:
        return self.rejection is None

    def to_dict(self) -> dict[str, Any]:
        rejection = None
        if self.rejection is not None:
            rejection = {
                "reason": str(self.rejection.reason),
                "value": round(self.rejection.value, 4),
                "threshold": round(self.rejection.threshold, 4),
                "message": self.rejection.message,
            }
        liveness = None if self.liveness is None else round(float(self.liveness), 4)
        data = {"quality": self.quality.to_dict(), "liveness": liveness, "rejection": rejection}
        if self.signals is not None:
            data["signals"] = self.signals.to_dict()
        return data


@dataclass(frozen=True)
class _Check:
    """One threshold test on a quality signal: `signal` must be ≥ (or ≤) the policy field."""

    reason: Reason
    signal: Callable[[QualityReport], float]
    limit: str  # GatePolicy field name
    is_minimum: bool
    message: str  # formatted with value= and threshold=


# The order is the order of the checks: the first failure is the rejection.
_CHECKS: tuple[_Check, ...] = (
    _Check(
        Reason.FACE_TOO_SMALL,
        lambda q: q.face_size,
        "min_face_size",
        True,
        "the face is too small: {value:.0f} px across, at least {threshold:.0f} px needed",
    ),
    _Check(
        Reason.FACE_TOO_SMALL,
        lambda q: q.inter_ocular,
        "min_inter_ocular",
        True,
        "the face is too small: the eyes are {value:.0f} px apart, "
        "at least {threshold:.0f} px needed",
    ),
    _Check(
        Reason.LOW_DETECTION_SCORE,
        lambda q: q.detection_score,
        "min_detection_score",
        True,
        "the detector is unsure this is a face: score {value:.2f}, at least {threshold:.2f} needed",
    ),
    _Check(
        Reason.BAD_POSE,
        lambda q: abs(q.yaw),
        "max_yaw",
        False,
        "the head is turned sideways by {value:.0f}°, at most {threshold:.0f}° allowed",
    ),
    _Check(
        Reason.BAD_POSE,
        lambda q: abs(q.pitch),
        "max_pitch",
        False,
        "the head is tilted up or down by {value:.0f}°, at most {threshold:.0f}° allowed",
    ),
    _Check(
        Reason.BAD_POSE,
        lambda q: abs(q.roll),
        "max_roll",
        False,
        "the head leans to one side by {value:.0f}°, at most {threshold:.0f}° allowed",
    ),
    _Check(
        Reason.BLURRY,
        lambda q: q.sharpness,
        "min_sharpness",
        True,
        "the face is blurry: sharpness {value:.1f}, at least {threshold:.1f} needed",
    ),
    _Check(
        Reason.BAD_EXPOSURE,
        lambda q: q.brightness,
        "min_brightness",
        True,
        "the face is too dark: brightness {value:.0f} of 255, at least {threshold:.0f} needed",
    ),
    _Check(
        Reason.BAD_EXPOSURE,
        lambda q: q.brightness,
        "max_brightness",
        False,
        "the face is too bright: brightness {value:.0f} of 255, at most {threshold:.0f} allowed",
    ),
    _Check(
        Reason.BAD_EXPOSURE,
        lambda q: q.clipped_fraction,
        "max_clipped_fraction",
        False,
        "too much of the face is pure black or white: {value:.0%}, at most {threshold:.0%}",
    ),
)

_OCCLUDED = (
    "the face is covered at the {region}: {value:.0%} of it hidden, at most {threshold:.0%} "
    "allowed (sunglasses, a mask, a hand?)"
)
_EYES_CLOSED = "the eyes look closed: openness {value:.2f}, at least {threshold:.2f} needed"
_LOW_QUALITY = "the quality model rates the face {value:.2f}, at least {threshold:.2f} needed"
_SPOOF = (
    "the face looks like a photo or a screen rather than a live person: "
    "liveness {value:.2f}, at least {threshold:.2f} needed"
)


def _run_check(check: _Check, quality: QualityReport, policy: GatePolicy) -> Rejection | None:
    value = float(check.signal(quality))
    threshold = float(getattr(policy, check.limit))
    failed = value < threshold if check.is_minimum else value > threshold
    if not failed:
        return None
    message = check.message.format(value=value, threshold=threshold)
    return Rejection(check.reason, value, threshold, message)


def _below(reason: Reason, value: float, threshold: float, message: str) -> Rejection | None:
    if value >= threshold:
        return None
    return Rejection(reason, value, threshold, message.format(value=value, threshold=threshold))


def judge_signals(signals: FaceSignals, policy: GatePolicy) -> Rejection | None:
    """OCCLUDED, then EYES_CLOSED, for the signals a configured model measured."""
    occlusion, region = signals.max_occlusion, signals.worst_region()
    if occlusion is not None and region is not None and occlusion > policy.max_occlusion:
        threshold = policy.max_occlusion
        message = _OCCLUDED.format(region=region, value=occlusion, threshold=threshold)
        return Rejection(Reason.OCCLUDED, occlusion, threshold, message)
    if signals.eye_openness is not None:
        return _below(
            Reason.EYES_CLOSED, signals.eye_openness, policy.min_eye_openness, _EYES_CLOSED
        )
    return None


def judge(
    quality: QualityReport,
    liveness: float | None,
    policy: GatePolicy,
    signals: FaceSignals | None = None,
) -> Rejection | None:
    """The first check this face fails under `policy`, or None when it passes them all."""
    for check in _CHECKS:
        rejection = _run_check(check, quality, policy)
        if rejection is not None:
            return rejection
    if signals is not None:
        rejection = judge_signals(signals, policy)
        if rejection is not None:
            return rejection
    if quality.learned_quality is not None:
        rejection = _below(
            Reason.LOW_QUALITY, quality.learned_quality, policy.min_quality, _LOW_QUALITY
        )
        if rejection is not None:
            return rejection
    if policy.require_liveness and liveness is not None:
        return _below(Reason.SPOOF, liveness, policy.min_liveness, _SPOOF)
    return None


class FaceGates:
    """Measures faces and applies a `GatePolicy`; models (liveness, quality) are optional."""

    def __init__(
        self,
        liveness: LivenessChecker | None = None,
        quality_model: FiqaModel | None = None,
        signals: SignalModels | None = None,
    ) -> None:
        self.liveness = liveness
        self.quality_model = quality_model
        self.signals = signals if signals is not None and signals.configured else None

    @classmethod
    def from_specs(
        cls,
        liveness_specs: Sequence[str],
        quality_spec: str | None = None,
        threads: int | None = None,
        *,
        allow_spinning: bool | None = None,
        landmarks_spec: str | None = None,
        parsing_spec: str | None = None,
        xseg_spec: str | None = None,
    ) -> FaceGates:
        """Gates with these liveness models (none: no liveness), an optional quality model,
        and optional analysis models for OCCLUDED (parsing, XSeg) and EYES_CLOSED (106
        landmarks, parsing)."""
        runtime = SessionSettings(threads, allow_spinning)
        checker = LivenessChecker.from_specs(liveness_specs, runtime) if liveness_specs else None
        quality = FiqaModel.from_spec(quality_spec, runtime) if quality_spec else None
        signals = SignalModels.from_specs(landmarks_spec, parsing_spec, xseg_spec, runtime)
        return cls(checker, quality, signals)

    def assess_batch(
        self,
        image: np.ndarray,
        faces: Sequence[Face],
        aligned_crops: Sequence[np.ndarray] | np.ndarray,
        policy: GatePolicy,
    ) -> list[FaceAssessment]:
        """One assessment per face, in order; the models run once per image, batched."""
        if len(faces) != len(aligned_crops):
            raise ValueError(f"{len(faces)} faces but {len(aligned_crops)} aligned crops")
        if policy.require_liveness and self.liveness is None:
            raise GateConfigError(
                "the policy requires liveness but no liveness model is configured: "
                "configure one, or use a policy with require_liveness=False"
            )
        if not faces:
            return []
        learned = self._learned_quality(aligned_crops)
        live = self._liveness(image, faces)
        signals = self._signals(image, faces)
        assessments = []
        for i, face in enumerate(faces):
            quality = measure_quality(face, aligned_crops[i], learned[i])
            pose = None if signals[i] is None else signals[i].pose  # type: ignore[union-attr]
            if pose is not None:  # 106 points beat the 5-point estimate when configured
                quality = dataclasses.replace(
                    quality, yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll
                )
            verdict = judge(quality, live[i], policy, signals[i])
            assessments.append(FaceAssessment(quality, live[i], verdict, signals[i]))
        return assessments

    def assess(
        self, image: np.ndarray, face: Face, aligned: np.ndarray, policy: GatePolicy
    ) -> FaceAssessment:
        return self.assess_batch(image, [face], [aligned], policy)[0]

    def _learned_quality(self, crops: Sequence[np.ndarray] | np.ndarray) -> list[float | None]:
        if self.quality_model is None:
            return [None] * len(crops)
        return [float(s) for s in self.quality_model.scores(list(crops))]

    def _signals(self, image: np.ndarray, faces: Sequence[Face]) -> list[FaceSignals | None]:
        if self.signals is None:
            return [None] * len(faces)
        return list(self.signals.measure(image, faces))

    def _liveness(self, image: np.ndarray, faces: Sequence[Face]) -> list[float | None]:
        if self.liveness is None:
            return [None] * len(faces)
        return [float(s) for s in self.liveness.scores(image, faces)]
