"""Lens shading (``calibration.shading``) and colour (``calibration.color``) on twin captures, against its truth.

Shading: two raw flat fields (80 % of full well) through a lens; the truth's relative illumination is
``V = cos^4(atan r) (1 + a2 r^2 + a4 r^4)``, ``r = hypot(u - cx, v - cy) / r_scale_px`` (``truth["vignetting"]``),
the same for every colour channel. The Android gain map normalises each channel to its brightest map point,
so ``gain x V`` must be the same at every map point: ``max(V)`` over the map.

Colour: the twin paints the ColorChecker with its linear-sRGB reflectances (``targets.colorchecker``) and
each sensor channel sees its own band as one scale factor (``electrons_per_lux_s_m2`` of the light's
blackbody): the twin camera's primaries are sRGB's, its true colour matrix the identity and its white balance
``eta_G / eta_R``, ``eta_G / eta_B``. A 3x3 matrix then has nothing to correct; CIEDE2000 stays below 1
before and after (what remains is the lens's falloff across the chart). Showing a matrix that lowers
delta E needs a twin that renders the patches' spectra through the QE curves.
"""

from __future__ import annotations

import numpy as np
import pytest

from calibration.color import calibrate_color, cfa_to_rgb, patch_means
from calibration.shading import lens_shading, map_sample_positions
from targets.colorchecker import ColorCheckerChart
from tests.unit.twin_scenes import colorchecker_raw, flat_frames

SHADING_CASES = [("elmarit-m-28-f2.8", 2.8), ("noctilux-m-50-f0.95", 0.95), ("main", None)]


def true_relative_illumination(truth: dict, x_px: np.ndarray, y_px: np.ndarray) -> np.ndarray:
    vig = truth["vignetting"]
    r = np.hypot(x_px - vig["cx"], y_px - vig["cy"]) / vig["r_scale_px"]
    return (1.0 + r * r * (vig["a2"] + vig["a4"] * r * r)) / (1.0 + r * r) ** 2


@pytest.fixture(scope="module", params=SHADING_CASES, ids=[c[0] for c in SHADING_CASES])
def shading(request):
    lens, aperture = request.param
    frames, truth = flat_frames(lens, aperture)
    result = lens_shading(list(frames), cfa="RGGB", black_level=truth["black_level"],
                          white_level=truth["white_level"])
    return result, truth


def test_gain_map_undoes_the_true_vignetting_within_1_pct(shading):
    result, truth = shading
    xs, ys = map_sample_positions(result.image_size, result.grid)
    gx, gy = np.meshgrid(xs, ys)
    v = true_relative_illumination(truth, gx, gy)
    corner = v.max() / v[0, 0]
    for k, channel in enumerate(result.channels):
        flattened = result.gain_map[..., k] * v / v.max()
        print(f"\n{truth['lens']} {channel}: gain x V / max V in [{flattened.min():.4f}, {flattened.max():.4f}], "
              f"corner gain {result.gain_map[0, 0, k]:.4f} (truth {corner:.4f})", end="")
        np.testing.assert_allclose(flattened, 1.0, atol=0.01)
    assert corner > 1.25  # a falloff worth measuring


def test_radial_fit_finds_the_optical_centre_and_the_falloff(shading):
    """lensfun's ``pa`` model about a fitted centre: the centre is the truth's principal point (the lens's
    axis, off the sensor centre by the mount's offset) and, for the M lenses (field radius up to 0.28 focal
    lengths), the model follows V within 1 % over the map. The main camera's field reaches 0.93 focal lengths,
    where ``1 / (1 + r^2)^2`` needs terms beyond ``pa``'s r^6: its corners read 8 % dark there (the gain map,
    a free surface, is right)."""
    result, truth = shading
    vig = truth["vignetting"]
    xs, ys = map_sample_positions(result.image_size, result.grid)
    gx, gy = np.meshgrid(xs, ys)
    v = true_relative_illumination(truth, gx, gy)
    for channel, fit in result.radial.items():
        assert np.hypot(fit.center_px[0] - vig["cx"], fit.center_px[1] - vig["cy"]) < 0.5, channel
        if truth["lens"] == "main":
            continue
        model = fit.relative_illumination(gx, gy)
        truth_rel = v / true_relative_illumination(truth, np.array(fit.center_px[0]), np.array(fit.center_px[1]))
        np.testing.assert_allclose(model, truth_rel, rtol=0.01, err_msg=channel)


@pytest.fixture(scope="module")
def color():
    raw, truth = colorchecker_raw("elmarit-m-28-f2.8", 5.6)
    rgb = cfa_to_rgb(raw.astype(np.float32) - np.float32(truth["black_level"]), "RGGB")  # one pixel per quad
    detection = ColorCheckerChart().detect(rgb)
    boxes = {int(roi.extra["index"]): roi.box for roi in detection.rois}
    assert sorted(boxes) == list(range(24))
    means, _ = patch_means(rgb, [tuple(int(v) for v in boxes[i]) for i in range(24)])
    result = calibrate_color(means)
    de = result.to_dict()["delta_e2000"]
    print(f"\ntwin ColorChecker: WB {np.round(result.wb_gains, 4)}, CIEDE2000 mean before {de['before']['mean']:.2f} "
          f"after {de['after']['mean']:.2f}, CCM\n{np.round(result.ccm, 4)}")
    return result, truth


def test_white_balance_is_the_ratio_of_the_channel_responses(color):
    result, truth = color
    eta = truth["radiometry"]["electrons_per_lux_s_m2"]
    expected = [eta["g"] / eta["r"], 1.0, eta["g"] / eta["b"]]
    np.testing.assert_allclose(result.wb_gains, expected, rtol=0.01)


def test_colour_matrix_is_the_identity_of_an_srgb_camera(color):
    result, _ = color
    np.testing.assert_allclose(result.ccm, np.eye(3), atol=0.02)
    de = result.to_dict()["delta_e2000"]
    assert de["before"]["mean"] < 1.0 and de["after"]["mean"] < 1.0
    assert de["after"]["max"] < 1.5
