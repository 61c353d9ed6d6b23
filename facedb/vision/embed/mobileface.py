"""MobileFaceNet variants (yakhyo MNET*, generic 512-d, 128-d exports): RGB by default.

Several third-party MobileFaceNet files were trained on BGR (the Paddle 128-d export, for
one): pick the order with `mobileface:PATH?order=bgr`; sizes and dtypes come from the file.
"""

from __future__ import annotations

from facedb.vision.embed.base import Embedder


class MobileFaceEmbedder(Embedder):
    family = "mobileface"
