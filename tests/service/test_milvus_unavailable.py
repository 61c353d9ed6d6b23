"""A Milvus out of reach is UNAVAILABLE (retryable), not INTERNAL: a real gRPC server with
the Milvus backend on a real Milvus core, reached through a TCP forwarder that the test
closes (the shared Milvus keeps running: the server then meets a closed port)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import grpc
import numpy as np
import pytest

from facedb.storage.catalog import NewFace
from facedb.v1 import facedb_pb2 as pb
from tests.service.support import client, running_server
from tests.tcp_forwarder import TcpForwarder

pytestmark = pytest.mark.milvus

TIMEOUT_S = 5.0  # milvus_timeout: how long the server keeps retrying a closed port


def test_a_milvus_out_of_reach_answers_unavailable_and_sql_keeps_the_enrollment(
    tmp_path: Path,
    milvus_uri: str,
) -> None:
    target = urlparse(milvus_uri)
    forwarder = TcpForwarder(target.hostname or "127.0.0.1", target.port or 19530)
    uri = f"http://127.0.0.1:{forwarder.port}"
    settings = {"index_backend": "milvus", "milvus_uri": uri, "milvus_timeout": TIMEOUT_S}
    try:
        with running_server(tmp_path, **settings) as (server, address), client(address) as db:
            db.create_gallery("g")
            vector = np.random.default_rng(3).standard_normal(512).astype(np.float32)
            vector /= np.linalg.norm(vector)
            catalog = server.engine.catalog
            catalog.add_faces("g", "p", [NewFace(vector)])
            query = pb.SearchFacesRequest(gallery="g", embedding=pb.EmbeddingVector(values=vector))
            found = db._call(db.stub.SearchFaces, query)
            assert [match.external_id for match in found.matches] == ["p"]

            forwarder.close()
            with pytest.raises(grpc.RpcError) as caught:
                db._call(db.stub.SearchFaces, query, timeout=60)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert f"Milvus at {uri}" in (caught.value.details() or "")

            # SQL commits first: an enrollment while Milvus is away is kept (and answered
            # as done), the index catches up once Milvus is back.
            catalog.add_faces("g", "q", [NewFace(-vector)])
            assert len(catalog.face_ids("g")) == 2
    finally:
        forwarder.close()
