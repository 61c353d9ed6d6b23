"""API-key authentication and per-gallery, per-role authorisation.

A key comes in the `x-api-key` metadata header or as `authorization: Bearer <key>`. Each key
has a role and a list of galleries (`["*"]` = all):

- search: identify, verify, get and list;
- enroll: search, plus enroll / update / delete identities and faces;
- admin: everything, including creating and deleting galleries.

`Authorizer` holds that logic for both transports (gRPC here, HTTP in facedb.http).
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
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from facedb.service.handlers import Behavior, FaceDBInterceptor, Wrapper
from facedb.service.ratelimit import RateLimiter

log = logging.getLogger(__name__)

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
    "Analyze": "search",
    "SearchFaces": "search",
    "ClusterFaces": "search",
    "GetFaceCrop": "search",  # plus the view_crops permission (HTTP only)
    "GetCaller": "search",  # the key's own grants (HTTP only; the console reads it)
    "CreateApiKey": "admin",
    "ListApiKeys": "admin",
    "RevokeApiKey": "admin",
    "RotateApiKey": "admin",
    "Reindex": "admin",
}

# Key management could hand out access beyond the caller's own: only for all-gallery admins.
KEY_METHODS = frozenset({"CreateApiKey", "ListApiKeys", "RevokeApiKey", "RotateApiKey"})

# Methods that return face images: they need `Principal.view_crops` besides the role.
CROP_METHODS = frozenset({"GetFaceCrop"})

# Gallery requests name the gallery `name`; all others call it `gallery`.
GALLERY_FIELD = {"CreateGallery": "name", "GetGallery": "name", "DeleteGallery": "name"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's fingerprint (never the key itself), role and galleries."""

    key_id: str
    role: str
    galleries: frozenset[str]
    # May read stored face crops (biometric images): an explicit grant, off for search keys.
    view_crops: bool = False
    rate_limit: float | None = None  # requests per second (per server process); None: no limit

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def can_access(self, gallery: str) -> bool:
        return "*" in self.galleries or gallery in self.galleries


# With auth off every caller is this principal.
ANONYMOUS_ADMIN = Principal("insecure-no-auth", "admin", frozenset({"*"}), view_crops=True)

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


def _view_crops(grant: Mapping[str, Any]) -> bool:
    """Explicit `view_crops` wins; without it admin and enroll keys may, search keys may not."""
    return bool(grant.get("view_crops", grant["role"] != "search"))


class KeyRing:
    """The configured keys, compared in constant time."""

    def __init__(self, keys: Mapping[str, Mapping[str, Any]]):
        self._keys = {
            key: Principal(
                key_fingerprint(key),
                grant["role"],
                _galleries(grant),
                _view_crops(grant),
                grant.get("rate_limit") or None,
            )
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


def gallery_denied(principal: Principal, gallery: str) -> str | None:
    """Why `principal` may not touch `gallery`, or None when it may."""
    if gallery and not principal.can_access(gallery):
        return f"this API key has no access to gallery {gallery!r}"
    return None


class AuthError(Exception):
    """A refused call: `status` is the gRPC status code's name, the message says why;
    `retry_after` (seconds) is set when the key's rate limit refused it."""

    def __init__(self, status: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class KeySource(Protocol):
    def __len__(self) -> int: ...

    def lookup(self, key: str) -> Principal | None: ...


class Authorizer:
    """The one place that decides who may call what: shared by the gRPC and HTTP transports.

    A transport hands over the request headers, the RPC name (`Identify`, …) and the gallery
    the call touches; a refusal is an `AuthError` the transport turns into its status.
    """

    def __init__(self, keys: KeySource | None, rates: RateLimiter | None = None):
        self.keys = keys  # None: auth off (local development only)
        self.rates = rates or RateLimiter()

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller named by the headers (lower-case names); UNAUTHENTICATED otherwise."""
        if self.keys is None:
            return ANONYMOUS_ADMIN
        key = presented_key(headers)
        if key is None:
            raise AuthError(
                "UNAUTHENTICATED",
                "missing API key: send it as 'x-api-key' or 'authorization: Bearer <key>'",
            )
        principal = self.keys.lookup(key)
        if principal is None:
            raise AuthError("UNAUTHENTICATED", "unknown API key")
        self._check_rate(principal)
        return principal

    def _check_rate(self, principal: Principal) -> None:
        if not principal.rate_limit:
            return
        wait = self.rates.take(principal.key_id, principal.rate_limit)
        if wait is not None:
            raise AuthError(
                "RESOURCE_EXHAUSTED",
                f"rate limit of {principal.rate_limit:g} requests/s for API key "
                f"{principal.key_id} exceeded; retry after {wait:.2f} s",
                retry_after=wait,
            )

    def check_role(self, principal: Principal, method: str) -> None:
        needed = METHOD_ROLE.get(method, "admin")
        if not principal.has_role(needed):
            raise AuthError(
                "PERMISSION_DENIED",
                f"{method} needs the {needed} role; this key has the {principal.role} role",
            )
        if method in KEY_METHODS and "*" not in principal.galleries:
            raise AuthError(
                "PERMISSION_DENIED", f"{method} needs an admin key for all galleries ('*')"
            )
        if method in CROP_METHODS and not principal.view_crops:
            raise AuthError(
                "PERMISSION_DENIED", f"{method} needs the view_crops permission on this key"
            )

    def check_gallery(self, principal: Principal, gallery: str) -> None:
        denied = gallery_denied(principal, gallery)
        if denied:
            raise AuthError("PERMISSION_DENIED", denied)


class AuthInterceptor(FaceDBInterceptor):
    """Authenticates every FaceDB call and authorises its role and gallery."""

    def __init__(self, authorizer: Authorizer):
        self.authorizer = authorizer

    def wrapper(self, metadata: dict[str, str]) -> Wrapper:
        return lambda name, inner: self._guard(name, inner, metadata)

    def _guard(self, name: str, inner: Behavior, metadata: dict[str, str]) -> Behavior:
        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            principal = _refused_as_abort(context, self.authorizer.authenticate, metadata)
            _principal.set(principal)  # known from here on, refused or not (access/audit logs)
            _refused_as_abort(context, self.authorizer.check_role, principal, name)
            if not isinstance(request, Iterator):  # stream items: see the module docstring
                self._check_gallery(name, request, principal=principal, context=context)
            return inner(request, context)

        return behavior

    def _check_gallery(
        self, name: str, request: Any, *, principal: Principal, context: grpc.ServicerContext
    ) -> None:
        gallery = getattr(request, GALLERY_FIELD.get(name, "gallery"), "")
        _refused_as_abort(context, self.authorizer.check_gallery, principal, gallery)


def _refused_as_abort(context: grpc.ServicerContext, check: Callable[..., Any], *args: Any) -> Any:
    """`check(*args)`'s result; an AuthError ends the call with its status instead."""
    try:
        return check(*args)
    except AuthError as error:
        if error.retry_after is not None:
            context.set_trailing_metadata((("retry-after", str(math.ceil(error.retry_after))),))
        context.abort(grpc.StatusCode[error.status], str(error))


def log_auth_mode(keys: KeySource | None) -> None:
    if keys is None:
        log.warning(
            "AUTHENTICATION IS OFF (--insecure-no-auth): every caller is an admin of every "
            "gallery. Use this for local development only."
        )
    else:
        log.info("API-key authentication on", extra={"keys": len(keys)})
