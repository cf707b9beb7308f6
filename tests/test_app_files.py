"""Image files for the app's tests — good, odd and hostile — built in memory (no test functions here).

Used by test_app_images.py (the loader), test_app_home.py (uploads through AppTest) and test_browser.py.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def solid_png(colour: tuple[int, int, int], width: int, height: int) -> bytes:
    return encode(Image.new("RGB", (width, height), colour))


def split_png(left: tuple[int, int, int], right: tuple[int, int, int], width: int = 80, height: int = 60) -> bytes:
    """An RGB PNG whose left half is one colour and right half another."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = left
    pixels[:, width // 2:] = right
    return encode(Image.fromarray(pixels))


def not_an_image() -> bytes:
    return b"These are lecture notes, not a picture.\n" * 20


def truncated_png() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise))
    return data[: len(data) // 2]


def png_claiming_size(width: int, height: int) -> bytes:
    """A 1×1 PNG whose header claims ``width`` × ``height`` (a decompression bomb's calling card)."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4: ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr: ihdr + 17]))
    data[ihdr + 17: ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def decompression_bomb() -> bytes:
    return png_claiming_size(20000, 20000)


def sixteen_bit_grey_png() -> bytes:
    ramp = np.linspace(0, 65535, 32 * 16).astype(np.uint16).reshape(16, 32)
    return encode(Image.fromarray(ramp))


def palette_png(transparent: bool = False) -> bytes:
    image = Image.new("RGB", (20, 10), (200, 30, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    return encode(image, transparency=0) if transparent else encode(image)


def rgba_png() -> bytes:
    pixels = np.zeros((10, 20, 4), dtype=np.uint8)
    pixels[:, :10] = (0, 0, 255, 255)  # opaque blue left half, fully transparent right half
    return encode(Image.fromarray(pixels, "RGBA"))


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG")  # red in CMYK


def grey_png() -> bytes:
    return encode(Image.new("L", (12, 8), 128))


def exif_rotated_jpeg() -> bytes:
    """A 40 × 20 JPEG whose EXIF says "rotate 90° clockwise to view": upright it is 20 × 40."""
    image = Image.new("RGB", (40, 20), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", exif=exif.tobytes())


def one_pixel_png() -> bytes:
    return solid_png((10, 200, 10), 1, 1)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def eps_file() -> bytes:
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
