"""Gallery and identity management: create, show, list, delete; identities and faces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facedb.engine.analysis import checked_attributes
from facedb.engine.core import EngineCore
from facedb.engine.errors import (
    FailedPreconditionError,
    InvalidRequestError,
    NotFoundEngineError,
    require,
    store_errors,
)
from facedb.engine.policy import gallery_settings
from facedb.engine.results import (
    DEFAULT_THRESHOLDS,
    NO_GATE_OVERRIDES,
    Deletion,
    Gallery,
    GalleryStats,
    GatePolicyOptions,
    Thresholds,
)
from facedb.engine.validation import check_display_name, check_metadata, check_new_gallery_name
from facedb.storage.records import (
    GalleryConfig,
    GalleryInfo,
    IdentityInfo,
    ModelInfo,
)
from facedb.vision.analysis import FaceAnalyzer


class GalleryAdmin:
    """Galleries: their settings, as this server applies them, and their sizes."""

    def __init__(self, core: EngineCore, analyzer: FaceAnalyzer | None = None) -> None:
        self.core = core
        self.analyzer = analyzer or FaceAnalyzer({})

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
        """`stored_attributes`: names measured on each accepted face at enrollment and
        stored with it; this server must run their models (FAILED_PRECONDITION if not)."""
        check_new_gallery_name(name)
        self._check_requested_model(embedding_model)
        self.core.policies.check_options(gates, thresholds)
        stored = checked_attributes(self.analyzer, stored_attributes)
        model = self.core.model
        config = GalleryConfig(
            name=name,
            model_name=model.name,
            model_sha256=model.sha256,
            dim=model.dim,
            settings=gallery_settings(gates, thresholds),
            store_crops=store_crops,
            stored_attributes=stored,
        )
        with store_errors():
            self.core.catalog.create_gallery(config)
        return self.get_gallery(name)

    def get_gallery(self, name: str) -> Gallery:
        require(name, "gallery name")
        with store_errors():
            return self.view(self.core.catalog.get_gallery(name))

    def list_galleries(self) -> list[Gallery]:
        with store_errors():
            return [self.view(info) for info in self.core.catalog.list_galleries()]

    def delete_gallery(self, name: str) -> None:
        require(name, "gallery name")
        with store_errors():
            self.core.catalog.delete_gallery(name)

    def stats(self) -> list[GalleryStats]:
        with store_errors():
            galleries = self.core.catalog.list_galleries()
        live = self.core.catalog.live  # this process's index: (model sha256, kind, size)
        return [
            GalleryStats(g.name, g.identity_count, g.face_count, _model_of(g), *live(g.name))
            for g in galleries
        ]

    def view(self, info: GalleryInfo) -> Gallery:
        """The gallery as the API shows it: effective thresholds, stored gate overrides."""
        policy = self.core.policies.for_gallery(info)
        return Gallery(
            name=info.name,
            model=_model_of(info),
            thresholds=policy.thresholds,
            gates=policy.gates,
            store_crops=info.store_crops,
            identity_count=info.identity_count,
            face_count=info.face_count,
            stored_attributes=info.stored_attributes,
        )

    def _check_requested_model(self, requested: str) -> None:
        if not requested:
            return
        model = self.core.model
        if requested.lower() in {model.name.lower(), model.sha256.lower()}:
            return
        if _spec_names_file(requested, model.sha256):
            return
        raise FailedPreconditionError(
            f"embedding model {requested!r} is not loaded; this server runs {model.name} "
            f"(sha256 {model.sha256[:12]}…): leave embedding_model empty or restart "
            "the server with --recognizer"
        )


class IdentityAdmin:
    """Identities and their faces: show, list, update, delete."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core

    def get_identity(self, gallery: str, external_id: str) -> IdentityInfo:
        require(gallery, "gallery")
        require(external_id, "external_id")
        with store_errors():
            return self.core.catalog.get_identity(gallery, external_id)

    def list_identities(
        self, gallery: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[IdentityInfo], str]:
        require(gallery, "gallery")
        if page_size < 0:
            raise InvalidRequestError("page_size must not be negative")
        with store_errors():
            items, token = self.core.catalog.list_identities(gallery, page_size or 100, page_token)
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
        check_display_name(display_name)
        current = self.get_identity(gallery, external_id)
        if metadata is not None and not replace_metadata:
            metadata = {**current.metadata, **metadata}
        check_metadata(metadata)
        with store_errors():
            return self.core.catalog.update_identity(gallery, external_id, display_name, metadata)

    def delete_identity(self, gallery: str, external_id: str) -> int:
        return self.erase_identity(gallery, external_id).faces_removed

    def erase_identity(self, gallery: str, external_id: str) -> Deletion:
        """Delete an identity and its faces; the count and the change sequence."""
        require(gallery, "gallery")
        require(external_id, "external_id")
        with store_errors():
            erased = self.core.catalog.erase_identity(gallery, external_id)
        return Deletion(erased.faces_removed, erased.sequence)

    def delete_face(self, gallery: str, face_id: int) -> Deletion:
        require(gallery, "gallery")
        if face_id <= 0:
            raise InvalidRequestError("face_id must be a positive face id")
        with store_errors():
            return Deletion(1, self.core.catalog.delete_face(gallery, face_id))

    def face_crop(self, gallery: str, face_id: int) -> bytes:
        """The stored aligned crop of one face (PNG, 112x112); NOT_FOUND when none is kept."""
        require(gallery, "gallery")
        if face_id <= 0:
            raise InvalidRequestError("face_id must be a positive face id")
        with store_errors():
            crop = self.core.catalog.get_crop(gallery, face_id)
        if crop is None:
            raise NotFoundEngineError(f"face {face_id} has no stored crop (store_crops is off)")
        return crop


def _model_of(info: GalleryInfo) -> ModelInfo:
    return ModelInfo(info.model_name, info.model_sha256, info.dim)


def _spec_names_file(requested: str, sha256: str) -> bool:
    """Whether a model spec string names the loaded file (compared by content hash)."""
    from facedb.models import resolve_model
    from facedb.models.store import ModelUnavailableError
    from facedb.vision.embed import file_sha256

    try:
        return file_sha256(resolve_model(requested, download=False).path) == sha256
    except (ValueError, OSError, ModelUnavailableError):
        return False  # a model that is not even here is certainly not the loaded one
