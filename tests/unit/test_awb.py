"""AWB against golden on the twin: a unit's R/G and B/G on a flat grey at two light CCTs, divided by the
golden module's (data: station/data/limits/m-phone.golden.toml), recover the unit's true channel sensitivities
(``station.twin.sensor.channel_gains``, held out) within 0.5 %; the golden file's values are the twin's
nominal sensor response (independent maths: colour-science's Planck spectrum through the QE curves)."""

from __future__ import annotations

import pytest

from calibration.awb import android_transforms, awb_against_golden
from station.errors import ConfigError
from station.golden import load_golden_awb
from station.twin.render import render_raw
from station.twin.sensor import channel_gains, electrons_per_lux_s_m2
from station.twin.world import World

EXPOSURE_US = {"main": 1500, "m": 2200}


def capture(sensor: str, cct_k: float, seed: int, unit: bool = True) -> tuple:
    world = World(seed=seed, resolution="ci", time_scale=0.0, faults={"unit_variation": unit})
    world.chart = "flat"
    world.set_light(output=True, level_pct=40.0, cct_k=cct_k)
    raw, truth = render_raw(world, sensor, {"exposure_us": EXPOSURE_US[sensor], "analog_gain": 1.0}, 1)
    return raw, world.sensor_serial_for(sensor), truth


def test_the_golden_values_are_the_nominal_sensor_response():
    golden = load_golden_awb()
    for sensor in ("main", "m"):
        for entry in golden[sensor].values():
            eta = electrons_per_lux_s_m2(entry["cct_k"])
            assert entry["r_g"] == pytest.approx(eta["r"] / eta["g"], rel=1e-4)
            assert entry["b_g"] == pytest.approx(eta["b"] / eta["g"], rel=1e-4)


@pytest.mark.parametrize("sensor, seed", [("main", 3), ("m", 4), ("main", 9)])
def test_ratios_to_golden_recover_the_units_channel_gains_within_half_a_percent(sensor, seed):
    golden = load_golden_awb()[sensor]
    results = []
    for illuminant in ("illuminant1", "illuminant2"):
        raw, serial, truth = capture(sensor, golden[illuminant]["cct_k"], seed)
        assert 150 < truth["expected_mean_dn"] < 900  # mid-scale, unclipped
        results.append(awb_against_golden(raw, 64, "RGGB", golden[illuminant]["cct_k"], golden[illuminant]))
    gains = channel_gains(serial)
    true_r, true_b = gains["r"] / gains["g"], gains["b"] / gains["g"]
    for result in results:
        err_r, err_b = result.r_ratio / true_r - 1.0, result.b_ratio / true_b - 1.0
        print(f"\n{sensor} seed {seed} {result.cct_k:.0f} K: R ratio {result.r_ratio:.5f} (truth {true_r:.5f}, "
              f"{100 * err_r:+.3f} %), B ratio {result.b_ratio:.5f} (truth {true_b:.5f}, {100 * err_b:+.3f} %)")
        assert abs(err_r) < 0.005 and abs(err_b) < 0.005
    assert abs(true_r - 1.0) > 0.005 or abs(true_b - 1.0) > 0.005  # the unit does differ from golden
    android = android_transforms(results, ["STANDARD_A", "D65"])
    t1 = android["SENSOR_CALIBRATION_TRANSFORM1"]
    assert t1[0] == pytest.approx(true_r, rel=0.005) and t1[4] == 1.0 and t1[8] == pytest.approx(true_b, rel=0.005)
    assert t1[1] == t1[2] == t1[3] == t1[5] == t1[6] == t1[7] == 0.0
    assert android["SENSOR_REFERENCE_ILLUMINANT2"] == "D65"


def test_a_bad_golden_file_is_one_line_naming_the_key(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('[meta]\nproduct = "m-phone"\nversion = "1"\n[awb.main.illuminant1]\ncct_k = 2850\n'
                    'android_illuminant = "STANDARD_A"\nr_g = -1\nb_g = 0.3\n')
    with pytest.raises(ConfigError, match=r"g\.toml: 2 problems: awb\.main\.illuminant1\.r_g: -1: Input should be "
                                          r"greater than 0; awb\.main\.illuminant2: missing"):
        load_golden_awb(path)
    with pytest.raises(ConfigError, match="no such golden-values file"):
        load_golden_awb(tmp_path / "missing.toml")


def test_without_the_units_gains_the_twin_is_the_golden_module():
    golden = load_golden_awb()["main"]["illuminant2"]
    raw, _, _ = capture("main", golden["cct_k"], 3, unit=False)
    result = awb_against_golden(raw, 64, "RGGB", golden["cct_k"], golden)
    assert result.r_ratio == pytest.approx(1.0, abs=0.001) and result.b_ratio == pytest.approx(1.0, abs=0.001)
