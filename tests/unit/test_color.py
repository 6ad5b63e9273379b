"""Colour calibration: white balance, 3x3 CCM (white preserved) and CIEDE2000, synthetic and real."""

from __future__ import annotations

from pathlib import Path

import colour
import numpy as np
import pytest

from calibration.color import (
    NEUTRAL_PATCHES,
    ColorError,
    calibrate_color,
    cfa_to_rgb,
    delta_e2000,
    fit_ccm,
    grid_rois,
    patch_means,
    reference_patches,
)

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
DNG = REFERENCE / "dng_bayer_colorchecker" / "colorchart.dng"
#: Input positions (not results): the box spanning the classic chart's 4x6 patches in colorchart.dng, full
#: resolution sensor pixels of the ActiveArea crop, read off a preview of the image.
DNG_PATCH_BOX = (660, 568, 644, 414)

#: A camera's mixing of linear sRGB into its own RGB: rows sum to 1 (a neutral stays neutral), as a
#: real sensor's desaturated response; WB: a warm light (R strong, B weak); an exposure scale.
MIX = np.array([[0.70, 0.25, 0.05], [0.12, 0.78, 0.10], [0.04, 0.30, 0.66]])
LIGHT = np.array([1.35, 1.0, 0.55])  # the light's per-channel strength in camera RGB
EXPOSURE = 830.0  # DN per unit reflectance in G


def _camera(rng: np.random.Generator, noise: float = 0.002) -> np.ndarray:
    _, ref = reference_patches()
    cam = (ref @ MIX.T) * LIGHT * EXPOSURE
    return cam * (1 + rng.normal(0, noise, cam.shape))


def test_synthetic_patches_recover_wb_and_inverse_matrix() -> None:
    res = calibrate_color(_camera(np.random.default_rng(2)))
    truth_wb = LIGHT[1] / LIGHT
    assert res.wb_gains == pytest.approx(truth_wb, rel=0.01)
    assert res.wb_gains[1] == 1.0
    np.testing.assert_allclose(res.ccm, np.linalg.inv(MIX), atol=0.03)
    np.testing.assert_allclose(res.ccm.sum(axis=1), 1.0, atol=1e-12)  # white preserved
    assert res.delta_e_after.mean() < 1.0
    assert res.delta_e_before.mean() > 3.0  # the mixing is visible without the matrix
    assert res.delta_e_after.mean() < res.delta_e_before.mean() / 4


def test_fit_ccm_exact_data_both_ways() -> None:
    rng = np.random.default_rng(4)
    cam = rng.uniform(0.05, 1.0, (24, 3))
    m = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.05, -0.55, 1.5]])  # rows sum to 1
    np.testing.assert_allclose(fit_ccm(cam, cam @ m.T), m, atol=1e-10)
    np.testing.assert_allclose(fit_ccm(cam, cam @ m.T, preserve_white=False), m, atol=1e-10)
    free = np.array([[1.2, 0.1, -0.1], [0.0, 0.9, 0.3], [0.2, -0.2, 1.4]])  # rows do not sum to 1
    np.testing.assert_allclose(fit_ccm(cam, cam @ free.T, preserve_white=False), free, atol=1e-10)
    assert not np.allclose(fit_ccm(cam, cam @ free.T), free, atol=1e-3)


def test_delta_e2000_against_sharma_table() -> None:
    """Pairs 1, 7 and 17 of Sharma, Wu & Dalal (2005) CIEDE2000 test data, given as Lab (D65 white)."""
    pairs = [((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
             ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
             ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030)]
    space = colour.RGB_COLOURSPACES["sRGB"]
    for lab1, lab2, expected in pairs:
        rgb = [colour.XYZ_to_RGB(colour.Lab_to_XYZ(np.array(lab), space.whitepoint), space,
                                 chromatic_adaptation_transform=None) for lab in (lab1, lab2)]
        # sRGB's published matrices are not exact inverses: the round trip moves dE00 by ~2e-3
        assert delta_e2000(rgb[0][None], rgb[1][None])[0] == pytest.approx(expected, abs=5e-3)


def test_clipped_patches_are_left_out_and_clipped_greys_fail() -> None:
    cam = _camera(np.random.default_rng(6), noise=0.0)
    cam_bad = cam.copy()
    cam_bad[5] = [900.0, 900.0, 900.0]  # a clipped bluish green
    clipped = np.zeros(24, bool)
    clipped[5] = True
    res = calibrate_color(cam_bad, clipped=clipped)
    assert not res.used[5] and res.used.sum() == 23
    np.testing.assert_allclose(res.ccm, np.linalg.inv(MIX), atol=0.03)
    clipped[NEUTRAL_PATCHES[0]] = True
    with pytest.raises(ColorError, match="clipped"):
        calibrate_color(cam, clipped=clipped)
    with pytest.raises(ColorError, match="24 patch values"):
        calibrate_color(cam[:20])


def test_grid_rois_and_patch_means() -> None:
    rois = grid_rois((100, 50, 600, 400))
    assert len(rois) == 24
    x, y, w, h = rois[7]  # row 1, column 1: cell (200..300, 150..250), central half
    assert (x, y, w, h) == (225, 175, 50, 50)
    img = np.zeros((500, 800, 3), np.float32)
    for i, (x, y, w, h) in enumerate(rois):
        img[y:y + h, x:x + w] = [i, 2 * i, 3 * i]
    img[rois[3][1], rois[3][0]] = 1e6  # one hot pixel: clipped away from the mean, seen in the max
    means, maxima = patch_means(img, rois)
    np.testing.assert_allclose(means[:, 0], np.arange(24), atol=1e-9)
    assert maxima[3, 0] == 1e6
    with pytest.raises(ColorError, match="not inside"):
        patch_means(img, [(790, 0, 20, 20)])


def test_cfa_to_rgb_quads() -> None:
    mosaic = np.zeros((4, 6), np.float32)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2] = 1, 2, 4, 8
    np.testing.assert_array_equal(cfa_to_rgb(mosaic, "RGGB")[0, 0], [1, 3, 8])
    np.testing.assert_array_equal(cfa_to_rgb(mosaic, "BGGR")[0, 0], [8, 3, 1])
    np.testing.assert_array_equal(cfa_to_rgb(mosaic, "GRBG")[0, 0], [2, 4.5, 4])
    assert cfa_to_rgb(mosaic, "GBRG").shape == (2, 3, 3)


def test_real_dng_colorchecker_ccm_halves_delta_e() -> None:
    if not DNG.is_file():
        pytest.skip(f"reference data absent: {DNG}")
    from station.imageio import load_image

    im = load_image(DNG)
    rgb = cfa_to_rgb(im.data - im.black_level, im.cfa)
    box = tuple(v / 2 for v in DNG_PATCH_BOX)  # quad pixels
    means, maxima = patch_means(rgb, grid_rois(box))
    res = calibrate_color(means, clipped=(maxima >= im.white_level - im.black_level).any(axis=1))
    before, after = res.delta_e_before.mean(), res.delta_e_after.mean()
    print(f"colorchart.dng: mean dE00 {before:.2f} -> {after:.2f}, wb {res.wb_gains}, ccm\n{res.ccm}")
    assert after < 0.5 * before
    assert np.all(res.wb_gains > 0)
    np.testing.assert_allclose(res.ccm.sum(axis=1), 1.0, atol=1e-12)
