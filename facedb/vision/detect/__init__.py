"""Face detectors: one module per family behind `Detector`; `load_detector()` picks the class."""

from __future__ import annotations

from importlib import import_module

from facedb.models.session import SessionSettings
from facedb.models.spec import ModelSpec, resolve_model
from facedb.vision.detect.base import Detector, DetectorConfig

__all__ = ["DETECTOR_CLASSES", "Detector", "DetectorConfig", "detector_class", "load_detector"]

# family → "module:Class"; a family module is imported only when a detector of it is loaded.
DETECTOR_CLASSES: dict[str, str] = {
    "retinaface": "facedb.vision.detect.retinaface:RetinaFaceDetector",
    "scrfd": "facedb.vision.detect.scrfd:SCRFDDetector",
    "yolov5face": "facedb.vision.detect.yolov5face:YOLOv5FaceDetector",
    "yolov8face": "facedb.vision.detect.yolov8face:YOLOv8FaceDetector",
    "yunet": "facedb.vision.detect.yunet:YuNetDetector",
}


def detector_class(family: str) -> type[Detector]:
    target = DETECTOR_CLASSES.get(family)
    if target is None:
        known = ", ".join(DETECTOR_CLASSES)
        raise ValueError(f"{family!r} is not a detector family (known: {known})")
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def load_detector(
    spec: str | ModelSpec,
    config: DetectorConfig | None = None,
    threads: int | None = None,
    *,
    allow_spinning: bool | None = None,
) -> Detector:
    """A detector for a registry name, `FAMILY:PATH` string or resolved spec; `threads` and
    `allow_spinning` are the onnxruntime session settings (None: the defaults)."""
    resolved = resolve_model(spec) if isinstance(spec, str) else spec
    runtime = SessionSettings(threads, allow_spinning)
    return detector_class(resolved.family)(resolved, config, runtime)
