"""Aligned face crops as PNG bytes: how the engine stores them and reads them back.

PNG is lossless, so a crop re-embedded later (reindex with another recognizer) gives the
recognizer exactly the pixels the first one saw.
"""

from __future__ import annotations

import cv2
import numpy as np


def encode_crop_png(crop: np.ndarray) -> bytes:
    """A (H, W, 3) BGR uint8 crop as PNG bytes."""
    ok, encoded = cv2.imencode(".png", crop)
    if not ok:
        raise ValueError(f"could not encode a crop of shape {crop.shape} as PNG")
    return bytes(encoded.tobytes())


def decode_crop_png(data: bytes) -> np.ndarray:
    """PNG bytes back to a (H, W, 3) BGR uint8 crop; ValueError if they are no image."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"a stored crop ({len(data)} bytes) is not a decodable image")
    return np.asarray(image, dtype=np.uint8)


def decode_crops_png(crops: list[bytes]) -> np.ndarray:
    """Several PNG crops of one size as one (N, H, W, 3) batch."""
    return np.stack([decode_crop_png(crop) for crop in crops])
