"""Untrusted image bytes → BGR uint8 pixels, safely.

The header is read first and the pixel count checked before anything is decoded, so a
decompression bomb costs a few bytes of parsing, not gigabytes of memory. Huge JPEGs are
decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself (Pillow's `draft`), so the full-size
buffer is never allocated; other formats above the limit are refused. EXIF orientation is
honoured, so the pixels are the way a person sees the photo.

JPEGs far larger than a detector needs are decoded at reduced scale too, within the pixel
limit or not: libjpeg skips most of the work (a 12-megapixel photo decodes several times
faster at 1/2), and the reduction stops while the longer side is still at least
`MIN_DECODE_SIDE`. `DecodedImage.scale` says how the pixels relate to the original, so
callers report boxes and landmarks in original-image pixels.
"""

from __future__ import annotations

import io
import logging
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageFile, ImageOps

log = logging.getLogger(__name__)
Image.init()  # register every plugin now (WebP, AVIF), not on the first Image.open

ErrorCode = Literal["EMPTY", "UNSUPPORTED_FORMAT", "CORRUPT", "TOO_LARGE"]

DEFAULT_MAX_PIXELS = 40_000_000
# Twice the detectors' 640 canvas: detection sees what it would at full size (it shrinks
# the photo to the canvas anyway) and every face it can find keeps at least twice its
# canvas size for the 112-pixel alignment. Only photos wider than 2 x 1280 are reduced.
MIN_DECODE_SIDE = 1280
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF")
BACKGROUND = (128, 128, 128)  # neutral grey under transparent pixels: no false edges
_JPEG_SCALES = (1, 2, 4, 8)  # the reductions libjpeg can decode at directly
_MIN_BYTES = 8  # no supported format fits its signature in fewer bytes
_STRIP_BYTES = 4 << 20  # pixels leave Pillow in strips of this size, not one big copy

# Errors Pillow's plugins raise for malformed data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)

# ISO-BMFF brands (the `ftyp` box) of the HEIF family, told apart from AVIF to name them.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


class ImageError(ValueError):
    """Input that is not a usable image; `.code` says which kind of problem it is."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # (H, W, 3) BGR uint8
    original_size: tuple[int, int]  # (width, height) of the full image, after EXIF rotation
    scale: float  # decoded size / original size (1.0 unless downscaled)


def _read(data: bytes | bytearray | memoryview | str | Path) -> bytes:
    if isinstance(data, str | Path):
        return Path(data).read_bytes()
    return bytes(data)


def _ftyp_brands(head: bytes) -> set[bytes]:
    """Major and compatible brands of an ISO-BMFF `ftyp` box at the start of the file."""
    size = int.from_bytes(head[0:4], "big")
    end = min(max(size, 16), len(head))
    return {head[8:12]} | {head[i : i + 4] for i in range(16, end - 3, 4)}


def sniff_format(head: bytes) -> str | None:
    """The container format named by the leading bytes, or None if unrecognised."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[0:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brands = _ftyp_brands(head)
        if brands & _AVIF_BRANDS:
            return "AVIF"
        return "HEIC" if brands & _HEIF_BRANDS else "ISO-BMFF"
    signatures = {
        b"GIF87a": "GIF",
        b"GIF89a": "GIF",
        b"BM": "BMP",
        b"II*\x00": "TIFF",
        b"MM\x00*": "TIFF",
        b"\x00\x00\x00\x0cjP  \r\n\x87\n": "JPEG2000",
        b"\xff\x4f\xff\x51": "JPEG2000",
        b"\x00\x00\x01\x00": "ICO",
        b"8BPS": "PSD",
        b"%PDF": "PDF",
    }
    return next((name for sig, name in signatures.items() if head.startswith(sig)), None)


def _check_format(data: bytes) -> str:
    if not data:
        raise ImageError("EMPTY", "image data is empty")
    if len(data) < _MIN_BYTES:
        raise ImageError("CORRUPT", f"image data is only {len(data)} byte(s): too short")
    fmt = sniff_format(data[:64])
    if fmt is None:
        raise ImageError(
            "UNSUPPORTED_FORMAT",
            f"unrecognised image data (starts with {data[:8].hex()}); "
            f"supported formats: {', '.join(SUPPORTED_FORMATS)}",
        )
    if fmt not in SUPPORTED_FORMATS or fmt not in Image.OPEN:
        raise ImageError(
            "UNSUPPORTED_FORMAT",
            f"{fmt} images are not supported; use one of {', '.join(_available_formats())}",
        )
    return fmt


def _available_formats() -> list[str]:
    return [f for f in SUPPORTED_FORMATS if f in Image.OPEN]


def _open_header(data: bytes, fmt: str) -> ImageFile.ImageFile:
    """Parse only the header, with the plugin for `fmt`.

    The plugin is called directly rather than through `Image.open` because our own limit
    (checked next, per call) replaces Pillow's process-wide MAX_IMAGE_PIXELS: that one would
    refuse huge JPEGs that `draft` decodes cheaply, and it only warns below twice its value.
    """
    factory = Image.OPEN[fmt][0]
    try:
        image = factory(io.BytesIO(data), "")
    except Image.DecompressionBombError as exc:  # a plugin's own check: same meaning as ours
        raise ImageError("TOO_LARGE", f"{fmt} image: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise ImageError("CORRUPT", f"{fmt} header is invalid: {exc}") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError("CORRUPT", f"{fmt} header gives an empty size {width}x{height}")
    return image


def _jpeg_reduction(
    width: int, height: int, max_pixels: int, max_side: int | None, min_side: int | None
) -> int:
    """The largest useful libjpeg reduction, or 0 when even 1/8 is above `max_pixels`."""
    fits = [s for s in _JPEG_SCALES if math.ceil(width / s) * math.ceil(height / s) <= max_pixels]
    if not fits:
        return 0
    sides = [side for side in (max_side, min_side) if side is not None]
    if not sides:
        return fits[0]
    # Go further while the longer side stays at least the smaller of the two: the final
    # resize to max_side needs that many pixels, and so does alignment (MIN_DECODE_SIDE).
    keep = min(sides)
    return max([fits[0]] + [s for s in _JPEG_SCALES if max(width, height) // s >= keep])


def _too_large(fmt: str, width: int, height: int, max_pixels: int, extra: str = "") -> ImageError:
    return ImageError(
        "TOO_LARGE",
        f"{fmt} image is {width}x{height} = {width * height / 1e6:.1f} megapixels, "
        f"above the limit of {max_pixels / 1e6:.1f} megapixels{extra}",
    )


def _limit_size(
    image: ImageFile.ImageFile,
    fmt: str,
    max_pixels: int,
    max_side: int | None,
    min_side: int | None,
) -> None:
    """Refuse, or for JPEG arrange a reduced decode, before any pixel is decoded."""
    width, height = image.size
    if fmt != "JPEG":
        if width * height > max_pixels:
            raise _too_large(fmt, width, height, max_pixels)
        return
    reduction = _jpeg_reduction(width, height, max_pixels, max_side, min_side)
    if reduction == 0:
        raise _too_large(fmt, width, height, max_pixels, " even when decoded at 1/8 scale")
    if reduction > 1:
        image.draft(image.mode, (width // reduction, height // reduction))
        reduced_w, reduced_h = image.size
        if reduced_w * reduced_h > max_pixels:  # draft could not reduce (e.g. odd JPEG)
            raise _too_large(fmt, width, height, max_pixels)


def _load(image: ImageFile.ImageFile, fmt: str) -> None:
    # LOAD_TRUNCATED_IMAGES stays off: a truncated file is an error, not a grey half-image.
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageError("TOO_LARGE", f"{fmt} image: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise ImageError("CORRUPT", f"{fmt} data is corrupt or truncated: {exc}") from exc


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # a malformed EXIF block must not make the photo unreadable
        return 1


def _exif_upright(image: Image.Image) -> tuple[Image.Image, bool]:
    """The image as displayed per EXIF orientation, and whether width and height swapped."""
    orientation = _orientation(image)
    if orientation not in range(2, 9):
        return image, False
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception as exc:  # broken EXIF: keep the stored orientation
        log.debug("ignoring unusable EXIF orientation: %s", exc)
        return image, False
    return upright, orientation in (5, 6, 7, 8)


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) greyscale → 8-bit by scaling the range, not clipping it."""
    values = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
    eight = ((values * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(eight, "L")


def _composite(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, BACKGROUND)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode the supported formats produce → 8-bit RGB (grey becomes three equal channels)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I"):
        return _sixteen_to_eight(image).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        return _composite(image)
    try:
        return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB ...
    except ValueError as exc:
        raise ImageError("UNSUPPORTED_FORMAT", f"pixel mode {mode} is not supported") from exc


def _fit_side(image: Image.Image, max_side: int | None) -> Image.Image:
    if max_side is None or max(image.size) <= max_side:
        return image
    factor = max_side / max(image.size)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    # reducing_gap: a fast integer box reduction first, then an accurate filter.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _to_bgr_array(image: Image.Image) -> np.ndarray:
    """RGB image → (H, W, 3) BGR array, copied out in strips so peak memory stays ~1x."""
    width, height = image.size
    out = np.empty((height, width, 3), np.uint8)
    rows = max(1, _STRIP_BYTES // (width * 3))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        strip = image.crop((0, top, width, bottom)).tobytes("raw", "BGR")
        out[top:bottom] = np.frombuffer(strip, np.uint8).reshape(bottom - top, width, 3)
    return out


def load_image(
    data: bytes | str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
    min_side: int | None = MIN_DECODE_SIDE,
) -> DecodedImage:
    """Decode image bytes or a file into BGR pixels, upright, within the size limits.

    `max_pixels` bounds the decoded size (huge JPEGs are downscaled, other formats refused);
    `max_side` additionally downscales the result so its longer side is at most that;
    a JPEG whose longer side is at least twice `min_side` is decoded at 1/2, 1/4 or 1/8
    scale, never below `min_side` (None: full size unless a limit needs less).
    """
    raw = _read(data)
    fmt = _check_format(raw)
    image = _open_header(raw, fmt)
    header_w, header_h = image.size
    _limit_size(image, fmt, max_pixels, max_side, min_side)
    _load(image, fmt)
    upright, swapped = _exif_upright(image)
    original = (header_h, header_w) if swapped else (header_w, header_h)
    rgb = _fit_side(_to_rgb(upright), max_side)
    del image, upright  # let the full-size buffers go before the array copy
    pixels = _to_bgr_array(rgb)
    return DecodedImage(pixels, original, pixels.shape[1] / original[0])


def decode_image(
    data: bytes | str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
    min_side: int | None = MIN_DECODE_SIDE,
) -> np.ndarray:
    """`load_image(...).pixels`: (H, W, 3) BGR uint8."""
    return load_image(data, max_pixels=max_pixels, max_side=max_side, min_side=min_side).pixels
