"""Each family's default preprocessing (MODEL_FACTS.md §1, §2, §4, §5)."""

from __future__ import annotations

from facedb.models.spec import Preprocessing

_UNIT = (127.5, 127.5, 127.5)
# ImageNet statistics on the 0-255 scale: (x / 255 - m) / s == (x - 255 m) / (255 s).
_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

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
    # --- analysis families (facedb.vision.analysis; sources in each module's docstring) ---
    # AgeGender and 2D106 normalise inside the graph: they take raw 0-255 RGB.
    "landmark106": Preprocessing("RGB", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "agegender": Preprocessing("RGB", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "fairface": Preprocessing("RGB", _IMAGENET_MEAN, _IMAGENET_STD),
    "affectnet": Preprocessing("RGB", _IMAGENET_MEAN, _IMAGENET_STD),
    # Greyscale input: the grey plane is normalised with the first channel's mean / std.
    "minixception": Preprocessing("RGB", _UNIT, _UNIT),
    "mobilegaze": Preprocessing("RGB", _IMAGENET_MEAN, _IMAGENET_STD),
    "bisenet": Preprocessing("RGB", _IMAGENET_MEAN, _IMAGENET_STD),
    "xseg": Preprocessing("BGR", (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),  # NHWC, x / 255
}


def default_preprocessing(family: str) -> Preprocessing:
    return DEFAULT_PREPROCESSING[family]
