"""EMVA 1288 photon transfer (``calibration.emva1288.analyze_pairs``) on the twin's flats, against its sensor truth.

The bare M sensor (the light box through the sapphire cover glass: an even field, 7.5 % cos^4 falloff to
the corners), CI mode, flat pairs at 12 exposures from 5 % of G saturation to past saturation of R and B
in the corners, dark pairs (light off) at the shortest and longest exposure; analog gain 1 (the full well,
12000 e-, clips at 964 DN, below the ADC's top code) and gain 2 (the ADC clips first, at 1023 DN).

Truth (``station.twin.sensor``, EMVA 1288's linear model): ``K = conversion_gain_dn_per_e``; read noise
``read_noise_dn`` = hypot(K x 3 e-, 0.5 DN ADC noise) before the ADC, so the dark noise EMVA measures at
the output is ``sqrt(read_noise_dn^2 + 1/12)`` (uniform quantisation, which ``read_noise_e`` removes
again); ``clip_level_dn`` = min(black + K x full well, white level); DSNU 2 e- and PRNU 0.5 % (white fixed
patterns of the serial). The flats also carry the bare sensor's cos^4 falloff (a smooth 7.5 % to the corners),
which EMVA 1288's total spatial variance counts as nonuniformity (``prnu_pct`` reads 1.87 %): the truth's PRNU
is what remains after the standard's highpass for uneven illumination (4.0, 8.1), ``prnu_highpass_pct``.
"""

from __future__ import annotations

import math

import pytest

from calibration.emva1288 import analyze_pairs
from tests.unit.twin_scenes import photon_transfer_frames

CHANNELS = ("R", "Gr", "Gb", "B")


@pytest.fixture(scope="module", params=[1.0, 2.0], ids=["gain1", "gain2"])
def measured(request) -> tuple[dict, dict]:
    flats, darks, truth = photon_transfer_frames(request.param)
    result = analyze_pairs(list(flats), list(darks), cfa="RGGB")
    lines = [f"\ntwin EMVA 1288, bare M sensor, CI, gain {request.param:g}: truth K "
             f"{truth['conversion_gain_dn_per_e']:.5f} DN/e-, read noise {truth['read_noise_e']:.3f} e-, "
             f"clip {truth['clip_level_dn']:.1f} DN"]
    for name, r in result.items():
        lines.append(f"  {name}: K {r.system_gain_dn_per_e:.5f}, read noise {r.read_noise_e:.3f} e- "
                     f"({r.read_noise_dn:.4f} DN), clip {r.clip_level_dn:.3f} DN, DSNU {r.dsnu_e:.3f} e- "
                     f"(highpass {r.dsnu_highpass_e:.3f}), PRNU {r.prnu_pct:.2f} % (highpass "
                     f"{r.prnu_highpass_pct:.3f} %)")
    print("\n".join(lines))
    return result, truth


def test_all_channels_reported(measured):
    result, _ = measured
    assert tuple(result) == CHANNELS


#: EMVA 1288's figure (a result attribute) -> its truth from the twin's sensor, and the relative tolerance.
WITHIN = {
    "system_gain_dn_per_e": (lambda t: t["conversion_gain_dn_per_e"], 0.01),
    "read_noise_e": (lambda t: t["read_noise_e"], 0.03),
    # in DN at the output, EMVA's sigma_y.dark carries the ADC's quantisation noise (1/12 DN^2)
    "read_noise_dn": (lambda t: math.sqrt(t["read_noise_dn"] ** 2 + 1.0 / 12.0), 0.03),
    "dsnu_e": (lambda t: t["dsnu_e"], 0.05),
    "dsnu_highpass_e": (lambda t: t["dsnu_e"], 0.03),
    # the white PRNU pattern after EMVA's highpass (which keeps 99 % of a white pattern's variance)
    "prnu_highpass_pct": (lambda t: t["prnu_pct"], 0.03),
}


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("figure", WITHIN)
def test_figure_within_its_tolerance_of_the_truth(measured, figure, channel):
    result, truth = measured
    expected, rel = WITHIN[figure]
    assert getattr(result[channel], figure) == pytest.approx(expected(truth), rel=rel)


@pytest.mark.parametrize("channel", CHANNELS)
def test_clip_level_within_1_dn(measured, channel):
    result, truth = measured
    clip = result[channel].clip_level_dn
    assert clip is not None
    assert abs(clip - truth["clip_level_dn"]) <= 1.0


def test_gain_1_clips_at_the_full_well_and_gain_2_at_the_adc(measured):
    """The two ways a channel clips (DESIGN 7, raw clip level): the well below the top code, or the ADC."""
    result, truth = measured
    full_well_dn = truth["black_level"] + truth["conversion_gain_dn_per_e"] * truth["full_well_e"]
    expected = min(full_well_dn, truth["white_level"])
    for r in result.values():
        assert r.clip_level_dn == pytest.approx(expected, abs=1.0)
    if truth["analog_gain"] == 1.0:
        assert expected < truth["white_level"] - 50


@pytest.mark.parametrize("channel", CHANNELS)
def test_total_prnu_also_holds_the_falloff(measured, channel):
    """The total-variance PRNU also holds the cos^4 falloff, over three times the truth."""
    result, truth = measured
    assert result[channel].prnu_pct > 3.0 * truth["prnu_pct"]
