"""Request bounds enforced by the engine, the same on SQLite and PostgreSQL: names, ids,
metadata, image count and decoded pixels. Each refusal is INVALID_ARGUMENT naming the limit,
and writes nothing."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from facedb.engine import (
    Engine,
    EnrollItem,
    FailedPreconditionError,
    InvalidRequestError,
    open_engine,
)
from facedb.storage.db import migrate
from tests.paths import LFW
from tests.service.support import server_settings

os.environ.setdefault("FACEDB_ORT_THREADS", "1")

PHOTO = (LFW / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg").read_bytes()


@pytest.fixture
def engine(databases, tmp_path: Path) -> Iterator[Engine]:
    url = databases.create()
    migrate(url)
    settings = server_settings(
        tmp_path / "data", database_url=url, max_images_per_request=4, max_request_pixels=200_000
    )
    engine = open_engine(settings)
    engine.create_gallery("g")
    yield engine
    engine.close()


def _refused(call: Callable[[], object], *words: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        call()
    for word in words:
        assert word in str(error.value), str(error.value)


def _item(external_id: str = "colin", images: list[bytes] | None = None, **fields) -> EnrollItem:
    return EnrollItem("g", external_id, images or [PHOTO], allow_multiple_faces=True, **fields)


def _nothing_written(engine: Engine) -> None:
    assert engine.list_identities("g")[0] == []
    assert [g.name for g in engine.list_galleries()] == ["g"]


def test_names_and_ids_are_bounded_and_free_of_control_characters(engine: Engine) -> None:
    long = "x" * 10_000
    for name in (long, "has space", "a/b", "nul\x00", "-leading", "ünïcode"):
        _refused(lambda name=name: engine.create_gallery(name), "gallery name")
    _refused(lambda: engine.enroll(_item(long)), "external_id", "limit is 256")
    _refused(lambda: engine.enroll(_item("nul\x00id")), "external_id", "control character")
    _refused(lambda: engine.enroll(_item(display_name=long)), "display_name", "limit")
    _refused(lambda: engine.enroll(_item(display_name="a\x00b")), "display_name")
    # Lookups too: PostgreSQL would answer a NUL with a driver error (INTERNAL).
    _refused(lambda: engine.get_identity("g", "a\x00b"), "external_id")
    _refused(lambda: engine.get_gallery("g\x00"), "gallery")
    _nothing_written(engine)


def test_metadata_is_bounded(engine: Engine) -> None:
    _refused(lambda: engine.enroll(_item(metadata={"blob": "x" * 5_000_000})), "metadata", "bytes")
    many = {f"k{i}": "v" for i in range(65)}
    _refused(lambda: engine.enroll(_item(metadata=many)), "65 keys", "limit is 64")
    _refused(lambda: engine.enroll(_item(metadata={"k" * 65: "v"})), "metadata key")
    _refused(lambda: engine.enroll(_item(metadata={"k": "nul\x00"})), "NUL")
    _nothing_written(engine)
    engine.enroll(_item(metadata={"team": "red"}))
    _refused(
        lambda: engine.update_identity("g", "colin", metadata={"blob": "x" * 20_000}), "metadata"
    )
    assert engine.get_identity("g", "colin").metadata == {"team": "red"}


def test_image_count_and_total_pixels_are_capped(engine: Engine) -> None:
    _refused(lambda: engine.enroll(_item(images=[PHOTO] * 5)), "5 images", "max_images_per_request")
    # 250x250 LFW photos: the fourth brings the request past 200,000 decoded pixels.
    _refused(lambda: engine.enroll(_item(images=[PHOTO] * 4)), "image 3", "max_request_pixels")
    _nothing_written(engine)
    assert engine.enroll(_item(images=[PHOTO] * 3)).outcomes[0].accepted


def test_image_names_and_request_ids_are_checked(engine: Engine) -> None:
    _refused(lambda: engine.enroll(_item(image_names=["a.jpg", "b.jpg"])), "2 image names")
    _refused(lambda: engine.enroll(_item(image_names=["x" * 300])), "name")
    _refused(lambda: engine.enroll(_item(request_id="not a key!")), "request_id")
    _nothing_written(engine)


def test_images_are_decoded_one_at_a_time(tmp_path: Path) -> None:
    """Peak traced memory of a 6-image request stays near one decoded image, not six."""
    ok, png = cv2.imencode(".png", np.full((2048, 2048, 3), 128, np.uint8))
    assert ok
    one_image = 2048 * 2048 * 3
    engine = open_engine(server_settings(tmp_path / "data"))
    try:
        engine.create_gallery("g")
        tracemalloc.start()
        result = engine.enroll(EnrollItem("g", "grey", [png.tobytes()] * 6))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        engine.close()
    assert [o.rejection.reason for o in result.outcomes if o.rejection] == ["NO_FACE"] * 6
    assert peak < 3 * one_image, f"peak {peak / 1e6:.0f} MB for images of {one_image / 1e6:.0f} MB"


# ---- idempotency ------------------------------------------------------------------------

SECOND = (LFW / "images" / "Colin_Powell" / "Colin_Powell_0002.jpg").read_bytes()


def test_a_retried_request_id_adds_nothing_and_answers_the_same(engine: Engine) -> None:
    item = _item(images=[PHOTO, b"not an image", SECOND], request_id="req-1")
    first = engine.enroll(item)
    again = engine.enroll(item)
    assert not first.replayed and again.replayed
    assert again.sequence >= first.sequence > 0  # a reader waiting for it sees the write
    assert [o.face_id for o in again.outcomes] == [o.face_id for o in first.outcomes]
    assert again.outcomes[1].rejection.reason == first.outcomes[1].rejection.reason
    assert again.outcomes[0].box == first.outcomes[0].box
    assert len(engine.get_identity("g", "colin").face_ids) == 2  # not 4
    # Another request id is another request; the same id for another identity is refused.
    assert not engine.enroll(_item(images=[SECOND], request_id="req-2")).replayed
    with pytest.raises(FailedPreconditionError, match="req-1"):
        engine.enroll(_item("someone-else", request_id="req-1"))


def test_concurrent_retries_of_one_request_write_once(engine: Engine) -> None:
    item = _item(images=[PHOTO], request_id="burst")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: engine.enroll(item), range(4)))
    assert sum(not r.replayed for r in results) == 1
    assert len({r.outcomes[0].face_id for r in results}) == 1
    assert len(engine.get_identity("g", "colin").face_ids) == 1


def test_deleting_an_identity_forgets_its_request_ids(engine: Engine) -> None:
    engine.enroll(_item(request_id="gone"))
    engine.delete_identity("g", "colin")
    fresh = engine.enroll(_item(request_id="gone"))
    assert not fresh.replayed and fresh.outcomes[0].accepted
