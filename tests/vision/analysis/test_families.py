"""Every analysis family on built graphs: input size, colour order, normalisation, layout and
output decoding, against MODEL_FACTS.md / models.json and each module's docstring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facedb.models.registry import lookup
from facedb.models.registry_analysis import ANALYSIS_TABLE
from facedb.models.spec import ModelSpecError
from facedb.vision.analysis import load_analysis_model
from facedb.vision.analysis.agegender import AgeGenderModel
from facedb.vision.analysis.emotion import AffectNetModel, MiniXceptionModel
from facedb.vision.analysis.fairface import FairFaceModel
from facedb.vision.analysis.gaze import GazeModel
from facedb.vision.analysis.landmarks106 import GROUPS, Landmark106Model
from facedb.vision.analysis.parsing import CLASS_INDEX, BiSeNetModel
from facedb.vision.analysis.xseg import XSegModel
from facedb.vision.types import Face
from tests.vision.analysis.graphs import constant_graph, probe_graph

BGR = (10, 100, 200)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
RGB_IMAGENET = (np.array(BGR[::-1]) / 255 - IMAGENET_MEAN) / IMAGENET_STD


def flat_image(height: int = 300, width: int = 400) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[...] = BGR
    return image


def face(box=(100.0, 80.0, 200.0, 220.0)) -> Face:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    marks = np.array(
        [
            [x1 + 0.3 * w, y1 + 0.4 * h],
            [x1 + 0.7 * w, y1 + 0.4 * h],
            [x1 + 0.5 * w, y1 + 0.6 * h],
            [x1 + 0.35 * w, y1 + 0.8 * h],
            [x1 + 0.65 * w, y1 + 0.8 * h],
        ],
        np.float32,
    )
    return Face(np.array(box, np.float32), 0.9, marks)


def probe_rows(model, crops_bgr=None) -> np.ndarray:
    crops = crops_bgr if crops_bgr is not None else [flat_image(120, 90), flat_image(50, 70)]
    return model.run_crops(crops)[0]


# ---- preprocessing: what each family feeds the network -------------------------------------

CASES = [
    # family, input shape, layout, expected channel values, expected (H, W)
    ("agegender", ["N", 3, 96, 96], "NCHW", np.array(BGR[::-1], float), (96, 96)),
    ("landmark106", ["N", 3, 192, 192], "NCHW", np.array(BGR[::-1], float), (192, 192)),
    ("fairface", ["N", 3, 224, 224], "NCHW", RGB_IMAGENET, (224, 224)),
    ("affectnet", ["N", 3, 112, 112], "NCHW", RGB_IMAGENET, (112, 112)),
    ("mobilegaze", ["N", 3, 448, 448], "NCHW", RGB_IMAGENET, (448, 448)),
    ("bisenet", ["N", 3, 512, 512], "NCHW", RGB_IMAGENET, (512, 512)),
    ("xseg", ["N", 256, 256, 3], "NHWC", np.array(BGR, float) / 255, (256, 256)),
    # grey = 0.114 B + 0.587 G + 0.299 R, then (x - 127.5) / 127.5
    ("minixception", ["N", 1, 96, 96], "NCHW", np.array([(119.64 - 127.5) / 127.5]), (96, 96)),
]


@pytest.mark.parametrize(("family", "shape", "layout", "channels", "hw"), CASES)
def test_family_preprocessing(tmp_path, family, shape, layout, channels, hw) -> None:
    path = probe_graph(tmp_path / f"{family}.onnx", shape, layout)
    model = load_analysis_model(f"{family}:{path}")
    assert model.family == family and model.input_hw == hw
    rows = probe_rows(model)
    assert rows.shape == (2, len(channels) + 2)
    for row in rows:  # every crop is resized to the file's size, whatever its own size
        np.testing.assert_allclose(
            row[: len(channels)], channels, atol=2e-2 if family == "minixception" else 1e-3
        )
        np.testing.assert_allclose(row[len(channels) :], hw)


def test_dynamic_input_uses_the_family_size_and_spec_overrides_apply(tmp_path) -> None:
    path = probe_graph(tmp_path / "g.onnx", ["N", 3, "H", "W"])
    assert GazeModel.from_spec(f"mobilegaze:{path}").input_hw == (448, 448)
    assert BiSeNetModel.from_spec(f"bisenet:{path}").input_hw == (512, 512)
    bgr_raw = GazeModel.from_spec(f"mobilegaze:{path}?order=bgr&mean=0&std=1")
    np.testing.assert_allclose(probe_rows(bgr_raw)[0, :3], BGR, atol=1e-3)


def test_wrong_channel_count_and_family_are_refused(tmp_path) -> None:
    grey = probe_graph(tmp_path / "grey.onnx", ["N", 1, 96, 96])
    with pytest.raises(ModelSpecError, match="3 channel"):
        load_analysis_model(f"agegender:{grey}")
    with pytest.raises(ModelSpecError, match="not an analysis model"):
        load_analysis_model(f"arcface:{grey}")


# ---- decoding ------------------------------------------------------------------------------


def test_agegender_decoding(tmp_path) -> None:
    path = constant_graph(tmp_path / "ag.onnx", ["N", 3, 96, 96], [np.array([2.0, 0.0, 0.35])])
    result = AgeGenderModel.from_spec(f"agegender:{path}").predict(flat_image(), [face()])[0]
    assert result.gender == "female" and result.age == pytest.approx(35.0, abs=1e-4)
    assert result.gender_confidence == pytest.approx(1 / (1 + math.exp(-2.0)), abs=1e-5)


def test_fairface_decoding(tmp_path) -> None:
    race = np.zeros(7)
    race[3] = 5.0
    gender = np.array([0.0, 4.0])  # index 1 = female in FairFace's order
    age = np.zeros(9)
    age[4] = 6.0
    path = constant_graph(tmp_path / "ff.onnx", ["N", 3, 224, 224], [race, gender, age])
    result = FairFaceModel.from_spec(f"fairface:{path}").predict(flat_image(), [face(), face()])
    assert len(result) == 2
    assert (result[0].race, result[0].gender, result[0].age_group) == (
        "East Asian",
        "female",
        "30-39",
    )
    assert sum(result[0].race_scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_emotion_decoding_and_torchscript_refusal(tmp_path) -> None:
    logits = np.zeros(8)
    logits[7] = 9.0
    path = constant_graph(tmp_path / "an8.onnx", ["N", 3, 112, 112], [logits])
    result = AffectNetModel.from_spec(f"affectnet:{path}").predict(flat_image(), [face()])[0]
    assert result.label == "contempt" and len(result.scores) == 8
    seven = np.zeros(7)
    seven[1] = 9.0
    path7 = constant_graph(tmp_path / "an7.onnx", ["N", 3, 112, 112], [seven])
    assert (
        AffectNetModel.from_spec(f"affectnet:{path7}").predict(flat_image(), [face()])[0].label
        == "happy"
    )
    rafdb = constant_graph(tmp_path / "mx.onnx", ["N", 1, 96, 96], [seven])
    assert (
        MiniXceptionModel.from_spec(f"minixception:{rafdb}")
        .predict(flat_image(), [face()])[0]
        .label
        == "disgust"
    )
    script = tmp_path / "affecnet7.script"
    script.write_bytes(b"PK torchscript")
    with pytest.raises(ModelSpecError, match="TorchScript"):
        load_analysis_model(f"affectnet:{script}")


def test_landmark_decoding_maps_back_through_the_crop(tmp_path) -> None:
    values = np.zeros((106, 2))
    values[0] = (-1.0, -1.0)  # the crop's top-left corner
    values[1] = (1.0, 1.0)  # its bottom-right corner
    path = constant_graph(tmp_path / "lm.onnx", ["N", 3, 192, 192], [values.reshape(212)])
    box = (100.0, 80.0, 200.0, 220.0)  # centre (150, 150), longer side 140 → crop side 210
    points = Landmark106Model.from_spec(f"landmark106:{path}").predict(flat_image(), [face(box)])[0]
    np.testing.assert_allclose(points.points[2], (150, 150), atol=1e-3)
    np.testing.assert_allclose(points.points[0], (150 - 105, 150 - 105), atol=1e-3)
    np.testing.assert_allclose(points.points[1], (150 + 105, 150 + 105), atol=1e-3)
    assert sum(len(GROUPS[g]) for g in ("contour", "eyebrows", "nose", "eyes", "mouth")) == 106
    assert points.group("mouth").shape == (20, 2)


def test_gaze_decoding(tmp_path) -> None:
    pitch, yaw = np.full(90, -50.0), np.full(90, -50.0)
    pitch[50] = 50.0  # bin 50 → 50 * 4 - 180 = 20 degrees
    yaw[40] = 50.0  # → -20 degrees
    path = constant_graph(tmp_path / "gz.onnx", ["N", 3, 448, 448], [pitch, yaw])
    gaze = GazeModel.from_spec(f"mobilegaze:{path}").predict(flat_image(), [face()])[0]
    assert gaze.pitch_deg == pytest.approx(20.0, abs=1e-3)
    assert gaze.yaw_deg == pytest.approx(-20.0, abs=1e-3)
    assert gaze.pitch == pytest.approx(math.radians(20.0), abs=1e-5)


def test_parsing_decoding(tmp_path) -> None:
    logits = np.zeros((19, 8, 8))
    logits[CLASS_INDEX["hat"], :4] = 5.0  # top half of the crop: hat
    logits[CLASS_INDEX["skin"], 4:] = 5.0  # bottom half: skin
    path = constant_graph(tmp_path / "bs.onnx", ["N", 3, 512, 512], [logits])
    box = (100.0, 80.0, 200.0, 220.0)
    parsed = BiSeNetModel.from_spec(f"bisenet:{path}").predict(flat_image(), [face(box)])[0]
    assert parsed.box == (100, 80, 200, 220) and parsed.mask.shape == (140, 100)
    classes = parsed.at(np.array([[150, 90], [150, 210], [10, 10]]))
    assert list(classes) == [CLASS_INDEX["hat"], CLASS_INDEX["skin"], 0]
    assert parsed.share(["hat"]) == pytest.approx(0.5)


def test_xseg_decoding(tmp_path) -> None:
    mask = np.ones((256, 256, 1))
    mask[:, :128] = 2.0  # clipped to 1
    mask[200:] = -1.0  # clipped to 0
    path = constant_graph(tmp_path / "xs.onnx", ["N", 256, 256, 3], [mask])
    result = XSegModel.from_spec(f"xseg:{path}").predict(flat_image(), [face()])[0]
    assert result.mask.shape == (256, 256)
    assert result.mask.max() == 1.0 and result.mask.min() == 0.0
    back = result.to_image((300, 400))
    assert back.shape == (300, 400) and back[0, 0] == 0.0


# ---- registry ------------------------------------------------------------------------------


def test_registry_has_every_analysis_model() -> None:
    names = {row[0] for row in ANALYSIS_TABLE}
    assert names == {
        "LANDMARK_2D106", "AGEGENDER", "FAIRFACE", "AFFECNET7", "AFFECNET8",
        "MOBILEGAZE_RESNET18", "MOBILEGAZE_RESNET34", "MOBILEGAZE_RESNET50",
        "MOBILEGAZE_MOBILENET_V2", "MOBILEGAZE_MOBILEONE_S0",
        "BISENET_RESNET18", "BISENET_RESNET34", "XSEG",
    }  # fmt: skip
    assert lookup("2d106").family == "landmark106"
    assert lookup("gaze_mobileone_s0").name == "MOBILEGAZE_MOBILEONE_S0"
    assert lookup("AgeGender").sha256.startswith("4fde69b1")
    assert lookup("affecnet8").options == {"format": "torchscript"}
    for row in ANALYSIS_TABLE:
        entry = lookup(row[0])
        assert entry.license and entry.url.startswith("https://github.com/yakhyo/")
        assert entry.task in {"landmarks", "attributes", "gaze", "parsing", "segmentation"}
