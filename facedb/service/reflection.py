"""Server reflection under both `grpc.reflection.v1alpha` and `grpc.reflection.v1`.

grpcio-reflection implements only v1alpha; current tools (grpcurl, grpcui, Postman) ask for
v1 first. The two protocols are the same messages under another package name, so the wire
bytes are identical: one v1alpha servicer answers both services. The v1 file descriptor is
derived from the v1alpha one and registered in the default pool, so a client can also
describe the v1 service itself.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE = reflection.SERVICE_NAME  # grpc.reflection.v1alpha.ServerReflection
V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
METHOD = "ServerReflectionInfo"


def _renamed(type_name: str, old: str, new: str) -> str:
    return new + type_name[len(old) :]


def _v1_file_proto() -> descriptor_pb2.FileDescriptorProto:
    """The v1alpha file under the v1 name and package (message types renamed to match)."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{reflection_pb2.DESCRIPTOR.package}", f".{V1_PACKAGE}"
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    proto.ClearField("options")  # java/objc options name the v1alpha package
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old + "."):  # scalars have no type name: leave unset
                field.type_name = _renamed(field.type_name, old, new)
    for service in proto.service:
        for method in service.method:
            method.input_type = _renamed(method.input_type, old, new)
            method.output_type = _renamed(method.output_type, old, new)
    return proto


def v1_file() -> descriptor_pb2.FileDescriptorProto:
    """The v1 descriptor, registered in the default pool once."""
    pool = descriptor_pool.Default()
    try:
        found = pool.FindFileByName(V1_FILE)
    except KeyError:
        proto = _v1_file_proto()
        pool.Add(proto)
        return proto
    proto = descriptor_pb2.FileDescriptorProto()
    found.CopyToProto(proto)
    return proto


def enable_reflection(service_names: Iterable[str], server: grpc.Server) -> None:
    """Reflection for `service_names` (both reflection services are added to them)."""
    v1_file()
    names = (*service_names, V1ALPHA_SERVICE, V1_SERVICE)
    servicer = reflection.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    # Same wire format: the v1 service reuses the v1alpha (de)serializers and servicer.
    v1_handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE, {METHOD: v1_handler}),)
    )
