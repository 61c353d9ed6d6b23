"""ASGI middleware of the HTTP API: a bound on body size, the access log, the audit trail."""

from __future__ import annotations

import logging
import time

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facedb.service.audit import AUDITED, AuditLog
from facedb.service.auth import NOBODY
from facedb.service.metrics import REQUEST_SECONDS, REQUESTS

log = logging.getLogger("facedb.access")


class BodyLimit:
    """ASGI middleware: refuse bodies above `max_bytes` (413, RESOURCE_EXHAUSTED), whether
    announced by Content-Length or streamed in chunks, before they are buffered."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            response = JSONResponse(
                {"error": {"code": 413, "status": "RESOURCE_EXHAUSTED", "message": self._text()}},
                status_code=413,
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self._text())
            return message

        await self.app(scope, limited, send)

    def _text(self) -> str:
        return f"request body larger than {self.max_bytes:,} bytes (max_message_bytes)"


class AccessLog:
    """ASGI middleware: one access-log line per request (method, status, ms, key id), and
    for API calls the same Prometheus counters as gRPC (`facedb_requests_total{method,
    code}` with the status name, `facedb_request_seconds{method}`)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            state = scope.get("state") or {}
            principal = state.get("principal")
            fields = {
                "transport": "http",
                "method": state.get("method") or f"{scope['method']} {scope['path']}",
                "status": status[0],
                "ms": round((time.perf_counter() - start) * 1000, 2),
                "key": principal.key_id if principal is not None else "-",
            }
            log.info("http", extra=fields)
            if state.get("method"):  # an API route: bounded label values
                code = "OK" if status[0] < 400 else state.get("status") or "INTERNAL"
                REQUESTS.labels(state["method"], code).inc()
                REQUEST_SECONDS.labels(state["method"]).observe(time.perf_counter() - start)


class AuditTrail:
    """ASGI middleware: one audit record per audited API call, refused ones included.

    The route names the action, gallery and target in the request state (HttpApi.caller);
    the error handlers name the status; a response below 400 is OK.
    """

    def __init__(self, app: ASGIApp, audit: AuditLog):
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorded = [False]

        def record(code: int) -> None:
            state = scope.get("state") or {}
            if state.get("method") in AUDITED and not recorded[0]:
                recorded[0] = True
                self.audit.record(
                    transport="http",
                    principal=state.get("principal") or NOBODY,
                    action=state["method"],
                    gallery=state.get("gallery") or "",
                    target=state.get("target") or "",
                    status="OK" if code < 400 else state.get("status") or "INTERNAL",
                )

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Before the client can see the answer: a caller that reads the audit
                # trail right after its response finds the call there.
                record(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            record(500)  # no response started (the app failed): recorded as INTERNAL
