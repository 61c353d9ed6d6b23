"""The HTTP/JSON API of a real `facedb serve --http-port` on loopback: every route, every
error mapping, multipart and base64 images, and every response checked against the
server's own /openapi.json."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from openapi_core import OpenAPI

from facedb.v1 import facedb_pb2 as pb
from facedb.vision.align import align_face
from facedb.vision.embed import load_embedder
from tests.http.support import Api, error_of, start_http_server
from tests.paths import ARCFACE, EDGE, LFW
from tests.service.support import ADMIN_KEY, ServerProcess, client
from tests.vision.analysis.support import AGEGENDER, load

ALICE = LFW / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
ALICE_AGAIN = LFW / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
BOB = LFW / "images" / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg"
BOB_AGAIN = LFW / "images" / "Abdullah_Gul" / "Abdullah_Gul_0002.jpg"
CAROL = LFW / "images" / "Tony_Blair" / "Tony_Blair_0001.jpg"
NO_FACE = EDGE / "no_face" / "skimage_coffee.png"
BROKEN = EDGE / "corrupt" / "thumbor_truncated.jpg"
MAX_BODY = 2_000_000

# Every facedb.v1 RPC and the route that serves it.
ROUTES = {
    "CreateGallery": ("post", "/v1/galleries"),
    "ListGalleries": ("get", "/v1/galleries"),
    "GetGallery": ("get", "/v1/galleries/{gallery}"),
    "DeleteGallery": ("delete", "/v1/galleries/{gallery}"),
    "Enroll": ("post", "/v1/galleries/{gallery}/enroll"),
    "EnrollStream": ("post", "/v1/galleries/{gallery}/enroll/batch"),
    "Identify": ("post", "/v1/galleries/{gallery}/identify"),
    "Verify": ("post", "/v1/verify"),
    "GetIdentity": ("get", "/v1/galleries/{gallery}/identities/{external_id}"),
    "ListIdentities": ("get", "/v1/galleries/{gallery}/identities"),
    "UpdateIdentity": ("patch", "/v1/galleries/{gallery}/identities/{external_id}"),
    "DeleteIdentity": ("delete", "/v1/galleries/{gallery}/identities/{external_id}"),
    "DeleteFace": ("delete", "/v1/galleries/{gallery}/faces/{face_id}"),
    "GetStats": ("get", "/v1/stats"),
    "Analyze": ("post", "/v1/analyze"),
    "SearchFaces": ("post", "/v1/galleries/{gallery}/faces/search"),
    "ClusterFaces": ("post", "/v1/galleries/{gallery}/faces/cluster"),
    "CreateApiKey": ("post", "/v1/keys"),
    "ListApiKeys": ("get", "/v1/keys"),
    "RevokeApiKey": ("post", "/v1/keys/{key_id}/revoke"),
    "RotateApiKey": ("post", "/v1/keys/{key_id}/rotate"),
    "Reindex": ("post", "/v1/galleries/{gallery}/reindex"),
}
# RPCs served by more than one route.
MORE_ROUTES = {"ClusterFaces": [("post", "/v1/cluster")]}  # raw embeddings, no gallery


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """One worker and no queue, so that two identifies at once make the second a 429.
    AgeGender is the only analysis model: other attributes are "not configured"."""
    data_dir = tmp_path_factory.mktemp("http-data")
    log = data_dir / "server.log"
    options = ("--workers", "1", "--max-queue", "0", "--max-message-bytes", str(MAX_BODY))
    options += ("--metrics-port", str(_free_port()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEDB_AGEGENDER_MODEL", AGEGENDER)
        server, base = start_http_server(data_dir, log, *options)
    try:
        yield server, base
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def spec(served: tuple[ServerProcess, str]) -> OpenAPI:
    return OpenAPI.from_dict(requests.get(served[1] + "/openapi.json", timeout=30).json())


@pytest.fixture(scope="module")
def admin(served: tuple[ServerProcess, str], spec: OpenAPI) -> Api:
    api = Api(served[1], ADMIN_KEY, spec, log=served[0].log_path)
    assert api.post("/v1/galleries", json={"name": "a"}).status_code == 201
    assert api.post("/v1/galleries", json={"name": "b"}).status_code == 201
    return api


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_key(served: tuple[ServerProcess, str], spec: OpenAPI, key: str | None) -> Api:
    return Api(served[1], key, spec, log=served[0].log_path)


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_openapi_document_has_a_route_for_every_rpc(spec: OpenAPI, served: tuple) -> None:
    rpcs = set(pb.DESCRIPTOR.services_by_name["FaceDB"].methods_by_name)
    assert rpcs == set(ROUTES)
    document = requests.get(served[1] + "/openapi.json", timeout=30).json()
    served_routes = {(method, path) for path, item in document["paths"].items() for method in item}
    rpc_routes = set(ROUTES.values()) | {r for routes in MORE_ROUTES.values() for r in routes}
    assert rpc_routes <= served_routes
    console_routes = {
        ("get", "/healthz"),
        ("get", "/v1/me"),
        ("get", "/v1/galleries/{gallery}/faces/{face_id}/crop"),
    }
    assert served_routes - rpc_routes == console_routes
    identify = document["paths"]["/v1/galleries/{gallery}/identify"]["post"]["requestBody"]
    assert set(identify["content"]) == {"application/json", "multipart/form-data"}
    multipart = identify["content"]["multipart/form-data"]["schema"]["properties"]
    assert multipart["image"] == {"type": "string", "format": "binary"}
    analyze = document["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    assert analyze["multipart/form-data"]["schema"]["required"] == ["image"]


def test_enroll_identify_verify_multipart_and_base64(admin: Api) -> None:
    with ALICE.open("rb") as photo:
        enrolled = admin.post(
            "/v1/galleries/a/enroll",
            data={"external_id": "alice", "display_name": "Alice", "metadata": '{"team": "x"}'},
            files={"images": photo},
        )
    assert enrolled.status_code == 200, enrolled.text
    body = enrolled.json()
    assert body["created"] and body["outcomes"][0]["accepted"]
    assert body["identity"]["metadata"] == {"team": "x"}

    enrolled = admin.post(
        "/v1/galleries/a/enroll",
        json={"external_id": "bob", "images": [b64(BOB), b64(NO_FACE)]},
    )
    assert enrolled.status_code == 200, enrolled.text
    outcomes = enrolled.json()["outcomes"]
    assert outcomes[0]["accepted"] and not outcomes[1]["accepted"]
    refusal = outcomes[1]["rejection"]
    assert refusal["reason"] == "NO_FACE" and refusal["message"]

    with ALICE_AGAIN.open("rb") as photo:
        found = admin.post("/v1/galleries/a/identify", files={"image": photo}, data={"top_k": 3})
    assert found.status_code == 200, found.text
    face = found.json()["faces"][0]
    assert face["candidates"][0]["external_id"] == "alice"
    assert face["candidates"][0]["score"] >= found.json()["threshold"]
    assert face["box"]["x2"] > face["box"]["x1"]

    found = admin.post("/v1/galleries/a/identify", json={"image": b64(BOB_AGAIN)})
    assert [c["external_id"] for c in found.json()["faces"][0]["candidates"]][:1] == ["bob"]
    found = admin.post("/v1/galleries/a/identify", json={"image": b64(CAROL)})
    assert found.json()["faces"][0]["candidates"] == []  # not enrolled: no match

    same = admin.post("/v1/verify", json={"image": b64(ALICE), "reference_image": b64(ALICE_AGAIN)})
    assert same.json()["match"] is True and same.json()["reference_box"] is not None
    with BOB_AGAIN.open("rb") as photo:
        other = admin.post(
            "/v1/verify", files={"image": photo}, data={"gallery": "a", "external_id": "alice"}
        )
    assert other.json()["match"] is False and other.json()["reference_face_id"] > 0


def test_batch_enroll_reports_each_item(admin: Api) -> None:
    items = [
        {"external_id": "carol", "images": [b64(CAROL)], "allow_multiple_faces": True},
        {"external_id": "", "images": [b64(CAROL)]},  # the whole item is refused
        {"external_id": "cup", "images": [b64(NO_FACE), b64(BROKEN)]},
    ]
    response = admin.post("/v1/galleries/b/enroll/batch", json={"items": items})
    assert response.status_code == 200, response.text
    empty = admin.post("/v1/galleries/b/enroll/batch", json={"items": []})
    assert error_of(empty)[:2] == (400, "INVALID_ARGUMENT")
    result = response.json()
    assert [i["error"] is None for i in result["items"]] == [True, False, True]
    assert result["items"][1]["error"]["status"] == "INVALID_ARGUMENT"
    assert result["summary"] == {
        "items": 3,
        "identities_created": 1,
        "images_accepted": 1,
        "images_rejected": 2,
        "items_failed": 1,
        "rejections_by_reason": {"NO_FACE": 1, "INVALID_IMAGE": 1},
    }


def test_identities_pages_update_and_delete(admin: Api, served: tuple) -> None:
    sequences = []
    for name, photo in (("dan", ALICE_AGAIN), ("erin", BOB_AGAIN)):
        body = {"external_id": name, "images": [b64(photo)], "allow_duplicate": True}
        enrolled = admin.post("/v1/galleries/b/enroll", json=body)
        assert enrolled.status_code == 200
        sequences.append(enrolled.json()["sequence"])
    assert 0 < sequences[0] < sequences[1]  # the change log's sequence, for min_sequence
    seen, token = [], ""
    while True:
        page = admin.get("/v1/galleries/b/identities", params={"page_size": 2, "page_token": token})
        seen += [i["external_id"] for i in page.json()["identities"]]
        token = page.json()["next_page_token"]
        if not token:
            break
    assert sorted(seen) == ["carol", "dan", "erin"]

    patched = admin.patch(
        "/v1/galleries/b/identities/dan", json={"display_name": "Dan", "metadata": {"k": "v"}}
    )
    assert patched.json()["display_name"] == "Dan" and patched.json()["metadata"] == {"k": "v"}
    dan = admin.get("/v1/galleries/b/identities/dan").json()
    with client(served[0].address) as grpc_client:  # the same data over gRPC
        assert grpc_client.get_identity("b", "dan").display_name == "Dan"

    deleted = admin.delete(f"/v1/galleries/b/faces/{dan['face_ids'][0]}")
    assert deleted.status_code == 204
    # The relabel above took a sequence of its own (it travels the change log to every
    # server's in-memory labels), so the delete is the second change after the enroll.
    assert int(deleted.headers["x-facedb-sequence"]) == sequences[1] + 2
    assert admin.get("/v1/galleries/b/identities/dan").json()["face_ids"] == []
    removed = admin.delete("/v1/galleries/b/identities/erin")
    assert removed.json() == {"faces_removed": 1, "sequence": sequences[1] + 3}
    after = {"image": b64(BOB_AGAIN), "min_sequence": sequences[1] + 3}
    found = admin.post("/v1/galleries/b/identify", json=after).json()
    assert all(c["external_id"] != "erin" for f in found["faces"] for c in f["candidates"])
    lagging = {"image": b64(BOB_AGAIN), "min_sequence": 10**12}
    headers = {"x-timeout-seconds": "2"}
    url = admin.base + "/v1/galleries/b/identify"  # the raw session: a 503 is expected
    code, status, message = error_of(admin.session.post(url, json=lagging, headers=headers))
    assert (code, status) == (503, "UNAVAILABLE") and "replica lags" in message
    assert error_of(admin.get("/v1/galleries/b/identities/erin"))[:2] == (404, "NOT_FOUND")

    stats = admin.get("/v1/stats").json()
    assert {g["name"] for g in stats["galleries"]} == {"a", "b"}
    assert stats["faces"] == sum(g["faces"] for g in stats["galleries"])
    galleries = admin.get("/v1/galleries").json()["galleries"]
    assert [g["name"] for g in galleries] == ["a", "b"]


def test_galleries_create_conflict_and_delete(admin: Api) -> None:
    assert admin.post("/v1/galleries", json={"name": "tmp"}).status_code == 201
    assert error_of(admin.post("/v1/galleries", json={"name": "tmp"}))[:2] == (
        409,
        "ALREADY_EXISTS",
    )
    other_model = admin.post("/v1/galleries", json={"name": "x", "embedding_model": "adaface"})
    code, status, message = error_of(other_model)
    assert (code, status) == (409, "FAILED_PRECONDITION") and "not loaded" in message
    assert admin.get("/v1/galleries/tmp").json()["identity_count"] == 0
    assert admin.delete("/v1/galleries/tmp").status_code == 204
    assert error_of(admin.get("/v1/galleries/tmp"))[:2] == (404, "NOT_FOUND")


def test_reindex_is_admin_only_checks_its_input_and_rebuilds(
    served: tuple, spec: OpenAPI, admin: Api
) -> None:
    assert admin.post("/v1/galleries", json={"name": "re"}).status_code == 201
    searcher = as_key(served, spec, "search-a")
    assert error_of(searcher.post("/v1/galleries/a/reindex", json={}))[:2] == (
        403,
        "PERMISSION_DENIED",
    )
    bad = admin.post("/v1/galleries/re/reindex", json={"index_kind": "btree"})
    assert error_of(bad)[:2] == (400, "INVALID_ARGUMENT")
    assert error_of(admin.post("/v1/galleries/nope/reindex", json={}))[:2] == (404, "NOT_FOUND")
    done = admin.post("/v1/galleries/re/reindex", json={"index_kind": "hnsw"}).json()
    assert done["gallery"]["name"] == "re" and done["faces_done"] == 0
    (live,) = [g for g in admin.get("/v1/stats").json()["galleries"] if g["name"] == "re"]
    assert live["index_kind"] == "hnsw"
    assert admin.delete("/v1/galleries/re").status_code == 204


def test_keys_roles_and_galleries(served: tuple, spec: OpenAPI, admin: Api) -> None:
    anonymous = as_key(served, spec, None)
    code, status, message = error_of(anonymous.get("/v1/galleries"))
    assert (code, status) == (401, "UNAUTHENTICATED") and "x-api-key" in message
    assert error_of(as_key(served, spec, "wrong").get("/v1/stats"))[:2] == (401, "UNAUTHENTICATED")
    bearer = Api(served[1], None, spec)
    bearer.session.headers["authorization"] = "Bearer search-a"
    assert [g["name"] for g in bearer.get("/v1/galleries").json()["galleries"]] == ["a"]

    search_a = as_key(served, spec, "search-a")
    code, status, role_message = error_of(search_a.delete("/v1/galleries/a/identities/alice"))
    assert (code, status) == (403, "PERMISSION_DENIED") and "enroll role" in role_message
    code, _, message = error_of(search_a.post("/v1/galleries/b/identify", json={"image": ""}))
    assert code == 403 and "gallery 'b'" in message
    verify_b = {"image": b64(ALICE), "gallery": "b", "external_id": "carol"}
    assert error_of(search_a.post("/v1/verify", json=verify_b))[0] == 403
    assert error_of(as_key(served, spec, "enroll-a").delete("/v1/galleries/a"))[0] == 403

    # The same refusal, word for word, over gRPC.
    with (
        client(served[0].address, "search-a") as grpc_client,
        pytest.raises(grpc.RpcError) as refused,
    ):
        grpc_client.delete_identity("a", "alice")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused.value.details() == role_message


def test_bad_input_is_400_and_changes_nothing(admin: Api) -> None:
    before = admin.get("/v1/galleries/a").json()
    broken = admin.post(
        "/v1/galleries/a/enroll", files={"images": BROKEN.read_bytes()}, data={"external_id": "z"}
    )
    assert broken.json()["outcomes"][0]["rejection"]["reason"] == "INVALID_IMAGE"
    assert error_of(admin.get("/v1/galleries/a/identities/z"))[0] == 404  # nothing written
    with BROKEN.open("rb") as photo:
        code, status, message = error_of(
            admin.post("/v1/galleries/a/identify", files={"image": photo})
        )
    assert (code, status) == (400, "INVALID_ARGUMENT") and message
    assert error_of(admin.post("/v1/galleries/a/identify", json={"image": "not base64!"}))[0] == 400
    bad_json = admin.post(
        "/v1/galleries/a/identify", data=b"{", headers={"content-type": "application/json"}
    )
    assert error_of(bad_json)[:2] == (400, "INVALID_ARGUMENT")
    assert "external_id" in error_of(admin.post("/v1/galleries/a/enroll", json={"images": []}))[2]
    assert error_of(admin.post("/v1/galleries", json={}))[:2] == (400, "INVALID_ARGUMENT")
    assert error_of(admin.post("/v1/galleries/a/identify", data=b"x"))[0] == 400  # no type
    assert error_of(admin.get("/v1/galleries/a/identities", params={"page_size": -1}))[0] == 400
    assert error_of(admin.get("/v1/galleries/nope/identities"))[:2] == (404, "NOT_FOUND")
    assert admin.get("/v1/galleries/a").json() == before


def test_oversized_body_is_refused_before_it_is_read(admin: Api) -> None:
    big = b"\xff" * (MAX_BODY + 1)
    code, status, message = error_of(
        admin.post("/v1/galleries/a/identify", files={"image": ("big.jpg", big)})
    )
    assert (code, status) == (413, "RESOURCE_EXHAUSTED") and "max_message_bytes" in message


def test_deadline_is_504(admin: Api) -> None:
    response = admin.post(
        "/v1/galleries/a/identify",
        json={"image": b64(ALICE)},
        headers={"x-timeout-seconds": "0.000001"},
    )
    assert error_of(response)[:2] == (504, "DEADLINE_EXCEEDED")


def test_overload_is_429(admin: Api) -> None:
    """One worker, no queue: of several identifies sent at once, some are refused at once."""
    start = threading.Barrier(4)
    codes: list[int] = []

    def identify() -> None:
        api = Api(admin.base, ADMIN_KEY, admin.spec)
        start.wait()
        codes.append(api.post("/v1/galleries/a/identify", json={"image": b64(ALICE)}).status_code)

    threads = [threading.Thread(target=identify) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 200 in codes and 429 in codes and set(codes) <= {200, 429}


def test_unknown_route_is_a_json_404(admin: Api, served: tuple) -> None:
    response = requests.get(served[1] + "/v1/nothing", timeout=30)
    assert response.status_code == 404 and response.json()["error"]["status"] == "NOT_FOUND"


def test_face_crops_need_the_view_crops_permission(
    served: tuple, spec: OpenAPI, admin: Api
) -> None:
    face_id = admin.get("/v1/galleries/a/identities/alice").json()["face_ids"][0]
    path = f"/v1/galleries/a/faces/{face_id}/crop"
    crop = admin.get(path)
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/png"
    assert crop.content.startswith(b"\x89PNG")
    code, status, message = error_of(as_key(served, spec, "search-a").get(path))
    assert (code, status) == (403, "PERMISSION_DENIED") and "view_crops" in message
    assert as_key(served, spec, "search-crops-a").get(path).content == crop.content
    assert error_of(admin.get("/v1/galleries/a/faces/999999/crop"))[:2] == (404, "NOT_FOUND")
    me = as_key(served, spec, "search-a").get("/v1/me").json()
    assert me == {"key_id": me["key_id"], "role": "search", "galleries": ["a"], "view_crops": False}


def test_console_page_is_served_with_a_strict_policy(served: tuple) -> None:
    page = requests.get(served[1] + "/", timeout=30)
    assert page.status_code == 200 and "<title>facedb console</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert requests.get(served[1] + "/console/console.js", timeout=30).status_code == 200


def test_keys_over_http(admin: Api, served: tuple, spec: OpenAPI) -> None:
    created = admin.post(
        "/v1/keys",
        json={"role": "search", "galleries": ["a"], "name": "kiosk", "rate_limit": 50},
    )
    assert created.status_code == 201, created.text
    secret, key_id = created.json()["key"], created.json()["api_key"]["key_id"]
    kiosk = as_key(served, spec, secret)
    assert [g["name"] for g in kiosk.get("/v1/galleries").json()["galleries"]] == ["a"]
    listed = admin.get("/v1/keys").json()["api_keys"]
    assert [k["key_id"] for k in listed] == [key_id] and listed[0]["last_used_at"]
    rotated = admin.post(f"/v1/keys/{key_id}/rotate").json()
    assert rotated["api_key"]["key_id"] == key_id and rotated["key"] != secret
    assert error_of(kiosk.get("/v1/galleries"))[:2] == (401, "UNAUTHENTICATED")
    revoked = admin.post(f"/v1/keys/{key_id}/revoke").json()
    assert revoked["revoked_at"] is not None
    assert admin.get("/v1/keys").json()["api_keys"] == []
    assert len(admin.get("/v1/keys", params={"include_revoked": True}).json()["api_keys"]) == 1
    bad = admin.post("/v1/keys", json={"role": "root"})
    assert error_of(bad)[:2] == (400, "INVALID_ARGUMENT")
    assert error_of(admin.post("/v1/keys/nope/revoke"))[:2] == (404, "NOT_FOUND")


def test_health_needs_no_key(served: tuple, spec: OpenAPI) -> None:
    assert as_key(served, spec, None).get("/healthz").json() == {"status": "SERVING"}


def test_http_calls_are_counted_in_the_metrics(admin: Api, served: tuple) -> None:
    admin.get("/v1/galleries/missing")
    started = next(e for e in served[0].log_lines() if e.get("msg") == "facedb serving")
    metrics = requests.get(f"http://{started['metrics']}/metrics", timeout=30).text
    assert 'facedb_requests_total{code="NOT_FOUND",method="GetGallery"}' in metrics
    assert 'facedb_request_seconds_count{method="Identify"}' in metrics


def test_analyze_multipart_and_base64(admin: Api, served: tuple, spec: OpenAPI) -> None:
    with BOB.open("rb") as photo:
        analyzed = admin.post(
            "/v1/analyze", files={"image": photo}, data={"attributes": "age,gender"}
        )
    assert analyzed.status_code == 200, analyzed.text
    body = analyzed.json()
    assert body["attributes"] == ["age", "gender"]
    face = body["faces"][0]
    assert face["box"]["x2"] > face["box"]["x1"] and len(face["landmarks"]) == 5
    assert face["quality"]["sharpness"] > 0 and face["rejection"] is None
    attributes = face["attributes"]
    assert attributes["gender"] == "male" and 20 < attributes["age"] < 80
    assert attributes["emotion"] is None  # not asked

    bare = admin.post("/v1/analyze", json={"image": b64(BOB), "gallery": "a"}).json()
    assert bare["attributes"] == [] and bare["faces"][0]["attributes"]["age"] is None
    assert admin.post("/v1/analyze", json={"image": b64(NO_FACE)}).json()["faces"] == []
    with_attributes = admin.post(
        "/v1/galleries/a/identify", json={"image": b64(BOB_AGAIN), "attributes": ["gender"]}
    ).json()["faces"][0]
    assert with_attributes["attributes"]["gender"] == "male"
    with BOB_AGAIN.open("rb") as photo:  # repeated parts, one name each
        repeated = admin.post(
            "/v1/galleries/a/identify",
            files={"image": photo},
            data={"attributes": ["age", "gender"]},
        ).json()["faces"][0]["attributes"]
    assert repeated["gender"] == "male" and repeated["age"] is not None
    plain = admin.post("/v1/galleries/a/identify", json={"image": b64(BOB_AGAIN)}).json()
    assert plain["faces"][0]["attributes"] is None

    code, status, message = error_of(
        admin.post("/v1/analyze", json={"image": b64(BOB), "attributes": ["shoe_size"]})
    )
    assert (code, status) == (400, "INVALID_ARGUMENT") and "shoe_size" in message
    code, status, message = error_of(
        admin.post("/v1/analyze", json={"image": b64(BOB), "attributes": ["emotion"]})
    )
    assert (code, status) == (409, "FAILED_PRECONDITION") and "agegender" in message
    assert error_of(admin.post("/v1/analyze", json={"image": b64(BROKEN)}))[:2] == (
        400,
        "INVALID_ARGUMENT",
    )
    refused = as_key(served, spec, "search-a").post(
        "/v1/analyze", json={"image": b64(BOB), "gallery": "b"}
    )
    assert error_of(refused)[:2] == (403, "PERMISSION_DENIED")


@pytest.fixture(scope="module")
def pairs(admin: Api) -> dict[str, list[int]]:
    """Gallery `pairs`: two photos each of two people; their face ids."""
    assert admin.post("/v1/galleries", json={"name": "pairs"}).status_code == 201
    face_ids = {}
    for name, photos in (("alice", (ALICE, ALICE_AGAIN)), ("bob", (BOB, BOB_AGAIN))):
        body = {"external_id": name, "images": [b64(p) for p in photos], "allow_duplicate": True}
        enrolled = admin.post("/v1/galleries/pairs/enroll", json=body).json()
        face_ids[name] = [o["face_id"] for o in enrolled["outcomes"] if o["accepted"]]
        assert len(face_ids[name]) == 2
    return face_ids


def test_search_faces_by_face_id_and_by_embedding(
    admin: Api, pairs: dict[str, list[int]], served: tuple, spec: OpenAPI
) -> None:
    alice = pairs["alice"]
    found = admin.post("/v1/galleries/pairs/faces/search", json={"face_id": alice[0]})
    assert found.status_code == 200, found.text
    matches = found.json()["matches"]
    assert [(m["face_id"], m["external_id"]) for m in matches] == [(alice[1], "alice")]
    assert matches[0]["score"] >= found.json()["threshold"]

    image, face = load("Abdullah_Gul", 3)  # bob, a photo not enrolled
    vector = load_embedder(ARCFACE).embed(align_face(image, face.landmarks)[None])[0]
    by_vector = admin.post(
        "/v1/galleries/pairs/faces/search", json={"embedding": vector.tolist(), "top_k": 1}
    ).json()
    assert [m["external_id"] for m in by_vector["matches"]] == ["bob"]

    both = {"face_id": alice[0], "embedding": vector.tolist()}
    code, _, message = error_of(admin.post("/v1/galleries/pairs/faces/search", json=both))
    assert code == 400 and "exactly one" in message
    code, _, message = error_of(
        admin.post("/v1/galleries/pairs/faces/search", json={"embedding": [1.0, 2.0]})
    )
    assert code == 400 and "2 values" in message
    missing = admin.post("/v1/galleries/pairs/faces/search", json={"face_id": 999_999})
    assert error_of(missing)[:2] == (404, "NOT_FOUND")
    refused = as_key(served, spec, "search-a").post(
        "/v1/galleries/pairs/faces/search", json={"face_id": alice[0]}
    )
    assert error_of(refused)[:2] == (403, "PERMISSION_DENIED")


def test_cluster_gallery_faces_and_raw_embeddings(admin: Api, pairs: dict[str, list[int]]) -> None:
    clustered = admin.post("/v1/galleries/pairs/faces/cluster", json={})
    assert clustered.status_code == 200, clustered.text
    groups = sorted(sorted(c["face_ids"]) for c in clustered.json()["clusters"])
    assert groups == sorted(sorted(ids) for ids in pairs.values())
    assert all(c["indices"] == [] for c in clustered.json()["clusters"])
    subset = admin.post(
        "/v1/galleries/pairs/faces/cluster", json={"face_ids": pairs["alice"][:1]}
    ).json()
    assert [c["face_ids"] for c in subset["clusters"]] == [pairs["alice"][:1]]

    dim = admin.get("/v1/stats").json()["loaded_model"]["dim"]
    rng = np.random.default_rng(0)
    centre = rng.normal(size=dim)
    rows = [centre + rng.normal(scale=0.1, size=dim) for _ in range(3)] + [rng.normal(size=dim)]
    raw = admin.post("/v1/cluster", json={"embeddings": [r.tolist() for r in rows]}).json()
    assert [sorted(c["indices"]) for c in raw["clusters"]] == [[0, 1, 2], [3]]
    assert 0 < raw["threshold"] < 1

    missing = admin.post("/v1/galleries/pairs/faces/cluster", json={"face_ids": [999_999]})
    assert error_of(missing)[:2] == (404, "NOT_FOUND")
    code, _, message = error_of(admin.post("/v1/cluster", json={"embeddings": [[1.0, 0.0]]}))
    assert code == 400 and "2 values" in message
    assert error_of(admin.post("/v1/cluster", json={"embeddings": []}))[0] == 400
    negative = {"embeddings": [rows[0].tolist()], "neighbours": -1}
    code, _, message = error_of(admin.post("/v1/cluster", json=negative))
    assert code == 400 and "neighbours" in message


def test_enroll_names_boxes_and_request_id_replay(admin: Api) -> None:
    assert admin.post("/v1/galleries", json={"name": "named"}).status_code == 201
    files = [("images", (p.name, p.read_bytes())) for p in (ALICE, NO_FACE)]
    form = {"external_id": "alice", "request_id": "retry-1"}
    first = admin.post("/v1/galleries/named/enroll", data=form, files=files)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["replayed"] is False
    assert [o["image_name"] for o in body["outcomes"]] == [ALICE.name, NO_FACE.name]
    accepted, refused = body["outcomes"]
    assert accepted["accepted"] and accepted["box"]["x2"] > accepted["box"]["x1"]
    assert refused["rejection"]["reason"] == "NO_FACE" and refused["box"] is None
    assert accepted["attributes"] is None  # the gallery stores none

    again = admin.post("/v1/galleries/named/enroll", data=form, files=files)
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    assert again.json()["outcomes"] == body["outcomes"]
    identity = admin.get("/v1/galleries/named/identities/alice").json()
    assert identity["face_ids"] == [accepted["face_id"]]  # the retry wrote nothing

    named = {"external_id": "bob", "images": [b64(BOB)], "image_names": ["front.jpg"]}
    enrolled = admin.post("/v1/galleries/named/enroll", json=named).json()
    assert enrolled["outcomes"][0]["image_name"] == "front.jpg"
    unnamed = admin.post("/v1/galleries/named/enroll", json={**named, "image_names": []}).json()
    assert unnamed["outcomes"][0]["image_name"] == ""
    wrong = {"external_id": "carol", "images": [b64(CAROL)], "image_names": ["a", "b"]}
    code, status, message = error_of(admin.post("/v1/galleries/named/enroll", json=wrong))
    assert (code, status) == (400, "INVALID_ARGUMENT") and "image names" in message
    assert admin.get("/v1/galleries/named/identities/carol").status_code == 404

    explicit = {"external_id": "dave", "image_names": "x,y.jpg", "allow_duplicate": "true"}
    parts = [("images", ("upload.jpg", BOB_AGAIN.read_bytes()))]
    sent_named = admin.post("/v1/galleries/named/enroll", data=explicit, files=parts).json()
    assert sent_named["outcomes"][0]["image_name"] == "x,y.jpg"  # sent names win, unsplit

    batch = {"items": [{"external_id": "carol", "images": [b64(CAROL)], "request_id": "b-1"}]}
    sent = [admin.post("/v1/galleries/named/enroll/batch", json=batch) for _ in range(2)]
    assert [r.json()["items"][0]["replayed"] for r in sent] == [False, True]


def test_gallery_stored_attributes_over_http(admin: Api) -> None:
    body = {"name": "audit", "stored_attributes": ["age", "gender"]}
    created = admin.post("/v1/galleries", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["stored_attributes"] == ["age", "gender"]
    assert admin.get("/v1/galleries/audit").json()["stored_attributes"] == ["age", "gender"]
    assert admin.get("/v1/galleries/a").json()["stored_attributes"] == []

    enrolled = admin.post(
        "/v1/galleries/audit/enroll", json={"external_id": "bob", "images": [b64(BOB)]}
    )
    assert enrolled.status_code == 200, enrolled.text
    attributes = enrolled.json()["outcomes"][0]["attributes"]
    assert attributes["gender"] == "male" and 20 < attributes["age"] < 80
    assert attributes["emotion"] is None  # not stored by this gallery

    for names, expected in (
        (["shoe_size"], (400, "INVALID_ARGUMENT")),
        (["emotion"], (409, "FAILED_PRECONDITION")),
    ):
        refused = admin.post("/v1/galleries", json={"name": "refused", "stored_attributes": names})
        code, status, message = error_of(refused)
        assert (code, status) == expected and names[0] in message
    assert admin.get("/v1/galleries/refused").status_code == 404


def test_identify_and_search_faces_filter_on_stored_attributes_over_http(admin: Api) -> None:
    serena = LFW / "images" / "Serena_Williams" / "Serena_Williams_0001.jpg"
    body = {"name": "filtered", "stored_attributes": ["age", "gender"]}
    assert admin.post("/v1/galleries", json=body).status_code == 201
    face_ids = {}
    for name, photo in (("serena", serena), ("tony", CAROL)):
        body = {"external_id": name, "images": [b64(photo)]}
        enrolled = admin.post("/v1/galleries/filtered/enroll", json=body)
        assert enrolled.status_code == 200, enrolled.text
        face_ids[name] = enrolled.json()["outcomes"][0]["face_id"]

    def identified(photo: Path, filters: list[dict]) -> list[str]:
        body = {"image": b64(photo), "filters": filters}
        found = admin.post("/v1/galleries/filtered/identify", json=body)
        assert found.status_code == 200, found.text
        return [c["external_id"] for c in found.json()["faces"][0]["candidates"]]

    serena_again = serena.with_name("Serena_Williams_0002.jpg")
    female = {"name": "gender", "equals": "female"}
    assert identified(serena_again, [female]) == ["serena"]
    assert identified(serena_again, [{"name": "gender", "equals": "male"}]) == []
    assert identified(CAROL, [female]) == []  # the man's probe: no match
    assert identified(CAROL, [{"name": "age", "min": 45, "max": 70}]) == ["tony"]
    with serena_again.open("rb") as photo:  # multipart: filters as a JSON text part
        found = admin.post(
            "/v1/galleries/filtered/identify",
            files={"image": photo},
            data={"filters": '[{"name": "gender", "equals": "male"}]'},
        )
    assert found.status_code == 200, found.text
    assert found.json()["faces"][0]["candidates"] == []

    def searched(filters: list[dict]) -> list[str]:
        body = {"face_id": face_ids["tony"], "threshold": -1.0, "filters": filters}
        found = admin.post("/v1/galleries/filtered/faces/search", json=body)
        assert found.status_code == 200, found.text
        return [m["external_id"] for m in found.json()["matches"]]

    assert searched([]) == ["serena"]
    assert searched([female, {"name": "age", "max": 45}]) == ["serena"]
    assert searched([{"name": "age", "min": 45}]) == []

    for filters, expected in (
        ([{"name": "shoe_size", "equals": "9"}], (400, "INVALID_ARGUMENT")),
        ([{"name": "age"}], (400, "INVALID_ARGUMENT")),
        ([{"name": "race", "equals": "white"}], (409, "FAILED_PRECONDITION")),
    ):
        body = {"face_id": face_ids["tony"], "filters": filters}
        refused = admin.post("/v1/galleries/filtered/faces/search", json=body)
        code, status, message = error_of(refused)
        assert (code, status) == expected and filters[0]["name"] in message
        body = {"image": b64(CAROL), "filters": filters}
        refused = admin.post("/v1/galleries/filtered/identify", json=body)
        assert error_of(refused)[:2] == expected
