"""Model families: what each one is for and how its pixels become the network's input.

The bottom of `facedb.models` (it imports nothing from the package): the registry, spec
parsing and `OnnxModel` all read a family's task and default preprocessing from here, so
a `FAMILY:PATH?order=bgr` override is completed with the same defaults the model class uses.
A new family is one row in `FAMILIES` plus an `OnnxModel` subclass naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ChannelOrder = Literal["RGB", "BGR"]


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become the network's input tensor: order, then (x - mean) / std per channel.

    `mean` and `std` are given in the network's channel order (after any BGR → RGB swap).
    """

    channel_order: ChannelOrder
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class Family:
    name: str
    task: str  # "detect", "embed", "liveness", "quality", ...
    preprocessing: Preprocessing  # the default; a spec may override any part of it


_UNIT = (127.5, 127.5, 127.5)
_NONE = (0.0, 0.0, 0.0)
_ONE = (1.0, 1.0, 1.0)
# ImageNet statistics on the 0-255 scale: (x / 255 - m) / s == (x - 255 m) / (255 s).
_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# Defaults per MODEL_FACTS §1, §2, §4, §5 (the published conventions of these weights).
FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        # Mean subtraction only, on a BGR image (the mean is given in B, G, R order).
        Family("retinaface", "detect", Preprocessing("BGR", (104.0, 117.0, 123.0), _ONE)),
        # insightface's convention for these exact weights: RGB, mean 127.5, std 128.
        Family("scrfd", "detect", Preprocessing("RGB", _UNIT, (128.0, 128.0, 128.0))),
        Family("yolov5face", "detect", Preprocessing("RGB", _NONE, (255.0, 255.0, 255.0))),
        Family("yolov8face", "detect", Preprocessing("RGB", _NONE, (255.0, 255.0, 255.0))),
        Family("yunet", "detect", Preprocessing("BGR", _NONE, _ONE)),
        Family("arcface", "embed", Preprocessing("RGB", _UNIT, _UNIT)),
        Family("adaface", "embed", Preprocessing("BGR", _UNIT, _UNIT)),  # trained on BGR
        Family("mobileface", "embed", Preprocessing("RGB", _UNIT, _UNIT)),
        Family("sphereface", "embed", Preprocessing("RGB", _UNIT, _UNIT)),
        Family("minifasnet", "liveness", Preprocessing("BGR", _NONE, _ONE)),  # raw 0-255
        Family("fiqa", "quality", Preprocessing("RGB", _UNIT, _UNIT)),
        # --- face analysis (facedb.vision.analysis; sources in each family's module) ---
        # AgeGender and 2D106 normalise inside the graph: they take raw 0-255 RGB.
        Family("landmark106", "landmarks", Preprocessing("RGB", _NONE, _ONE)),
        Family("agegender", "attributes", Preprocessing("RGB", _NONE, _ONE)),
        Family("fairface", "attributes", Preprocessing("RGB", _IMAGENET_MEAN, _IMAGENET_STD)),
        Family("affectnet", "attributes", Preprocessing("RGB", _IMAGENET_MEAN, _IMAGENET_STD)),
        # Greyscale input: the grey plane is normalised with the first channel's mean / std.
        Family("minixception", "attributes", Preprocessing("RGB", _UNIT, _UNIT)),
        Family("mobilegaze", "gaze", Preprocessing("RGB", _IMAGENET_MEAN, _IMAGENET_STD)),
        Family("bisenet", "parsing", Preprocessing("RGB", _IMAGENET_MEAN, _IMAGENET_STD)),
        Family("xseg", "segmentation", Preprocessing("BGR", _NONE, (255.0, 255.0, 255.0))),
    )
}


def family(name: str) -> Family:
    """The family called `name`; KeyError names the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r} (known: {', '.join(FAMILIES)})") from None


def default_preprocessing(name: str) -> Preprocessing:
    return family(name).preprocessing
