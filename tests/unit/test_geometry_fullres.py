"""Geometry at 50 MP without whole-frame temporaries: the same corners as the whole-frame maths.

Tiles smoothed one by one equal the whole frame's Gaussian blur; the 8-bit normalisation in bands equals the
direct formula; ChArUco found on a block-averaged image maps back to full-resolution pixels and refines there
to the truth of an exact render; the green image demosaiced in bands equals OpenCV's whole-frame G plane.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from calibration.cfa import BAYER_TO_RGB
from calibration.geometry import detect_charuco, detection, saddle
from station.procedures import framing
from targets.charuco import CharucoSpec
from tests.unit.test_geometry import K_TRUE, SIZE, board_poses, homography, warp_texture


def test_tiles_are_windows_of_the_whole_frame_blur() -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 4096, (300, 420), dtype=np.uint16)
    centres = np.array([[200.2, 150.7], [30.0, 40.0], [415.0, 5.0], [3.4, 296.0]])  # two near the border
    radius, sigma = 12, 2.3
    atlas, offset = saddle.blurred_tile_atlas(image, centres, radius, sigma)
    whole = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma)
    padded = cv2.copyMakeBorder(whole, radius, radius, radius, radius, cv2.BORDER_REFLECT_101)
    side = 2 * radius + 1
    for (cx, cy), (ox, oy) in zip(np.rint(centres).astype(int), offset.astype(int), strict=True):
        tile = atlas[cy - radius + oy: cy - radius + oy + side, cx - radius + ox: cx - radius + ox + side]
        window = padded[cy: cy + side, cx: cx + side]  # the whole blur around (cx, cy), reflected beyond the frame
        if radius <= cx < 420 - radius and radius <= cy < 300 - radius:
            np.testing.assert_allclose(tile, window, rtol=0, atol=1e-3)  # inside: the whole frame's blur
        assert tile.shape == (side, side)


def test_a_corner_that_leaves_its_tile_is_lost() -> None:
    rng = np.random.default_rng(8)
    image = (rng.random((200, 200)) * 100).astype(np.float32) + 100.0  # noise: no saddle to converge on
    yy, xx = np.mgrid[0:200, 0:200]
    image += np.where((xx < 100) ^ (yy < 100), 800.0, 0.0).astype(np.float32)  # a corner at (99.5, 99.5)
    image = cv2.GaussianBlur(image, (0, 0), 1.5)
    start = np.array([[97.0, 101.0], [40.0, 40.0]])  # near the corner; far from any corner
    pts, strength = saddle.saddle_points(image, start, 6.0)
    assert np.hypot(*(pts[0] - 99.5)) < 0.05 and strength[0] > 0
    assert np.array_equal(pts[1], start[1]) and strength[1] == 0.0


@pytest.mark.parametrize("shape, dtype, samples", [((600, 800), np.uint16, None), ((480, 640), np.float32, None),
                                                   ((600, 800), np.uint16, 1 << 16)])
def test_8bit_normalisation_in_bands_is_the_direct_formula(shape: tuple[int, int], dtype: type, samples: int | None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole or (``samples`` fewer than the pixels) with the levels from a strided subsample, in bands."""
    monkeypatch.setattr(saddle, "_BAND_ROWS", 64)
    if samples:
        monkeypatch.setattr(saddle, "QUANTILE_SAMPLES", samples)
    rng = np.random.default_rng(9)
    image = (rng.random(shape) * 50000 + 300).astype(dtype)
    got = saddle.as_gray_u8(image)
    step = max(1, int(np.ceil(np.sqrt(image.size / saddle.QUANTILE_SAMPLES))))
    assert step == (3 if samples else 1)
    levels = image.astype(np.float32)[::step, ::step]
    lo, hi = float(np.percentile(levels, 0.5)), float(np.percentile(levels, 99.5))
    direct = np.clip((image.astype(np.float32) - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)
    assert got.dtype == np.uint8 and np.array_equal(got, direct)
    whole_lo, whole_hi = np.percentile(image.astype(np.float32), [0.5, 99.5])
    span = whole_hi - whole_lo
    assert abs(lo - whole_lo) < 0.005 * span and abs(hi - whole_hi) < 0.005 * span
    codes = image.astype(np.float32) % 256  # 8-bit codes in a wider type stay as they are
    assert np.array_equal(saddle.as_gray_u8(np.floor(codes)), np.floor(codes).astype(np.uint8))


def test_charuco_found_on_a_reduced_image_refines_to_the_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2560 x 1920 render (an exact 640 x 480 one upscaled 4x) with the detection capped at 640 px: found on
    the 4x block average, mapped back (x 4 + 1.5), refined at full resolution to the render's truth."""
    spec = CharucoSpec(5, 7, 40.0, 20.0, "DICT_6X6_250")
    texture = spec.cv_board().generateImage((5 * 320, 7 * 320), marginSize=0, borderBits=1).astype(np.float32) / 255
    rvec, tvec = board_poses(200, 280, K_TRUE, SIZE, 1, seed=11, distance_mm=(420, 520))[0]
    H = homography(K_TRUE, rvec, tvec)
    big = cv2.resize(warp_texture(texture, 8, 0.0, H, SIZE), (2560, 1920), interpolation=cv2.INTER_CUBIC)
    big = big.astype(np.uint16) * 4
    board_xy, _ = spec.chessboard_corners_mm()
    monkeypatch.setattr(detection, "DETECT_MAX_SIDE_PX", 640)
    assert detection.detection_factor(big) == 4
    coarse, ids = detection._charuco_opencv(big, spec, 4)
    truth = 4 * cv2.perspectiveTransform(board_xy[ids].reshape(-1, 1, 2), H).reshape(-1, 2) + 1.5
    assert len(ids) == 24 and np.all(np.abs((coarse - truth).mean(axis=0)) < 0.2)
    pts, ids = detect_charuco(big, spec)
    truth = 4 * cv2.perspectiveTransform(board_xy[ids].reshape(-1, 1, 2), H).reshape(-1, 2) + 1.5
    assert len(ids) == 24 and float(np.sqrt(np.mean(np.sum((pts - truth) ** 2, axis=1)))) < 0.1


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_green_image_in_bands_is_the_whole_frame_g_plane(cfa: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(framing, "_BAND_ROWS", 16)
    rng = np.random.default_rng(10)
    data = rng.integers(0, 1024, (102, 64), dtype=np.uint16)  # bands of 16 rows, a last one of 6
    frame = SimpleNamespace(data=data, cfa=cfa, black_level=64, white_level=1023)
    scale = np.float32(65535.0 / (1023 - 64))
    dn = np.clip((data.astype(np.float32) - np.float32(64)) * scale, 0, 65535).astype(np.uint16)
    whole = cv2.cvtColor(dn, BAYER_TO_RGB[cfa])[:, :, 1]
    green = framing.green_image(frame)
    assert green.dtype == np.uint16 and np.array_equal(green, whole)
