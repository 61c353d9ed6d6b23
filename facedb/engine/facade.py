"""`Engine`: the one object the service, the CLI and the HTTP API call.

It only wires the use cases together and forwards to them; each request's logic lives in
`enroll`, `search`, `galleries` and `reindex`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from facedb.calibration import Calibration, load_calibration
from facedb.config import Settings
from facedb.engine.analysis import AnalyzeResult, ClusterResult, FaceAnalysis, SearchFacesResult
from facedb.engine.core import EngineCore
from facedb.engine.enroll import Enrollment
from facedb.engine.errors import require, store_errors
from facedb.engine.filters import AttributeFilter
from facedb.engine.galleries import GalleryAdmin, IdentityAdmin
from facedb.engine.policy import PolicyBook
from facedb.engine.reindex import (
    DEFAULT_BATCH_SIZE,
    Progress,
    RunningReindexes,
    check_reindex_request,
    load_recognizer,
    reindex_gallery,
)
from facedb.engine.results import (
    DEFAULT_THRESHOLDS,
    NO_GATE_OVERRIDES,
    Deletion,
    EnrollItem,
    EnrollResult,
    Gallery,
    GalleryStats,
    GatePolicyOptions,
    IdentifyResult,
    Thresholds,
    VerifyResult,
)
from facedb.engine.search import Identification, Verification
from facedb.engine.telemetry import Observer, Telemetry
from facedb.storage.catalog import Catalog
from facedb.storage.records import IdentityInfo, ModelInfo
from facedb.vision.analysis import FaceAnalyzer
from facedb.vision.batching import EmbeddingBatcher
from facedb.vision.gates import GatePolicy
from facedb.vision.pipeline import FacePipeline


class Engine:
    """Face search over one loaded embedding model; thread-safe.

    The pipeline runs with the engine's stage hook: every step is timed through the
    observer and refused once the request's deadline has passed.
    """

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
        analyzer: FaceAnalyzer | None = None,
        batcher: EmbeddingBatcher | None = None,
    ):
        settings = settings or Settings()
        self._telemetry = Telemetry(observer)
        liveness = getattr(pipeline.gates, "liveness", None) is not None
        policies = PolicyBook(settings, enrollment_policy, search_policy, calibration, liveness)
        staged = pipeline.with_stage(self._telemetry.stage)
        self._core = EngineCore(staged, catalog, settings, policies, self._telemetry)
        self._galleries = GalleryAdmin(self._core, analyzer)
        self._identities = IdentityAdmin(self._core)
        self._enrollment = Enrollment(self._core, analyzer)
        self._identification = Identification(self._core, analyzer)
        self._verification = Verification(self._core)
        self._analysis = FaceAnalysis(self._core, analyzer)
        # What the engine runs (read-only views of its parts).
        self.settings = settings
        self.catalog = catalog
        self.pipeline = staged
        self.model: ModelInfo = self._core.model
        self.enrollment_policy = enrollment_policy
        self.search_policy = search_policy
        # The micro-batcher the pipeline embeds through, if any: the engine stops it on close.
        self.batcher = batcher
        self._reindexes = RunningReindexes()

    @property
    def observer(self) -> Observer:
        return self._telemetry.observer

    def observe(self, observer: Observer) -> None:
        """Send stage timings and refusals to `observer` from now on."""
        self._telemetry.observer = observer

    def calibration(self, model_sha256: str) -> Calibration | None:
        """The model's calibration file, looked up once (None: the measured defaults apply)."""
        return self._core.policies.calibration(model_sha256)

    # ---- galleries ------------------------------------------------------------------------

    def create_gallery(
        self,
        name: str,
        *,
        embedding_model: str = "",
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        gates: GatePolicyOptions = NO_GATE_OVERRIDES,
        store_crops: bool = True,
        stored_attributes: Sequence[str] = (),
    ) -> Gallery:
        """`stored_attributes`: attribute names (as for `analyze`) measured on each
        accepted face at enrollment and stored with it, for audit."""
        return self._galleries.create_gallery(
            name,
            embedding_model=embedding_model,
            thresholds=thresholds,
            gates=gates,
            store_crops=store_crops,
            stored_attributes=stored_attributes,
        )

    def get_gallery(self, name: str) -> Gallery:
        return self._galleries.get_gallery(name)

    def list_galleries(self) -> list[Gallery]:
        return self._galleries.list_galleries()

    def delete_gallery(self, name: str) -> None:
        self._galleries.delete_gallery(name)

    def stats(self) -> list[GalleryStats]:
        return self._galleries.stats()

    def reindex(
        self,
        gallery: str,
        recognizer: str | None = None,
        *,
        kind: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Progress | None = None,
    ) -> Gallery:
        """Rebuild the gallery's index; with `recognizer`, re-embed its stored crops with
        that model and switch the gallery to it. This engine serves it with that model from
        then on (other servers follow in the background). `progress` may raise to cancel:
        before the switch nothing changes. One reindex per gallery at a time (ABORTED)."""
        require(gallery, "gallery")
        check_reindex_request(recognizer, kind, batch_size)
        with self._reindexes.claim(gallery):
            with store_errors():
                self.catalog.get_gallery(gallery)  # NOT_FOUND before a model is loaded
            embedder = None
            if recognizer:
                embedder = load_recognizer(
                    recognizer, self.settings.ort_threads, self.settings.recognizer_graph
                )
                self._core.recognizers.add(embedder)  # probes after the switch need it
            info = reindex_gallery(
                self.catalog,
                gallery,
                kind=kind,
                batch_size=batch_size,
                progress=progress,
                embedder=embedder,
            )
        return self._galleries.view(info)

    # ---- enrollment and search ------------------------------------------------------------

    def enroll(self, item: EnrollItem, *, timeout: float | None = None) -> EnrollResult:
        """Enroll the accepted images of one identity (created if new); one outcome each."""
        return self._enrollment.enroll(item, timeout)

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
        attributes: Sequence[str] = (),
        min_sequence: int = 0,
        filters: Sequence[AttributeFilter] = (),
    ) -> IdentifyResult:
        """Candidates per probe face, best identity first; an empty list is "no match";
        `attributes` (names, as for `analyze`) are measured on every probe face; with
        `filters`, only faces whose stored attributes match them all are candidates."""
        return self._identification.identify(
            gallery,
            image,
            top_k=top_k,
            threshold=threshold,
            target_fpir=target_fpir,
            all_faces=all_faces,
            timeout=timeout,
            attributes=attributes,
            min_sequence=min_sequence,
            filters=filters,
        )

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
        min_sequence: int = 0,
    ) -> VerifyResult:
        """Is the largest face of `image` the same person as the reference (a second
        image, or an enrolled identity's stored faces)?"""
        return self._verification.verify(
            image,
            reference_image=reference_image,
            gallery=gallery,
            external_id=external_id,
            threshold=threshold,
            target_far=target_far,
            timeout=timeout,
            min_sequence=min_sequence,
        )

    # ---- analysis ---------------------------------------------------------------------------

    def analyze(
        self,
        image: bytes,
        attributes: Sequence[str] = (),
        *,
        gallery: str = "",
        timeout: float | None = None,
    ) -> AnalyzeResult:
        """Every face of `image` (box, landmarks, quality, liveness, search-gate verdict) and
        the attributes asked for by name; nothing is stored."""
        return self._analysis.analyze(image, attributes, gallery=gallery, timeout=timeout)

    def search_faces(
        self,
        gallery: str,
        *,
        face_id: int | None = None,
        embedding: Sequence[float] | None = None,
        top_k: int = 0,
        threshold: float | None = None,
        min_sequence: int = 0,
        timeout: float | None = None,
        filters: Sequence[AttributeFilter] = (),
    ) -> SearchFacesResult:
        """The enrolled faces nearest an enrolled face or a raw embedding, best first
        (once the index has applied change `min_sequence`, as for identify); with
        `filters`, only faces whose stored attributes match them all."""
        return self._analysis.search_faces(
            gallery,
            face_id=face_id,
            embedding=embedding,
            top_k=top_k,
            threshold=threshold,
            min_sequence=min_sequence,
            timeout=timeout,
            filters=filters,
        )

    def cluster_faces(
        self,
        *,
        gallery: str = "",
        face_ids: Sequence[int] = (),
        embeddings: Sequence[Sequence[float]] = (),
        threshold: float | None = None,
        neighbours: int = 0,
    ) -> ClusterResult:
        """Gallery faces or raw embeddings grouped into people, largest group first."""
        return self._analysis.cluster_faces(
            gallery=gallery,
            face_ids=face_ids,
            embeddings=embeddings,
            threshold=threshold,
            neighbours=neighbours,
        )

    # ---- identities -----------------------------------------------------------------------

    def get_identity(self, gallery: str, external_id: str) -> IdentityInfo:
        return self._identities.get_identity(gallery, external_id)

    def list_identities(
        self, gallery: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[IdentityInfo], str]:
        return self._identities.list_identities(gallery, page_size, page_token)

    def update_identity(
        self,
        gallery: str,
        external_id: str,
        *,
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> IdentityInfo:
        return self._identities.update_identity(
            gallery,
            external_id,
            display_name=display_name,
            metadata=metadata,
            replace_metadata=replace_metadata,
        )

    def delete_identity(self, gallery: str, external_id: str) -> int:
        return self._identities.delete_identity(gallery, external_id)

    def erase_identity(self, gallery: str, external_id: str) -> Deletion:
        """delete_identity, with the change sequence of the delete (read-your-writes)."""
        return self._identities.erase_identity(gallery, external_id)

    def delete_face(self, gallery: str, face_id: int) -> Deletion:
        return self._identities.delete_face(gallery, face_id)

    def face_crop(self, gallery: str, face_id: int) -> bytes:
        """The stored aligned crop of one face (PNG); NOT_FOUND when none is kept."""
        return self._identities.face_crop(gallery, face_id)

    def close(self) -> None:
        """Stop the embedding batcher, flush index snapshots and close the database."""
        if self.batcher is not None:
            self.batcher.close()
        self.catalog.close()
