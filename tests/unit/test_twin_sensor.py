"""The twin's sensor against EMVA 1288 maths done here with numpy: linearity, gain, clip, noise, patterns."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from station.errors import ConfigError
from station.twin.render import render_raw
from station.twin.sensor import POISSON_NORMAL_MIN_E, SPECS, photon_counts, sensor_params
from station.twin.world import World

LENS = "elmarit-m-28-f2.8"


def scene(level_pct: float = 50.0, lens: str | None = LENS, chart: str = "flat", seed: int = 5) -> World:
    """A world with the light settled at ``level_pct``, the chart 1 m away and focused."""
    world = World(seed=seed, resolution="ci")
    world.light.settle_s = 0.0
    world.set_light(output=level_pct > 0, level_pct=max(level_pct, 0.0), cct_k=5000.0)
    world.axes[world.axis_map["distance"]] = 1000.0
    world.chart, world.m_lens = chart, lens
    return world


def green(raw: np.ndarray, half: int = 128) -> np.ndarray:
    """The G samples (both G sites, RGGB) of a centred (2 half) square ROI, float64."""
    h, w = raw.shape
    r0, c0 = (h // 2 - half) // 2 * 2, (w // 2 - half) // 2 * 2
    roi = raw[r0:r0 + 2 * half, c0:c0 + 2 * half].astype(np.float64)
    return np.concatenate([roi[0::2, 1::2].ravel(), roi[1::2, 0::2].ravel()])


def capture(world: World, exposure_us: float, gain: float = 1.0, seq: int = 1, **extra) -> tuple[np.ndarray, dict]:
    return render_raw(world, "m", {"exposure_us": exposure_us, "analog_gain": gain, **extra}, seq)


def _linearity_error(x: np.ndarray, mean_dn: np.ndarray) -> float:
    """Largest deviation from the least-squares line through the origin, relative to the reading."""
    slope = float(np.sum(x * mean_dn) / np.sum(x * x))
    return float(np.max(np.abs(mean_dn - slope * x) / mean_dn))


def test_flat_field_mean_rises_linearly_with_exposure_and_light_up_to_the_full_well():
    world = scene(100.0)
    _, truth = capture(world, 100.0)
    black = truth["black_level"]
    fill_us = truth["full_well_e"] / truth["mean_signal_e"] * 100.0  # exposure that fills the well
    dark = green(capture(scene(0.0), 0.5 * fill_us)[0]).mean()
    assert dark == pytest.approx(black, abs=0.5)
    exposures = fill_us * np.array([0.05, 0.15, 0.3, 0.5, 0.7, 0.9])
    means = np.array([green(capture(world, t, seq=i)[0]).mean() - dark for i, t in enumerate(exposures)])
    assert _linearity_error(exposures, means) < 0.01
    levels = np.array([10.0, 30.0, 60.0, 90.0])
    means = np.array([green(capture(scene(lv), 0.9 * fill_us, seq=i)[0]).mean() - dark
                      for i, lv in enumerate(levels)])
    assert _linearity_error(levels, means) < 0.01
    # beyond the full well the output stops rising, at the clip level the truth names, below 1023
    saturated = green(capture(world, 2.0 * fill_us)[0]).mean()
    assert truth["clip_level_dn"] < truth["white_level"] == 1023
    assert saturated == pytest.approx(truth["clip_level_dn"], abs=1.0)
    assert saturated == pytest.approx(black + truth["conversion_gain_dn_per_e"] * truth["full_well_e"], abs=1.0)


def test_high_gain_clips_at_the_adc_top_code():
    raw, truth = capture(scene(100.0), 5000.0, gain=2.0)
    assert truth["clip_level_dn"] == 1023.0
    assert green(raw).mean() > 1022.5 and raw.max() == 1023
    for gain in (1.0, 1.05, 1.2, 4.0):
        params = sensor_params(SPECS["ci"], gain)
        assert params["clip_level_dn"] == min(64 + params["conversion_gain_dn_per_e"] * params["full_well_e"], 1023)


def test_photon_transfer_of_flat_pairs_gives_the_conversion_gain():
    """EMVA 1288 (sec. 6): K from the slope of temporal variance (difference of two frames) over mean."""
    world = scene(100.0)
    _, truth = capture(world, 100.0)
    fill_us = truth["full_well_e"] / truth["mean_signal_e"] * 100.0
    dark_a, dark_b = (green(capture(scene(0.0), 0.5 * fill_us, seq=s)[0], 256) for s in (1, 2))
    dark_mean, dark_var = 0.5 * (dark_a.mean() + dark_b.mean()), np.var(dark_a - dark_b) / 2
    means, variances = [], []
    for i, fraction in enumerate((0.1, 0.3, 0.5, 0.7)):
        a, b = (green(capture(world, fraction * fill_us, seq=10 + 2 * i + k)[0], 256) for k in (0, 1))
        means.append(0.5 * (a.mean() + b.mean()) - dark_mean)
        variances.append(np.var(a - b) / 2 - dark_var)
    means, variances = np.array(means), np.array(variances)
    gain = float(np.sum(means * variances) / np.sum(means * means))
    assert gain == pytest.approx(truth["conversion_gain_dn_per_e"], rel=0.02)
    # the dark temporal noise: read noise plus the ADC's quantization (1/12 DN^2)
    assert np.sqrt(dark_var) == pytest.approx(np.hypot(truth["read_noise_dn"], np.sqrt(1 / 12)), rel=0.05)


def test_prnu_is_the_sensor_serials_own_pattern():
    world = scene(100.0)
    _, truth = capture(world, 100.0)
    t = 0.6 * truth["full_well_e"] / truth["mean_signal_e"] * 100.0

    def residual(serial: str, seq: int) -> np.ndarray:
        raw, _ = capture(world, t, seq=seq, sensor_serial=serial)
        g = raw[1::2, 0::2].astype(np.float32)[200:500, 300:700]
        return (g - cv2.blur(g, (31, 31)))[20:-20, 20:-20]  # high-pass: the pattern and the noise

    a, b, other = residual("SN-A", 1), residual("SN-A", 2), residual("SN-B", 3)
    same = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    different = np.corrcoef(a.ravel(), other.ravel())[0, 1]
    # expected correlation: PRNU variance over PRNU + temporal variance
    mean_e = 0.6 * truth["full_well_e"]
    prnu_var = (truth["prnu_pct"] / 100 * mean_e) ** 2
    expected = prnu_var / (prnu_var + mean_e + truth["read_noise_e"] ** 2)
    assert same == pytest.approx(expected, abs=0.03)
    assert abs(different) < 0.02


def test_frames_are_deterministic_per_seed_and_seq():
    world = scene(40.0, chart="sfr")
    a, truth_a = capture(world, 500.0, seq=7)
    b, truth_b = capture(scene(40.0, chart="sfr"), 500.0, seq=7)
    c, _ = capture(world, 500.0, seq=8)
    d, _ = capture(scene(40.0, chart="sfr", seed=6), 500.0, seq=7)
    assert a.dtype == np.uint16 and a.shape == (1536, 2048)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert json.dumps(truth_a) == json.dumps(truth_b)
    assert a.min() >= 0 and a.max() <= 1023


def test_dark_frame_sits_on_the_black_level_plus_dark_current():
    raw, truth = capture(scene(0.0), 2_000_000.0)  # 2 s in the dark
    mean_dn = raw.astype(np.float64).mean()
    expected = truth["black_level"] + truth["conversion_gain_dn_per_e"] * truth["dark_current_e_per_s"] * 2.0
    assert mean_dn == pytest.approx(expected, abs=0.1)
    assert truth["mean_signal_e"] == 0.0


def test_readout_modes_are_one_1_inch_sensor_binned_or_not():
    ci, full = SPECS["ci"], SPECS["full"]
    assert (full.width, full.height, full.pixel_pitch_um) == (8192, 6144, 1.6)
    assert (ci.width, ci.height, ci.binning) == (2048, 1536, 4)
    assert ci.pixel_pitch_um == pytest.approx(full.pixel_pitch_um * ci.binning)
    assert ci.size_mm == pytest.approx(full.size_mm)
    assert full.size_mm == pytest.approx((13.1072, 9.8304))
    for spec in (ci, full):  # the full well fills before the ADC's top code at gain 1
        assert spec.black_level + spec.conversion_gain_dn_per_e * spec.full_well_e < spec.white_level
    with pytest.raises(ConfigError, match="allowed: full, ci"):
        render_raw(World(resolution="huge"), "m", {"exposure_us": 10.0}, 0)


@pytest.mark.parametrize(("mean_e", "read_e"), [(3.0, 0.0), (20.0, 0.0), (60.0, 0.0), (900.0, 0.0), (5.0, 3.0),
                                                (20.0, 3.0), (300.0, 1.8)])
def test_photon_counts_have_the_moments_of_poisson_plus_read_noise(mean_e, read_e):
    """Mean, variance mu + r^2 and third cumulant mu (Poisson's), also where the draw is the normal expansion."""
    n = 1_000_000
    counts = photon_counts(np.random.default_rng(3), np.full(n, mean_e, dtype=np.float32), read_e)
    centred = counts.astype(np.float64) - mean_e
    variance = mean_e + read_e**2
    assert centred.mean() == pytest.approx(0.0, abs=4 * np.sqrt(variance / n))
    assert np.mean(centred**2) == pytest.approx(variance, rel=6 * np.sqrt(2 / n))
    third = float(np.mean(centred**3))  # standard error sqrt(15 / n) variance^1.5
    assert third == pytest.approx(mean_e, abs=6 * np.sqrt(15 / n) * variance**1.5)
    if read_e == 0:
        assert counts.min() >= 0
    if mean_e < POISSON_NORMAL_MIN_E and read_e == 0:  # the exact draw: whole electrons
        assert np.array_equal(counts, np.round(counts))


def test_photon_counts_of_mixed_means_draw_each_pixel_by_its_own_law():
    n = 500_000
    means = np.where(np.arange(2 * n) % 2 == 0, 4.0, 400.0).astype(np.float32)
    counts = photon_counts(np.random.default_rng(4), means.copy()).astype(np.float64)
    low, high = counts[0::2], counts[1::2]
    assert np.array_equal(low, np.round(low))  # the exact Poisson draw below the threshold
    for part, mean in ((low, 4.0), (high, 400.0)):
        assert part.mean() == pytest.approx(mean, abs=4 * np.sqrt(mean / n))
        assert part.var() == pytest.approx(mean, rel=6 * np.sqrt(2 / n))
