"""A small typed client over the generated stubs.

    with FaceDBClient("127.0.0.1:50051", api_key="…") as db:
        db.create_gallery("staff")
        db.enroll("staff", "alice", [Path("alice.jpg")], display_name="Alice")
        for face in db.identify("staff", Path("door.jpg")).faces:
            print([(c.external_id, c.score) for c in face.candidates] or "no match")

Images may be given as bytes or as a path. Errors surface as `grpc.RpcError` with the
server's status code and message (`error.code()`, `error.details()`).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facedb.v1 import facedb_pb2 as pb
from facedb.v1 import facedb_pb2_grpc as pb_grpc

ImageInput = bytes | str | Path
DEFAULT_TIMEOUT_S = 60.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _channel(
    target: str,
    tls: bool,
    ca: str | Path | None,
    client_cert: str | Path | None,
    client_key: str | Path | None,
) -> grpc.Channel:
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    if not (tls or ca or client_cert):
        return grpc.insecure_channel(target, options=options)
    if bool(client_cert) != bool(client_key):
        raise ValueError("a client certificate needs its key (client_cert and client_key)")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes() if ca else None,
        private_key=Path(client_key).read_bytes() if client_key else None,
        certificate_chain=Path(client_cert).read_bytes() if client_cert else None,
    )
    return grpc.secure_channel(target, credentials, options=options)


def image_bytes(image: ImageInput) -> bytes:
    return image if isinstance(image, bytes) else Path(image).read_bytes()


def content_request_id(gallery: str, external_id: str, images: Sequence[bytes]) -> str:
    """A request id that names what is sent: enrolling the same photos for the same identity
    again (a re-run after a crash, a retry) is then answered from the first call's receipt
    instead of adding the faces twice."""
    digest = hashlib.sha256(f"{gallery}\0{external_id}".encode())
    for image in images:
        digest.update(hashlib.sha256(image).digest())
    return "sha256:" + digest.hexdigest()[:48]


def image_names(images: Sequence[ImageInput]) -> list[str]:
    """File names for the images read from files ("" for raw bytes); [] when none is."""
    names = ["" if isinstance(i, bytes) else Path(i).name for i in images]
    return names if any(names) else []


class FaceDBClient:
    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        channel: grpc.Channel | None = None,
        tls: bool = False,
        ca: str | Path | None = None,
        client_cert: str | Path | None = None,
        client_key: str | Path | None = None,
    ):
        """`tls` (implied by `ca`): verify the server against `ca`, else the system roots;
        `client_cert` + `client_key`: present a client certificate (mutual TLS)."""
        self.channel = channel or _channel(target, tls, ca, client_cert, client_key)
        self.stub = pb_grpc.FaceDBStub(self.channel)
        self.timeout = timeout
        self._metadata = (("x-api-key", api_key),) if api_key else ()

    def __enter__(self) -> FaceDBClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        return method(request, timeout=timeout or self.timeout, metadata=self._metadata)

    # -------------------------------------------------------------- galleries

    def create_gallery(
        self,
        name: str,
        *,
        identify_threshold: float = 0.0,
        verify_threshold: float = 0.0,
        duplicate_threshold: float = 0.0,
        store_crops: bool = True,
        embedding_model: str = "",
        gate_policy: pb.GatePolicy | None = None,
        stored_attributes: Sequence[str] = (),
    ) -> pb.Gallery:
        """Thresholds of 0 mean the loaded model's calibrated defaults; `stored_attributes`
        are measured and stored with every enrolled face."""
        request = pb.CreateGalleryRequest(
            name=name,
            embedding_model=embedding_model,
            thresholds=pb.Thresholds(
                identify=identify_threshold, verify=verify_threshold, duplicate=duplicate_threshold
            ),
            gate_policy=gate_policy,
            disable_crops=not store_crops,
            stored_attributes=list(stored_attributes),
        )
        return self._call(self.stub.CreateGallery, request)

    def get_gallery(self, name: str) -> pb.Gallery:
        return self._call(self.stub.GetGallery, pb.GetGalleryRequest(name=name))

    def list_galleries(self) -> list[pb.Gallery]:
        return list(self._call(self.stub.ListGalleries, pb.ListGalleriesRequest()).galleries)

    def delete_gallery(self, name: str) -> None:
        self._call(self.stub.DeleteGallery, pb.DeleteGalleryRequest(name=name))

    # -------------------------------------------------------------- enrollment

    def enroll(
        self,
        gallery: str,
        external_id: str,
        images: Sequence[ImageInput],
        *,
        display_name: str = "",
        metadata: Mapping[str, str] | None = None,
        allow_multiple_faces: bool = False,
        allow_duplicate: bool = False,
        request_id: str = "",
    ) -> pb.EnrollResponse:
        """Enroll `images` for one identity; a `request_id` makes a retry add nothing twice."""
        request = enroll_request(
            gallery,
            external_id,
            images,
            display_name=display_name,
            metadata=metadata,
            allow_multiple_faces=allow_multiple_faces,
            allow_duplicate=allow_duplicate,
            request_id=request_id,
        )
        return self._call(self.stub.Enroll, request)

    def enroll_stream(
        self, requests: Iterable[pb.EnrollRequest], timeout: float | None = None
    ) -> pb.EnrollStreamResponse:
        """Bulk enrollment: one stream, one result per request and a summary.

        `timeout` bounds the whole stream (None: no deadline).
        """
        return self.stub.EnrollStream(iter(requests), timeout=timeout, metadata=self._metadata)

    def enroll_each(
        self, requests: Iterable[pb.EnrollRequest], *, in_flight: int = 2
    ) -> Generator[pb.EnrollResponse | grpc.RpcError, None, None]:
        """One Enroll call per request, `in_flight` at a time; outcomes in request order.

        Each outcome arrives once the server has processed that request, so a caller can
        report progress truthfully and stop early: closing the iterator cancels the calls
        still running. A failed call is yielded as its `grpc.RpcError`, not raised.
        """
        pending: deque[grpc.Future] = deque()
        try:
            for request in requests:
                pending.append(self._future(self.stub.Enroll, request))
                if len(pending) >= max(1, in_flight):
                    yield _outcome(pending.popleft())
            while pending:
                yield _outcome(pending.popleft())
        finally:
            for future in pending:
                future.cancel()

    def _future(self, method: Any, request: Any) -> grpc.Future:
        return method.future(request, timeout=self.timeout, metadata=self._metadata)

    # ------------------------------------------------------------------ search

    def identify(
        self,
        gallery: str,
        image: ImageInput,
        *,
        top_k: int = 0,
        threshold: float | None = None,
        target_fpir: float | None = None,
        all_faces: bool = False,
        min_sequence: int = 0,
        filters: Sequence[pb.AttributeFilter] = (),
    ) -> pb.IdentifyResponse:
        """`min_sequence` (an enroll's or delete's `sequence`): read that write, on any
        replica; UNAVAILABLE if this one cannot catch up before the deadline. `filters`:
        only faces whose stored attributes match them all are candidates."""
        request = pb.IdentifyRequest(
            gallery=gallery,
            image=image_bytes(image),
            top_k=top_k,
            all_faces=all_faces,
            min_sequence=min_sequence,
            filters=list(filters),
        )
        if threshold is not None:
            request.threshold = threshold
        elif target_fpir is not None:
            request.target_fpir = target_fpir
        return self._call(self.stub.Identify, request)

    def verify(
        self,
        image: ImageInput,
        reference_image: ImageInput | None = None,
        *,
        gallery: str = "",
        external_id: str = "",
        threshold: float | None = None,
        target_far: float | None = None,
        min_sequence: int = 0,
    ) -> pb.VerifyResponse:
        """Image against image, or (with gallery and external_id) against an identity;
        `min_sequence` as for identify."""
        request = pb.VerifyRequest(
            gallery=gallery, image=image_bytes(image), min_sequence=min_sequence
        )
        if reference_image is not None:
            request.reference_image = image_bytes(reference_image)
        elif external_id:
            request.external_id = external_id
        if threshold is not None:
            request.threshold = threshold
        elif target_far is not None:
            request.target_far = target_far
        return self._call(self.stub.Verify, request)

    # -------------------------------------------------------------- identities

    def get_identity(self, gallery: str, external_id: str) -> pb.Identity:
        request = pb.GetIdentityRequest(gallery=gallery, external_id=external_id)
        return self._call(self.stub.GetIdentity, request)

    def list_identities(
        self, gallery: str, page_size: int = 0, page_token: str = ""
    ) -> pb.ListIdentitiesResponse:
        request = pb.ListIdentitiesRequest(
            gallery=gallery, page_size=page_size, page_token=page_token
        )
        return self._call(self.stub.ListIdentities, request)

    def iter_identities(self, gallery: str, page_size: int = 100) -> Iterator[pb.Identity]:
        """Every identity of the gallery, page after page."""
        token = ""
        while True:
            page = self.list_identities(gallery, page_size, token)
            yield from page.identities
            token = page.next_page_token
            if not token:
                return

    def update_identity(
        self,
        gallery: str,
        external_id: str,
        *,
        display_name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        replace_metadata: bool = False,
    ) -> pb.Identity:
        request = pb.UpdateIdentityRequest(
            gallery=gallery,
            external_id=external_id,
            metadata=dict(metadata or {}),
            replace_metadata=replace_metadata,
        )
        if display_name is not None:
            request.display_name = display_name
        return self._call(self.stub.UpdateIdentity, request)

    def delete_identity(self, gallery: str, external_id: str) -> int:
        """Delete an identity and its faces; returns how many faces were removed."""
        return self.erase_identity(gallery, external_id).faces_removed

    def erase_identity(self, gallery: str, external_id: str) -> pb.DeleteIdentityResponse:
        """delete_identity, answering also the delete's change `sequence` (min_sequence)."""
        request = pb.DeleteIdentityRequest(gallery=gallery, external_id=external_id)
        return self._call(self.stub.DeleteIdentity, request)

    def delete_face(self, gallery: str, face_id: int) -> int:
        """Delete one face; returns the delete's change sequence (for min_sequence)."""
        request = pb.DeleteFaceRequest(gallery=gallery, face_id=face_id)
        return self._call(self.stub.DeleteFace, request).sequence

    def stats(self) -> pb.Stats:
        return self._call(self.stub.GetStats, pb.GetStatsRequest())

    def reindex(
        self,
        gallery: str,
        recognizer: str = "",
        *,
        index_kind: str = "",
        batch_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[pb.ReindexProgress]:
        """Reindex on the server (admin): progress messages, the last one SWITCHED with the
        gallery. `timeout` bounds the whole run (None: no bound, unlike other calls);
        leaving the iterator early cancels it, and nothing switches."""
        request = pb.ReindexRequest(
            gallery=gallery, recognizer=recognizer, index_kind=index_kind, batch_size=batch_size
        )
        stream = self.stub.Reindex(request, timeout=timeout, metadata=self._metadata)
        try:
            yield from stream
        finally:
            stream.cancel()  # a no-op once the stream ended

    # ---------------------------------------------------------------- API keys

    def create_api_key(
        self,
        role: str,
        galleries: Sequence[str] = ("*",),
        *,
        name: str = "",
        view_crops: bool | None = None,
        rate_limit: float = 0.0,
        expires_in_seconds: int = 0,
    ) -> pb.IssuedApiKey:
        """A new key; its secret (`.key`) is in this reply only."""
        request = pb.CreateApiKeyRequest(
            name=name,
            role=role,
            galleries=list(galleries),
            rate_limit=rate_limit,
            expires_in_seconds=expires_in_seconds,
        )
        if view_crops is not None:
            request.view_crops = view_crops
        return self._call(self.stub.CreateApiKey, request)

    def list_api_keys(self, include_revoked: bool = False) -> list[pb.ApiKey]:
        request = pb.ListApiKeysRequest(include_revoked=include_revoked)
        return list(self._call(self.stub.ListApiKeys, request).api_keys)

    def revoke_api_key(self, key_id: str) -> pb.ApiKey:
        return self._call(self.stub.RevokeApiKey, pb.RevokeApiKeyRequest(key_id=key_id))

    def rotate_api_key(self, key_id: str) -> pb.IssuedApiKey:
        return self._call(self.stub.RotateApiKey, pb.RotateApiKeyRequest(key_id=key_id))

    def health(self, service: str = "") -> str:
        """SERVING, NOT_SERVING, … from the standard health service (needs no key)."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def _outcome(future: grpc.Future) -> Any:
    """The call's response, or its error as a value."""
    try:
        return future.result()
    except grpc.RpcError as error:
        return error


def enroll_request(
    gallery: str,
    external_id: str,
    images: Sequence[ImageInput],
    *,
    display_name: str = "",
    metadata: Mapping[str, str] | None = None,
    allow_multiple_faces: bool = False,
    allow_duplicate: bool = False,
    request_id: str = "",
) -> pb.EnrollRequest:
    return pb.EnrollRequest(
        gallery=gallery,
        external_id=external_id,
        display_name=display_name,
        metadata=dict(metadata or {}),
        images=[image_bytes(i) for i in images],
        image_names=image_names(images),
        allow_multiple_faces=allow_multiple_faces,
        allow_duplicate=allow_duplicate,
        request_id=request_id,
    )
