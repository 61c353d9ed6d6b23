"""Facial expression: a probability per emotion class.

Two families, because the two kinds of file are fed and labelled differently:

- `affectnet` — DDAMFN trained on AffectNet (uniface AFFECNET7 / AFFECNET8). Aligned
  112 x 112 crop (5-point ArcFace template), RGB, ImageNet mean / std, NCHW; output logits
  over Neutral, Happy, Sad, Surprise, Fear, Disgust, Angry (+ Contempt for the 8-class
  file), softmax. The published files are TorchScript (`*.script`), which onnxruntime cannot
  open: the registry names say so, and an ONNX export of the same network runs as
  `affectnet:PATH` (7 or 8 classes read from the file).
- `minixception` — MiniXception trained on RAF-DB (the fixture
  `emotion_minixception_rafdb.onnx`, models.json). Grey 96 x 96, (x / 255 - 0.5) / 0.5,
  [N, 1, 96, 96]; output logits over Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise.
  It is fed the plain detector box, resized to 96 x 96: on smiling LFW faces the box gave
  "happy" 1.00 / 0.95 / 0.79 where the aligned 112 crop gave fear 0.72 / happy 0.89 / 0.66
  (the face must fill the frame, as in the FER-style crops it was trained on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from facedb.models import ModelSpec, ModelSpecError, SessionSettings
from facedb.vision.align import align_face
from facedb.vision.analysis.base import AnalysisModel, softmax
from facedb.vision.analysis.crops import crop_box, padded_box
from facedb.vision.types import Face

AFFECTNET_LABELS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")
RAFDB_LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
ALIGNED_SIZE = 112


@dataclass(frozen=True)
class Emotion:
    label: str  # the most probable class
    confidence: float  # its probability
    scores: dict[str, float]  # every class's probability (they sum to 1)

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
        }


def decode_emotion(logits: np.ndarray, labels: Sequence[str]) -> list[Emotion]:
    """[N, classes] logits → one distribution per face."""
    logits = np.asarray(logits, dtype=np.float32).reshape(len(logits), -1)
    if logits.shape[1] > len(labels):
        raise ValueError(f"{logits.shape[1]} emotion outputs but only {len(labels)} labels")
    names = labels[: logits.shape[1]]
    results = []
    for row in softmax(logits):
        best = int(np.argmax(row))
        scores = {name: float(p) for name, p in zip(names, row, strict=True)}
        results.append(Emotion(names[best], float(row[best]), scores))
    return results


class EmotionModel(AnalysisModel):
    """Shared by both families: a face crop in, a labelled distribution out."""

    labels: ClassVar[tuple[str, ...]] = ()
    aligned: ClassVar[bool] = True  # the 5-point aligned crop, else the plain detector box

    def crop(self, image: np.ndarray, face: Face) -> np.ndarray:
        if self.aligned:
            return align_face(image, face.landmarks, ALIGNED_SIZE)
        return crop_box(image, padded_box(face.box, image.shape[:2]))

    def predict(self, image: np.ndarray, faces: Sequence[Face]) -> list[Emotion]:
        if not faces:
            return []
        crops = [self.crop(image, face) for face in faces]
        return decode_emotion(self.run_crops(crops)[0], self.labels)


class AffectNetModel(EmotionModel):
    family = "affectnet"
    labels = AFFECTNET_LABELS

    def __init__(self, spec: ModelSpec, runtime: SessionSettings | None = None) -> None:
        if spec.options.get("format") == "torchscript" or spec.path.suffix == ".script":
            raise ModelSpecError(
                f"{spec.name} is published as TorchScript ({spec.path.name}), which "
                "onnxruntime cannot run: export the network to ONNX and use affectnet:PATH"
            )
        super().__init__(spec, runtime)


class MiniXceptionModel(EmotionModel):
    family = "minixception"
    labels = RAFDB_LABELS
    grey = True
    aligned = False
    default_input_hw = (96, 96)
