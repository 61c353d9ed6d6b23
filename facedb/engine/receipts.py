"""Enroll receipts: an Enroll's per-image outcomes as JSON, kept by the catalog for a
request sent with a `request_id`, so that a retry returns the first answer unchanged."""

from __future__ import annotations

from typing import Any

from facedb.engine.results import ImageOutcome
from facedb.vision.gates import Reason, Rejection

RECEIPT_VERSION = 1


def receipt_of(outcomes: list[ImageOutcome]) -> dict[str, Any]:
    return {"version": RECEIPT_VERSION, "outcomes": [_outcome_json(o) for o in outcomes]}


def outcomes_of(receipt: dict[str, Any]) -> list[ImageOutcome]:
    return [_outcome_from_json(item) for item in receipt.get("outcomes", [])]


def _outcome_json(outcome: ImageOutcome) -> dict[str, Any]:
    rejection = outcome.rejection
    return {
        "index": outcome.index,
        "face_id": outcome.face_id,
        "quality": outcome.quality,
        "liveness": outcome.liveness,
        "duplicate_of": outcome.duplicate_of,
        "box": None if outcome.box is None else list(outcome.box),
        "image_name": outcome.image_name,
        "rejection": None
        if rejection is None
        else {
            "reason": str(rejection.reason),
            "value": rejection.value,
            "threshold": rejection.threshold,
            "message": rejection.message,
        },
    }


def _outcome_from_json(item: dict[str, Any]) -> ImageOutcome:
    refused = item.get("rejection")
    box = item.get("box")
    return ImageOutcome(
        index=int(item["index"]),
        face_id=item.get("face_id"),
        quality=item.get("quality"),
        liveness=item.get("liveness"),
        duplicate_of=item.get("duplicate_of"),
        box=None if box is None else (box[0], box[1], box[2], box[3]),
        image_name=item.get("image_name", ""),
        rejection=None
        if refused is None
        else Rejection(
            Reason(refused["reason"]), refused["value"], refused["threshold"], refused["message"]
        ),
    )
