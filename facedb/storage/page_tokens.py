"""Opaque page tokens for listings: base64url of the gallery and the last row id seen.

A token is only ever produced by the service, so anything that does not decode to exactly
what `encode_page_token` writes is refused (not guessed at): wrong alphabet, padding, signs,
spaces, non-ASCII digits, ids beyond a 63-bit integer, or a token from another gallery.
"""

from __future__ import annotations

import base64
import binascii
import re

from facedb.storage.errors import InvalidArgumentError

_VERSION = "p1"
_MAX_TOKEN_CHARS = 64
_MAX_ROW_ID = 2**63 - 1  # BIGINT on PostgreSQL, INTEGER on SQLite
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_PAYLOAD = re.compile(r"p1:(0|[1-9][0-9]{0,18}):([1-9][0-9]{0,18})")


def encode_page_token(gallery_id: int, last_id: int) -> str:
    payload = f"{_VERSION}:{gallery_id}:{last_id}".encode("ascii")
    return base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")


def decode_page_token(token: str, gallery_id: int) -> int:
    """The last row id a page token names; 0 for the empty token (the first page)."""
    if not token:
        return 0
    if len(token) > _MAX_TOKEN_CHARS or not _ALPHABET.fullmatch(token):
        raise _invalid(token)
    try:
        payload = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid(token) from None
    match = _PAYLOAD.fullmatch(payload)
    if match is None or int(match.group(2)) > _MAX_ROW_ID:
        raise _invalid(token)
    if int(match.group(1)) != gallery_id:
        raise InvalidArgumentError("this page token belongs to another gallery's listing")
    return int(match.group(2))


def _invalid(token: str) -> InvalidArgumentError:
    shown = token if len(token) <= 32 else token[:32] + "…"
    return InvalidArgumentError(
        f"invalid page token {shown!r}: pass back the next_page_token of the previous page"
    )
