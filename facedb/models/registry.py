"""Every known model: name → family, task, URL, SHA-256, licence.

URLs, SHA-256 digests and cached filenames are the published ones (MODEL_FACTS.md §7.3), so a
file fetched from upstream or from a mirror of it is byte-identical to what was pinned here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from facedb.models.errors import ModelSpecError
from facedb.models.families import family as family_of
from facedb.models.registry_analysis import ANALYSIS_ALIASES, ANALYSIS_TABLE


@dataclass(frozen=True)
class RegistryEntry:
    name: str  # e.g. "SCRFD_500M_KPS" (case-insensitive on lookup)
    family: str  # a key of facedb.models.families.FAMILIES (its preprocessing applies)
    variant: str  # the upstream variant name, e.g. "MNET_025"
    task: str  # the family's task: "detect", "embed" or "liveness"
    url: str
    sha256: str
    filename: str  # name in the cache directory
    license: str
    embedding_size: int | None = None
    options: dict[str, str] = field(default_factory=dict)  # family-specific, e.g. crop scale


_UNIFACE = "https://github.com/yakhyo/uniface/releases/download/weights/"
_ADAFACE = "https://github.com/yakhyo/adaface-onnx/releases/download/weights/"
_YOLOV5 = "https://github.com/yakhyo/yolov5-face-onnx-inference/releases/download/weights/"
_YOLOV8 = "https://github.com/yakhyo/yolov8-face-onnx-inference/releases/download/weights/"
_FAS = "https://github.com/yakhyo/face-anti-spoofing/releases/download/weights/"

_INSIGHTFACE = "InsightFace model zoo: non-commercial research only"
_RETINAFACE = "MIT (yakhyo/retinaface-pytorch, after biubug6/Pytorch_Retinaface)"
_YAKHYO_FR = "MIT (yakhyo/face-recognition); trained on MS1MV2, a research data set"
_ADAFACE_LIC = "MIT (mk-minchul/AdaFace); trained on WebFace4M / WebFace12M"
_MINIVISION = "Apache-2.0 (minivision-ai/Silent-Face-Anti-Spoofing)"

# name, family, variant, cached filename, URL, SHA-256, licence, embedding size, options
_TABLE: list[tuple[str, str, str, str, str, str, str, int | None, dict[str, str]]] = [
    # --- detectors ---------------------------------------------------------------------
    ("RETINAFACE_MNET_025", "retinaface", "MNET_025", "retinaface_mnet025.onnx",
     _UNIFACE + "retinaface_mv1_0.25.onnx",
     "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5", _RETINAFACE, None, {}),
    ("RETINAFACE_MNET_050", "retinaface", "MNET_050", "retinaface_mnet050.onnx",
     _UNIFACE + "retinaface_mv1_0.50.onnx",
     "d8977186f6037999af5b4113d42ba77a84a6ab0c996b17c713cc3d53b88bfc37", _RETINAFACE, None, {}),
    ("RETINAFACE_MNET_V1", "retinaface", "MNET_V1", "retinaface_mnet_v1.onnx",
     _UNIFACE + "retinaface_mv1.onnx",
     "75c961aaf0aff03d13c074e9ec656e5510e174454dd4964a161aab4fe5f04153", _RETINAFACE, None, {}),
    ("RETINAFACE_MNET_V2", "retinaface", "MNET_V2", "retinaface_mnet_v2.onnx",
     _UNIFACE + "retinaface_mv2.onnx",
     "3ca44c045651cabeed1193a1fae8946ad1f3a55da8fa74b341feab5a8319f757", _RETINAFACE, None, {}),
    ("RETINAFACE_RESNET18", "retinaface", "RESNET18", "retinaface_r18.onnx",
     _UNIFACE + "retinaface_r18.onnx",
     "e8b5ddd7d2c3c8f7c942f9f10cec09d8e319f78f09725d3f709631de34fb649d", _RETINAFACE, None, {}),
    ("RETINAFACE_RESNET34", "retinaface", "RESNET34", "retinaface_r34.onnx",
     _UNIFACE + "retinaface_r34.onnx",
     "bd0263dc2a465d32859555cb1741f2d98991eb0053696e8ee33fec583d30e630", _RETINAFACE, None, {}),
    ("SCRFD_500M_KPS", "scrfd", "SCRFD_500M_KPS", "scrfd_500m.onnx",
     _UNIFACE + "scrfd_500m_kps.onnx",
     "5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a", _INSIGHTFACE, None, {}),
    ("SCRFD_10G_KPS", "scrfd", "SCRFD_10G_KPS", "scrfd_10g.onnx",
     _UNIFACE + "scrfd_10g_kps.onnx",
     "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91", _INSIGHTFACE, None, {}),
    ("YOLOV5N_FACE", "yolov5face", "YOLOV5N", "yolov5n.onnx",
     _YOLOV5 + "yolov5n_face.onnx",
     "eb244a06e36999db732b317c2b30fa113cd6cfc1a397eaf738f2d6f33c01f640", "GPL-3.0", None, {}),
    ("YOLOV5S_FACE", "yolov5face", "YOLOV5S", "yolov5s.onnx",
     _YOLOV5 + "yolov5s_face.onnx",
     "fc682801cd5880e1e296184a14aea0035486b5146ec1a1389d2e7149cb134bb2", "GPL-3.0", None, {}),
    ("YOLOV5M_FACE", "yolov5face", "YOLOV5M", "yolov5m.onnx",
     _YOLOV5 + "yolov5m_face.onnx",
     "04302ce27a15bde3e20945691b688e2dd018a10e92dd8932146bede6a49207b2", "GPL-3.0", None, {}),
    ("YOLOV8_LITE_S_FACE", "yolov8face", "YOLOV8_LITE_S", "yolov8_lite_s.onnx",
     _YOLOV8 + "yolov8-lite-s.onnx",
     "11bc496be01356d2d960085bfd8abb8f103199900a034f239a8a1705a1b31dba", "AGPL-3.0", None, {}),
    ("YOLOV8N_FACE", "yolov8face", "YOLOV8N", "yolov8n_face.onnx",
     _YOLOV8 + "yolov8n-face.onnx",
     "33f3951af7fc0c4d9b321b29cdcd8c9a59d0a29a8d4bdc01fcb5507d5c714809", "AGPL-3.0", None, {}),
    # --- recognizers (all 512-d) ---------------------------------------------------------
    ("ARCFACE_MNET", "arcface", "MNET", "arcface_mnet.onnx",
     _UNIFACE + "w600k_mbf.onnx",
     "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f", _INSIGHTFACE, 512, {}),
    ("ARCFACE_RESNET", "arcface", "RESNET", "arcface_resnet.onnx",
     _UNIFACE + "w600k_r50.onnx",
     "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43", _INSIGHTFACE, 512, {}),
    ("ADAFACE_IR_18", "adaface", "IR_18", "adaface_ir_18.onnx",
     _ADAFACE + "adaface_ir_18.onnx",
     "6b6a35772fb636cdd4fa86520c1a259d0c41472a76f70f802b351837a00d9870", _ADAFACE_LIC, 512, {}),
    ("ADAFACE_IR_101", "adaface", "IR_101", "adaface_ir_101.onnx",
     _ADAFACE + "adaface_ir_101.onnx",
     "f2eb07d03de0af560a82e1214df799fec5e09375d43521e2868f9dc387e5a43e", _ADAFACE_LIC, 512, {}),
    ("MOBILEFACE_MNET_025", "mobileface", "MNET_025", "mobilenetv1_025.onnx",
     _UNIFACE + "mobilenetv1_0.25.onnx",
     "eeda7d23d9c2b40cf77fa8da8e895b5697465192648852216074679657f8ee8b", _YAKHYO_FR, 512, {}),
    ("MOBILEFACE_MNET_V2", "mobileface", "MNET_V2", "mobilenetv2.onnx",
     _UNIFACE + "mobilenetv2.onnx",
     "38b148284dd48cc898d5d4453104252fbdcbacc105fe3f0b80e78954d9d20d89", _YAKHYO_FR, 512, {}),
    ("MOBILEFACE_MNET_V3_SMALL", "mobileface", "MNET_V3_SMALL", "mobilenetv3_small.onnx",
     _UNIFACE + "mobilenetv3_small.onnx",
     "d4acafa1039a82957aa8a9a1dac278a401c353a749c39df43de0e29cc1c127c3", _YAKHYO_FR, 512, {}),
    ("MOBILEFACE_MNET_V3_LARGE", "mobileface", "MNET_V3_LARGE", "mobilenetv3_large.onnx",
     _UNIFACE + "mobilenetv3_large.onnx",
     "0e48f8e11f070211716d03e5c65a3db35a5e917cfb5bc30552358629775a142a", _YAKHYO_FR, 512, {}),
    ("SPHEREFACE_20", "sphereface", "SPHERE20", "sphere20.onnx",
     _UNIFACE + "sphere20.onnx",
     "c02878cf658eb1861f580b7e7144b0d27cc29c440bcaa6a99d466d2854f14c9d", _YAKHYO_FR, 512, {}),
    ("SPHEREFACE_36", "sphereface", "SPHERE36", "sphere36.onnx",
     _UNIFACE + "sphere36.onnx",
     "13b3890cd5d7dec2b63f7c36fd7ce07403e5a0bbb701d9647c0289e6cbe7bb20", _YAKHYO_FR, 512, {}),
    # --- liveness: the crop scale is part of how each model was trained ---------------------
    ("MINIFASNET_V1SE", "minifasnet", "V1SE", "minifasnet_v1se.onnx",
     _FAS + "MiniFASNetV1SE.onnx",
     "ebab7f90c7833fbccd46d3a555410e78d969db5438e169b6524be444862b3676", _MINIVISION, None,
     {"crop_scale": "4.0"}),
    ("MINIFASNET_V2", "minifasnet", "V2", "minifasnet_v2.onnx",
     _FAS + "MiniFASNetV2.onnx",
     "b32929adc2d9c34b9486f8c4c7bc97c1b69bc0ea9befefc380e4faae4e463907", _MINIVISION, None,
     {"crop_scale": "2.7"}),
]  # fmt: skip

# Upstream variant names people naturally type. Bare family names are deliberately not
# aliases: "SCRFD" could mean either size, and a silent guess would change accuracy.
ALIASES: dict[str, str] = {
    "SCRFD_500M": "SCRFD_500M_KPS",
    "SCRFD_10G": "SCRFD_10G_KPS",
    "YOLOV5N": "YOLOV5N_FACE",
    "YOLOV5S": "YOLOV5S_FACE",
    "YOLOV5M": "YOLOV5M_FACE",
    "YOLOV8N": "YOLOV8N_FACE",
    "YOLOV8_LITE_S": "YOLOV8_LITE_S_FACE",
    "SPHERE20": "SPHEREFACE_20",
    "SPHERE36": "SPHEREFACE_36",
}


def _build(row: tuple) -> RegistryEntry:
    name, family, variant, filename, url, sha256, license_, embedding_size, options = row
    return RegistryEntry(
        name=name,
        family=family,
        variant=variant,
        task=family_of(family).task,
        url=url,
        sha256=sha256,
        filename=filename,
        license=license_,
        embedding_size=embedding_size,
        options=dict(options),
    )


REGISTRY: dict[str, RegistryEntry] = {row[0]: _build(row) for row in _TABLE + ANALYSIS_TABLE}
ALIASES.update(ANALYSIS_ALIASES)


def _normalise(name: str) -> str:
    # "scrfd-500m-kps" and "SCRFD_500M_KPS" are the same model.
    return name.strip().upper().replace("-", "_")


def lookup(name: str) -> RegistryEntry:
    key = _normalise(name)
    entry = REGISTRY.get(ALIASES.get(key, key))
    if entry is None:
        known = ", ".join(sorted(REGISTRY))
        raise ModelSpecError(
            f"unknown model {name!r}: use a registry name ({known}) or FAMILY:PATH"
        )
    return entry
