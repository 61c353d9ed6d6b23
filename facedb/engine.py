"""The engine: decoding, the face pipeline, gates and the catalog composed into requests.

Enroll: decode → detect → select → gates → align → embed → duplicate check → write.
Identify: decode → detect → gates → embed → search → best face per identity → threshold.
Verify: two faces (or a face and an enrolled identity) → cosine → decision.

The engine knows nothing of gRPC: it takes plain values, returns dataclasses and raises
`EngineError` subclasses whose `status` names the gRPC code the servicer answers with.
A refused face is an outcome (`Rejection`), never an exception. A failed request changes
nothing: images are all decoded before anything is written, and every write is one
all-or-nothing catalog call.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

import cv2
import numpy as np

from facedb.calibration import Calibration, load_calibration
from facedb.config import Settings
from facedb.index.backend import open_backend
from facedb.storage.catalog import Catalog
from facedb.storage.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    StoreError,
)
from facedb.storage.records import (
    GalleryConfig,
    GalleryInfo,
    GallerySettings,
    Hit,
    IdentityInfo,
    ModelInfo,
    NewFace,
)
from facedb.vision.embed import Embedder, load_embedder
from facedb.vision.gates import (
    FaceAssessment,
    FaceGates,
    GateConfigError,
    GatePolicy,
    Reason,
    Rejection,
)
from facedb.vision.image import DecodedImage, ImageError, load_image
from facedb.vision.pipeline import Analysis, AnalyzedFace, FacePipeline, Selection

log = logging.getLogger(__name__)

# Detectors work on a ~640 px canvas: pixels beyond this side only cost memory and time.
MAX_IMAGE_SIDE = 4096
DEFAULT_TOP_K = 5
MAX_TOP_K = 100
# Nearest faces looked at for a duplicate: enough to see past the identity's own faces.
DUPLICATE_SEARCH_K = 16
# Hits fetched per requested candidate: an identity with several faces takes several hits.
SEARCH_OVERFETCH = 4


# ------------------------------------------------------------------------------ errors


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


_STORE_ERRORS: dict[type[StoreError], type[EngineError]] = {
    NotFoundError: NotFoundEngineError,
    AlreadyExistsError: AlreadyExistsEngineError,
    ConflictError: FailedPreconditionError,
    InvalidArgumentError: InvalidRequestError,
}


@contextmanager
def _store_errors() -> Iterator[None]:
    """Catalog errors re-raised as engine errors (the message is kept: it says what)."""
    try:
        yield
    except StoreError as error:
        for store_type, engine_type in _STORE_ERRORS.items():
            if isinstance(error, store_type):
                raise engine_type(str(error)) from error
        raise


# ------------------------------------------------------------------ stages, deadlines


class Observer(Protocol):
    """Where stage timings and refusals go (the service plugs Prometheus in here)."""

    def stage(self, name: str, seconds: float) -> None: ...

    def rejection(self, reason: str) -> None: ...


class NullObserver:
    def stage(self, name: str, seconds: float) -> None:
        pass

    def rejection(self, reason: str) -> None:
        pass


# Monotonic time by which the request on this thread must be answered (None: no deadline).
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "facedb_deadline", default=None
)


@contextmanager
def _deadline_scope(timeout: float | None) -> Iterator[None]:
    token = _deadline.set(None if timeout is None else time.monotonic() + timeout)
    try:
        yield
    finally:
        _deadline.reset(token)


def check_deadline(stage: str) -> None:
    """Refuse to start an expensive stage once the caller has stopped waiting."""
    expires = _deadline.get()
    if expires is not None and time.monotonic() >= expires:
        raise DeadlineExceededError(f"deadline exceeded before the {stage} stage")


class _Stages:
    """Times a stage and checks the deadline before it."""

    def __init__(self, observer: Observer):
        self.observer = observer

    @contextmanager
    def run(self, name: str) -> Iterator[None]:
        check_deadline(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observer.stage(name, time.perf_counter() - start)


class _TimedDetector:
    """The pipeline's detector, seen through the stage clock."""

    def __init__(self, detector: Any, stages: _Stages):
        self._inner = detector
        self._stages = stages

    def detect(self, image: np.ndarray) -> Any:
        with self._stages.run("detect"):
            return self._inner.detect(image)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _TimedEmbedder:
    def __init__(self, embedder: Any, stages: _Stages):
        self._inner = embedder
        self._stages = stages

    def embed(self, crops: np.ndarray) -> np.ndarray:
        with self._stages.run("embed"):
            return self._inner.embed(crops)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _TimedGates:
    def __init__(self, gates: Any, stages: _Stages):
        self._inner = gates
        self._stages = stages

    def assess_batch(self, image: np.ndarray, faces: Any, aligned: np.ndarray, policy: Any) -> Any:
        with self._stages.run("gates"):
            return self._inner.assess_batch(image, faces, aligned, policy)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Thresholds:
    """Cosine thresholds; None = the model's calibrated default."""

    identify: float | None = None
    verify: float | None = None
    duplicate: float | None = None


@dataclass(frozen=True)
class GatePolicyOptions:
    """Per-gallery changes to the server's gate policies (threshold name → value)."""

    enrollment: dict[str, float] = field(default_factory=dict)
    search: dict[str, float] = field(default_factory=dict)
    enrollment_liveness: bool | None = None
    search_liveness: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "enrollment": dict(self.enrollment),
            "search": dict(self.search),
            "enrollment_liveness": self.enrollment_liveness,
            "search_liveness": self.search_liveness,
        }

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> GatePolicyOptions:
        data = data or {}
        return GatePolicyOptions(
            enrollment=dict(data.get("enrollment") or {}),
            search=dict(data.get("search") or {}),
            enrollment_liveness=data.get("enrollment_liveness"),
            search_liveness=data.get("search_liveness"),
        )


@dataclass(frozen=True)
class Gallery:
    """A gallery as the API shows it: stored settings plus the effective thresholds."""

    name: str
    model: ModelInfo
    thresholds: Thresholds  # effective values, defaults filled in
    gates: GatePolicyOptions
    store_crops: bool
    identity_count: int
    face_count: int


@dataclass(frozen=True)
class EnrollItem:
    gallery: str
    external_id: str
    images: Sequence[bytes]
    display_name: str | None = None
    metadata: dict[str, Any] | None = None
    allow_multiple_faces: bool = False
    allow_duplicate: bool = False


@dataclass(frozen=True)
class ImageOutcome:
    """One enrollment image: accepted (face_id set) or refused (rejection set)."""

    index: int
    face_id: int | None = None
    quality: float | None = None
    liveness: float | None = None
    rejection: Rejection | None = None
    duplicate_of: str | None = None

    @property
    def accepted(self) -> bool:
        return self.face_id is not None


@dataclass(frozen=True)
class EnrollResult:
    external_id: str
    created: bool
    identity: IdentityInfo | None  # None when a new identity got no accepted face
    outcomes: list[ImageOutcome]


@dataclass(frozen=True)
class Candidate:
    external_id: str
    display_name: str | None
    score: float
    face_id: int
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ProbeResult:
    box: tuple[float, float, float, float]  # original-image pixels
    detection_score: float
    candidates: list[Candidate]  # ranked; empty = no match
    rejection: Rejection | None = None


@dataclass(frozen=True)
class IdentifyResult:
    faces: list[ProbeResult]
    threshold: float


@dataclass(frozen=True)
class VerifyResult:
    score: float
    match: bool
    threshold: float
    probe_box: tuple[float, float, float, float] | None = None
    reference_box: tuple[float, float, float, float] | None = None
    reference_face_id: int | None = None
    rejection: Rejection | None = None


@dataclass(frozen=True)
class GalleryStats:
    name: str
    identities: int
    faces: int
    model: ModelInfo


@dataclass
class _Prepared:
    """One enrollment image after analysis, before the write."""

    index: int
    source_sha256: str
    face: AnalyzedFace | None
    outcome: ImageOutcome | None  # set when refused
    scale: float


# ---------------------------------------------------------------------------- engine


class Engine:
    """Face search over one loaded embedding model; thread-safe."""

    def __init__(
        self,
        pipeline: FacePipeline,
        catalog: Catalog,
        *,
        settings: Settings | None = None,
        enrollment_policy: GatePolicy | None = None,
        search_policy: GatePolicy | None = None,
        calibration: Callable[[str], Calibration | None] = load_calibration,
        observer: Observer | None = None,
    ):
        self.settings = settings or Settings()
        self.catalog = catalog
        self.observer: Observer = observer or NullObserver()
        self._stages = _Stages(self.observer)
        self.pipeline = FacePipeline(
            _TimedDetector(pipeline.detector, self._stages),
            _TimedEmbedder(pipeline.embedder, self._stages),
            _TimedGates(pipeline.gates, self._stages) if pipeline.gates is not None else None,
        )
        self.enrollment_policy = enrollment_policy
        self.search_policy = search_policy
        self._calibration_lookup = calibration
        self._calibrations: dict[str, Calibration | None] = {}
        embedder = pipeline.embedder
        self.model = ModelInfo(embedder.name, embedder.sha256, int(embedder.dim))
        # Duplicate check + write must not interleave for one gallery, or two concurrent
        # enrollments of one face under two identities would both pass the check.
        self._write_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def observe(self, observer: Observer) -> None:
        """Send stage timings and refusals to `observer` from now on."""
        self.observer = observer
        self._stages.observer = observer

    # -------------------------------------------------------------- galleries

    def create_gallery(
        self,
        name: str,
        *,
        embedding_model: str = "",
        thresholds: Thresholds = Thresholds(),
        gates: GatePolicyOptions = GatePolicyOptions(),
        store_crops: bool = True,
    ) -> Gallery:
        _require(name, "gallery name")
        self._check_requested_model(embedding_model)
        self._validate_gates(gates)
        _check_thresholds(thresholds)
        config = GalleryConfig(
            name=name,
            model_name=self.model.name,
            model_sha256=self.model.sha256,
            dim=self.model.dim,
            settings=GallerySettings(
                match_threshold=thresholds.identify,
                duplicate_threshold=thresholds.duplicate,
                gate_policy={"gates": gates.to_json(), "verify_threshold": thresholds.verify},
            ),
            store_crops=store_crops,
        )
        with _store_errors():
            self.catalog.create_gallery(config)
        return self.get_gallery(name)

    def get_gallery(self, name: str) -> Gallery:
        _require(name, "gallery name")
        with _store_errors():
            return self._gallery_view(self.catalog.get_gallery(name))

    def list_galleries(self) -> list[Gallery]:
        with _store_errors():
            return [self._gallery_view(info) for info in self.catalog.list_galleries()]

    def delete_gallery(self, name: str) -> None:
        _require(name, "gallery name")
        with _store_errors():
            self.catalog.delete_gallery(name)

    # -------------------------------------------------------------- enrollment

    def enroll(self, item: EnrollItem, *, timeout: float | None = None) -> EnrollResult:
        """Enroll the accepted images of one identity (created if new); one outcome each."""
        _require(item.external_id, "external_id")
        if not item.images:
            raise InvalidRequestError("no images: send at least one image to enroll")
        with _deadline_scope(timeout):
            info = self._usable_gallery(item.gallery)
            decoded = [self._decode(data, index) for index, data in enumerate(item.images)]
            policy = self._policy(info, "enrollment")
            select: Selection = "largest" if item.allow_multiple_faces else "single"
            prepared = [
                self._prepare(index, data, image, policy, select)
                for index, (data, image) in enumerate(zip(item.images, decoded, strict=True))
            ]
            with self._write_lock(item.gallery):
                return self._check_and_write(info, item, prepared)

    def _prepare(
        self,
        index: int,
        data: bytes,
        image: DecodedImage,
        policy: GatePolicy | None,
        select: Selection,
    ) -> _Prepared:
        analysis = self._analyze(image.pixels, policy=policy, select=select)
        digest = hashlib.sha256(data).hexdigest()
        if analysis.rejection is not None:
            self.observer.rejection(str(analysis.rejection.reason))
            outcome = ImageOutcome(index, rejection=analysis.rejection)
            return _Prepared(index, digest, None, outcome, image.scale)
        return _Prepared(index, digest, analysis.accepted[0], None, image.scale)

    def _check_and_write(
        self, info: GalleryInfo, item: EnrollItem, prepared: list[_Prepared]
    ) -> EnrollResult:
        existing = self._find_identity(item.gallery, item.external_id)
        duplicate = self._duplicate_threshold(info)
        if not item.allow_duplicate:
            self._refuse_duplicates(item, prepared, duplicate)
        to_write = [p for p in prepared if p.outcome is None and p.face is not None]
        face_ids: list[int] = []
        if to_write:
            faces = [self._new_face(p, info.store_crops) for p in to_write]
            check_deadline("write")
            start = time.perf_counter()
            with _store_errors():
                face_ids = self.catalog.add_faces(
                    item.gallery,
                    item.external_id,
                    faces,
                    display_name=item.display_name or None,
                    metadata=_merged(existing, item.metadata),
                )
            self.observer.stage("write", time.perf_counter() - start)
        outcomes = _outcomes(prepared, to_write, face_ids)
        identity = self._find_identity(item.gallery, item.external_id) if face_ids else existing
        return EnrollResult(
            item.external_id, existing is None and bool(face_ids), identity, outcomes
        )

    def _refuse_duplicates(
        self, item: EnrollItem, prepared: list[_Prepared], threshold: float
    ) -> None:
        candidates = [p for p in prepared if p.outcome is None and p.face is not None]
        if not candidates:
            return
        vectors = np.stack([p.face.embedding for p in candidates])
        hits = self._search(item.gallery, vectors, k=DUPLICATE_SEARCH_K)
        for p, row in zip(candidates, hits, strict=True):
            other = next((h for h in row if h.external_id != item.external_id), None)
            if other is not None and other.score >= threshold:
                rejection = Rejection(
                    Reason.DUPLICATE,
                    float(other.score),
                    threshold,
                    f"this face already belongs to identity {other.external_id!r} "
                    f"(similarity {other.score:.3f} >= {threshold:.3f})",
                )
                self.observer.rejection(Reason.DUPLICATE)
                p.outcome = ImageOutcome(
                    p.index, rejection=rejection, duplicate_of=other.external_id
                )

    def _new_face(self, prepared: _Prepared, store_crops: bool) -> NewFace:
        analyzed = prepared.face
        assert analyzed is not None and analyzed.embedding is not None
        face = analyzed.face.scaled(1.0 / prepared.scale)  # back to original-image pixels
        return NewFace(
            embedding=analyzed.embedding,
            box=_box(analyzed, prepared.scale),
            landmarks=face.landmarks.astype(float).tolist(),
            detector_score=float(face.score),
            quality=_quality_dict(analyzed.assessment),
            liveness_score=_liveness(analyzed.assessment),
            source_sha256=prepared.source_sha256,
            crop=_png(analyzed.aligned) if store_crops else None,
            model_sha256=self.model.sha256,
        )

    # ------------------------------------------------------------------ search

    def identify(
        self,
        gallery: str,
        image: bytes,
        *,
        top_k: int = 0,
        threshold: float | None = None,
        target_fpir: float | None = None,
        all_faces: bool = False,
        timeout: float | None = None,
    ) -> IdentifyResult:
        """Candidates per probe face, best identity first; an empty list is "no match"."""
        top_k = _top_k(top_k)
        with _deadline_scope(timeout):
            info = self._usable_gallery(gallery)
            limit = self._decision_threshold(info, "identify", threshold, target_fpir)
            decoded = self._decode(image, None)
            select = "all" if all_faces else "largest"
            analysis = self._analyze(
                decoded.pixels, policy=self._policy(info, "search"), select=select
            )
            probes = self._probe_results(gallery, analysis, decoded.scale, top_k, limit)
        return IdentifyResult(probes, limit)

    def _probe_results(
        self, gallery: str, analysis: Analysis, scale: float, top_k: int, limit: float
    ) -> list[ProbeResult]:
        embedded = [f for f in analysis.faces if f.embedding is not None]
        hits = (
            self._search(
                gallery, np.stack([f.embedding for f in embedded]), top_k * SEARCH_OVERFETCH
            )
            if embedded
            else []
        )
        by_face = {id(f): row for f, row in zip(embedded, hits, strict=True)}
        results = []
        for analyzed in analysis.faces:
            if analyzed.rejection is not None:
                self.observer.rejection(str(analyzed.rejection.reason))
            row = by_face.get(id(analyzed), [])
            candidates = _best_per_identity(row, limit)[:top_k]
            box = _box(analyzed, scale)
            score = float(analyzed.face.score)
            results.append(ProbeResult(box, score, candidates, analyzed.rejection))
        return results

    def verify(
        self,
        image: bytes,
        *,
        reference_image: bytes | None = None,
        gallery: str = "",
        external_id: str = "",
        threshold: float | None = None,
        target_far: float | None = None,
        timeout: float | None = None,
    ) -> VerifyResult:
        """Is the largest face of `image` the same person as the reference?"""
        if (reference_image is None) == (not external_id):
            raise InvalidRequestError("give exactly one reference: reference_image or external_id")
        with _deadline_scope(timeout):
            info = self._usable_gallery(gallery) if gallery else None
            if external_id and info is None:
                raise InvalidRequestError("external_id needs a gallery")
            limit = self._decision_threshold(info, "verify", threshold, target_far)
            probe, probe_scale = self._largest_face(image, info)
            if reference_image is not None:
                return self._verify_images(probe, probe_scale, reference_image, info, limit)
            return self._verify_identity(probe, probe_scale, gallery, external_id, limit)

    def _verify_images(
        self,
        probe: AnalyzedFace | Rejection,
        probe_scale: float,
        reference_image: bytes,
        info: GalleryInfo | None,
        limit: float,
    ) -> VerifyResult:
        reference, reference_scale = self._largest_face(reference_image, info)
        refusal = next((r for r in (probe, reference) if isinstance(r, Rejection)), None)
        if refusal is not None:
            return VerifyResult(0.0, False, limit, rejection=refusal)
        assert isinstance(probe, AnalyzedFace) and isinstance(reference, AnalyzedFace)
        score = float(np.dot(probe.embedding, reference.embedding))
        return VerifyResult(
            score,
            score >= limit,
            limit,
            probe_box=_box(probe, probe_scale),
            reference_box=_box(reference, reference_scale),
        )

    def _verify_identity(
        self,
        probe: AnalyzedFace | Rejection,
        probe_scale: float,
        gallery: str,
        external_id: str,
        limit: float,
    ) -> VerifyResult:
        identity = self.get_identity(gallery, external_id)  # NOT_FOUND before anything else
        if isinstance(probe, Rejection):
            return VerifyResult(0.0, False, limit, rejection=probe)
        best = self._best_face_of(gallery, identity, probe.embedding)
        if best is None:
            return VerifyResult(0.0, False, limit, probe_box=_box(probe, probe_scale))
        return VerifyResult(
            float(best.score),
            best.score >= limit,
            limit,
            probe_box=_box(probe, probe_scale),
            reference_face_id=best.face_id,
        )

    def _best_face_of(
        self, gallery: str, identity: IdentityInfo, embedding: np.ndarray
    ) -> Hit | None:
        """The identity's face most similar to `embedding`.

        Searching with k = the gallery's size returns every face, so every face of the
        identity is among the hits (exact on a flat index; as good as the index otherwise).
        """
        with _store_errors():
            size = self.catalog.get_gallery(gallery).face_count
        row = self._search(gallery, embedding[None], k=max(size, 1))[0]
        return next((h for h in row if h.external_id == identity.external_id), None)

    def _largest_face(
        self, image: bytes, info: GalleryInfo | None
    ) -> tuple[AnalyzedFace | Rejection, float]:
        decoded = self._decode(image, None)
        policy = self._policy(info, "search") if info is not None else self.search_policy
        analysis = self._analyze(decoded.pixels, policy=policy, select="largest")
        if analysis.rejection is not None:
            self.observer.rejection(str(analysis.rejection.reason))
            return analysis.rejection, decoded.scale
        return analysis.accepted[0], decoded.scale

    # -------------------------------------------------------------- identities

    def get_identity(self, gallery: str, external_id: str) -> IdentityInfo:
        _require(gallery, "gallery")
        _require(external_id, "external_id")
        with _store_errors():
            return self.catalog.get_identity(gallery, external_id)

    def list_identities(
        self, gallery: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[IdentityInfo], str]:
        _require(gallery, "gallery")
        if page_size < 0:
            raise InvalidRequestError("page_size must not be negative")
        with _store_errors():
            items, token = self.catalog.list_identities(gallery, page_size or 100, page_token)
        return list(items), token or ""

    def update_identity(
        self,
        gallery: str,
        external_id: str,
        *,
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> IdentityInfo:
        current = self.get_identity(gallery, external_id)
        if metadata is not None and not replace_metadata:
            metadata = {**current.metadata, **metadata}
        with _store_errors():
            self.catalog.update_identity(gallery, external_id, display_name, metadata)
            return self.catalog.get_identity(gallery, external_id)

    def delete_identity(self, gallery: str, external_id: str) -> int:
        _require(gallery, "gallery")
        _require(external_id, "external_id")
        with self._write_lock(gallery), _store_errors():
            return int(self.catalog.delete_identity(gallery, external_id))

    def delete_face(self, gallery: str, face_id: int) -> None:
        _require(gallery, "gallery")
        if face_id <= 0:
            raise InvalidRequestError("face_id must be a positive face id")
        with self._write_lock(gallery), _store_errors():
            self.catalog.delete_face(gallery, face_id)

    def stats(self) -> list[GalleryStats]:
        with _store_errors():
            return [
                GalleryStats(
                    g.name,
                    g.identity_count,
                    g.face_count,
                    ModelInfo(g.model_name, g.model_sha256, g.dim),
                )
                for g in self.catalog.list_galleries()
            ]

    def reindex(self, gallery: str, recognizer: str) -> Gallery:
        """Re-embed a gallery's stored crops with another recognizer and switch to it."""
        embedder = load_embedder(recognizer, threads=self.settings.ort_threads)
        model = ModelInfo(embedder.name, embedder.sha256, int(embedder.dim))
        with self._write_lock(gallery), _store_errors():
            self.catalog.reindex(gallery, model=model, embed_crops=_crop_embedder(embedder))
            return self._gallery_view(self.catalog.get_gallery(gallery))

    def close(self) -> None:
        """Flush index snapshots and close the database."""
        self.catalog.close()

    # ----------------------------------------------------------------- helpers

    def _gallery_view(self, info: GalleryInfo) -> Gallery:
        return Gallery(
            name=info.name,
            model=ModelInfo(info.model_name, info.model_sha256, info.dim),
            thresholds=Thresholds(
                identify=self._identify_threshold(info),
                verify=self._verify_threshold(info),
                duplicate=self._duplicate_threshold(info),
            ),
            gates=GatePolicyOptions.from_json(_policy_json(info).get("gates")),
            store_crops=info.store_crops,
            identity_count=info.identity_count,
            face_count=info.face_count,
        )

    def _usable_gallery(self, name: str) -> GalleryInfo:
        """The gallery, refused when its vectors come from another model than the loaded one."""
        _require(name, "gallery")
        with _store_errors():
            info = self.catalog.get_gallery(name)
        if info.model_sha256 != self.model.sha256 or info.dim != self.model.dim:
            raise FailedPreconditionError(
                f"gallery {name!r} holds embeddings of {info.model_name} "
                f"(sha256 {info.model_sha256[:12]}…, dim {info.dim}) but this server runs "
                f"{self.model.name} (sha256 {self.model.sha256[:12]}…, dim {self.model.dim}); "
                "start the server with that recognizer or reindex the gallery"
            )
        return info

    def _check_requested_model(self, requested: str) -> None:
        if not requested:
            return
        loaded = {self.model.name.lower(), self.model.sha256.lower()}
        if requested.lower() in loaded or _spec_matches(requested, self.model):
            return
        raise FailedPreconditionError(
            f"embedding model {requested!r} is not loaded; this server runs {self.model.name} "
            f"(sha256 {self.model.sha256[:12]}…): leave embedding_model empty or restart "
            "the server with --recognizer"
        )

    def _validate_gates(self, gates: GatePolicyOptions) -> None:
        no_liveness = getattr(self.pipeline.gates, "liveness", None) is None
        if no_liveness and (gates.enrollment_liveness or gates.search_liveness):
            raise FailedPreconditionError(
                "the gallery asks for a liveness check but this server has no liveness "
                "model: start it with --liveness"
            )
        for stage, overrides in (("enrollment", gates.enrollment), ("search", gates.search)):
            base = self.enrollment_policy if stage == "enrollment" else self.search_policy
            _apply_overrides(base, overrides, stage)

    def _policy(self, info: GalleryInfo | None, stage: str) -> Any:
        base = self.enrollment_policy if stage == "enrollment" else self.search_policy
        if info is None or base is None:
            return base
        options = GatePolicyOptions.from_json(_policy_json(info).get("gates"))
        overrides = dict(options.enrollment if stage == "enrollment" else options.search)
        liveness = options.enrollment_liveness if stage == "enrollment" else options.search_liveness
        policy = _apply_overrides(base, overrides, stage)
        return _with_liveness(policy, liveness)

    def calibration(self, model_sha256: str) -> Calibration | None:
        """The model's calibration file, looked up once (None: the measured defaults apply)."""
        if model_sha256 not in self._calibrations:
            self._calibrations[model_sha256] = self._calibration_lookup(model_sha256)
        return self._calibrations[model_sha256]

    def _identify_threshold(self, info: GalleryInfo) -> float:
        if info.settings.match_threshold is not None:
            return float(info.settings.match_threshold)
        calibration = self.calibration(info.model_sha256)
        if calibration is None:
            return self.settings.identify_threshold
        # FPIR grows with the gallery, so the calibrated threshold depends on its size.
        return calibration.default_identify_threshold(max(info.face_count, 1))

    def _verify_threshold(self, info: GalleryInfo | None) -> float:
        stored = None if info is None else _policy_json(info).get("verify_threshold")
        if stored is not None:
            return float(stored)
        calibration = self.calibration(self.model.sha256 if info is None else info.model_sha256)
        if calibration is None:
            return self.settings.verify_threshold
        return calibration.default_verify_threshold()

    def _duplicate_threshold(self, info: GalleryInfo) -> float:
        if info.settings.duplicate_threshold is not None:
            return float(info.settings.duplicate_threshold)
        return self.settings.duplicate_threshold

    def _decision_threshold(
        self, info: GalleryInfo | None, kind: str, threshold: float | None, rate: float | None
    ) -> float:
        """An explicit threshold, else one for a target error rate, else the gallery's."""
        if threshold is not None:
            _check_unit("threshold", threshold)
            return float(threshold)
        if rate is not None:
            return self._threshold_for_rate(info, kind, rate)
        if kind == "identify" and info is not None:
            return self._identify_threshold(info)
        return self._verify_threshold(info)

    def _threshold_for_rate(self, info: GalleryInfo | None, kind: str, rate: float) -> float:
        name = "FPIR" if kind == "identify" else "FAR"
        if not 0.0 < rate < 1.0:
            raise InvalidRequestError(f"target {name} must be between 0 and 1, got {rate}")
        sha256 = self.model.sha256 if info is None else info.model_sha256
        calibration = self.calibration(sha256)
        if calibration is None:
            raise FailedPreconditionError(
                f"no calibration file for model sha256 {sha256[:12]}…, so a target {name} "
                "cannot be turned into a threshold; pass an explicit threshold or add one "
                "(FACEDB_CALIBRATION_DIRS)"
            )
        if kind == "identify" and info is not None:
            return calibration.threshold_for_fpir(rate, max(info.face_count, 1))
        return calibration.threshold_for_far(rate)

    def _analyze(
        self, pixels: np.ndarray, *, policy: GatePolicy | None, select: Selection
    ) -> Analysis:
        try:
            return self.pipeline.analyze(pixels, policy=policy, select=select)
        except GateConfigError as error:
            raise FailedPreconditionError(str(error)) from error

    def _search(self, gallery: str, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        with self._stages.run("search"), _store_errors():
            return self.catalog.search(gallery, np.asarray(vectors, np.float32), k)

    def _decode(self, data: bytes, index: int | None) -> DecodedImage:
        if not data:
            where = "" if index is None else f" (image {index})"
            raise InvalidRequestError(f"empty image{where}: send the image file's bytes")
        if len(data) > self.settings.max_image_bytes:
            where = "image" if index is None else f"image {index}"
            raise InvalidRequestError(
                f"{where} is {len(data):,} bytes; the limit is "
                f"{self.settings.max_image_bytes:,} bytes (max_image_bytes)"
            )
        with self._stages.run("decode"):
            try:
                return load_image(
                    data, max_pixels=self.settings.max_image_pixels, max_side=MAX_IMAGE_SIDE
                )
            except ImageError as error:
                where = "" if index is None else f"image {index}: "
                raise InvalidRequestError(f"{where}{error}") from error

    def _find_identity(self, gallery: str, external_id: str) -> IdentityInfo | None:
        try:
            return self.catalog.get_identity(gallery, external_id)
        except NotFoundError:
            return None

    @contextmanager
    def _write_lock(self, gallery: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._write_locks.setdefault(gallery, threading.Lock())
        with lock:
            yield


# ------------------------------------------------------------------- pure helpers


def _require(value: str, what: str) -> None:
    if not value:
        raise InvalidRequestError(f"missing {what}")


def _check_unit(name: str, value: float) -> None:
    if not -1.0 <= value <= 1.0:
        raise InvalidRequestError(f"{name} is a cosine similarity in [-1, 1], got {value}")


def _check_thresholds(thresholds: Thresholds) -> None:
    for item in fields(thresholds):
        value = getattr(thresholds, item.name)
        if value is not None:
            _check_unit(f"{item.name} threshold", value)


def _top_k(top_k: int) -> int:
    if top_k < 0:
        raise InvalidRequestError("top_k must not be negative")
    return min(top_k or DEFAULT_TOP_K, MAX_TOP_K)


def _policy_json(info: GalleryInfo) -> dict[str, Any]:
    return dict(info.settings.gate_policy or {})


def _apply_overrides(base: GatePolicy | None, overrides: dict[str, float], stage: str) -> Any:
    if not overrides:
        return base
    if base is None:
        raise InvalidRequestError(f"this server runs no {stage} gates to override")
    try:
        return GatePolicy.from_dict(overrides, base)
    except ValueError as error:
        raise InvalidRequestError(f"{stage} gate policy: {error}") from error


def _with_liveness(policy: GatePolicy | None, liveness: bool | None) -> GatePolicy | None:
    if liveness is None or policy is None:
        return policy
    return replace(policy, require_liveness=liveness)


def _spec_matches(requested: str, model: ModelInfo) -> bool:
    """Whether a model spec string names the loaded file (compared by content hash)."""
    from facedb.models import resolve_model
    from facedb.models.store import ModelUnavailableError
    from facedb.vision.embed import file_sha256

    try:
        return file_sha256(resolve_model(requested, download=False).path) == model.sha256
    except (ValueError, OSError, ModelUnavailableError):
        return False  # a model that is not even here is certainly not the loaded one


def _merged(
    existing: IdentityInfo | None, metadata: dict[str, Any] | None
) -> dict[str, Any] | None:
    if not metadata:
        return None if existing is None else dict(existing.metadata)
    return {**(existing.metadata if existing else {}), **metadata}


def _outcomes(
    prepared: list[_Prepared], written: list[_Prepared], face_ids: list[int]
) -> list[ImageOutcome]:
    ids = {p.index: face_id for p, face_id in zip(written, face_ids, strict=True)}
    results = []
    for p in prepared:
        if p.outcome is not None:
            results.append(p.outcome)
            continue
        assessment = p.face.assessment if p.face is not None else None
        results.append(
            ImageOutcome(
                p.index,
                face_id=ids[p.index],
                quality=_quality_score(assessment),
                liveness=_liveness(assessment),
            )
        )
    return results


def _best_per_identity(hits: Sequence[Hit], threshold: float) -> list[Candidate]:
    """Each identity once, with its best face's score, best first, at or above threshold."""
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.score >= threshold and (
            hit.external_id not in best or hit.score > best[hit.external_id].score
        ):
            best[hit.external_id] = hit
    ranked = sorted(best.values(), key=lambda h: h.score, reverse=True)
    return [
        Candidate(h.external_id, h.display_name, float(h.score), h.face_id, dict(h.metadata or {}))
        for h in ranked
    ]


def _box(face: AnalyzedFace, scale: float) -> tuple[float, float, float, float]:
    box = face.face.scaled(1.0 / scale).box
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _png(crop: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", crop)
    if not ok:
        raise RuntimeError("could not encode the aligned crop as PNG")
    return encoded.tobytes()


def _quality_dict(assessment: FaceAssessment | None) -> dict[str, Any] | None:
    """Every measured signal, stored with the face (the gates may change; the facts don't)."""
    return None if assessment is None else assessment.quality.to_dict()


def _quality_score(assessment: FaceAssessment | None) -> float | None:
    """The learned quality score, when the server runs a quality model."""
    return None if assessment is None else assessment.quality.learned_quality


def _liveness(assessment: FaceAssessment | None) -> float | None:
    return None if assessment is None else assessment.liveness


def _crop_embedder(embedder: Embedder) -> Callable[[list[bytes]], np.ndarray]:
    """Stored PNG crops → embeddings with another recognizer (for reindex)."""

    def embed(crops: list[bytes]) -> np.ndarray:
        images = [cv2.imdecode(np.frombuffer(c, np.uint8), cv2.IMREAD_COLOR) for c in crops]
        return embedder.embed(np.stack(images))

    return embed


# --------------------------------------------------------------------------- factory


def open_engine(settings: Settings, observer: Observer | None = None) -> Engine:
    """The engine the server runs: models from the settings, catalog in the data dir.

    onnxruntime threads per session are `settings.ort_threads`, so that the request
    workers times the threads never oversubscribe the cores. The embedded SQLite database
    is migrated on open; another database must be migrated with `facedb migrate`.
    """
    from facedb.vision.detect import load_detector

    threads = settings.ort_threads
    detector = load_detector(settings.detector, threads=threads)
    embedder = load_embedder(settings.recognizer, threads=threads)
    gates, enrollment, search = _load_gates(settings, threads)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backend = open_backend(
        settings.index_backend, settings.milvus_uri, consistency=settings.milvus_consistency
    )
    catalog = Catalog.open(settings.resolved_database_url, settings.index_dir, backend=backend)
    if settings.change_poll_interval > 0:
        catalog.follow(settings.change_poll_interval)
    return Engine(
        FacePipeline(detector, embedder, gates),
        catalog,
        settings=settings,
        enrollment_policy=enrollment,
        search_policy=search,
        observer=observer,
    )


def _load_gates(settings: Settings, threads: int) -> tuple[FaceGates, GatePolicy, GatePolicy]:
    """(gates, enrollment policy, search policy); liveness only when a model is configured."""
    specs = [spec for spec in settings.liveness.split(";") if spec.strip()]
    gates = FaceGates.from_specs(specs, settings.quality_model or None, threads)
    enrollment = GatePolicy.enrollment()
    if gates.liveness is None:
        # The enrollment policy demands liveness; without a model the gates would refuse
        # every face, so the check is off and the log says so.
        log.warning("no liveness model configured (--liveness): enrollment skips liveness")
        enrollment = replace(enrollment, require_liveness=False)
    return gates, enrollment, GatePolicy.search()
