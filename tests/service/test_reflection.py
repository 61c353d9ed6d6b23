"""Server reflection answers under grpc.reflection.v1alpha and grpc.reflection.v1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.service.support import running_server

FACEDB = "facedb.v1.FaceDB"
V1 = "grpc.reflection.v1.ServerReflection"
V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    with (
        running_server(Path(tmp_path_factory.mktemp("reflection"))) as (_server, address),
        grpc.insecure_channel(address) as channel,
    ):
        yield channel


def test_v1alpha_lists_and_describes_the_service(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)  # grpcio-reflection's own client
    assert {FACEDB, "grpc.health.v1.Health", V1ALPHA, V1} <= set(database.get_services())
    file = database.FindFileContainingSymbol(FACEDB)
    service = next(s for s in file.service if s.name == "FaceDB")
    assert {"Enroll", "Identify", "Verify", "DeleteIdentity"} <= {m.name for m in service.method}


def _ask_v1(channel: grpc.Channel, **request: str) -> list:
    """One request on the v1 method. v1 and v1alpha messages are the same on the wire
    (only the package differs), so the v1alpha classes encode and decode them."""
    call = channel.stream_stream(
        f"/{V1}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(call(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=30))


def test_v1_lists_and_describes_the_service(channel: grpc.Channel) -> None:
    (listing,) = _ask_v1(channel, list_services="")
    names = {s.name for s in listing.list_services_response.service}
    assert {FACEDB, "grpc.health.v1.Health", V1ALPHA, V1} <= names

    (found,) = _ask_v1(channel, file_containing_symbol=FACEDB)
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in found.file_descriptor_response.file_descriptor_proto
    ]
    facedb_file = next(f for f in files if f.package == "facedb.v1")
    methods = {m.name for s in facedb_file.service for m in s.method}
    assert {"Enroll", "EnrollStream", "Identify", "Verify"} <= methods


def test_v1_describes_itself_under_its_own_package(channel: grpc.Channel) -> None:
    (found,) = _ask_v1(channel, file_containing_symbol=V1)
    (raw,) = found.file_descriptor_response.file_descriptor_proto
    file = descriptor_pb2.FileDescriptorProto.FromString(raw)
    assert file.package == "grpc.reflection.v1"
    (method,) = file.service[0].method
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"


def test_v1_unknown_symbol_is_not_found(channel: grpc.Channel) -> None:
    (answer,) = _ask_v1(channel, file_containing_symbol="no.such.Service")
    assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
