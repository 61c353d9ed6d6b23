"""Wrapping a gRPC method handler's behaviour, for interceptors that need the request.

`grpc.ServerInterceptor.intercept_service` runs before the request is deserialised and
on the server's polling thread; to look at the request, or to run code on the worker
thread that serves the call, an interceptor returns a handler whose behaviour wraps the
original one. This module builds that handler for the two shapes the service uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

SERVICE_PREFIX = "/facedb.v1.FaceDB/"

# behaviour(request_or_iterator, context) -> response
Behavior = Callable[[Any, grpc.ServicerContext], Any]
# wrap(method_name, behaviour) -> behaviour
Wrapper = Callable[[str, Behavior], Behavior]


def method_name(full_method: str) -> str:
    """`/facedb.v1.FaceDB/Identify` → `Identify`."""
    return full_method.rsplit("/", 1)[-1]


def wrap_handler(
    handler: grpc.RpcMethodHandler | None, full_method: str, wrap: Wrapper
) -> grpc.RpcMethodHandler | None:
    """The same handler with its behaviour replaced by `wrap(name, behaviour)`."""
    if handler is None:
        return None
    name = method_name(full_method)
    io = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(wrap(name, handler.unary_unary), **io)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(wrap(name, handler.stream_unary), **io)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(wrap(name, handler.unary_stream), **io)
    return grpc.stream_stream_rpc_method_handler(wrap(name, handler.stream_stream), **io)


class FaceDBInterceptor(grpc.ServerInterceptor):
    """An interceptor of FaceDB calls (health checks and reflection pass untouched): a
    subclass says which methods it wraps and, given a call's metadata, how."""

    def wraps(self, name: str) -> bool:
        return True

    def wrapper(self, metadata: dict[str, str]) -> Wrapper:
        raise NotImplementedError

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if not method.startswith(SERVICE_PREFIX) or not self.wraps(method_name(method)):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        return wrap_handler(handler, method, self.wrapper(metadata))
