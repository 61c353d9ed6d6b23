"""AgeGender (insightface buffalo_l `genderage.onnx`, = uniface AgeGender; models.json).

- Crop: a square centred on the detector box, side 1.5 x the box's longer side, warped to
  the file's input size (96 x 96), black outside the image.
- Input: RGB, raw 0-255 float32 (the graph subtracts 127.5 and scales by 1/128 itself), NCHW.
- Output `fc1` [N, 3]: [0:2] gender logits (index 0 = female, 1 = male), [2] = age / 100.

BGR input turns women into men (models.json check), so the colour order matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from facedb.vision.analysis.base import AnalysisModel, softmax
from facedb.vision.analysis.crops import centred_square
from facedb.vision.types import Face

Gender = Literal["female", "male"]
GENDERS: tuple[Gender, Gender] = ("female", "male")
CROP_SCALE = 1.5


@dataclass(frozen=True)
class AgeGender:
    age: float  # years
    gender: Gender
    gender_confidence: float  # softmax probability of `gender`, 0.5-1

    def to_dict(self) -> dict[str, float | str]:
        return {
            "age": round(self.age, 1),
            "gender": self.gender,
            "gender_confidence": round(self.gender_confidence, 4),
        }


def decode_agegender(rows: np.ndarray) -> list[AgeGender]:
    """[N, 3] network rows → one result per face."""
    rows = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
    probabilities = softmax(rows[:, :2])
    results = []
    for p, row in zip(probabilities, rows, strict=True):
        index = int(np.argmax(p))
        results.append(AgeGender(float(row[2]) * 100.0, GENDERS[index], float(p[index])))
    return results


class AgeGenderModel(AnalysisModel):
    family = "agegender"
    default_input_hw = (96, 96)

    def predict(self, image: np.ndarray, faces: Sequence[Face]) -> list[AgeGender]:
        if not faces:
            return []
        size = self.input_hw[0]
        crops = [centred_square(image, face.box, size, CROP_SCALE)[0] for face in faces]
        return decode_agegender(self.run_crops(crops)[0])
