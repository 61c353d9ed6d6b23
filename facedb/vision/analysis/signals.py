"""Signals derived from the analysis models: eyes / mouth open, occlusion, head pose.

Every signal is a plain measurement; the thresholds that turn them into decisions are
`facedb.vision.gates.GatePolicy.min_eye_openness` / `max_occlusion` and the booleans below.

- Eye openness (unitless): the eye's height over its width. From 106 landmarks, each eye's
  contour points (the centre point left out) are projected on their own principal axes:
  extent along the minor axis / extent along the major axis; this needs no point order.
  From parsing, the bounding extent of the eye class, height / width. An open eye measures
  about 0.3-0.45, a closed one under 0.1; a face's value is the more open eye's, so a wink
  or one eye hidden by hair is not "closed". No eye pixels at all (hidden) gives 0.
- Mouth openness: from parsing, the inside-of-mouth pixels over mouth + lips; from 106
  landmarks, the mouth group's minor / major extent (lips alone are about 0.3-0.35).
- Occlusion per region (eyes, nose, mouth), 0-1: the share of a disc around the region's
  detector landmarks (radius 0.25 x inter-ocular distance) that does not show that
  region's own classes (parsing) or that XSeg does not see as face (1 - mean P(face)).
  Sunglasses, a mask, a hand or a microphone over the region all read high.
- Head pose from 106 landmarks (degrees, the signs of `facedb.vision.quality.head_pose`):
  roll from the eye centres; yaw from the nose's offset in the face outline, a cylinder
  model (the contour's left / right extremes give the half-width W, the nose sits at
  depth ~W, so sin(yaw) = offset / W), which keeps working at large yaw where the 5-point
  eye-distance model saturates; pitch from the 5-point formula applied to the 106 model's
  eye centres, nose and mouth corners.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from facedb.models import SessionSettings
from facedb.vision.align import template_for
from facedb.vision.analysis.landmarks106 import (
    GROUPS,
    LEFT_EYE,
    RIGHT_EYE,
    Landmark106Model,
    Landmarks106,
)
from facedb.vision.analysis.parsing import CLASS_INDEX, BiSeNetModel, ParsingMask
from facedb.vision.analysis.xseg import XSegMask, XSegModel
from facedb.vision.quality import HeadPose, head_pose
from facedb.vision.types import Face

REGION_RADIUS = 0.25  # x inter-ocular distance
GRID = 9  # samples per disc side
REGIONS = ("eyes", "nose", "mouth")
VISIBLE_CLASSES = {
    "eyes": ("skin", "left_eye", "right_eye", "left_brow", "right_brow", "nose"),
    "nose": ("skin", "nose"),
    "mouth": ("skin", "mouth", "upper_lip", "lower_lip"),
}
GLASSES_SHARE = 0.05  # eyeglasses pixels in the eye discs: wearing glasses
SUNGLASSES_EYE_SHARE = 0.02  # ... and hardly any eye pixel seen through them: sunglasses
HAT_SHARE = 0.03  # hat pixels in the face crop
MASK_OCCLUSION = 0.5  # nose and mouth both this occluded, eyes not: a mask-like cover
OPEN_MOUTH = 0.15  # inside-of-mouth share (parsing) for "mouth open"
OPEN_MOUTH_LANDMARKS = 0.5  # mouth minor / major extent for "mouth open" (106 points)
OPEN_EYES = 0.12  # eye openness for "eyes open" (the gate's default threshold too)


@dataclass(frozen=True)
class FaceSignals:
    """Derived signals of one face; None where no configured model measures it."""

    eye_openness: float | None = None
    mouth_openness: float | None = None
    eyes_open: bool | None = None
    mouth_open: bool | None = None
    occlusion: dict[str, float] | None = None  # region → 0-1
    glasses: bool | None = None
    sunglasses: bool | None = None
    hat: bool | None = None
    mask: bool | None = None
    pose: HeadPose | None = None  # from 106 landmarks

    @property
    def max_occlusion(self) -> float | None:
        return None if self.occlusion is None else max(self.occlusion.values())

    def worst_region(self) -> str | None:
        if not self.occlusion:
            return None
        return max(self.occlusion, key=lambda region: self.occlusion[region])  # type: ignore[index]

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["pose"] = None if self.pose is None else _rounded_pose(self.pose)
        if self.occlusion is not None:
            data["occlusion"] = {k: round(v, 4) for k, v in self.occlusion.items()}
        for key in ("eye_openness", "mouth_openness"):
            if data[key] is not None:
                data[key] = round(float(data[key]), 4)
        return data


def _rounded_pose(pose: HeadPose) -> dict[str, float]:
    return {"yaw": round(pose.yaw, 2), "pitch": round(pose.pitch, 2), "roll": round(pose.roll, 2)}


# ---- geometry ------------------------------------------------------------------------------


def principal_extent_ratio(points: np.ndarray) -> float:
    """Extent along the minor principal axis / extent along the major one (0 for a line)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    centred = points - points.mean(axis=0)
    if len(points) < 3 or not np.any(centred):
        return 0.0
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ axes.T
    extents = projected.max(axis=0) - projected.min(axis=0)
    return float(extents[1] / extents[0]) if extents[0] > 1e-9 else 0.0


def region_centres(landmarks5: np.ndarray) -> dict[str, np.ndarray]:
    """Disc centres per region from the 5 detector landmarks: 2 eyes, nose, 3 on the mouth."""
    points = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    mouth_mid = (points[3] + points[4]) / 2
    return {
        "eyes": points[:2],
        "nose": points[2:3],
        "mouth": np.stack(
            [points[3] * 0.75 + points[4] * 0.25, mouth_mid, points[3] * 0.25 + points[4] * 0.75]
        ),
    }


def disc_samples(centres: np.ndarray, radius: float) -> np.ndarray:
    """(M, 2) grid points inside discs of `radius` around each centre."""
    steps = np.linspace(-radius, radius, GRID)
    offsets = np.array([(x, y) for y in steps for x in steps if x * x + y * y <= radius * radius])
    return (np.asarray(centres)[:, None, :] + offsets[None]).reshape(-1, 2)


def _inter_ocular(landmarks5: np.ndarray) -> float:
    points = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    return max(float(np.linalg.norm(points[1] - points[0])), 1.0)


# ---- from 106 landmarks ---------------------------------------------------------------------


def eye_openness_106(landmarks: Landmarks106) -> float:
    """The more open eye's minor / major extent ratio (centre points left out)."""
    ratios = []
    for eye, centre in ((LEFT_EYE, 38), (RIGHT_EYE, 92)):
        contour = [i for i in eye if i != centre]
        ratios.append(principal_extent_ratio(landmarks.points[contour]))
    return max(ratios)


def mouth_openness_106(landmarks: Landmarks106) -> float:
    return principal_extent_ratio(landmarks.group("mouth"))


def five_points_from_106(landmarks: Landmarks106) -> np.ndarray:
    """Eye centres, nose (its lowest point along the face axis), mouth corners."""
    points = landmarks.points.astype(np.float64)
    left_eye = points[list(LEFT_EYE)].mean(axis=0)
    right_eye = points[list(RIGHT_EYE)].mean(axis=0)
    axis = right_eye - left_eye
    axis /= max(float(np.linalg.norm(axis)), 1e-9)
    down = np.array([-axis[1], axis[0]])  # image y points down
    nose = points[list(GROUPS["nose"])]
    nose_tip = nose[int(np.argmax((nose - left_eye) @ down))]
    mouth = points[list(GROUPS["mouth"])]
    along = (mouth - left_eye) @ axis
    corners = mouth[[int(np.argmin(along)), int(np.argmax(along))]]
    return np.stack([left_eye, right_eye, nose_tip, corners[0], corners[1]])


def head_pose_106(landmarks: Landmarks106) -> HeadPose:
    """Yaw from the outline (cylinder model), pitch and roll from derived 5 points."""
    five = five_points_from_106(landmarks)
    base = head_pose(five)
    roll = math.radians(base.roll)
    centre = (five[0] + five[1]) / 2
    cos, sin = math.cos(-roll), math.sin(-roll)
    rotation = np.array([[cos, -sin], [sin, cos]])
    upright = (landmarks.points.astype(np.float64) - centre) @ rotation.T
    contour_x = upright[list(GROUPS["contour"]), 0]
    half_width = max((contour_x.max() - contour_x.min()) / 2, 1e-6)
    middle = (contour_x.max() + contour_x.min()) / 2
    nose_x = upright[list(GROUPS["nose"]), 0].mean()
    yaw = math.degrees(math.asin(float(np.clip((nose_x - middle) / half_width, -1.0, 1.0))))
    return HeadPose(yaw=yaw, pitch=base.pitch, roll=base.roll)


# ---- from parsing --------------------------------------------------------------------------


def parsing_eye_openness(parsing: ParsingMask) -> float:
    """The more open eye class's bounding height / width; 0 when no eye pixel is seen."""
    ratios = [0.0]
    for name in ("left_eye", "right_eye"):
        ys, xs = np.nonzero(parsing.mask == CLASS_INDEX[name])
        if len(xs) >= 3:
            ratios.append((ys.max() - ys.min() + 1) / (xs.max() - xs.min() + 1))
    return float(max(ratios))


def parsing_mouth_openness(parsing: ParsingMask) -> float:
    mouth = np.count_nonzero(parsing.mask == CLASS_INDEX["mouth"])
    lips = np.count_nonzero(
        np.isin(parsing.mask, [CLASS_INDEX["upper_lip"], CLASS_INDEX["lower_lip"]])
    )
    return mouth / (mouth + lips) if mouth + lips else 0.0


def parsing_occlusion(parsing: ParsingMask, face: Face) -> dict[str, float]:
    radius = REGION_RADIUS * _inter_ocular(face.landmarks)
    occlusion = {}
    for region, centres in region_centres(face.landmarks).items():
        classes = parsing.at(disc_samples(centres, radius))
        visible = [CLASS_INDEX[name] for name in VISIBLE_CLASSES[region]]
        occlusion[region] = 1.0 - float(np.isin(classes, visible).mean())
    return occlusion


def parsing_accessories(parsing: ParsingMask, face: Face) -> tuple[bool, bool, bool]:
    """(glasses, sunglasses, hat)."""
    radius = REGION_RADIUS * _inter_ocular(face.landmarks)
    eyes = parsing.at(disc_samples(region_centres(face.landmarks)["eyes"], radius))
    glasses_share = float(np.mean(eyes == CLASS_INDEX["eyeglasses"]))
    eye_share = float(np.isin(eyes, [CLASS_INDEX["left_eye"], CLASS_INDEX["right_eye"]]).mean())
    glasses = glasses_share >= GLASSES_SHARE
    sunglasses = glasses and eye_share < SUNGLASSES_EYE_SHARE
    return glasses, sunglasses, parsing.share(["hat"]) >= HAT_SHARE


# ---- from XSeg ------------------------------------------------------------------------------


def xseg_occlusion(xseg: XSegMask) -> dict[str, float]:
    """1 - mean P(face) in each region's discs, read in the aligned crop's own pixels."""
    template = template_for(xseg.mask.shape[0])
    radius = REGION_RADIUS * float(np.linalg.norm(template[1] - template[0]))
    height, width = xseg.mask.shape
    occlusion = {}
    for region, centres in region_centres(template).items():
        samples = np.round(disc_samples(centres, radius)).astype(int)
        x = np.clip(samples[:, 0], 0, width - 1)
        y = np.clip(samples[:, 1], 0, height - 1)
        occlusion[region] = 1.0 - float(xseg.mask[y, x].mean())
    return occlusion


# ---- all together --------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalReadings:
    """What the configured models returned for one face (any of them may be missing)."""

    landmarks: Landmarks106 | None = None
    parsing: ParsingMask | None = None
    xseg: XSegMask | None = None


def derive_signals(face: Face, readings: SignalReadings) -> FaceSignals:
    """Every signal the available readings support; parsing wins over landmarks for the
    mouth (it sees the inside of the mouth) and landmarks over parsing for the eyes."""
    eye = mouth = None
    mouth_threshold = OPEN_MOUTH
    occlusion: dict[str, float] | None = None
    glasses = sunglasses = hat = None
    pose = None
    if readings.landmarks is not None:
        eye = eye_openness_106(readings.landmarks)
        mouth = mouth_openness_106(readings.landmarks)
        mouth_threshold = OPEN_MOUTH_LANDMARKS
        pose = head_pose_106(readings.landmarks)
    if readings.parsing is not None:
        if eye is None:
            eye = parsing_eye_openness(readings.parsing)
        mouth, mouth_threshold = parsing_mouth_openness(readings.parsing), OPEN_MOUTH
        occlusion = parsing_occlusion(readings.parsing, face)
        glasses, sunglasses, hat = parsing_accessories(readings.parsing, face)
    if readings.xseg is not None:
        from_xseg = xseg_occlusion(readings.xseg)
        occlusion = (
            from_xseg
            if occlusion is None
            else {r: max(occlusion[r], from_xseg[r]) for r in REGIONS}
        )
    mask = None
    if occlusion is not None:
        covered = min(occlusion["nose"], occlusion["mouth"]) >= MASK_OCCLUSION
        mask = covered and occlusion["eyes"] < MASK_OCCLUSION
    return FaceSignals(
        eye_openness=eye,
        mouth_openness=mouth,
        eyes_open=None if eye is None else eye >= OPEN_EYES,
        mouth_open=None if mouth is None else mouth >= mouth_threshold,
        occlusion=occlusion,
        glasses=glasses,
        sunglasses=sunglasses,
        hat=hat,
        mask=mask,
        pose=pose,
    )


class SignalModels:
    """The optional models signals come from (106 landmarks, BiSeNet parsing, XSeg)."""

    def __init__(
        self,
        landmarks: Landmark106Model | None = None,
        parsing: BiSeNetModel | None = None,
        xseg: XSegModel | None = None,
    ) -> None:
        self.landmarks = landmarks
        self.parsing = parsing
        self.xseg = xseg

    @classmethod
    def from_specs(
        cls,
        landmarks: str | None = None,
        parsing: str | None = None,
        xseg: str | None = None,
        runtime: SessionSettings | None = None,
    ) -> SignalModels:
        return cls(
            Landmark106Model.from_spec(landmarks, runtime) if landmarks else None,
            BiSeNetModel.from_spec(parsing, runtime) if parsing else None,
            XSegModel.from_spec(xseg, runtime) if xseg else None,
        )

    @property
    def configured(self) -> bool:
        return any(m is not None for m in (self.landmarks, self.parsing, self.xseg))

    def readings(self, image: np.ndarray, faces: Sequence[Face]) -> list[SignalReadings]:
        """Each configured model runs once per image over all its faces."""
        count = len(faces)
        landmarks = self.landmarks.predict(image, faces) if self.landmarks else [None] * count
        parsing = self.parsing.predict(image, faces) if self.parsing else [None] * count
        xseg = self.xseg.predict(image, faces) if self.xseg else [None] * count
        return [SignalReadings(*r) for r in zip(landmarks, parsing, xseg, strict=True)]

    def measure(self, image: np.ndarray, faces: Sequence[Face]) -> list[FaceSignals]:
        readings = self.readings(image, faces)
        return [derive_signals(f, r) for f, r in zip(faces, readings, strict=True)]
