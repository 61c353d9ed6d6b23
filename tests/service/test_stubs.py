"""The generated stubs in facedb/v1 must be what `make proto` makes from the .proto today."""

from __future__ import annotations

from pathlib import Path

from grpc_tools import protoc

from tests.paths import REPO

GENERATED = ("facedb_pb2.py", "facedb_pb2.pyi", "facedb_pb2_grpc.py")


def test_stubs_match_the_proto(tmp_path: Path) -> None:
    args = [
        "protoc",
        f"-I{REPO / 'protos'}",
        f"--python_out={tmp_path}",
        f"--pyi_out={tmp_path}",
        f"--grpc_python_out={tmp_path}",
        str(REPO / "protos" / "facedb" / "v1" / "facedb.proto"),
    ]
    assert protoc.main(args) == 0
    for name in GENERATED:
        fresh = (tmp_path / "facedb" / "v1" / name).read_text()
        committed = (REPO / "facedb" / "v1" / name).read_text()
        assert committed == fresh, f"facedb/v1/{name} is stale: run `make proto`"


def test_service_is_facedb_v1() -> None:
    from facedb.v1 import facedb_pb2

    service = facedb_pb2.DESCRIPTOR.services_by_name["FaceDB"]
    assert service.full_name == "facedb.v1.FaceDB"
    assert {"Enroll", "EnrollStream", "Identify", "Verify", "GetStats"} <= {
        m.name for m in service.methods
    }
