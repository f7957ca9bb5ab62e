"""Tests for src.data.images: robust RGB loading and ratio-preserving resize."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.images import load_rgb_image, resize_square
from src.errors import ScaleprobeError


def _save(image: Image.Image, path: Path, fmt: str) -> Path:
    image.save(path, format=fmt)
    return path


def test_rgb_jpeg_loads(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (30, 20), (200, 10, 10)), tmp_path / "a.JPEG", "JPEG")
    image = load_rgb_image(path)
    assert image.mode == "RGB"
    assert image.size == (30, 20)
    red, green, _ = image.getpixel((5, 5))
    assert red > 180
    assert green < 40


def test_grayscale_becomes_rgb(tmp_path: Path) -> None:
    path = _save(Image.new("L", (16, 8), 77), tmp_path / "gray.JPEG", "JPEG")
    image = load_rgb_image(path)
    assert image.mode == "RGB"
    pixel = np.asarray(image)[4, 4]
    assert abs(int(pixel[0]) - 77) <= 2
    assert pixel[0] == pixel[1] == pixel[2]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    # Pure cyan in CMYK is (0, 255, 255) in RGB.
    path = _save(Image.new("CMYK", (16, 16), (255, 0, 0, 0)), tmp_path / "cmyk.JPEG", "JPEG")
    assert Image.open(path).mode == "CMYK"
    image = load_rgb_image(path)
    assert image.mode == "RGB"
    red, green, blue = image.getpixel((8, 8))
    assert red < 40
    assert green > 200
    assert blue > 200


def test_png_bytes_in_jpeg_file(tmp_path: Path) -> None:
    path = _save(Image.new("RGBA", (12, 10), (0, 128, 255, 100)), tmp_path / "fake.JPEG", "PNG")
    image = load_rgb_image(path)
    assert image.mode == "RGB"
    assert image.size == (12, 10)
    assert image.getpixel((3, 3)) == (0, 128, 255)


def test_palette_with_transparency(tmp_path: Path) -> None:
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.info["transparency"] = 0
    path = _save(palette, tmp_path / "p.png", "PNG")
    image = load_rgb_image(path)
    assert image.mode == "RGB"
    assert image.getpixel((1, 1)) == (10, 200, 30)


def test_16_bit_grayscale_is_rescaled(tmp_path: Path) -> None:
    array = np.full((6, 6), 65535, dtype=np.uint16)
    array[0, 0] = 0
    path = _save(Image.fromarray(array), tmp_path / "deep.png", "PNG")
    image = load_rgb_image(path)
    assert image.mode == "RGB"
    assert image.getpixel((3, 3)) == (255, 255, 255)
    assert image.getpixel((0, 0)) == (0, 0, 0)


def test_zero_byte_file_names_file(tmp_path: Path) -> None:
    path = tmp_path / "empty image.JPEG"
    path.write_bytes(b"")
    with pytest.raises(ScaleprobeError, match=r"empty \(0 bytes\)") as info:
        load_rgb_image(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg_names_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="JPEG")
    path = tmp_path / "cut.JPEG"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ScaleprobeError, match="unreadable or truncated") as info:
        load_rgb_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", [b"not an image at all", b"\xff\xd8\xff garbage"])
def test_not_an_image_names_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.JPEG"
    path.write_bytes(content)
    with pytest.raises(ScaleprobeError) as info:
        load_rgb_image(path)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ScaleprobeError, match="does not exist"):
        load_rgb_image(tmp_path / "missing.JPEG")
    with pytest.raises(ScaleprobeError, match=str(tmp_path)):
        load_rgb_image(tmp_path)


@pytest.mark.parametrize("limit", [400, 300])  # warning band (> limit) and error (> 2 * limit)
def test_decompression_bomb_names_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    path = _save(Image.new("RGB", (25, 25)), tmp_path / "bomb.png", "PNG")  # 625 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ScaleprobeError, match="decompression-bomb") as info:
        load_rgb_image(path)
    assert str(path) in str(info.value)


def test_decompression_limit_kept_for_normal_images(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (25, 25)), tmp_path / "ok.png", "PNG")
    assert Image.MAX_IMAGE_PIXELS is not None
    assert load_rgb_image(path).size == (25, 25)


def test_unicode_path(tmp_path: Path) -> None:
    folder = tmp_path / "dossier ü 图像"
    folder.mkdir()
    path = _save(Image.new("RGB", (5, 7)), folder / "é.JPEG", "JPEG")
    assert load_rgb_image(path).size == (5, 7)


# ------------------------------------------------------------ resize_square


def test_resize_square_keeps_the_ratio() -> None:
    # White 60x20 box in a black 240x80 image: r = sqrt(1200 / 19200) = 0.25.
    array = np.zeros((80, 240, 3), dtype=np.uint8)
    array[30:50, 100:160] = 255
    image = Image.fromarray(array)
    resized = resize_square(image, 96)
    assert resized.size == (96, 96)
    assert resized.mode == "RGB"
    covered = (np.asarray(resized, dtype=np.float64)[..., 0] / 255.0).mean()
    assert math.sqrt(covered) == pytest.approx(0.25, abs=0.01)
    # A centre crop, by contrast, would change r (here to sqrt(1200 / 6400)).
    assert abs(math.sqrt(covered) - math.sqrt(1200 / 6400)) > 0.1


def test_resize_square_upscales_whole_image() -> None:
    image = Image.new("RGB", (10, 40), (1, 2, 3))
    resized = resize_square(image, 64)
    assert resized.size == (64, 64)
    assert resized.getpixel((0, 0)) == (1, 2, 3)
    assert resized.getpixel((63, 63)) == (1, 2, 3)


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "224"])
def test_resize_square_rejects_bad_size(size: object) -> None:
    with pytest.raises(ScaleprobeError, match="size="):
        resize_square(Image.new("RGB", (4, 4)), size)  # type: ignore[arg-type]
