"""FairFace (yakhyo/fairface-onnx; uniface FairFace): race (7), gender (2), age group (9).

- Crop: the detector box widened by 25 % of its width / height on every side, clipped to
  the image, resized to the file's input size (224 x 224).
- Input: RGB, ImageNet mean / std on x / 255, NCHW.
- Outputs, in this order: race logits [N, 7], gender logits [N, 2] (index 0 = male,
  1 = female: the reverse of AgeGender), age-group logits [N, 9]; each softmaxed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facedb.vision.analysis.agegender import Gender
from facedb.vision.analysis.base import AnalysisModel, softmax
from facedb.vision.analysis.crops import crop_box, padded_box
from facedb.vision.types import Face

RACES = (
    "White",
    "Black",
    "Latino Hispanic",
    "East Asian",
    "Southeast Asian",
    "Indian",
    "Middle Eastern",
)
AGE_GROUPS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
FAIRFACE_GENDERS: tuple[Gender, Gender] = ("male", "female")
CROP_PAD = 0.25


@dataclass(frozen=True)
class FairFaceResult:
    race: str
    race_confidence: float
    gender: Gender
    gender_confidence: float
    age_group: str
    age_group_confidence: float
    race_scores: dict[str, float]
    age_group_scores: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return {
            "race": self.race,
            "race_confidence": round(self.race_confidence, 4),
            "gender": self.gender,
            "gender_confidence": round(self.gender_confidence, 4),
            "age_group": self.age_group,
            "age_group_confidence": round(self.age_group_confidence, 4),
        }


def _best(probabilities: np.ndarray, labels: Sequence[str]) -> tuple[str, float]:
    index = int(np.argmax(probabilities))
    return labels[index], float(probabilities[index])


def decode_fairface(
    race_logits: np.ndarray, gender_logits: np.ndarray, age_logits: np.ndarray
) -> list[FairFaceResult]:
    """The three [N, k] logit tensors → one result per face."""
    races = softmax(np.asarray(race_logits, np.float32).reshape(len(race_logits), -1))
    genders = softmax(np.asarray(gender_logits, np.float32).reshape(len(gender_logits), -1))
    ages = softmax(np.asarray(age_logits, np.float32).reshape(len(age_logits), -1))
    if races.shape[1] != len(RACES) or genders.shape[1] != 2 or ages.shape[1] != len(AGE_GROUPS):
        raise ValueError(
            f"FairFace outputs must be 7 / 2 / 9 wide, got {races.shape[1]} / "
            f"{genders.shape[1]} / {ages.shape[1]}"
        )
    results = []
    for race_p, gender_p, age_p in zip(races, genders, ages, strict=True):
        race, race_conf = _best(race_p, RACES)
        gender_index = int(np.argmax(gender_p))
        age, age_conf = _best(age_p, AGE_GROUPS)
        results.append(
            FairFaceResult(
                race=race,
                race_confidence=race_conf,
                gender=FAIRFACE_GENDERS[gender_index],
                gender_confidence=float(gender_p[gender_index]),
                age_group=age,
                age_group_confidence=age_conf,
                race_scores={k: float(v) for k, v in zip(RACES, race_p, strict=True)},
                age_group_scores={k: float(v) for k, v in zip(AGE_GROUPS, age_p, strict=True)},
            )
        )
    return results


class FairFaceModel(AnalysisModel):
    family = "fairface"
    default_input_hw = (224, 224)

    def predict(self, image: np.ndarray, faces: Sequence[Face]) -> list[FairFaceResult]:
        if not faces:
            return []
        crops = [crop_box(image, padded_box(f.box, image.shape[:2], CROP_PAD)) for f in faces]
        outputs = self.run_crops(crops)
        if len(outputs) != 3:
            raise ValueError(f"{self.name}: FairFace has 3 outputs, the file has {len(outputs)}")
        return decode_fairface(*outputs)
