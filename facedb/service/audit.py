"""The audit log: who enrolled, deleted, searched or managed what, and when, as JSON lines.

One line per audited call on either transport: time, transport, the key's id and role (never
the key), the action (RPC name), the gallery and the target (external id, face id or key
id), and the outcome's status name. Never image data, scores or metadata. Written to
`--audit-log FILE` (appended, one line per call, flushed at once), else to the process
log as `facedb.audit` records.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import grpc

from facedb.service.auth import GALLERY_FIELD, Principal, current_principal
from facedb.service.handlers import Behavior, FaceDBInterceptor, Wrapper

log = logging.getLogger("facedb.audit")

AUDITED = frozenset(
    {
        "CreateGallery",
        "DeleteGallery",
        "Enroll",
        "EnrollStream",
        "UpdateIdentity",
        "DeleteIdentity",
        "DeleteFace",
        "Identify",
        "Verify",
        "GetFaceCrop",
        "CreateApiKey",
        "RevokeApiKey",
        "RotateApiKey",
    }
)
# Request fields naming what a call acts on, first present wins.
TARGET_FIELDS = ("external_id", "face_id", "key_id")


class AuditLog:
    def __init__(self, path: Path | str | None = None):
        self._file: IO[str] | None = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Held open for the server's life (closed by close()), line-buffered.
            self._file = Path(path).open("a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def record(
        self,
        *,
        transport: str,
        principal: Principal,
        action: str,
        gallery: str = "",
        target: str = "",
        status: str = "OK",
    ) -> None:
        if action not in AUDITED:
            return
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "transport": transport,
            "key_id": principal.key_id,
            "role": principal.role,
            "action": action,
            "gallery": gallery or None,
            "target": target or None,
            "status": status,
        }
        if self._file is None:
            log.info("audit", extra=entry)
            return
        with self._lock:
            self._file.write(json.dumps(entry) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def request_target(request: Any) -> str:
    for name in TARGET_FIELDS:
        value = getattr(request, name, None)
        if value:
            return str(value)
    return ""


def _created_key(response: Any) -> str:
    """CreateApiKey names its target only in the reply: the new key's id."""
    api_key = getattr(response, "api_key", None)
    return str(getattr(api_key, "key_id", "") or "")


class AuditInterceptor(FaceDBInterceptor):
    """Audits FaceDB calls; installed before the auth interceptor so refusals are audited."""

    def __init__(self, audit: AuditLog):
        self.audit = audit

    def wraps(self, name: str) -> bool:
        return name in AUDITED

    def wrapper(self, metadata: dict[str, str]) -> Wrapper:
        return self._audited

    def _audited(self, name: str, inner: Behavior) -> Behavior:
        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            status, response = "INTERNAL", None
            try:
                response = inner(request, context)
                status = "OK"
                return response
            except Exception:
                code = context.code()
                status = code.name if code is not None else "INTERNAL"
                raise
            finally:
                self.audit.record(
                    transport="grpc",
                    principal=current_principal(),
                    action=name,
                    gallery=str(getattr(request, GALLERY_FIELD.get(name, "gallery"), "") or ""),
                    target=request_target(request) or _created_key(response),
                    status=status,
                )

        return behavior
