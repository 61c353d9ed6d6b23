"""What every use case shares: the pipeline, the catalog, the policies, the stage clock.

Also the steps every use case takes the same way: finding a gallery this server can
serve, decoding an image within the configured limits, analysing it, searching.
"""

from __future__ import annotations

import time

import numpy as np

from facedb.config import Settings
from facedb.engine.errors import (
    FailedPreconditionError,
    InvalidRequestError,
    ReplicaLagError,
    require,
    store_errors,
)
from facedb.engine.filters import AttributeFilter, matching, overfetched
from facedb.engine.policy import PolicyBook
from facedb.engine.recognizers import Recognizers
from facedb.engine.telemetry import Telemetry, current_deadline
from facedb.storage.catalog import Catalog
from facedb.storage.records import GalleryInfo, Hit, ModelInfo
from facedb.vision.gates import GateConfigError, GatePolicy
from facedb.vision.image import DecodedImage, ImageError, load_image
from facedb.vision.pipeline import Analysis, FacePipeline, Selection

# Detectors work on a ~640 px canvas: pixels beyond this side only cost memory and time.
MAX_IMAGE_SIDE = 4096
# Read-your-writes waits at most this long for the index to apply a change (a replica that
# lags more is better skipped by the caller), and stops this much before the call's
# deadline so that the caller hears why (UNAVAILABLE) rather than its own timeout.
MAX_SEQUENCE_WAIT_S = 10.0
SEQUENCE_WAIT_MARGIN_S = 0.05


class EngineCore:
    """The engine's parts; one per engine, shared by its use cases (thread-safe)."""

    def __init__(
        self,
        pipeline: FacePipeline,
        catalog: Catalog,
        settings: Settings,
        policies: PolicyBook,
        telemetry: Telemetry,
    ) -> None:
        self.pipeline = pipeline
        self.catalog = catalog
        self.settings = settings
        self.policies = policies
        self.telemetry = telemetry
        self.recognizers = Recognizers(pipeline, settings.ort_threads)
        self.model: ModelInfo = self.recognizers.model  # the one the server was started with
        # A gallery switching to another model (a reindex anywhere): load it beforehand.
        catalog.before_switch(self._preload)

    def usable_gallery(self, name: str) -> GalleryInfo:
        """The gallery, refused when its model is not the loaded one and no local file of
        that SHA-256 can be loaded beside it (facedb.engine.recognizers)."""
        require(name, "gallery")
        with store_errors():
            info = self.catalog.get_gallery(name)
        self.recognizers.for_gallery(info)
        return info

    def writer_pipeline(self, info: GalleryInfo) -> FacePipeline:
        """The pipeline new faces of the gallery are embedded with: its SQL row's model."""
        return self.recognizers.for_gallery(info)

    def probe_pipeline(self, info: GalleryInfo) -> FacePipeline:
        """The pipeline probes of the gallery are embedded with: the model of this process's
        live index (the old one until a switch to another model is installed here)."""
        with store_errors():
            serving = self.catalog.serving_model(info.name)
        if serving == info.model_sha256:
            return self.recognizers.for_gallery(info)
        return self.recognizers.for_sha256(serving)

    def _preload(self, model_sha256: str) -> None:
        self.recognizers.for_sha256(model_sha256)

    def decode(self, data: bytes, index: int | None, name: str = "") -> DecodedImage:
        """An uploaded image within the size limits; `index` (and the client's `name` for
        it) say which image in a multi-image call."""
        where = image_label(index, name)
        if not data:
            raise InvalidRequestError(f"empty {where}: send the image file's bytes")
        limit = self.settings.max_image_bytes
        if len(data) > limit:
            raise InvalidRequestError(
                f"{where} is {len(data):,} bytes; the limit is {limit:,} bytes (max_image_bytes)"
            )
        with self.telemetry.stage("decode"):
            try:
                return load_image(
                    data, max_pixels=self.settings.max_image_pixels, max_side=MAX_IMAGE_SIDE
                )
            except ImageError as error:
                raise InvalidRequestError(f"{where}: {error}") from error

    def analyze(
        self,
        pixels: np.ndarray,
        policy: GatePolicy | None,
        select: Selection,
        pipeline: FacePipeline | None = None,
    ) -> Analysis:
        try:
            return (pipeline or self.pipeline).analyze(pixels, policy=policy, select=select)
        except GateConfigError as error:
            raise FailedPreconditionError(str(error)) from error

    def wait_for_sequence(self, gallery: str, min_sequence: int) -> None:
        """Read-your-writes: return once this server's index of `gallery` has applied the
        change `min_sequence` (0: at once); ReplicaLagError if it cannot in time."""
        if min_sequence <= 0:
            return
        budget = MAX_SEQUENCE_WAIT_S
        expires = current_deadline()
        if expires is not None:
            budget = min(budget, expires - time.monotonic() - SEQUENCE_WAIT_MARGIN_S)
        with self.telemetry.stage("catch_up"), store_errors():
            caught_up = self.catalog.wait_for(gallery, min_sequence, max(0.0, budget))
        if not caught_up:
            raise ReplicaLagError(
                f"replica lags: gallery {gallery!r} has not applied change {min_sequence} "
                f"within {max(0.0, budget):.2f} s; retry later or on another replica"
            )

    def search(
        self, gallery: str, vectors: np.ndarray, k: int, model_sha256: str | None = None
    ) -> list[list[Hit]]:
        """The index search, then its labels (in memory: two stages, timed apart).
        `model_sha256`: the model of `vectors`; ModelSwitchedError when the live index
        switched to another since the probe was embedded (the caller embeds again)."""
        with self.telemetry.stage("search"), store_errors():
            nearest = self.catalog.nearest(
                gallery, np.asarray(vectors, np.float32), k, model_sha256=model_sha256
            )
        with self.telemetry.stage("labels"):
            return nearest.hits()

    def filtered_search(
        self,
        gallery: str,
        vectors: np.ndarray,
        k: int,
        filters: tuple[AttributeFilter, ...],
        model_sha256: str | None = None,
    ) -> list[list[Hit]]:
        """`search`, keeping only faces whose stored attributes match every filter
        (post-filtering an overfetched search: see facedb.engine.filters)."""
        if not filters:
            return self.search(gallery, vectors, k, model_sha256)
        rows = self.search(gallery, vectors, overfetched(k, filters), model_sha256)
        with self.telemetry.stage("filter"), store_errors():
            stored = self.catalog.face_attributes(gallery, [h.face_id for r in rows for h in r])
        return [matching(row, stored, filters) for row in rows]


def image_label(index: int | None, name: str = "") -> str:
    """How messages name an image: "image", "image 2", or "image 2 (door.jpg)"."""
    label = "image" if index is None else f"image {index}"
    return f"{label} ({name})" if name else label
