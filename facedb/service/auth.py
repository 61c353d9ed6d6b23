"""API-key authentication and per-gallery, per-role authorisation.

A key comes in the `x-api-key` metadata header or as `authorization: Bearer <key>`. Each key
has a role and a list of galleries (`["*"]` = all):

- search: identify, verify, get and list;
- enroll: search, plus enroll / update / delete identities and faces;
- admin: everything, including creating and deleting galleries.

The interceptor checks both the role a method needs and, by reading the request, the
gallery it touches, so the servicer never sees a call it must refuse. Two kinds of call are
left to the servicer, with `current_principal()`: calls that name no gallery (ListGalleries,
GetStats) are filtered, and the items of a client stream (EnrollStream) are checked one by
one, so that a refused item gets its own error result instead of failing a stream whose
earlier items were already written.
Health checking and reflection stay open: they reveal nothing about the data.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from facedb.service.handlers import Behavior, wrap_handler

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/facedb.v1.FaceDB/"
ROLE_RANK = {"search": 0, "enroll": 1, "admin": 2}

# The least role each method needs.
METHOD_ROLE = {
    "CreateGallery": "admin",
    "DeleteGallery": "admin",
    "GetGallery": "search",
    "ListGalleries": "search",
    "Enroll": "enroll",
    "EnrollStream": "enroll",
    "UpdateIdentity": "enroll",
    "DeleteIdentity": "enroll",
    "DeleteFace": "enroll",
    "Identify": "search",
    "Verify": "search",
    "GetIdentity": "search",
    "ListIdentities": "search",
    "GetStats": "search",
}

# Gallery requests name the gallery `name`; all others call it `gallery`.
GALLERY_FIELD = {"CreateGallery": "name", "GetGallery": "name", "DeleteGallery": "name"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's fingerprint (never the key itself), role and galleries."""

    key_id: str
    role: str
    galleries: frozenset[str]

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def can_access(self, gallery: str) -> bool:
        return "*" in self.galleries or gallery in self.galleries


# With auth off every caller is this principal.
ANONYMOUS_ADMIN = Principal("insecure-no-auth", "admin", frozenset({"*"}))

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "facedb_principal", default=ANONYMOUS_ADMIN
)


# Before authentication: nobody, with no rights (what the access log shows for refused calls).
NOBODY = Principal("-", "search", frozenset())


def forget_principal() -> None:
    _principal.set(NOBODY)


def current_principal() -> Principal:
    """The caller of the RPC being served on this thread."""
    return _principal.get()


def key_fingerprint(key: str) -> str:
    """A short, stable id for logs and metrics that does not reveal the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def presented_key(metadata: Mapping[str, str]) -> str | None:
    key = metadata.get("x-api-key")
    if key:
        return key
    scheme, _, token = (metadata.get("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _galleries(grant: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(grant.get("galleries", ["*"]))


class KeyRing:
    """The configured keys, compared in constant time."""

    def __init__(self, keys: Mapping[str, Mapping[str, Any]]):
        self._keys = {
            key: Principal(key_fingerprint(key), grant["role"], _galleries(grant))
            for key, grant in keys.items()
        }

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, key: str) -> Principal | None:
        found = None
        for candidate, principal in self._keys.items():
            # Check every key so the time taken does not tell which prefix matched.
            if hmac.compare_digest(candidate.encode(), key.encode()):
                found = principal
        return found


class AuthInterceptor(grpc.ServerInterceptor):
    """Authenticates every FaceDB call and authorises its role and gallery."""

    def __init__(self, keys: KeyRing | None):
        self.keys = keys  # None: auth off (local development only)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if not method.startswith(SERVICE_PREFIX):
            return handler  # health, reflection
        metadata = dict(handler_call_details.invocation_metadata or ())
        return wrap_handler(handler, method, lambda name, inner: self._guard(name, inner, metadata))

    def _guard(self, name: str, inner: Behavior, metadata: dict[str, str]) -> Behavior:
        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            principal = self._authenticate(metadata, context)
            if not principal.has_role(METHOD_ROLE.get(name, "admin")):
                context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{name} needs the {METHOD_ROLE.get(name, 'admin')} role; "
                    f"this key has the {principal.role} role",
                )
            _principal.set(principal)
            if not isinstance(request, Iterator):  # stream items: see the module docstring
                _check_gallery(name, request, principal=principal, context=context)
            return inner(request, context)

        return behavior

    def _authenticate(self, metadata: dict[str, str], context: grpc.ServicerContext) -> Principal:
        if self.keys is None:
            return ANONYMOUS_ADMIN
        key = presented_key(metadata)
        if key is None:
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing API key: send it as 'x-api-key' or 'authorization: Bearer <key>'",
            )
        principal = self.keys.lookup(key)
        if principal is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown API key")
        return principal


def gallery_denied(principal: Principal, gallery: str) -> str | None:
    """Why `principal` may not touch `gallery`, or None when it may."""
    if gallery and not principal.can_access(gallery):
        return f"this API key has no access to gallery {gallery!r}"
    return None


def _check_gallery(
    name: str, request: Any, *, principal: Principal, context: grpc.ServicerContext
) -> None:
    denied = gallery_denied(principal, getattr(request, GALLERY_FIELD.get(name, "gallery"), ""))
    if denied:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, denied)


def log_auth_mode(keys: KeyRing | None) -> None:
    if keys is None:
        log.warning(
            "AUTHENTICATION IS OFF (--insecure-no-auth): every caller is an admin of every "
            "gallery. Use this for local development only."
        )
    else:
        log.info("API-key authentication on", extra={"keys": len(keys)})
