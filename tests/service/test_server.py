"""The server's guard rails over a real loopback connection: API keys and roles, gallery
scoping, overload and deadlines, size limits, health, reflection and metrics."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from facedb.client import FaceDBClient, enroll_request
from facedb.service.metrics import GalleryCollector
from facedb.service.server import FaceDBServer
from facedb.v1 import facedb_pb2 as pb
from facedb.v1 import facedb_pb2_grpc as pb_grpc
from tests.paths import EDGE, LFW
from tests.service.support import ADMIN_KEY, client, database_counts, running_server

ALICE = LFW / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
ALICE_AGAIN = LFW / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
BOB = LFW / "images" / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg"
TONY = LFW / "images" / "Tony_Blair" / "Tony_Blair_0001.jpg"
SOLVAY = EDGE / "large" / "uniface_scientists_solvay.png"  # 1600x1158 = 1.85 MP, 1.9 MB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaceDBServer, str, Path]]:
    data_dir = tmp_path_factory.mktemp("server-data")
    options = {
        "workers": 1,
        "max_queue": 1,
        "max_image_pixels": 1_000_000,
        "max_image_bytes": 2_000_000,
        "max_message_bytes": 2_500_000,
        "metrics_port": _free_port(),
    }
    with running_server(data_dir, **options) as (server, address):
        with client(address) as admin:
            admin.create_gallery("a")
            admin.create_gallery("b")
            admin.enroll("a", "alice", [ALICE], allow_multiple_faces=True)
            admin.enroll("b", "bob", [BOB], allow_multiple_faces=True)
        yield server, address, data_dir


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call()
    assert error.value.details()  # every refusal says what was wrong
    return error.value.code()


# ---------------------------------------------------------------------- auth


def test_a_call_without_a_key_is_unauthenticated(served: tuple) -> None:
    _, address, _ = served
    with FaceDBClient(address) as anonymous, client(address, "not-a-key") as wrong:
        assert _code(lambda: anonymous.identify("a", ALICE)) == grpc.StatusCode.UNAUTHENTICATED
        assert _code(anonymous.list_galleries) == grpc.StatusCode.UNAUTHENTICATED
        assert _code(wrong.stats) == grpc.StatusCode.UNAUTHENTICATED


def test_bearer_token_is_accepted(served: tuple) -> None:
    _, address, _ = served
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.FaceDBStub(channel)
        reply = stub.GetGallery(
            pb.GetGalleryRequest(name="a"), metadata=(("authorization", f"Bearer {ADMIN_KEY}"),)
        )
    assert reply.name == "a" and reply.identity_count == 1


def test_health_and_reflection_need_no_key(served: tuple) -> None:
    _, address, _ = served
    with FaceDBClient(address) as anonymous:
        assert anonymous.health() == "SERVING"
        assert anonymous.health("facedb.v1.FaceDB") == "SERVING"
        services = set(ProtoReflectionDescriptorDatabase(anonymous.channel).get_services())
    assert {"facedb.v1.FaceDB", "grpc.health.v1.Health"} <= services


def test_a_key_for_gallery_a_cannot_touch_gallery_b(served: tuple) -> None:
    _, address, data_dir = served
    before = database_counts(data_dir)
    with client(address, "enroll-a") as key_a:
        denied = [
            lambda: key_a.get_gallery("b"),
            lambda: key_a.identify("b", BOB),
            lambda: key_a.verify(BOB, gallery="b", external_id="bob"),
            lambda: key_a.get_identity("b", "bob"),
            lambda: key_a.list_identities("b"),
            lambda: key_a.enroll("b", "mallory", [ALICE_AGAIN]),
            lambda: key_a.delete_identity("b", "bob"),
        ]
        for call in denied:
            assert _code(call) == grpc.StatusCode.PERMISSION_DENIED
        assert [g.name for g in key_a.list_galleries()] == ["a"]
        assert [g.name for g in key_a.stats().galleries] == ["a"]
        assert key_a.get_identity("a", "alice").external_id == "alice"
    assert database_counts(data_dir) == before


def test_a_stream_item_for_a_forbidden_gallery_is_its_own_error_result(served: tuple) -> None:
    """Earlier items were written: the stream must still say what happened to each."""
    _, address, data_dir = served
    before = database_counts(data_dir)
    with client(address, "enroll-a") as key_a:
        reply = key_a.enroll_stream(
            [
                enroll_request("a", "stream-ok-1", [BOB], allow_multiple_faces=True),
                enroll_request("b", "mallory", [ALICE_AGAIN]),
                enroll_request("a", "stream-ok-2", [TONY], allow_multiple_faces=True),
            ]
        )
        assert [item.index for item in reply.items] == [0, 1, 2]
        denied = reply.items[1]
        assert denied.error_code == grpc.StatusCode.PERMISSION_DENIED.value[0]
        assert "gallery 'b'" in denied.error_message and not denied.outcomes
        assert reply.items[0].created and reply.items[0].error_code == 0
        assert reply.summary.items == 3 and reply.summary.items_failed == 1
        assert reply.summary.identities_created == 2
        with pytest.raises(grpc.RpcError):
            key_a.get_identity("b", "mallory")
        for name in ("stream-ok-1", "stream-ok-2"):
            key_a.delete_identity("a", name)
    counts = database_counts(data_dir)
    assert counts["identities"] == before["identities"]


def test_a_search_key_cannot_enroll_or_delete(served: tuple) -> None:
    _, address, data_dir = served
    before = database_counts(data_dir)
    with client(address, "search-a") as searcher:
        top = searcher.identify("a", ALICE_AGAIN).faces[0].candidates[0]
        assert top.external_id == "alice"
        for call in (
            lambda: searcher.enroll("a", "mallory", [BOB]),
            lambda: searcher.update_identity("a", "alice", display_name="Mallory"),
            lambda: searcher.delete_identity("a", "alice"),
            lambda: searcher.delete_face("a", top.face_id),
        ):
            assert _code(call) == grpc.StatusCode.PERMISSION_DENIED
    assert database_counts(data_dir) == before


def test_only_admins_create_or_delete_galleries(served: tuple) -> None:
    _, address, _ = served
    with client(address, "enroll-a") as key_a:
        assert _code(lambda: key_a.create_gallery("c")) == grpc.StatusCode.PERMISSION_DENIED
        assert _code(lambda: key_a.delete_gallery("a")) == grpc.StatusCode.PERMISSION_DENIED


# ---------------------------------------------------------------- gallery errors


def test_gallery_errors_have_their_codes(served: tuple) -> None:
    _, address, _ = served
    with client(address) as admin:
        assert _code(lambda: admin.create_gallery("a")) == grpc.StatusCode.ALREADY_EXISTS
        assert _code(lambda: admin.get_gallery("nope")) == grpc.StatusCode.NOT_FOUND
        assert _code(lambda: admin.identify("nope", ALICE)) == grpc.StatusCode.NOT_FOUND
        other_model = partial(admin.create_gallery, "m", embedding_model="ADAFACE_IR_18")
        assert _code(other_model) == grpc.StatusCode.FAILED_PRECONDITION
        assert [g.name for g in admin.list_galleries()] == ["a", "b"]


def test_a_target_rate_is_turned_into_the_calibrated_threshold(served: tuple) -> None:
    server, address, _ = served
    # The ArcFace fixture's calibration ships in facedb/calibration_data.
    calibration = server.engine.calibration(server.engine.model.sha256)
    assert calibration is not None
    with client(address) as admin:
        faces = admin.get_gallery("a").face_count
        identify = admin.identify("a", ALICE, target_fpir=0.01)
        assert identify.threshold == pytest.approx(calibration.threshold_for_fpir(0.01, faces))
        verify = admin.verify(ALICE, BOB, target_far=1e-3)
        assert verify.threshold == pytest.approx(calibration.threshold_for_far(1e-3))
        assert _code(lambda: admin.verify(ALICE, BOB, target_far=2.0)) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )


# ------------------------------------------------------------------- limits


def test_overload_is_resource_exhausted_and_a_full_wait_is_deadline_exceeded(
    served: tuple,
) -> None:
    server, address, _ = served
    waiting: list[grpc.StatusCode] = []
    with client(address) as admin, server.limiter.slot():  # the only worker is busy
        queued = threading.Thread(
            target=lambda: waiting.append(_code(lambda: _identify_with_deadline(admin, 3.0)))
        )
        queued.start()
        while server.limiter.waiting < 1:  # until the queued call holds the queue's place
            time.sleep(0.01)
        assert _code(lambda: admin.identify("a", ALICE)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        queued.join()
    assert waiting == [grpc.StatusCode.DEADLINE_EXCEEDED]
    with client(address) as admin:  # capacity back: served again
        assert admin.identify("a", ALICE_AGAIN).faces[0].candidates[0].external_id == "alice"


def _identify_with_deadline(admin: FaceDBClient, seconds: float) -> pb.IdentifyResponse:
    request = pb.IdentifyRequest(gallery="a", image=ALICE.read_bytes())
    return admin.stub.Identify(request, timeout=seconds, metadata=(("x-api-key", ADMIN_KEY),))


def _invalid_image_outcome(reply: pb.EnrollResponse) -> pb.ImageOutcome:
    (outcome,) = reply.outcomes
    assert not outcome.accepted and outcome.rejection.reason == pb.INVALID_IMAGE
    assert not reply.created and not reply.HasField("identity")
    return outcome


def test_images_over_the_pixel_limit_are_invalid(served: tuple) -> None:
    """Identify refuses the request; Enroll refuses that image (its outcome says why)."""
    _, address, data_dir = served
    before = database_counts(data_dir)
    with client(address) as admin:
        error = _code(lambda: admin.identify("a", SOLVAY))
        assert error == grpc.StatusCode.INVALID_ARGUMENT
        reply = admin.enroll("a", "solvay", [SOLVAY], allow_multiple_faces=True)
        outcome = _invalid_image_outcome(reply)
        assert "megapixels" in outcome.rejection.message
        assert outcome.image_name == SOLVAY.name and SOLVAY.name in outcome.rejection.message
    assert database_counts(data_dir) == before


def test_images_over_the_byte_limit_are_invalid(served: tuple) -> None:
    _, address, data_dir = served
    before = database_counts(data_dir)
    with client(address) as admin:
        with pytest.raises(grpc.RpcError) as error:
            admin.identify("a", b"\xff" * 2_200_000)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "2,000,000 bytes" in error.value.details()
        outcome = _invalid_image_outcome(admin.enroll("a", "huge", [b"\xff" * 2_200_000]))
        assert "2,000,000 bytes" in outcome.rejection.message
    assert database_counts(data_dir) == before


def test_messages_over_the_size_limit_are_refused(served: tuple) -> None:
    _, address, _ = served
    with client(address) as admin:
        code = _code(lambda: admin.identify("a", b"\xff" * 3_000_000))
    # gRPC refuses an over-size message itself, before any handler runs.
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


# ------------------------------------------------------------------ metrics


def test_metrics_endpoint_counts_requests_stages_rejections_and_sizes(served: tuple) -> None:
    server, address, _ = served
    with client(address) as admin, FaceDBClient(address) as anonymous:
        admin.identify("a", ALICE_AGAIN)
        admin.enroll("a", "coffee", [EDGE / "no_face" / "skimage_coffee.png"])
        _code(lambda: anonymous.identify("a", ALICE))
    url = f"http://127.0.0.1:{server.settings.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    assert 'facedb_requests_total{code="OK",method="Identify"}' in text
    assert 'facedb_requests_total{code="UNAUTHENTICATED",method="Identify"}' in text
    for stage in ("decode", "detect", "gates", "embed", "search", "write"):
        assert f'facedb_stage_seconds_count{{stage="{stage}"}}' in text
    assert 'facedb_rejections_total{reason="NO_FACE"}' in text
    assert "facedb_galleries 2.0" in text
    assert "facedb_faces " in text


def test_metrics_name_no_gallery_and_listen_on_loopback_by_default(served: tuple) -> None:
    """/metrics has no auth: gallery names (hidden from scoped keys) stay out of it."""
    server, _, _ = served
    url = f"http://127.0.0.1:{server.settings.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    assert 'gallery="' not in text
    assert "facedb_gallery_faces" not in text
    http_server, _collector = server._metrics
    assert http_server.server_address[0] == "127.0.0.1"


def test_metrics_gallery_labels_are_opt_in(served: tuple) -> None:
    server, _, _ = served
    collector = GalleryCollector(server._gallery_sizes, per_gallery=True)
    samples = {
        (family.name, sample.labels.get("gallery")): sample.value
        for family in collector.collect()
        for sample in family.samples
    }
    assert samples[("facedb_gallery_faces", "b")] == 1.0
    assert ("facedb_gallery_identities", "a") in samples
