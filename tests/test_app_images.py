"""The app's image loader: every odd or hostile file gives pixels or a clear message, never an exception."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import test_app_files as files

from app.lib.images import DecodedImage, ImageLoadError, decode_image, describe_fit, fit_square


def decode(data: bytes, name: str = "upload.png") -> DecodedImage:
    with warnings.catch_warnings():  # PIL warns about 10000 × 10000 before the loader refuses it
        warnings.simplefilter("ignore")
        return decode_image(data, name)


@pytest.mark.parametrize("data, message", [
    (b"", r"notes\.png is empty"),
    (files.not_an_image(), r"notes\.png is not an image this app opens; allowed formats: PNG, JPEG"),
    (files.eps_file(), r"notes\.png is not an image this app opens"),  # EPS would run Ghostscript
    (files.truncated_png(), r"notes\.png could not be decoded \(it is truncated\)"),
    (files.decompression_bomb(), r"notes\.png was refused as a possible decompression bomb"),
    (files.png_claiming_size(10000, 10000),
     r"notes\.png is 10000 × 10000 pixels \(100 megapixels\); this app opens images up to 50 megapixels"),
], ids=["empty", "not-an-image", "eps", "truncated", "decompression-bomb", "10000x10000"])
def test_unusable_files_are_refused_with_a_message_naming_the_file(data, message):
    with pytest.raises(ImageLoadError, match=message):
        decode(data, "notes.png")


def test_sixteen_bit_grey_is_scaled_to_eight_bits():
    decoded = decode(files.sixteen_bit_grey_png())
    assert decoded.pixels.dtype == np.uint8 and decoded.pixels.shape == (16, 32, 3)
    assert decoded.pixels[0, 0].tolist() == [0, 0, 0] and decoded.pixels[-1, -1].tolist() == [255, 255, 255]
    assert any("16-bit" in note for note in decoded.notes)


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_images_become_rgb(transparent):
    decoded = decode(files.palette_png(transparent))
    assert decoded.pixels.shape == (10, 20, 3)
    expected = [255, 255, 255] if transparent else [200, 30, 30]  # palette entry 0 is the transparent one
    assert np.abs(decoded.pixels[5, 5].astype(int) - expected).max() <= 8


def test_transparency_is_shown_on_white():
    decoded = decode(files.rgba_png())
    assert decoded.pixels[5, 2].tolist() == [0, 0, 255] and decoded.pixels[5, 15].tolist() == [255, 255, 255]
    assert any("transparent" in note for note in decoded.notes)


def test_cmyk_and_grey_become_rgb():
    red = decode(files.cmyk_jpeg(), "print.jpg").pixels[8, 8].astype(int)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    grey = decode(files.grey_png()).pixels
    assert grey.shape == (8, 12, 3) and (grey == 128).all()


def test_exif_rotation_is_applied():
    decoded = decode(files.exif_rotated_jpeg(), "phone.jpg")
    assert decoded.original_size == (20, 40) and decoded.pixels.shape == (40, 20, 3)
    assert any("EXIF" in note for note in decoded.notes)


def test_first_frame_of_an_animation():
    decoded = decode(files.animated_gif(), "loop.gif")
    assert decoded.pixels[0, 0].tolist() == [255, 0, 0]
    assert any("first of 3 frames" in note for note in decoded.notes)


def test_one_pixel_image_fills_the_working_square():
    decoded = decode(files.one_pixel_png())
    square = fit_square(decoded.pixels, 64)
    assert square.shape == (64, 64, 3) and (square == np.array([10, 200, 10], dtype=np.uint8)).all()
    assert describe_fit(decoded.original_size, 64) == "1 × 1 → enlarged to 64 × 64"


def test_large_images_are_kept_at_twice_the_largest_working_size():
    decoded = decode(files.solid_png((1, 2, 3), 2000, 1000))
    assert decoded.pixels.shape == (512, 1024, 3) and decoded.original_size == (2000, 1000)


def test_fit_square_centre_crops_then_resizes():
    pixels = np.zeros((60, 120, 3), dtype=np.uint8)
    pixels[:, 30:90] = 255  # the centre square is white, the sides black
    square = fit_square(pixels, 32)
    assert square.shape == (32, 32, 3) and square.min() >= 235  # no black side; Lanczos rings a little
    assert describe_fit((120, 60), 32) == "120 × 60 → centre crop 60 × 60 → resized to 32 × 32"
