"""Each family's default preprocessing (MODEL_FACTS.md §1, §2, §4, §5)."""

from __future__ import annotations

from facedb.models.spec import Preprocessing

_UNIT = (127.5, 127.5, 127.5)

DEFAULT_PREPROCESSING: dict[str, Preprocessing] = {
    # Mean subtraction only, on a BGR image (the mean is given in B, G, R order).
    "retinaface": Preprocessing("BGR", (104.0, 117.0, 123.0), (1.0, 1.0, 1.0)),
    # insightface's convention for these exact weights: RGB, mean 127.5, std 128.
    "scrfd": Preprocessing("RGB", _UNIT, (128.0, 128.0, 128.0)),
    "yolov5face": Preprocessing("RGB", (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
    "yolov8face": Preprocessing("RGB", (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
    "yunet": Preprocessing("BGR", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "arcface": Preprocessing("RGB", _UNIT, _UNIT),
    "adaface": Preprocessing("BGR", _UNIT, _UNIT),  # AdaFace is trained on BGR
    "mobileface": Preprocessing("RGB", _UNIT, _UNIT),
    "sphereface": Preprocessing("RGB", _UNIT, _UNIT),
    "minifasnet": Preprocessing("BGR", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # raw 0-255
    "fiqa": Preprocessing("RGB", _UNIT, _UNIT),
}


def default_preprocessing(family: str) -> Preprocessing:
    return DEFAULT_PREPROCESSING[family]
