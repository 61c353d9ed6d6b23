"""Attribute filters on their own: which stored values match, and which filters are refused
before anything is searched (the servers' tests cover them end to end)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facedb.engine.errors import FailedPreconditionError, InvalidRequestError
from facedb.engine.filters import (
    MAX_FILTERED_HITS,
    AttributeFilter,
    checked_filters,
    matching,
    overfetched,
)
from facedb.storage.records import GalleryInfo, GallerySettings, Hit

NOW = datetime.now(UTC)
GALLERY = GalleryInfo(
    1, "u", "g", "m", "ab" * 32, 512, GallerySettings(), True, None, NOW, NOW,
    stored_attributes=("age", "gender", "glasses"),
)  # fmt: skip


def check(*filters: AttributeFilter) -> tuple[AttributeFilter, ...]:
    return checked_filters(GALLERY, filters)


def test_values_match_by_equality_or_range() -> None:
    (female,) = check(AttributeFilter(" Gender ", equals="Female "))
    assert female.matches({"gender": "female"}) and not female.matches({"gender": "male"})
    assert not female.matches({}) and not female.matches({"gender": None})  # nothing stored
    (adult,) = check(AttributeFilter("age", min=18))
    assert adult.matches({"age": 18.0}) and adult.matches({"age": 80})
    assert not adult.matches({"age": 17.9}) and not adult.matches({"age": "old"})
    (stored,) = check(AttributeFilter("age", min=55.3, max=55.3))
    assert stored.matches({"age": 55.3})  # float32 bounds still hold the stored value
    (glasses,) = check(AttributeFilter("glasses", equals="true"))
    assert glasses.matches({"glasses": True}) and not glasses.matches({"glasses": False})
    assert not check(AttributeFilter("glasses", min=0))[0].matches({"glasses": True})


def test_hits_must_match_every_filter_and_keep_their_order() -> None:
    hits = [Hit(face_id, f"p{face_id}", 1.0 - face_id / 10) for face_id in (1, 2, 3, 4)]
    stored = {1: {"age": 30, "gender": "male"}, 2: {"age": 30, "gender": "female"}, 4: {"age": 70}}
    filters = check(AttributeFilter("age", max=40), AttributeFilter("gender", equals="female"))
    assert [h.face_id for h in matching(hits, stored, filters)] == [2]
    aged = check(AttributeFilter("age", min=1))
    assert [h.face_id for h in matching(hits, stored, aged)] == [1, 2, 4]  # 3: nothing stored
    assert overfetched(5, ()) == 5 and overfetched(20, filters) == 160
    assert overfetched(10_000, filters) == MAX_FILTERED_HITS


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        (AttributeFilter("shoe_size", equals="9"), "unknown attribute"),
        (AttributeFilter("", equals="9"), "name is required"),
        (AttributeFilter("landmarks_106", equals="x"), "not a single value"),
        (AttributeFilter("age"), "give equals, min or max"),
        (AttributeFilter("age", equals="30", max=40), "not both"),
        (AttributeFilter("age", min=40, max=30), "above max"),
        (AttributeFilter("age", min=float("nan")), "finite"),
        (AttributeFilter("age", max=1e300), "finite"),
        (AttributeFilter("gender", equals="x" * 257), "over 256"),
    ],
)
def test_malformed_filters_are_invalid_arguments(condition: AttributeFilter, words: str) -> None:
    with pytest.raises(InvalidRequestError, match=words):
        check(condition)


def test_an_attribute_the_gallery_does_not_store_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPreconditionError, match="'g' does not store it"):
        check(AttributeFilter("race", equals="white"))
    with pytest.raises(InvalidRequestError, match="at most 16"):
        check(*[AttributeFilter("age", min=1)] * 17)
