"""AF calibration of the main camera on the twin: through-focus sweeps of the voice-coil code find the unit's
own actuator (``station.twin.lenses.actuator_truth``, held out) within the depth of focus; the maths
against the thin lens."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.af import AfCalibration, calibrate_af, extension_um, hyperfocal_check, peak_code, sharpness
from station.twin.lenses import ACTUATOR_INFINITY_CODE, ACTUATOR_UM_PER_CODE, MAIN_LENS, actuator_truth
from station.twin.render import render_raw
from station.twin.world import World

FOCAL_MM, F_NUMBER = MAIN_LENS.nominal_focal_mm, MAIN_LENS.widest_f_number
COC_MM = 2 * 6.4e-3  # 2 pixels of the CI readout (DESIGN 7: in focus)
FAR_MM, NEAR_MM = 3000.0, 150.0  # the rail's ends


def sweep(world: World, distance_mm: float, codes: np.ndarray) -> list[float]:
    world.axes[world.axis_map["distance"]] = distance_mm
    scores = []
    for i, code in enumerate(codes):
        raw, _ = render_raw(world, "main", {"exposure_us": 1500, "analog_gain": 1.0, "focus_code": int(code)}, i)
        scores.append(sharpness(raw, 64))
    return scores


def sweep_codes(distance_mm: float, half_width: int = 72, step: int = 24) -> np.ndarray:
    """Codes around where a nominal module would focus ``distance_mm`` (the unit's own offset is unknown)."""
    centre = ACTUATOR_INFINITY_CODE + extension_um(FOCAL_MM, distance_mm) / ACTUATOR_UM_PER_CODE
    return np.arange(round(centre) - half_width, round(centre) + half_width + 1, step)


def world_for(seed: int) -> World:
    world = World(seed=seed, resolution="ci", time_scale=0.0)
    world.chart = "sfr"
    world.set_light(output=True, level_pct=60.0)
    return world


def test_the_maths_is_the_thin_lens():
    assert extension_um(8.7, 150.0) == pytest.approx(8.7**2 / 141.3 * 1000)
    truth = AfCalibration(120.0, 0.97, 8.7, 1.8, COC_MM, ())
    measured = [(d, truth.code_for(d)) for d in (3000.0, 150.0)]
    fit = calibrate_af(measured, 8.7, 1.8, COC_MM, 1.0)
    assert fit.infinity_code == pytest.approx(120.0) and fit.um_per_code == pytest.approx(0.97)
    assert fit.hyperfocal_mm == pytest.approx(8.7**2 / (1.8 * COC_MM) + 8.7)
    assert fit.depth_of_focus_um == pytest.approx(1.8 * COC_MM * 1000)
    codes = np.array([10.0, 20.0, 30.0, 40.0])
    assert peak_code(codes, np.exp(-((codes - 23.0) ** 2) / 50.0)) == pytest.approx(23.0)
    with pytest.raises(ValueError, match="sweep's end"):
        peak_code(codes, [4.0, 3.0, 2.0, 1.0])
    assert hyperfocal_check(0.8, 1.0)["pass"] and not hyperfocal_check(0.2, 1.0)["pass"]


@pytest.mark.parametrize("seed", [6, pytest.param(1, marks=pytest.mark.slow)])
def test_infinity_code_within_the_depth_of_focus(seed):
    world = world_for(seed)
    truth = actuator_truth(world.phone_serial())
    codes = sweep_codes(FAR_MM, 64, 32)  # five frames: 32 codes is ~2 depths of focus apart
    best = peak_code(codes, sweep(world, FAR_MM, codes))
    fit = calibrate_af([(FAR_MM, best)], FOCAL_MM, F_NUMBER, COC_MM, ACTUATOR_UM_PER_CODE)
    error_um = abs(fit.infinity_code - truth["infinity_code"]) * truth["um_per_code"]
    print(f"\nseed {seed}: infinity code {fit.infinity_code:.1f} (truth {truth['infinity_code']:.1f}), "
          f"error {error_um:.1f} um, depth of focus +-{fit.depth_of_focus_um:.1f} um")
    assert error_um <= fit.depth_of_focus_um
    assert abs(truth["infinity_code"] - ACTUATOR_INFINITY_CODE) * truth["um_per_code"] > 0  # a unit, not nominal


@pytest.mark.slow
def test_macro_and_hyperfocal_from_two_sweeps():
    world = world_for(1)
    truth = actuator_truth(world.phone_serial())
    measured, far_scores = [], None
    for distance in (FAR_MM, NEAR_MM):
        codes = sweep_codes(distance, 96, 16)
        scores = sweep(world, distance, codes)
        measured.append((distance, peak_code(codes, scores)))
        far_scores = far_scores or scores
    fit = calibrate_af(measured, FOCAL_MM, F_NUMBER, COC_MM, ACTUATOR_UM_PER_CODE)
    true_macro = truth["infinity_code"] + extension_um(MAIN_LENS.focal_length_mm, NEAR_MM) / truth["um_per_code"]
    doc = fit.to_dict(NEAR_MM)
    macro_err = abs(doc["macro_code"] - true_macro) * truth["um_per_code"]
    inf_err = abs(doc["infinity_code"] - truth["infinity_code"]) * truth["um_per_code"]
    print(f"\ninfinity {doc['infinity_code']} (truth {truth['infinity_code']:.1f}, {inf_err:.1f} um), macro "
          f"{doc['macro_code']} (truth {true_macro:.1f}, {macro_err:.1f} um), "
          f"depth of focus +-{fit.depth_of_focus_um:.1f} um")
    assert macro_err <= fit.depth_of_focus_um and inf_err <= fit.depth_of_focus_um
    world.axes[world.axis_map["distance"]] = FAR_MM
    raw, _ = render_raw(world, "main", {"exposure_us": 1500, "analog_gain": 1.0,
                                        "focus_code": int(round(doc["hyperfocal_code"]))}, 99)
    check = hyperfocal_check(sharpness(raw, 64), max(far_scores))
    print(f"hyperfocal {doc['hyperfocal_mm']} mm at code {doc['hyperfocal_code']}: "
          f"sharpness ratio {check['ratio']:.2f}")
    assert check["pass"]
