"""Exceptions → gRPC status codes, with a message that says what was wrong.

Engine errors carry the status name; the limiter's refusals map to RESOURCE_EXHAUSTED and
DEADLINE_EXCEEDED. Anything else is a bug: it is logged with its traceback and the caller
gets INTERNAL without internals.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

import grpc

from facedb.engine import EngineError
from facedb.service.auth import AuthError
from facedb.service.limits import OverloadedError, SlotTimeoutError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def status_name(error: Exception) -> str | None:
    """The status code's name for an expected error, None for a bug (every transport)."""
    if isinstance(error, EngineError | AuthError):
        return error.status
    if isinstance(error, OverloadedError):
        return "RESOURCE_EXHAUSTED"
    if isinstance(error, SlotTimeoutError):
        return "DEADLINE_EXCEEDED"
    return None


def status_for(error: Exception) -> grpc.StatusCode | None:
    """The gRPC status code for an expected error, None for a bug."""
    name = status_name(error)
    return None if name is None else grpc.StatusCode[name]


def abort_for(error: Exception, context: grpc.ServicerContext, method: str) -> None:
    """End the call with the status for `error` (never returns)."""
    code = status_for(error)
    if code is None:
        log.exception("internal error in %s", method, exc_info=error)
        context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log")
    context.abort(code, str(error))


def translated(method: F) -> F:
    """Servicer method decorator: expected errors become their status code."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as error:
            # context.abort raises an exception of grpc's own: let it through untouched.
            if context.code() is not None and status_for(error) is None:
                raise
            abort_for(error, context, method.__name__)

    return cast(F, wrapper)
