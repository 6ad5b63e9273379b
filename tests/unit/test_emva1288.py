"""EMVA 1288 photon transfer: synthetic sensors with known truth, the emva1288 reference data set, errors.

Synthetic frames follow EMVA's linear model, drawn here independently of the code under test: Poisson
photo-electrons clipped at the full well, times K, plus Gaussian read noise and a black level, rounded
by the ADC.
"""

from __future__ import annotations

import numpy as np
import pytest

from calibration.emva1288 import SensorAnalysisError, analyze_descriptor, analyze_pairs, channel_slices
from calibration.ptc_plot import plot_ptc
from station.emva_files import load_descriptor, read_image_unchanged
from tests.unit.reference import reference_dir

GAIN = 0.25  # DN/e-
READ_NOISE_DN = 2.0
FULL_WELL_E = 3600.0
BLACK = 64
WHITE = 1023
#: Relative sensitivity of R, Gr, Gb, B sites (RGGB).
SITE_RATE = np.array([[1.0, 1.35], [1.3, 0.8]])


class Sensor:
    """A linear sensor after EMVA 1288's model, with optional PRNU (gain map) and DSNU (offset map)."""

    def __init__(self, shape=(512, 512), prnu=0.0, dsnu_dn=0.0, seed=3, gain=GAIN, response=None):
        self.rng = np.random.default_rng(seed)
        self.shape = shape
        self.gain = gain
        rate = np.tile(SITE_RATE, (shape[0] // 2, shape[1] // 2))
        self.rate = rate * (1.0 + prnu * self.rng.standard_normal(shape)) if prnu else rate
        self.offset = BLACK + (dsnu_dn * self.rng.standard_normal(shape) if dsnu_dn else 0.0)
        self.response = response

    def frame(self, electrons_per_unit: float) -> np.ndarray:
        mu = self.rate * electrons_per_unit
        if self.response is not None:
            mu = self.response(mu)
        e = np.minimum(self.rng.poisson(mu).astype(np.float64), FULL_WELL_E)
        dn = self.offset + self.gain * e + self.rng.normal(0.0, READ_NOISE_DN, self.shape)
        return np.clip(np.round(dn), 0, WHITE).astype(np.uint16)

    def sweep(self, exposures_s, e_per_s=2.0e6):
        return [(t, self.frame(t * e_per_s), self.frame(t * e_per_s)) for t in exposures_s]

    def darks(self, n=4):
        return [self.frame(0.0) for _ in range(n)]


EXPOSURES = np.linspace(0.05e-3, 3.0e-3, 28)  # up to ~2.2x the full well of the brightest site


@pytest.fixture(scope="module")
def synthetic_results():
    sensor = Sensor()
    return analyze_pairs(sensor.sweep(EXPOSURES), sensor.darks(), cfa="RGGB")


def test_gain_read_noise_and_clip_level_match_the_truth_per_channel(synthetic_results) -> None:
    assert list(synthetic_results) == ["R", "Gr", "Gb", "B"]
    clip_truth = BLACK + GAIN * FULL_WELL_E  # 964 DN: the full well fills below the white level
    # Read noise as measured includes the ADC's quantisation noise (1/12 DN^2), as EMVA's sigma_y.dark does.
    read_truth = np.sqrt(READ_NOISE_DN**2 + 1 / 12)
    for name, res in synthetic_results.items():
        assert res.system_gain_dn_per_e == pytest.approx(GAIN, rel=0.01), name
        assert res.read_noise_dn == pytest.approx(read_truth, rel=0.03), name
        assert res.read_noise_e == pytest.approx(READ_NOISE_DN / GAIN, rel=0.03), name
        assert res.clip_level_dn == pytest.approx(clip_truth, abs=1.0), name
        # Saturation (variance peak) lies just below the full well, in DN above dark.
        assert 0.85 * GAIN * FULL_WELL_E < res.mu_y_sat_dn <= GAIN * FULL_WELL_E + 1, name
        assert res.linearity_error_pct < 0.2, name


def test_clip_level_is_none_when_exposures_never_reach_it() -> None:
    sensor = Sensor(shape=(128, 128))
    res = analyze_pairs(sensor.sweep(np.linspace(0.05e-3, 0.9e-3, 8)), sensor.darks(2), cfa="RGGB")
    assert all(r.clip_level_dn is None for r in res.values())


def test_dsnu_and_prnu_from_known_offset_and_gain_maps() -> None:
    prnu, dsnu_dn = 0.01, 1.0
    sensor = Sensor(shape=(512, 512), prnu=prnu, dsnu_dn=dsnu_dn, seed=9)
    res = analyze_pairs(sensor.sweep(EXPOSURES), sensor.darks(6), cfa="RGGB")
    for name, r in res.items():
        assert r.dsnu_e == pytest.approx(dsnu_dn / GAIN, rel=0.1), name
        assert r.prnu_pct == pytest.approx(100 * prnu, rel=0.1), name
        assert r.system_gain_dn_per_e == pytest.approx(GAIN, rel=0.015), name


def test_linearity_error_sees_a_compressive_response() -> None:
    def response(mu):  # 3 % compression at 3000 e-
        return mu * (1.0 - 0.03 * mu / 3000.0)

    sensor = Sensor(shape=(128, 128), response=response)
    res = analyze_pairs(sensor.sweep(EXPOSURES), sensor.darks(2), cfa=None)
    assert list(res) == ["Y"]
    assert res["Y"].linearity_error_pct > 0.3


def test_dark_pairs_at_each_exposure_are_subtracted_per_exposure() -> None:
    sensor = Sensor(shape=(256, 256))
    flats = sensor.sweep(EXPOSURES[:8])
    darks = [(t, sensor.frame(0.0) + 5, sensor.frame(0.0) + 5) for t in EXPOSURES[:8]]  # offset 5 DN
    res = analyze_pairs(flats, darks, cfa="RGGB")
    curve = res["R"].curve
    assert curve is not None
    assert np.allclose(curve.dark_mean_dn, BLACK + 5, atol=0.05)
    # Mean above dark is the signal: rate x exposure x gain, 5 DN lower than the black-only estimate.
    expected = GAIN * SITE_RATE[0, 0] * 2.0e6 * EXPOSURES[:8] - 5
    assert np.allclose(curve.mean_dn, expected, rtol=0.01, atol=0.3)


def test_errors_single_exposure_no_darks_mismatched_sizes() -> None:
    sensor = Sensor(shape=(64, 64))
    flat = sensor.sweep([1e-3])[0]
    with pytest.raises(SensorAnalysisError, match="single exposure"):
        analyze_pairs([flat, flat], sensor.darks(2), cfa="RGGB")
    with pytest.raises(SensorAnalysisError, match="no dark"):
        analyze_pairs(sensor.sweep(EXPOSURES[:4]), [], cfa="RGGB")
    with pytest.raises(SensorAnalysisError, match="one dark frame"):
        analyze_pairs(sensor.sweep(EXPOSURES[:4]), sensor.darks(1), cfa="RGGB")
    small = np.zeros((32, 32), np.uint16)
    with pytest.raises(SensorAnalysisError, match="expected"):
        analyze_pairs([*sensor.sweep(EXPOSURES[:3]), (5e-3, small, small)], sensor.darks(2), cfa="RGGB")
    with pytest.raises(SensorAnalysisError, match="dark frame"):
        analyze_pairs(sensor.sweep(EXPOSURES[:4]), [small, small], cfa="RGGB")
    with pytest.raises(SensorAnalysisError, match="CFA"):
        channel_slices("RGBW")
    assert issubclass(SensorAnalysisError, ValueError)


def test_ptc_plot_writes_a_png(tmp_path, synthetic_results) -> None:
    data = plot_ptc(synthetic_results)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


# --------------------------------------------------------------------------------------------------
# The EMVA 1288 descriptor format
# --------------------------------------------------------------------------------------------------
def test_load_descriptor_groups_series_like_the_emva1288_parser(tmp_path) -> None:
    (tmp_path / "img").mkdir()
    text = "\n".join([
        "# comment", "v 3.0", "n 12 4 2",
        "b 1000.0 10.0", "i img\\b1.png", "i img\\b2.png",
        "b 2000,0 20,0", "i img/b3.png", "i img/b4.png",
        "b 1500.0 15.0", "i s1.png", "i s2.png", "i s3.png",
        "d 1000.0", "i d1.png", "i d2.png",
        "d 1500.0", "i sd1.png", "i sd2.png", "i sd3.png", "",
    ])
    path = tmp_path / "desc.txt"
    path.write_text(text)
    desc = load_descriptor(path)
    assert (desc.version, desc.bits, desc.width, desc.height) == ("3.0", 12, 4, 2)
    assert desc.bright["temporal"][1000.0][10.0] == [tmp_path / "img" / "b1.png", tmp_path / "img" / "b2.png"]
    assert desc.bright["temporal"][2000.0][20.0][1] == tmp_path / "img" / "b4.png"
    assert len(desc.bright["spatial"][1500.0][15.0]) == 3
    assert desc.dark["temporal"][1000.0] == [tmp_path / "d1.png", tmp_path / "d2.png"]
    assert len(desc.dark["spatial"][1500.0]) == 3
    bad = tmp_path / "bad.txt"
    bad.write_text("v 3.0\nb 1000.0 10.0\ni only.png\n")
    with pytest.raises(SensorAnalysisError, match=r"bad.txt:2: .*at least two images"):
        load_descriptor(bad)


@pytest.mark.reference
def test_reference_subset_matches_the_emva1288_package() -> None:
    descriptor = reference_dir("emva1288_ccd12bit_basler_subset") / "EMVA1288_Data_subset.txt"
    res = analyze_descriptor(load_descriptor(descriptor), read_image_unchanged)
    assert list(res) == ["Y"]
    y = res["Y"]
    print(f"\nEMVA subset: K {y.system_gain_dn_per_e:.6f} DN/e- (ref 0.28124), sigma_y.dark {y.read_noise_dn:.4f} DN"
          f" (ref 3.071), DSNU {y.dsnu_e:.4f} e-, PRNU {y.prnu_pct:.4f} %")
    assert y.system_gain_dn_per_e == pytest.approx(0.28124, rel=0.01)
    assert y.read_noise_dn == pytest.approx(3.071, rel=0.02)
    # The package's other figures for this subset (SOURCES.md, section C).
    assert y.read_noise_e == pytest.approx(10.8708, rel=0.02)
    assert y.dsnu_e == pytest.approx(0.2395, rel=0.02)
    assert y.prnu_pct == pytest.approx(0.4304, rel=0.02)
    assert y.curve is not None and y.curve.saturation_index == 9
    assert y.clip_level_dn == pytest.approx(4095.0)  # the 12-bit ADC's top code: output stops rising there
