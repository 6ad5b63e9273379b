"""``load_image``: 8-bit sRGB linearised, 16-bit and float linear, DNG as CFA DN, bad files named."""

from __future__ import annotations

from pathlib import Path

import colour
import cv2
import numpy as np
import pytest
import tifffile

from station.dng import write_dng
from station.errors import InputError
from station.frame import Frame
from station.imageio import load_image


def srgb_formula(code: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding of 8-bit codes, written out."""
    v = code.astype(np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def test_8bit_gray_png_is_linearised(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (3, 1))
    path = tmp_path / "ramp.png"
    cv2.imwrite(str(path), ramp)
    image = load_image(path)
    assert image.kind == "gray" and image.data.dtype == np.float32 and image.data.shape == (3, 256)
    np.testing.assert_allclose(image.data, srgb_formula(ramp), atol=1e-6)
    np.testing.assert_allclose(image.data[0], colour.cctf_decoding(np.arange(256) / 255.0, "sRGB"), atol=1e-6)
    assert (image.black_level, image.white_level, image.bit_depth) == (0.0, 1.0, 8)
    np.testing.assert_allclose(image.normalized(), image.data, atol=1e-7)


def test_8bit_rgb_png_is_rgb_ordered_and_linear_option(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 10
    path = tmp_path / "rgb.png"
    cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    image = load_image(path)
    assert image.kind == "rgb" and image.data.shape == (4, 5, 3)
    np.testing.assert_allclose(image.data[0, 0], srgb_formula(np.array([200, 100, 10])), atol=1e-6)
    raw = load_image(path, linear=True)
    np.testing.assert_array_equal(raw.data[0, 0], [200, 100, 10])
    np.testing.assert_allclose(raw.normalized()[0, 0], np.array([200, 100, 10]) / 255, atol=1e-7)


def test_rgba_png_drops_alpha(tmp_path: Path) -> None:
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 255, 0, 128  # blue, half transparent
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), bgra)
    image = load_image(path, linear=True)
    assert image.data.shape == (2, 2, 3)
    np.testing.assert_array_equal(image.data[0, 0], [0, 0, 255])


def test_16bit_png_is_linear(tmp_path: Path) -> None:
    values = np.array([[0, 1000, 32768, 65535]], np.uint16)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), values)
    image = load_image(path)
    assert image.kind == "gray" and image.bit_depth == 16 and image.white_level == 65535
    np.testing.assert_array_equal(image.data, values.astype(np.float32))
    np.testing.assert_allclose(image.normalized(), values / 65535.0, rtol=1e-6)


def test_16bit_rgb_tiff_is_linear_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((3, 4, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 40000, 2000, 300
    path = tmp_path / "deep.tiff"
    tifffile.imwrite(path, rgb, photometric="rgb")
    image = load_image(path)
    assert image.kind == "rgb"
    np.testing.assert_array_equal(image.data[1, 1], [40000, 2000, 300])
    assert image.white_level == 65535


def test_8bit_tiff_is_srgb_and_float_tiff_as_stored(tmp_path: Path) -> None:
    codes = np.array([[0, 10, 128, 255]], np.uint8)
    tifffile.imwrite(tmp_path / "a.tif", codes)
    np.testing.assert_allclose(load_image(tmp_path / "a.tif").data, srgb_formula(codes), atol=1e-6)
    values = np.array([[0.0, 0.25, 1.5]], np.float32)
    tifffile.imwrite(tmp_path / "f.tif", values)
    image = load_image(tmp_path / "f.tif")
    np.testing.assert_array_equal(image.data, values)
    assert image.bit_depth == 32


def test_jpeg_is_decoded_as_srgb(tmp_path: Path) -> None:
    gray = np.full((16, 16), 128, np.uint8)
    path = tmp_path / "g.jpg"
    cv2.imwrite(str(path), gray, [cv2.IMWRITE_JPEG_QUALITY, 100])
    image = load_image(path)
    assert image.kind == "gray"
    assert float(image.data.mean()) == pytest.approx(float(srgb_formula(np.array(128))), abs=0.005)


def _frame() -> Frame:
    data = np.random.default_rng(9).integers(64, 1024, size=(8, 12), dtype=np.uint16)
    return Frame(data=data, cfa="GBRG", black_level=64, white_level=1000, exposure_s=0.01)


@pytest.mark.parametrize("name", ["shot.dng", "shot.tif"])
def test_dng_is_cfa_in_dn_with_its_levels(tmp_path: Path, name: str) -> None:
    frame = _frame()
    path = write_dng(tmp_path / name, frame)
    image = load_image(path)
    assert image.kind == "cfa" and image.cfa == "GBRG"
    np.testing.assert_array_equal(image.data, frame.data.astype(np.float32))
    assert (image.black_level, image.white_level, image.exposure_s, image.bit_depth) == (64, 1000, 0.01, 10)
    np.testing.assert_allclose(image.normalized(), (frame.data - 64.0) / 936.0, rtol=1e-6)


def test_missing_and_unreadable_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(InputError, match="no such file") as err:
        load_image(missing)
    assert str(missing) in str(err.value)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InputError, match="not a readable image") as err:
        load_image(text)
    assert str(text) in str(err.value) and "\n" not in str(err.value)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nxxxx")
    with pytest.raises(InputError, match="not a readable image"):
        load_image(broken)
    fake_dng = tmp_path / "fake.dng"
    fake_dng.write_text("hello")
    with pytest.raises(InputError, match="not a DNG"):
        load_image(fake_dng)
