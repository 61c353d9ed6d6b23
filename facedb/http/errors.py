"""gRPC status names → HTTP status codes, and the JSON error body every refusal carries.

The status comes from the same place as gRPC's (`facedb.service.errors.status_name`), and
the message is the same text, so a caller reads the same words on both transports.

FAILED_PRECONDITION is 409 Conflict: the request is fine but the resource's state refuses
it (a gallery bound to another embedding model, a concurrent change). 412 is kept for
conditional-request headers, which this API does not use. The body's `status` tells it
apart from ALREADY_EXISTS, which is 409 too.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facedb.http.schemas import ErrorDetail, ErrorResponse
from facedb.service.auth import AuthError
from facedb.service.errors import status_name
from facedb.vision.image import ImageError

log = logging.getLogger(__name__)

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "FAILED_PRECONDITION": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

# Framework-level refusals (no route, wrong method, body too large) by HTTP status.
_STATUS_OF_HTTP = {404: "NOT_FOUND", 405: "UNIMPLEMENTED", 413: "RESOURCE_EXHAUSTED"}


def error_detail(status: str, message: str, reason: str | None = None) -> ErrorDetail:
    return ErrorDetail(code=HTTP_STATUS[status], status=status, message=message, reason=reason)


def error_response(
    status: str, message: str, reason: str | None = None, *, http_status: int | None = None
) -> JSONResponse:
    body = ErrorResponse(error=error_detail(status, message, reason))
    if http_status is not None:
        body.error.code = http_status
    return JSONResponse(body.model_dump(), status_code=body.error.code)


def detail_for(error: Exception) -> ErrorDetail | None:
    """The error body for an expected error, None for a bug."""
    status = status_name(error)
    if status is None:
        return None
    cause = error.__cause__
    reason = str(cause.code) if isinstance(cause, ImageError) else None
    return error_detail(status, str(error), reason)


async def expected_error(request: Request, error: Exception) -> JSONResponse:
    detail = detail_for(error)
    if detail is None:
        log.exception("internal error in %s", request.url.path, exc_info=error)
        detail = error_detail(
            "INTERNAL", f"internal error in {request.url.path}; see the server log"
        )
    request.state.status = detail.status
    headers = {}
    if isinstance(error, AuthError) and error.retry_after is not None:
        headers["retry-after"] = str(math.ceil(error.retry_after))
    body = ErrorResponse(error=detail).model_dump()
    return JSONResponse(body, status_code=detail.code, headers=headers)


async def invalid_request(request: Request, error: Exception) -> JSONResponse:
    """A body or parameter that does not fit the schema: 400 naming the field."""
    assert isinstance(error, RequestValidationError)
    request.state.status = "INVALID_ARGUMENT"
    return error_response("INVALID_ARGUMENT", validation_message(error.errors()))


def validation_message(errors: Any) -> str:
    parts = []
    for item in list(errors)[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'body'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


async def http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    status = _STATUS_OF_HTTP.get(error.status_code, "INVALID_ARGUMENT")
    request.state.status = status
    return error_response(status, str(error.detail), http_status=error.status_code)
