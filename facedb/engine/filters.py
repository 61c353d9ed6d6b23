"""Filters on the attributes stored with enrolled faces (Identify, SearchFaces).

A filter names one attribute the gallery stores (`stored_attributes`) and either a value
it must equal (strings compare case-insensitively; booleans as "true" / "false") or a
numeric range [min, max] (either end optional; compared at float32 precision, the
proto's). A face is a candidate only when its stored attributes match every filter; a face
with no stored value for a filtered attribute does not match.

Refusals: an unknown attribute name, one whose stored value is not a single value (emotion,
landmarks, ...), or a malformed filter → INVALID_ARGUMENT; a known attribute the gallery
does not store → FAILED_PRECONDITION (the request is fine, the gallery cannot answer it).

This is post-filtering: the index is searched with a larger k and the faces that do not
match are dropped, so when matching faces are rarer than about 1 in `FILTER_OVERFETCH`
among the nearest ones, fewer than k (possibly no) matches come back. Exact filtered
results need a filtered index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facedb.engine.errors import FailedPreconditionError, InvalidRequestError
from facedb.storage.records import GalleryInfo, Hit
from facedb.vision.analysis import AttributeRequestError, parse_attributes

# Index hits fetched per hit the caller would get without filters.
FILTER_OVERFETCH = 8
# Bounds the index search and the attribute read of one filtered query.
MAX_FILTERED_HITS = 4096
MAX_FILTERS = 16
MAX_EQUALS_CHARS = 256
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Attributes stored as one string, number or boolean under their own name.
FILTERABLE = frozenset(
    {
        "age",
        "gender",
        "race",
        "age_group",
        "eyes_open",
        "mouth_open",
        "glasses",
        "sunglasses",
        "hat",
        "mask",
    }
)


@dataclass(frozen=True)
class AttributeFilter:
    name: str
    equals: str = ""
    min: float | None = None
    max: float | None = None

    def matches(self, stored: Mapping[str, Any]) -> bool:
        value = stored.get(self.name)
        if value is None:
            return False
        if self.equals:
            return _text(value) == self.equals.lower()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        low = -math.inf if self.min is None else _single(self.min)
        high = math.inf if self.max is None else _single(self.max)
        return low <= _single(float(value)) <= high


def checked_filters(
    info: GalleryInfo, filters: Sequence[AttributeFilter]
) -> tuple[AttributeFilter, ...]:
    """The filters, validated against the gallery's stored attributes (see module doc)."""
    if len(filters) > MAX_FILTERS:
        raise InvalidRequestError(f"at most {MAX_FILTERS} filters, got {len(filters)}")
    return tuple(_checked(info, f) for f in filters)


def matching(
    hits: Sequence[Hit],
    attributes: Mapping[int, Mapping[str, Any]],
    filters: Sequence[AttributeFilter],
) -> list[Hit]:
    """The hits whose face's stored attributes match every filter, order kept."""
    return [h for h in hits if all(f.matches(attributes.get(h.face_id) or {}) for f in filters)]


def overfetched(k: int, filters: Sequence[AttributeFilter]) -> int:
    """How many index hits to fetch for `k` hits when post-filtering."""
    return min(k * FILTER_OVERFETCH, MAX_FILTERED_HITS) if filters else k


def _checked(info: GalleryInfo, given: AttributeFilter) -> AttributeFilter:
    try:
        (name,) = parse_attributes([given.name]) or ("",)
    except AttributeRequestError as error:
        raise InvalidRequestError(f"filter: {error}") from error
    if not name:
        raise InvalidRequestError("filter: name is required")
    if name not in FILTERABLE:
        raise InvalidRequestError(
            f"filter: {name!r} is not a single value; filterable: {', '.join(sorted(FILTERABLE))}"
        )
    if name not in info.stored_attributes:
        stored = ", ".join(info.stored_attributes) or "none"
        raise FailedPreconditionError(
            f"filter on {name!r}: gallery {info.name!r} does not store it (stores: {stored})"
        )
    return AttributeFilter(name, _equals(name, given), *_range(name, given))


def _equals(name: str, given: AttributeFilter) -> str:
    ranged = given.min is not None or given.max is not None
    if given.equals and ranged:
        raise InvalidRequestError(f"filter on {name!r}: give equals or min/max, not both")
    if not given.equals and not ranged:
        raise InvalidRequestError(f"filter on {name!r}: give equals, min or max")
    if len(given.equals) > MAX_EQUALS_CHARS:
        raise InvalidRequestError(
            f"filter on {name!r}: equals is over {MAX_EQUALS_CHARS} characters"
        )
    return given.equals.strip().lower()


def _range(name: str, given: AttributeFilter) -> tuple[float | None, float | None]:
    for bound in (given.min, given.max):
        if bound is not None and not (math.isfinite(bound) and abs(bound) <= FLOAT32_MAX):
            raise InvalidRequestError(f"filter on {name!r}: min and max must be finite float32s")
    if given.min is not None and given.max is not None and given.min > given.max:
        raise InvalidRequestError(f"filter on {name!r}: min {given.min} is above max {given.max}")
    return given.min, given.max


def _single(value: float) -> float:
    """At float32 precision, the proto's: `min = max = ` a stored 55.3 matches it."""
    return float(np.float32(value))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()
