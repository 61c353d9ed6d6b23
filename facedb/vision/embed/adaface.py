"""AdaFace (mk-minchul IR-18 / IR-101 exports): BGR, (x - 127.5) / 127.5, 512-d."""

from __future__ import annotations

from facedb.vision.embed.base import Embedder


class AdaFaceEmbedder(Embedder):
    """AdaFace was trained on BGR crops, so unlike the others it keeps OpenCV's order.

    The PyTorch model returns (unit feature, norm); an export that keeps both outputs has
    the feature first, and a single-output export has only it, so output 0 is right
    either way. The feature norm (a quality signal) is not used here.
    """

    family = "adaface"
