"""The HTTP/JSON API: a route per facedb.v1 RPC, calling the engine directly.

ClusterFaces has two: a gallery's faces, and raw embeddings (no gallery).

Every route authorises through the same `Authorizer` as gRPC (same headers, roles,
galleries), runs CPU-bound work under the same `ConcurrencyLimiter` slots, and answers
errors with the gRPC status mapped to HTTP (facedb.http.errors). Images come as
multipart file parts or as base64 strings in a JSON body; `/openapi.json` describes both.
A caller's deadline is the `x-timeout-seconds` header (none: no deadline).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from facedb import engine as eng
from facedb.config import Settings
from facedb.engine.reindex import DEFAULT_BATCH_SIZE
from facedb.http import schemas as s
from facedb.http.console import mount_console
from facedb.http.errors import (
    detail_for,
    expected_error,
    http_error,
    invalid_request,
    validation_message,
)
from facedb.http.middleware import AccessLog, AuditTrail, BodyLimit
from facedb.http.openapi import ERROR_RESPONSES, document, image_body, json_body
from facedb.service.audit import AuditLog
from facedb.service.auth import AuthError, Authorizer, Principal
from facedb.service.keys import ManagedKeys
from facedb.service.limits import ConcurrencyLimiter, OverloadedError, SlotTimeoutError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# Multipart limits: enough for a batch of photos, bounded so a request cannot make the
# parser hold unbounded parts.
MAX_FORM_FILES = 64
MAX_FORM_FIELDS = 32
TIMEOUT_HEADER = "x-timeout-seconds"
SEQUENCE_HEADER = "x-facedb-sequence"  # a 204 delete's change sequence (for min_sequence)
_SEQUENCE_DOC = {
    "description": "the change-log sequence of the delete: pass it as min_sequence",
    "schema": {"type": "integer"},
}
# Multipart text fields that are lists (`attributes=age&attributes=gender`, or "age,gender").
LIST_FIELDS = frozenset({"attributes"})
# Multipart text fields repeated once per value, never split (file names may hold commas).
REPEATED_FIELDS = frozenset({"image_names"})
# File-part fields whose parts' file names fill a names field the client did not send.
FILE_NAME_FIELDS = {"images": "image_names"}
# Multipart text fields holding JSON (an object of strings; a list of attribute filters).
JSON_FIELDS = {"metadata": "a JSON object", "filters": "a JSON array"}


class HttpApi:
    """The routes' shared state: engine, authorizer, limiter and settings."""

    def __init__(
        self,
        engine: eng.Engine,
        authorizer: Authorizer,
        limiter: ConcurrencyLimiter,
        settings: Settings,
        keys: ManagedKeys,
    ):
        self.engine = engine
        self.authorizer = authorizer
        self.limiter = limiter
        self.settings = settings
        self.keys = keys

    def caller(
        self, request: Request, method: str, gallery: str = "", target: object = ""
    ) -> Principal:
        """Authorise the call (AuthError otherwise); remembered for the access and audit logs."""
        request.state.method = method
        request.state.gallery = gallery
        request.state.target = str(target)
        headers = {k.lower(): v for k, v in request.headers.items()}
        principal = self.authorizer.authenticate(headers)
        request.state.principal = principal  # known from here on, refused or not
        self.authorizer.check_role(principal, method)
        self.authorizer.check_gallery(principal, gallery)
        return principal

    async def cpu_bound(self, request: Request, work: Callable[[float | None], T]) -> T:
        """Run `work(remaining_seconds)` on a worker thread under a limiter slot."""
        timeout = _timeout(request)
        deadline = None if timeout is None else time.monotonic() + timeout

        def run() -> T:
            with self.limiter.slot(timeout):
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                return work(remaining)

        return await run_in_threadpool(run)


def create_app(
    engine: eng.Engine,
    authorizer: Authorizer,
    limiter: ConcurrencyLimiter,
    settings: Settings,
    keys: ManagedKeys,
    audit: AuditLog,
) -> FastAPI:
    api = HttpApi(engine, authorizer, limiter, settings, keys)
    app = FastAPI(
        title="facedb",
        version="1",
        summary="Face search: enroll, identify (1:N), verify (1:1)",
        docs_url=None,  # Swagger UI loads scripts from a CDN; the document is enough
        redoc_url=None,
        openapi_url=None,  # served below, with the image bodies filled in
    )
    app.state.api = api
    app.add_middleware(BodyLimit, max_bytes=settings.max_message_bytes)
    app.add_middleware(AuditTrail, audit=audit)
    app.add_middleware(AccessLog)
    for error_type in (eng.EngineError, AuthError, OverloadedError, SlotTimeoutError, Exception):
        app.add_exception_handler(error_type, expected_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.include_router(_gallery_routes(api))
    app.include_router(_enroll_routes(api))
    app.include_router(_search_routes(api))
    app.include_router(_identity_routes(api))
    app.include_router(_analysis_routes(api))
    app.include_router(_key_routes(api))

    mount_console(app)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return document(app)

    @app.get("/healthz", response_model=s.Health, tags=["health"])
    def healthz() -> s.Health:
        """Liveness of the HTTP server; needs no key."""
        return s.Health(status="SERVING")

    return app


def _router() -> APIRouter:
    return APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


# ------------------------------------------------------------------------ galleries


def _gallery_routes(api: HttpApi) -> APIRouter:
    router = _router()

    @router.post("/galleries", status_code=201, response_model=s.Gallery, tags=["galleries"])
    def create_gallery(request: Request, body: s.CreateGalleryBody) -> s.Gallery:
        """CreateGallery (admin)."""
        api.caller(request, "CreateGallery", body.name)
        gallery = api.engine.create_gallery(
            body.name,
            embedding_model=body.embedding_model,
            thresholds=eng.Thresholds(
                identify=body.thresholds.identify or None,
                verify=body.thresholds.verify or None,
                duplicate=body.thresholds.duplicate or None,
            ),
            gates=eng.GatePolicyOptions(
                enrollment=dict(body.gate_policy.enrollment_overrides),
                search=dict(body.gate_policy.search_overrides),
                enrollment_liveness=body.gate_policy.enrollment_liveness,
                search_liveness=body.gate_policy.search_liveness,
            ),
            store_crops=body.store_crops,
            stored_attributes=body.stored_attributes,
        )
        return s.gallery_out(gallery)

    @router.get("/galleries", response_model=s.GalleryList, tags=["galleries"])
    def list_galleries(request: Request) -> s.GalleryList:
        """ListGalleries: the galleries this key may access."""
        principal = api.caller(request, "ListGalleries")
        galleries = [g for g in api.engine.list_galleries() if principal.can_access(g.name)]
        return s.GalleryList(galleries=[s.gallery_out(g) for g in galleries])

    @router.get("/galleries/{gallery}", response_model=s.Gallery, tags=["galleries"])
    def get_gallery(request: Request, gallery: str) -> s.Gallery:
        """GetGallery."""
        api.caller(request, "GetGallery", gallery)
        return s.gallery_out(api.engine.get_gallery(gallery))

    @router.delete("/galleries/{gallery}", status_code=204, tags=["galleries"])
    def delete_gallery(request: Request, gallery: str) -> Response:
        """DeleteGallery (admin): the gallery and everything in it."""
        api.caller(request, "DeleteGallery", gallery)
        api.engine.delete_gallery(gallery)
        return Response(status_code=204)

    @router.post("/galleries/{gallery}/reindex", response_model=s.ReindexResult, tags=["galleries"])
    def reindex(request: Request, gallery: str, body: s.ReindexBody) -> s.ReindexResult:
        """Reindex (admin): rebuild the index, or re-embed with another recognizer and
        switch; answered once switched (the gRPC call streams progress)."""
        api.caller(request, "Reindex", gallery)
        done = api.engine.reindex(
            gallery,
            body.recognizer or None,
            kind=body.index_kind or None,
            batch_size=body.batch_size or DEFAULT_BATCH_SIZE,
        )
        return s.ReindexResult(gallery=s.gallery_out(done), faces_done=done.face_count)

    @router.get("/me", response_model=s.Caller, tags=["galleries"])
    def me(request: Request) -> s.Caller:
        """The calling key's role, galleries and permissions."""
        principal = api.caller(request, "GetCaller")
        return s.Caller(
            key_id=principal.key_id,
            role=principal.role,
            galleries=sorted(principal.galleries),
            view_crops=principal.view_crops,
        )

    @router.get("/stats", response_model=s.Stats, tags=["galleries"])
    def stats(request: Request) -> s.Stats:
        """GetStats over the galleries this key may access."""
        principal = api.caller(request, "GetStats")
        galleries = [g for g in api.engine.stats() if principal.can_access(g.name)]
        return s.stats_out(galleries, api.engine.model)

    return router


# ----------------------------------------------------------------------- enrollment


def _enroll_item(gallery: str, body: s.EnrollBody) -> eng.EnrollItem:
    return eng.EnrollItem(
        gallery=gallery,
        external_id=body.external_id,
        images=list(body.images),
        display_name=body.display_name or None,
        metadata=dict(body.metadata) or None,
        allow_multiple_faces=body.allow_multiple_faces,
        allow_duplicate=body.allow_duplicate,
        image_names=list(body.image_names),
        request_id=body.request_id,
    )


def _enroll_routes(api: HttpApi) -> APIRouter:
    router = _router()

    @router.post(
        "/galleries/{gallery}/enroll",
        response_model=s.EnrollResponse,
        tags=["enrollment"],
        openapi_extra=image_body(s.EnrollBody, {"images": True}),
    )
    async def enroll(request: Request, gallery: str) -> s.EnrollResponse:
        """Enroll one identity (created if new) from one or more photos; one outcome each."""
        api.caller(request, "Enroll", gallery)
        body = await _image_request(request, s.EnrollBody, {"images": True})
        request.state.target = body.external_id
        item = _enroll_item(gallery, body)
        result = await api.cpu_bound(request, lambda left: api.engine.enroll(item, timeout=left))
        return s.enroll_out(result)

    @router.post(
        "/galleries/{gallery}/enroll/batch",
        response_model=s.EnrollBatchResponse,
        tags=["enrollment"],
        openapi_extra=json_body(s.EnrollBatchBody),
    )
    async def enroll_batch(request: Request, gallery: str) -> s.EnrollBatchResponse:
        """EnrollStream: many identities in one JSON request (images base64); an item's
        failure is reported in its result, not raised."""
        api.caller(request, "EnrollStream", gallery)  # the key before the body is read
        body = await _image_request(request, s.EnrollBatchBody, {}, multipart=False)
        items = [
            await _batch_item(api, request, gallery, index, item)
            for index, item in enumerate(body.items)
        ]
        return s.EnrollBatchResponse(items=items, summary=s.summary_out(items))

    return router


async def _batch_item(
    api: HttpApi, request: Request, gallery: str, index: int, body: s.EnrollBody
) -> s.EnrollItemResult:
    item = _enroll_item(gallery, body)
    try:
        result = await api.cpu_bound(request, lambda left: api.engine.enroll(item, timeout=left))
    except Exception as error:
        detail = detail_for(error)
        if detail is None:
            raise
        return s.EnrollItemResult(
            index=index,
            external_id=body.external_id,
            created=False,
            replayed=False,
            outcomes=[],
            error=detail,
        )
    return s.EnrollItemResult(
        index=index,
        external_id=body.external_id,
        created=result.created,
        replayed=result.replayed,
        outcomes=[s.outcome_out(o) for o in result.outcomes],
        error=None,
    )


# --------------------------------------------------------------------------- search


def _search_routes(api: HttpApi) -> APIRouter:
    router = _router()

    @router.post(
        "/galleries/{gallery}/identify",
        response_model=s.IdentifyResponse,
        tags=["search"],
        openapi_extra=image_body(s.IdentifyBody, {"image": False}),
    )
    async def identify(request: Request, gallery: str) -> s.IdentifyResponse:
        """Identify (1:N): candidates per face, best identity first; empty = no match."""
        api.caller(request, "Identify", gallery)
        body = await _image_request(request, s.IdentifyBody, {"image": False})
        result = await api.cpu_bound(
            request,
            lambda left: api.engine.identify(
                gallery,
                body.image,
                top_k=body.top_k,
                threshold=body.threshold,
                target_fpir=body.target_fpir if body.threshold is None else None,
                all_faces=body.all_faces,
                timeout=left,
                attributes=body.attributes,
                min_sequence=body.min_sequence,
                filters=s.engine_filters(body.filters),
            ),
        )
        return s.identify_out(result)

    @router.post(
        "/verify",
        response_model=s.VerifyResponse,
        tags=["search"],
        openapi_extra=image_body(s.VerifyBody, {"image": False, "reference_image": False}),
    )
    async def verify(request: Request) -> s.VerifyResponse:
        """Verify (1:1): a photo against a reference photo, or against an enrolled identity
        (`gallery` + `external_id`)."""
        principal = api.caller(request, "Verify")  # the key before the body is read
        body = await _image_request(
            request, s.VerifyBody, {"image": False, "reference_image": False}
        )
        request.state.gallery, request.state.target = body.gallery, body.external_id
        api.authorizer.check_gallery(principal, body.gallery)
        result = await api.cpu_bound(
            request,
            lambda left: api.engine.verify(
                body.image,
                reference_image=body.reference_image,
                gallery=body.gallery,
                external_id=body.external_id,
                threshold=body.threshold,
                target_far=body.target_far if body.threshold is None else None,
                timeout=left,
                min_sequence=body.min_sequence,
            ),
        )
        return s.verify_out(result)

    return router


# ----------------------------------------------------------------------- identities


def _identity_routes(api: HttpApi) -> APIRouter:
    router = _router()
    base = "/galleries/{gallery}/identities"

    @router.get(base, response_model=s.IdentityList, tags=["identities"])
    def list_identities(
        request: Request,
        gallery: str,
        page_size: int = Query(0, ge=0, le=1000, description="0: 100"),
        page_token: str = "",
    ) -> s.IdentityList:
        """ListIdentities, a page at a time (`next_page_token` is empty on the last page)."""
        api.caller(request, "ListIdentities", gallery)
        items, token = api.engine.list_identities(gallery, page_size, page_token)
        return s.IdentityList(identities=[s.identity_out(i) for i in items], next_page_token=token)

    @router.get(base + "/{external_id}", response_model=s.Identity, tags=["identities"])
    def get_identity(request: Request, gallery: str, external_id: str) -> s.Identity:
        """GetIdentity."""
        api.caller(request, "GetIdentity", gallery, external_id)
        return s.identity_out(api.engine.get_identity(gallery, external_id))

    @router.patch(base + "/{external_id}", response_model=s.Identity, tags=["identities"])
    def update_identity(
        request: Request, gallery: str, external_id: str, body: s.UpdateIdentityBody
    ) -> s.Identity:
        """UpdateIdentity: display name and metadata (merged, or replaced)."""
        api.caller(request, "UpdateIdentity", gallery, external_id)
        identity = api.engine.update_identity(
            gallery,
            external_id,
            display_name=body.display_name,
            metadata=body.metadata if body.metadata or body.replace_metadata else None,
            replace_metadata=body.replace_metadata,
        )
        return s.identity_out(identity)

    @router.delete(
        base + "/{external_id}", response_model=s.DeleteIdentityResponse, tags=["identities"]
    )
    def delete_identity(
        request: Request, gallery: str, external_id: str
    ) -> s.DeleteIdentityResponse:
        """DeleteIdentity: the identity, its faces and crops (right to be forgotten)."""
        api.caller(request, "DeleteIdentity", gallery, external_id)
        erased = api.engine.erase_identity(gallery, external_id)
        return s.DeleteIdentityResponse(
            faces_removed=erased.faces_removed, sequence=erased.sequence
        )

    @router.get(
        "/galleries/{gallery}/faces/{face_id}/crop",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "the aligned face crop"}},
        tags=["identities"],
    )
    def face_crop(request: Request, gallery: str, face_id: int) -> Response:
        """The stored aligned crop of one face (PNG); needs the view_crops permission."""
        api.caller(request, "GetFaceCrop", gallery, face_id)
        crop = api.engine.face_crop(gallery, face_id)
        return Response(crop, media_type="image/png", headers={"cache-control": "no-store"})

    @router.delete(
        "/galleries/{gallery}/faces/{face_id}",
        status_code=204,
        tags=["identities"],
        responses={204: {"description": "deleted", "headers": {SEQUENCE_HEADER: _SEQUENCE_DOC}}},
    )
    def delete_face(request: Request, gallery: str, face_id: int) -> Response:
        """DeleteFace: one enrolled face."""
        api.caller(request, "DeleteFace", gallery, face_id)
        deleted = api.engine.delete_face(gallery, face_id)
        # No body (204): the change sequence, for min_sequence, travels as a header.
        return Response(status_code=204, headers={SEQUENCE_HEADER: str(deleted.sequence)})

    return router


# ------------------------------------------------------------------------- analysis


def _analysis_routes(api: HttpApi) -> APIRouter:
    router = _router()

    @router.post(
        "/analyze",
        response_model=s.AnalyzeResponse,
        tags=["analysis"],
        openapi_extra=image_body(s.AnalyzeBody, {"image": False}),
    )
    async def analyze(request: Request) -> s.AnalyzeResponse:
        """Analyze: every face of the image with its box, landmarks, quality, liveness and
        the `attributes` asked for; nothing is stored."""
        principal = api.caller(request, "Analyze")  # the key before the body is read
        body = await _image_request(request, s.AnalyzeBody, {"image": False})
        request.state.gallery = body.gallery
        api.authorizer.check_gallery(principal, body.gallery)
        result = await api.cpu_bound(
            request,
            lambda left: api.engine.analyze(
                body.image, body.attributes, gallery=body.gallery, timeout=left
            ),
        )
        return s.analyze_out(result)

    @router.post(
        "/galleries/{gallery}/faces/search",
        response_model=s.SearchFacesResponse,
        tags=["analysis"],
    )
    async def search_faces(
        request: Request, gallery: str, body: s.SearchFacesBody
    ) -> s.SearchFacesResponse:
        """SearchFaces: the enrolled faces nearest an enrolled face (`face_id`) or a raw
        `embedding`, best first."""
        api.caller(request, "SearchFaces", gallery, body.face_id or "")
        result = await api.cpu_bound(
            request,
            lambda _: api.engine.search_faces(
                gallery,
                face_id=body.face_id,
                embedding=body.embedding,
                top_k=body.top_k,
                threshold=body.threshold,
                filters=s.engine_filters(body.filters),
            ),
        )
        return s.search_faces_out(result)

    @router.post(
        "/galleries/{gallery}/faces/cluster",
        response_model=s.ClusterFacesResponse,
        tags=["analysis"],
    )
    async def cluster_gallery(
        request: Request, gallery: str, body: s.ClusterFacesBody
    ) -> s.ClusterFacesResponse:
        """ClusterFaces over a gallery: its faces (`face_ids`, or all) grouped into people,
        largest group first."""
        api.caller(request, "ClusterFaces", gallery)
        result = await api.cpu_bound(
            request,
            lambda _: api.engine.cluster_faces(
                gallery=gallery,
                face_ids=body.face_ids,
                threshold=body.threshold,
                neighbours=body.neighbours,
            ),
        )
        return s.clusters_out(result, gallery=True)

    @router.post("/cluster", response_model=s.ClusterFacesResponse, tags=["analysis"])
    async def cluster_embeddings(
        request: Request, body: s.ClusterEmbeddingsBody
    ) -> s.ClusterFacesResponse:
        """ClusterFaces over raw embeddings: groups of positions in `embeddings`."""
        api.caller(request, "ClusterFaces")
        result = await api.cpu_bound(
            request,
            lambda _: api.engine.cluster_faces(
                embeddings=body.embeddings, threshold=body.threshold, neighbours=body.neighbours
            ),
        )
        return s.clusters_out(result, gallery=False)

    return router


# ------------------------------------------------------------------------- API keys


def _key_routes(api: HttpApi) -> APIRouter:
    router = _router()

    @router.post("/keys", status_code=201, response_model=s.IssuedApiKey, tags=["keys"])
    def create_key(request: Request, body: s.CreateApiKeyBody) -> s.IssuedApiKey:
        """CreateApiKey (admin of all galleries): the secret is in this response only."""
        api.caller(request, "CreateApiKey")
        issued = api.keys.create(
            name=body.name,
            role=body.role,
            galleries=body.galleries or ["*"],
            view_crops=body.view_crops,
            rate_limit=body.rate_limit or None,
            expires_in=body.expires_in_seconds or None,
        )
        request.state.target = issued.record.key_id
        return s.issued_out(issued.secret, issued.record)

    @router.get("/keys", response_model=s.ApiKeyList, tags=["keys"])
    def list_keys(request: Request, include_revoked: bool = False) -> s.ApiKeyList:
        """ListApiKeys (admin of all galleries); bootstrap keys are not listed."""
        api.caller(request, "ListApiKeys")
        return s.ApiKeyList(api_keys=[s.api_key_out(r) for r in api.keys.list(include_revoked)])

    @router.post("/keys/{key_id}/revoke", response_model=s.ApiKey, tags=["keys"])
    def revoke_key(request: Request, key_id: str) -> s.ApiKey:
        """RevokeApiKey: refused on every server process within seconds."""
        api.caller(request, "RevokeApiKey", target=key_id)
        return s.api_key_out(api.keys.revoke(key_id))

    @router.post("/keys/{key_id}/rotate", response_model=s.IssuedApiKey, tags=["keys"])
    def rotate_key(request: Request, key_id: str) -> s.IssuedApiKey:
        """RotateApiKey: a new secret for the same key; the old secret stops working."""
        api.caller(request, "RotateApiKey", target=key_id)
        issued = api.keys.rotate(key_id)
        return s.issued_out(issued.secret, issued.record)

    return router


# -------------------------------------------------------------------------- helpers


def _timeout(request: Request) -> float | None:
    text = request.headers.get(TIMEOUT_HEADER)
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise eng.InvalidRequestError(f"{TIMEOUT_HEADER} must be a number of seconds") from None
    if not seconds > 0:
        raise eng.InvalidRequestError(f"{TIMEOUT_HEADER} must be positive")
    return seconds


async def _image_request(
    request: Request, model: type[M], images: dict[str, bool], *, multipart: bool = True
) -> M:
    """The body as `model`, from JSON (base64 images) or multipart (file parts).

    `images` names the image fields, True for lists of images.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data" and multipart:
        values = await _form_values(request, images)
    elif content_type == "application/json":
        try:
            values = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise eng.InvalidRequestError(f"body is not valid JSON: {error}") from None
    elif multipart:
        raise eng.InvalidRequestError(
            "send the image as multipart/form-data, or base64 in an application/json body"
        )
    else:
        raise eng.InvalidRequestError("send an application/json body (images base64)")
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise eng.InvalidRequestError(validation_message(error.errors())) from None


async def _form_values(request: Request, images: dict[str, bool]) -> dict[str, Any]:
    form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    values: dict[str, Any] = {}
    file_names: dict[str, list[str]] = {}
    for name in set(form.keys()):
        parts = form.getlist(name)
        if name in images:
            data = [await p.read() if isinstance(p, UploadFile) else p for p in parts]
            values[name] = data if images[name] else data[0]
            if name in FILE_NAME_FIELDS:
                names = [p.filename or "" if isinstance(p, UploadFile) else "" for p in parts]
                file_names[FILE_NAME_FIELDS[name]] = names
        elif name in REPEATED_FIELDS:
            values[name] = [p for p in parts if isinstance(p, str)]
        elif name in JSON_FIELDS:
            values[name] = _json_field(name, parts[0])
        elif name in LIST_FIELDS:  # repeated parts, or one comma-separated part
            values[name] = [n for p in parts if isinstance(p, str) for n in p.split(",")]
        else:
            values[name] = parts[0]
    for field, names in file_names.items():
        if any(names):  # unnamed parts only: no names rather than empty ones
            values.setdefault(field, names)
    return values


def _json_field(name: str, part: Any) -> Any:
    try:
        return json.loads(part if isinstance(part, str) else "")
    except json.JSONDecodeError:
        raise eng.InvalidRequestError(
            f"{name} must be {JSON_FIELDS[name]} in a text part"
        ) from None
