"""Bounds on what a request may carry besides images: names, metadata, file names, ids.

Every limit is checked here, before the catalog sees the request, so that SQLite and
PostgreSQL refuse the same inputs with the same INVALID_ARGUMENT message (and no response
can grow without bound because one identity's metadata did).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from facedb.engine.errors import InvalidRequestError, first_control_character, require
from facedb.storage.records import MAX_METADATA_BYTES

# Gallery names: letters, digits, '.', '_' and '-', starting with a letter or digit.
GALLERY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_DISPLAY_NAME_CHARS = 256
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY_CHARS = 64
MAX_IMAGE_NAME_CHARS = 255
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def check_new_gallery_name(name: str) -> None:
    require(name, "gallery name", 128)
    if not GALLERY_NAME.fullmatch(name):
        raise InvalidRequestError(
            f"gallery name {name!r} is not allowed: use 1-128 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit"
        )


def check_display_name(name: str | None) -> None:
    if name:
        require(name, "display_name", MAX_DISPLAY_NAME_CHARS)


def check_metadata(metadata: Mapping[str, Any] | None) -> None:
    """Key count, key length and characters, no NUL anywhere, and the total size."""
    if not metadata:
        return
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequestError(
            f"metadata has {len(metadata)} keys; the limit is {MAX_METADATA_KEYS}"
        )
    for key, value in metadata.items():
        require(key, "metadata key", MAX_METADATA_KEY_CHARS)
        if "\\u0000" in json.dumps(value):  # PostgreSQL's JSON cannot hold a NUL
            raise InvalidRequestError(f"metadata value of {key!r} contains a NUL character")
    size = len(json.dumps(dict(metadata), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidRequestError(
            f"metadata is {size:,} bytes as JSON; the limit is {MAX_METADATA_BYTES:,} bytes"
        )


def check_image_names(names: Sequence[str], image_count: int) -> None:
    if not names:
        return
    if len(names) != image_count:
        raise InvalidRequestError(
            f"{len(names)} image names for {image_count} images: send one name per image or none"
        )
    for index, name in enumerate(names):
        if len(name) > MAX_IMAGE_NAME_CHARS:
            raise InvalidRequestError(
                f"image {index}'s name is {len(name)} characters; the limit is "
                f"{MAX_IMAGE_NAME_CHARS}"
            )
        if first_control_character(name) is not None:
            raise InvalidRequestError(f"image {index}'s name contains a control character")


def check_request_id(request_id: str) -> None:
    if request_id and not REQUEST_ID.fullmatch(request_id):
        raise InvalidRequestError(
            "request_id must be 1-128 of A-Z a-z 0-9 . _ : - (an idempotency key, e.g. a UUID)"
        )
