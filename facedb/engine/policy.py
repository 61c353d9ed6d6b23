"""Gallery policy: what a gallery's stored settings mean on this server.

A request resolves its gallery once into a `GalleryPolicy`: the effective thresholds
(stored value, else the model's calibrated default, else the server setting) and the gate
policies (the server's enrollment / search policies with the gallery's overrides). Each
distinct set of overrides becomes policies once, and a model's calibration file is read
once per SHA-256, so a request does no file work and little parsing beyond its gallery row.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from facedb.calibration import Calibration
from facedb.config import Settings
from facedb.engine.errors import FailedPreconditionError, InvalidRequestError, check_cosine
from facedb.engine.results import GatePolicyOptions, Thresholds
from facedb.storage.records import GalleryInfo, GallerySettings
from facedb.vision.gates import GatePolicy

Decision = Literal["identify", "verify"]
Stage = Literal["enrollment", "search"]
CalibrationLookup = Callable[[str], Calibration | None]


@dataclass(frozen=True)
class GatePolicies:
    enrollment: GatePolicy | None
    search: GatePolicy | None


@dataclass(frozen=True)
class GalleryPolicy:
    """One gallery's decision settings, resolved for one request."""

    model_sha256: str
    gallery_size: int  # faces, at least 1 (FPIR thresholds depend on it)
    identify: float  # effective cosine thresholds
    verify: float
    duplicate: float
    gates: GatePolicyOptions  # the gallery's stored overrides
    policies: GatePolicies  # the gate policies that apply
    calibration: Calibration | None

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.identify, self.verify, self.duplicate)

    def decision_threshold(
        self, kind: Decision, threshold: float | None, rate: float | None
    ) -> float:
        """An explicit threshold, else one for a target error rate, else the gallery's."""
        if threshold is not None:
            check_cosine("threshold", threshold)
            return float(threshold)
        if rate is not None:
            return self._threshold_for_rate(kind, rate)
        return self.identify if kind == "identify" else self.verify

    def _threshold_for_rate(self, kind: Decision, rate: float) -> float:
        name = "FPIR" if kind == "identify" else "FAR"
        if not 0.0 < rate < 1.0:
            raise InvalidRequestError(f"target {name} must be between 0 and 1, got {rate}")
        if self.calibration is None:
            raise FailedPreconditionError(
                f"no calibration file for model sha256 {self.model_sha256[:12]}…, so a target "
                f"{name} cannot be turned into a threshold; pass an explicit threshold or add "
                "one (FACEDB_CALIBRATION_DIRS)"
            )
        if kind == "identify":
            return self.calibration.threshold_for_fpir(rate, self.gallery_size)
        return self.calibration.threshold_for_far(rate)


class PolicyBook:
    """The server's defaults and base gate policies, applied to galleries."""

    def __init__(
        self,
        settings: Settings,
        enrollment: GatePolicy | None,
        search: GatePolicy | None,
        calibration: CalibrationLookup,
        liveness_available: bool,
    ) -> None:
        self.settings = settings
        self.base = GatePolicies(enrollment, search)
        self.liveness_available = liveness_available
        self._lookup = calibration
        self._calibrations: dict[str, Calibration | None] = {}
        self._gate_cache: dict[str, GatePolicies] = {}
        self._lock = threading.Lock()

    def calibration(self, model_sha256: str) -> Calibration | None:
        """The model's calibration file, read once (None: the measured defaults apply)."""
        with self._lock:
            if model_sha256 in self._calibrations:
                return self._calibrations[model_sha256]
        found = self._lookup(model_sha256)
        with self._lock:
            return self._calibrations.setdefault(model_sha256, found)

    def for_gallery(self, info: GalleryInfo) -> GalleryPolicy:
        calibration = self.calibration(info.model_sha256)
        size = max(info.face_count, 1)
        gates = stored_gate_options(info)
        return GalleryPolicy(
            model_sha256=info.model_sha256,
            gallery_size=size,
            identify=self._identify_default(info, calibration, size),
            verify=self._verify_default(info.settings.verify_threshold, calibration),
            duplicate=_first(info.settings.duplicate_threshold, self.settings.duplicate_threshold),
            gates=gates,
            policies=self._gate_policies(info, gates),
            calibration=calibration,
        )

    def without_gallery(self, model_sha256: str) -> GalleryPolicy:
        """Verifying two images outside any gallery: the server's defaults."""
        calibration = self.calibration(model_sha256)
        verify = self._verify_default(None, calibration)
        duplicate = self.settings.duplicate_threshold
        return GalleryPolicy(
            model_sha256, 1, verify, verify, duplicate, GatePolicyOptions(), self.base, calibration
        )

    def check_options(self, gates: GatePolicyOptions, thresholds: Thresholds) -> None:
        """Refuse settings a new gallery could not use on this server."""
        for name, value in vars(thresholds).items():
            if value is not None:
                check_cosine(f"{name} threshold", value)
        if not self.liveness_available and (gates.enrollment_liveness or gates.search_liveness):
            raise FailedPreconditionError(
                "the gallery asks for a liveness check but this server has no liveness "
                "model: start it with --liveness"
            )
        _overridden(self.base.enrollment, gates.enrollment, "enrollment")
        _overridden(self.base.search, gates.search, "search")

    def _identify_default(
        self, info: GalleryInfo, calibration: Calibration | None, size: int
    ) -> float:
        if info.settings.match_threshold is not None:
            return float(info.settings.match_threshold)
        if calibration is None:
            return self.settings.identify_threshold
        # FPIR grows with the gallery, so the calibrated threshold depends on its size.
        return calibration.default_identify_threshold(size)

    def _verify_default(self, stored: float | None, calibration: Calibration | None) -> float:
        if stored is not None:
            return float(stored)
        if calibration is None:
            return self.settings.verify_threshold
        return calibration.default_verify_threshold()

    def _gate_policies(self, info: GalleryInfo, gates: GatePolicyOptions) -> GatePolicies:
        # Galleries share few distinct settings: each is turned into policies once.
        key = json.dumps(gates.to_json(), sort_keys=True)
        with self._lock:
            cached = self._gate_cache.get(key)
        if cached is not None:
            return cached
        policies = GatePolicies(
            _applied(
                self.base.enrollment, gates.enrollment, gates.enrollment_liveness, "enrollment"
            ),
            _applied(self.base.search, gates.search, gates.search_liveness, "search"),
        )
        with self._lock:
            if len(self._gate_cache) > 1024:  # settings of galleries deleted long ago
                self._gate_cache.clear()
            self._gate_cache[key] = policies
        return policies


def stored_gate_options(info: GalleryInfo) -> GatePolicyOptions:
    return GatePolicyOptions.from_json(dict(info.settings.gate_policy or {}).get("gates"))


def gallery_settings(gates: GatePolicyOptions, thresholds: Thresholds) -> GallerySettings:
    """What a new gallery stores: its thresholds (None: the default applies) and overrides."""
    return GallerySettings(
        match_threshold=thresholds.identify,
        duplicate_threshold=thresholds.duplicate,
        verify_threshold=thresholds.verify,
        gate_policy={"gates": gates.to_json()},
    )


def _overridden(
    base: GatePolicy | None, overrides: dict[str, float], stage: Stage
) -> GatePolicy | None:
    if not overrides:
        return base
    if base is None:
        raise InvalidRequestError(f"this server runs no {stage} gates to override")
    try:
        return GatePolicy.from_dict(overrides, base)
    except ValueError as error:
        raise InvalidRequestError(f"{stage} gate policy: {error}") from error


def _applied(
    base: GatePolicy | None, overrides: dict[str, float], liveness: bool | None, stage: Stage
) -> GatePolicy | None:
    """A stored gallery's policy: the server's, with the gallery's overrides."""
    if base is None:
        return None  # a server without gates has nothing to override
    policy = _overridden(base, overrides, stage) or base
    return policy if liveness is None else replace(policy, require_liveness=liveness)


def _first(stored: float | None, default: float) -> float:
    return default if stored is None else float(stored)
