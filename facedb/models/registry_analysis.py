"""Registry rows of the analysis half of the model zoo (MODEL_FACTS.md §7.3).

Kept apart from `registry.py` so the two halves can change independently; `registry.py`
appends these rows to its table. The row format is the same: name, family, variant, cached
filename, URL, SHA-256, licence, embedding size (None here), options.

How each family is fed and decoded is documented in its module under
`facedb.vision.analysis`; the `options` below only record what differs per file.
"""

from __future__ import annotations

_UNIFACE = "https://github.com/yakhyo/uniface/releases/download/weights/"
_FAIRFACE = "https://github.com/yakhyo/fairface-onnx/releases/download/weights/"
_GAZE = "https://github.com/yakhyo/gaze-estimation/releases/download/weights/"
_PARSING = "https://github.com/yakhyo/face-parsing/releases/download/weights/"
_XSEG = "https://github.com/yakhyo/face-segmentation/releases/download/weights/"

_INSIGHTFACE = "InsightFace model zoo: non-commercial research only"
_FAIRFACE_LIC = "CC BY 4.0 (FairFace data set and models, Karkkainen & Joo); MIT export"
_DDAMFN_LIC = "MIT (DDAMFN); trained on AffectNet, a research-only data set"
_GAZE_LIC = "MIT (yakhyo/gaze-estimation); trained on Gaze360, a research-only data set"
_PARSING_LIC = "MIT (yakhyo/face-parsing, after zllrunning); trained on CelebAMask-HQ (research)"
_XSEG_LIC = "GPL-3.0 (DeepFaceLab XSeg)"

# AffectNet files are TorchScript, not ONNX: onnxruntime cannot open them (see emotion.py).
_TORCHSCRIPT = {"format": "torchscript"}

ANALYSIS_TABLE: list[tuple[str, str, str, str, str, str, str, int | None, dict[str, str]]] = [
    ("LANDMARK_2D106", "landmark106", "DEFAULT", "2d_106.onnx",
     _UNIFACE + "2d106det.onnx",
     "f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf", _INSIGHTFACE, None, {}),
    ("AGEGENDER", "agegender", "DEFAULT", "age_gender.onnx",
     _UNIFACE + "genderage.onnx",
     "4fde69b1c810857b88c64a335084f1c3fe8f01246c9a191b48c7bb756d6652fb", _INSIGHTFACE, None, {}),
    ("FAIRFACE", "fairface", "DEFAULT", "fairface.onnx",
     _FAIRFACE + "fairface.onnx",
     "9c8c47d437cd310538d233f2465f9ed0524cb7fb51882a37f74e8bc22437fdbf", _FAIRFACE_LIC, None, {}),
    ("AFFECNET7", "affectnet", "AFFECNET7", "affecnet7.script",
     _UNIFACE + "affecnet7.script",
     "10535bf8b6afe8e9d6ae26cea6c3add9a93036e9addb6adebfd4a972171d015d", _DDAMFN_LIC, None,
     _TORCHSCRIPT),
    ("AFFECNET8", "affectnet", "AFFECNET8", "affecnet8.script",
     _UNIFACE + "affecnet8.script",
     "8c66963bc71db42796a14dfcbfcd181b268b65a3fc16e87147d6a3a3d7e0f487", _DDAMFN_LIC, None,
     _TORCHSCRIPT),
    ("MOBILEGAZE_RESNET18", "mobilegaze", "RESNET18", "gaze_resnet18.onnx",
     _GAZE + "resnet18_gaze.onnx",
     "404fec1efd07ff49f981e47f461c20c2627119e465ec441bbd1c067d3f16e657", _GAZE_LIC, None, {}),
    ("MOBILEGAZE_RESNET34", "mobilegaze", "RESNET34", "gaze_resnet34.onnx",
     _GAZE + "resnet34_gaze.onnx",
     "c8e6b14f6095d2425241b9302aa663d9a23b7dfb9d43941352b718c91dc7f2cf", _GAZE_LIC, None, {}),
    ("MOBILEGAZE_RESNET50", "mobilegaze", "RESNET50", "gaze_resnet50.onnx",
     _GAZE + "resnet50_gaze.onnx",
     "bb28d421565adc4dfb665742f8fc80bdef36dd8caa0c87e040e0937f9fdca9a6", _GAZE_LIC, None, {}),
    ("MOBILEGAZE_MOBILENET_V2", "mobilegaze", "MOBILENET_V2", "gaze_mobilenetv2.onnx",
     _GAZE + "mobilenetv2_gaze.onnx",
     "b81312df85c7ac1c1b5f78c573620d22c2719cb839650e15f12dc7eecb7744a4", _GAZE_LIC, None, {}),
    ("MOBILEGAZE_MOBILEONE_S0", "mobilegaze", "MOBILEONE_S0", "gaze_mobileone_s0.onnx",
     _GAZE + "mobileone_s0_gaze.onnx",
     "8b4fdc4e3da44733c9a82e7776b411e4a39f94e8e285aee0fc85a548a55f7d9f", _GAZE_LIC, None, {}),
    ("BISENET_RESNET18", "bisenet", "RESNET18", "parsing_resnet18.onnx",
     _PARSING + "resnet18.onnx",
     "0d9bd318e46987c3bdbfacae9e2c0f461cae1c6ac6ea6d43bbe541a91727e33f", _PARSING_LIC, None, {}),
    ("BISENET_RESNET34", "bisenet", "RESNET34", "parsing_resnet34.onnx",
     _PARSING + "resnet34.onnx",
     "5b805bba7b5660ab7070b5a381dcf75e5b3e04199f1e9387232a77a00095102e", _PARSING_LIC, None, {}),
    ("XSEG", "xseg", "DEFAULT", "xseg.onnx",
     _XSEG + "xseg.onnx",
     "0b57328efcb839d85973164b617ceee9dfe6cfcb2c82e8a033bba9f4f09b27e5", _XSEG_LIC, None, {}),
]  # fmt: skip

# The upstream enum spellings (uniface) resolve to the same rows.
ANALYSIS_ALIASES: dict[str, str] = {
    "2D106": "LANDMARK_2D106",
    "LANDMARK106": "LANDMARK_2D106",
    "AGE_GENDER": "AGEGENDER",
    "AFFECTNET7": "AFFECNET7",
    "AFFECTNET8": "AFFECNET8",
    "GAZE_RESNET18": "MOBILEGAZE_RESNET18",
    "GAZE_RESNET34": "MOBILEGAZE_RESNET34",
    "GAZE_RESNET50": "MOBILEGAZE_RESNET50",
    "GAZE_MOBILENET_V2": "MOBILEGAZE_MOBILENET_V2",
    "GAZE_MOBILEONE_S0": "MOBILEGAZE_MOBILEONE_S0",
    "PARSING_RESNET18": "BISENET_RESNET18",
    "PARSING_RESNET34": "BISENET_RESNET34",
}
