"""Image input: real edge-case files and files written here, decoded or refused for a reason."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facedb.vision.image import ImageError, decode_image, load_image
from tests.paths import EDGE, REPO

VARIANTS = EDGE / "format_variants"
CORRUPT = EDGE / "corrupt"
LARGE = EDGE / "large"
HUGE_JPEG = LARGE / "thumbor_9643x10328_no_face.jpg"

# Every file of edge/corrupt and edge/format_variants: expected (H, W) or ImageError code.
EXPECTED: dict[str, tuple[int, int] | str] = {
    "corrupt/thumbor_broken_exif_tag.jpg": (1, 1),  # bad EXIF: decoded, not rotated
    "corrupt/thumbor_image_invalid_1byte.jpg": "CORRUPT",
    "corrupt/thumbor_truncated.jpg": "CORRUPT",
    "format_variants/remotecv_one_face_1bit.png": (634, 800),
    "format_variants/thumbor_giunchedi-cmyk-orientation-exif.jpg": (800, 533),  # rotated
    "format_variants/thumbor_giunchedi-grayscale.jpg": (533, 800),
    "format_variants/thumbor_giunchedi.jpg": (533, 800),
    "format_variants/thumbor_giunchedi.png": (533, 800),
    "format_variants/thumbor_image_avif_no_face.avif": (400, 300),
    "format_variants/thumbor_image_heic_no_face.heic": "UNSUPPORTED_FORMAT",
    "format_variants/thumbor_image_jp2_no_face.jp2": "UNSUPPORTED_FORMAT",
    "format_variants/thumbor_image_webp_no_face.webp": (400, 300),
}


def test_every_edge_file_is_listed() -> None:
    on_disk = {f"{p.parent.name}/{p.name}" for d in (CORRUPT, VARIANTS) for p in d.iterdir()}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_edge_file(name: str) -> None:
    expected = EXPECTED[name]
    if isinstance(expected, str):
        with pytest.raises(ImageError) as info:
            decode_image(EDGE / name)
        assert info.value.code == expected
        return
    pixels = decode_image(EDGE / name)
    assert pixels.shape == (*expected, 3) and pixels.dtype == np.uint8


def test_error_messages_say_what_was_wrong() -> None:
    with pytest.raises(ImageError, match="HEIC images are not supported"):
        decode_image(VARIANTS / "thumbor_image_heic_no_face.heic")
    with pytest.raises(ImageError, match="truncated"):
        decode_image(CORRUPT / "thumbor_truncated.jpg")
    with pytest.raises(ImageError, match="1 byte"):
        decode_image(CORRUPT / "thumbor_image_invalid_1byte.jpg")


def test_cmyk_with_exif_orientation_matches_the_rgb_photo() -> None:
    cmyk = load_image(VARIANTS / "thumbor_giunchedi-cmyk-orientation-exif.jpg")
    rgb = decode_image(VARIANTS / "thumbor_giunchedi.jpg")
    assert cmyk.original_size == (533, 800)  # portrait, as displayed
    # Orientation 6 means "rotate 90° clockwise to display"; np.rot90 with k=-1 does that.
    upright = np.rot90(rgb, k=-1).astype(np.float32)
    assert np.abs(cmyk.pixels.astype(np.float32) - upright).mean() < 2.0
    wrong_way = np.rot90(rgb, k=1).astype(np.float32)
    assert np.abs(cmyk.pixels.astype(np.float32) - wrong_way).mean() > 10.0


def test_greyscale_and_png_agree_with_the_rgb_jpeg() -> None:
    rgb = decode_image(VARIANTS / "thumbor_giunchedi.jpg").astype(np.float32)
    png = decode_image(VARIANTS / "thumbor_giunchedi.png").astype(np.float32)
    grey = decode_image(VARIANTS / "thumbor_giunchedi-grayscale.jpg")
    assert np.abs(rgb - png).mean() < 3.0
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert np.abs(grey[..., 0] - rgb.mean(axis=2)).mean() < 10.0


def test_channels_are_bgr() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (255, 0, 0)).save(buffer, "PNG")  # pure red
    pixels = decode_image(buffer.getvalue())
    assert pixels.shape == (3, 4, 3)
    assert (pixels[..., 2] == 255).all() and (pixels[..., :2] == 0).all()


def test_path_str_and_bytes_inputs_agree() -> None:
    path = VARIANTS / "thumbor_image_webp_no_face.webp"
    by_path = decode_image(path)
    assert np.array_equal(by_path, decode_image(str(path)))
    assert np.array_equal(by_path, decode_image(path.read_bytes()))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "EMPTY"),
        (b"\xff", "CORRUPT"),
        (bytes(range(256)) * 8, "UNSUPPORTED_FORMAT"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "CORRUPT"),
        (b"\xff\xd8\xff\xe0" + b"\x13" * 100, "CORRUPT"),
    ],
    ids=["empty", "one-byte", "random", "png-garbage", "jpeg-garbage"],
)
def test_bad_bytes(data: bytes, code: str) -> None:
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


def test_other_pillow_formats_are_refused_by_name() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "GIF")
    with pytest.raises(ImageError, match="GIF images are not supported") as info:
        decode_image(buffer.getvalue())
    assert info.value.code == "UNSUPPORTED_FORMAT"


def _encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def test_png_header_claiming_huge_size_is_refused_before_decoding() -> None:
    # 100000 x 100000 RGB would need 30 GB; the IDAT holds nothing useful, so any attempt
    # to decode would end as CORRUPT, not TOO_LARGE.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )
    with pytest.raises(ImageError, match="100000x100000") as info:
        decode_image(data)
    assert info.value.code == "TOO_LARGE"


def _with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its SOF header claiming another size (what a bomb looks like)."""
    at = data.index(b"\xff\xc0")  # baseline SOF0: length(2) precision(1) height(2) width(2)
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def test_jpeg_too_large_even_at_one_eighth_is_refused() -> None:
    data = _with_jpeg_size(_encode(Image.new("RGB", (64, 48), (9, 99, 199)), "JPEG"), 65000, 65000)
    with pytest.raises(ImageError, match=r"65000x65000.*1/8") as info:
        decode_image(data)
    assert info.value.code == "TOO_LARGE"


def test_our_limit_not_pillows_decides_for_jpeg() -> None:
    # 400 megapixels: Image.open would raise DecompressionBombError (over twice its global
    # limit). We decode at 1/4 instead, 5000x5000, within 40 MP. (libjpeg fills the rows the
    # patched file has no data for, as the stream ends with a proper EOI marker.)
    data = _with_jpeg_size(_encode(Image.new("RGB", (64, 48)), "JPEG"), 20000, 20000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))
    image = load_image(data, min_side=None)  # only the pixel limit reduces
    assert image.pixels.shape == (5000, 5000, 3)
    assert image.original_size == (20000, 20000) and image.scale == 0.25


def test_non_jpeg_above_limit_is_refused() -> None:
    with pytest.raises(ImageError, match=r"800x533 = 0\.4 megapixels.*0\.1 megapixels") as info:
        decode_image(VARIANTS / "thumbor_giunchedi.png", max_pixels=100_000)
    assert info.value.code == "TOO_LARGE"


def test_jpeg_above_limit_is_downscaled() -> None:
    image = load_image(VARIANTS / "thumbor_giunchedi.jpg", max_pixels=100_000)
    assert image.pixels.shape == (134, 200, 3)  # 1/2 would still be 107k pixels: 1/4
    assert image.original_size == (800, 533)
    assert image.scale == pytest.approx(0.25)
    full = decode_image(VARIANTS / "thumbor_giunchedi.jpg")
    small = cv2.resize(full, (200, 134), interpolation=cv2.INTER_AREA)
    assert np.abs(image.pixels.astype(np.float32) - small).mean() < 4.0


def test_max_side_downscales_every_format() -> None:
    for name in ("thumbor_giunchedi.jpg", "thumbor_giunchedi.png"):
        image = load_image(VARIANTS / name, max_side=400)
        assert image.pixels.shape == (266, 400, 3) or image.pixels.shape == (267, 400, 3)
        assert image.scale == pytest.approx(0.5)
        assert image.original_size == (800, 533)


def test_large_edge_files_are_downscaled_or_within_limit() -> None:
    huge = load_image(HUGE_JPEG, min_side=None)
    assert huge.original_size == (9643, 10328)
    assert huge.pixels.shape == (5164, 4822, 3)  # decoded at 1/2 by libjpeg for the limit
    assert huge.pixels.shape[0] * huge.pixels.shape[1] <= 40_000_000
    solvay = load_image(LARGE / "uniface_scientists_solvay.png", max_side=800)
    assert solvay.pixels.shape == (579, 800, 3) and solvay.original_size == (1600, 1158)
    with pytest.raises(ImageError, match=r"1600x1158 = 1\.9 megapixels"):
        decode_image(LARGE / "uniface_scientists_solvay.png", max_pixels=1_000_000)


# The child decodes the huge JPEG in its own process; its parent reports the child's peak RSS
# (RUSAGE_CHILDREN), so memory used by this test process or earlier children cannot leak in.
_DECODE = "import sys; from facedb.vision.image import decode_image; decode_image(sys.argv[1])"
_MEASURE = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_huge_jpeg_decode_memory_is_bounded() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, _DECODE, str(HUGE_JPEG)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    peak_bytes = int(result.stdout.strip()) * 1024  # Linux reports kilobytes
    # A full decode needs at least the 299 MB RGB array on top of the interpreter and
    # libraries (Pillow alone peaks at ~1 GB); the bounded decode measured ~230 MB in all.
    full_rgb_buffer = 9643 * 10328 * 3
    assert peak_bytes < full_rgb_buffer, f"peak RSS {peak_bytes / 1e6:.0f} MB"


def test_sixteen_bit_grey_png_is_scaled_not_clipped() -> None:
    values = np.linspace(0, 65535, 64 * 32).astype(np.uint16).reshape(32, 64)
    data = _encode(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # really stored as 16-bit
    pixels = decode_image(data)
    expected = np.round(values / 257.0)
    assert np.abs(pixels[..., 0].astype(np.float64) - expected).max() <= 1
    assert pixels[..., 0].max() == 255 and pixels[..., 0].min() == 0


def test_sixteen_bit_colour_png() -> None:
    bgr16 = np.zeros((8, 8, 3), np.uint16)
    bgr16[..., 0], bgr16[..., 1], bgr16[..., 2] = 65535, 32896, 257  # B, G, R
    ok, encoded = cv2.imencode(".png", bgr16)
    assert ok
    pixels = decode_image(encoded.tobytes())
    assert np.abs(pixels.astype(int) - np.array([255, 128, 1])).max() <= 1


def test_palette_png() -> None:
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]  # black, red, green, blue (RGB)
    image = Image.fromarray(np.array([[0, 1], [2, 3]], np.uint8), "P")
    image.putpalette(palette)
    pixels = decode_image(_encode(image))
    bgr = [[[0, 0, 0], [0, 0, 255]], [[0, 255, 0], [255, 0, 0]]]
    assert pixels.tolist() == bgr


def test_transparency_is_composited_on_neutral_grey() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (255, 0, 0, 0)  # fully transparent red
    rgba[1, :] = (0, 0, 255, 128)  # half-transparent blue
    pixels = decode_image(_encode(Image.fromarray(rgba, "RGBA")))
    assert pixels[0, 0].tolist() == [0, 0, 255]
    assert pixels[0, 1].tolist() == [128, 128, 128]
    assert np.abs(pixels[1, 0].astype(int) - [191, 64, 64]).max() <= 1
    la = decode_image(_encode(Image.fromarray(rgba[..., [0, 3]], "LA")))
    assert la[0, 1].tolist() == [128, 128, 128] and la[0, 0].tolist() == [255, 255, 255]


def test_one_bit_png_is_black_and_white() -> None:
    pixels = decode_image(VARIANTS / "remotecv_one_face_1bit.png")
    assert set(np.unique(pixels).tolist()) <= {0, 255}


def test_file_errors_are_not_image_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        decode_image(tmp_path / "missing.jpg")
