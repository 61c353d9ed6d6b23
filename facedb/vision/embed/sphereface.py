"""SphereFace 20 / 36 (yakhyo exports): RGB, (x - 127.5) / 127.5, 512-d, 112x112 only."""

from __future__ import annotations

from facedb.vision.embed.base import CROP_SIZE, Embedder


class SphereFaceEmbedder(Embedder):
    family = "sphereface"

    def _check_model(self) -> None:
        # The head is a Linear layer over a 512x7x7 map: only a 112x112 input fits it, so
        # a file declaring anything else is not a SphereFace recognizer we can feed.
        super()._check_model()
        declared = self.io.fixed_hw()
        if declared is not None and declared != (CROP_SIZE, CROP_SIZE):
            raise ValueError(f"{self.name}: SphereFace needs a 112x112 input, file has {declared}")
