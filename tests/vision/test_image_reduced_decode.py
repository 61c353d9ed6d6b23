"""Large JPEGs are decoded at reduced scale; faces found on them map back to the original."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from PIL import Image

from facedb.vision.detect import load_detector
from facedb.vision.detect.base import iou_one_to_many
from facedb.vision.image import MIN_DECODE_SIDE, load_image
from tests.paths import LFW, SCRFD

UPSCALE = 12  # 250 x 250 LFW photo -> 3000 x 3000 (9 megapixels)


@cache
def big_photo() -> bytes:
    """A real LFW face enlarged to 3000 x 3000 and saved as a JPEG."""
    small = Image.open(LFW / "images" / "Bill_Gates" / "Bill_Gates_0001.jpg").convert("RGB")
    big = small.resize((250 * UPSCALE, 250 * UPSCALE), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=92)
    return out.getvalue()


def test_a_photo_far_above_the_canvas_is_decoded_at_reduced_scale() -> None:
    reduced = load_image(big_photo())
    assert reduced.original_size == (3000, 3000)
    assert reduced.pixels.shape == (1500, 1500, 3)  # 1/2: 1/4 would fall below 1280
    assert reduced.scale == pytest.approx(0.5)
    assert max(reduced.pixels.shape) >= MIN_DECODE_SIDE
    full = load_image(big_photo(), min_side=None)
    assert full.pixels.shape == (3000, 3000, 3) and full.scale == 1.0
    # The engine's call (max_side 4096) reduces the same way.
    assert load_image(big_photo(), max_side=4096).scale == pytest.approx(0.5)


def test_small_photos_are_decoded_at_full_size() -> None:
    image = load_image(LFW / "images" / "Bill_Gates" / "Bill_Gates_0001.jpg")
    assert image.pixels.shape == (250, 250, 3) and image.scale == 1.0


def test_boxes_on_the_reduced_decode_map_back_to_original_pixels() -> None:
    detector = load_detector(SCRFD, threads=1)
    reduced = load_image(big_photo())
    full = load_image(big_photo(), min_side=None)
    found_reduced = detector.detect(reduced.pixels)
    found_full = detector.detect(full.pixels)
    assert found_reduced and found_full
    mapped = max(found_reduced, key=lambda f: f.area).scaled(1.0 / reduced.scale)
    truth = max(found_full, key=lambda f: f.area)
    assert iou_one_to_many(truth.box, mapped.box[None])[0] > 0.95
    # Landmarks within 1% of the face's width of where the full decode puts them.
    width = truth.box[2] - truth.box[0]
    assert np.abs(mapped.landmarks - truth.landmarks).max() < 0.01 * width
    # And where the face is in the original 250-pixel photo, times the enlargement.
    original = detector.detect(load_image(LFW / "images/Bill_Gates/Bill_Gates_0001.jpg").pixels)
    expected = max(original, key=lambda f: f.area).scaled(UPSCALE)
    assert iou_one_to_many(expected.box, mapped.box[None])[0] > 0.9
