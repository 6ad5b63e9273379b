"""The twin's line: station errors and unit variation are seeded truth, and the render obeys them."""

from __future__ import annotations

import numpy as np
import pytest

from station.twin import line
from station.twin.faults import all_faults, parse_fault_args
from station.twin.lenses import MAIN_LENS
from station.twin.render import render_mean_electrons
from station.twin.world import World

SETTINGS = {"exposure_us": 2000.0, "analog_gain": 1.0}


def _world(**faults: object) -> World:
    world = World(seed=1001, faults=dict(faults), time_scale=0.0)
    world.set_light(output=True, level_pct=50.0)
    return world


def test_truth_is_seeded_and_spread() -> None:
    assert line.station_errors(2) == line.station_errors(2)
    assert line.station_errors(1) != line.station_errors(2)
    errors = np.array([[e for e in line.station_errors(n).values()] for n in range(1, 401)])
    assert errors.std(axis=0) == pytest.approx(list(line.STATION_SIGMA.values()), rel=0.15)
    units = [line.unit_variation(seed) for seed in range(2000)]
    assert np.mean([u["defective"] for u in units]) == pytest.approx(line.UNIT_DEFECT_RATE, abs=0.02)
    assert {"line_station", "line_unit", "line_repeat"} <= set(all_faults())
    assert parse_fault_args(["line_station=3"]) == {"line_station": 3}


def test_light_field_is_what_the_render_applies() -> None:
    plain, _ = render_mean_electrons(_world(), "main", SETTINGS)
    station, _ = render_mean_electrons(_world(line_station=4), "main", SETTINGS)
    ratio = station / plain
    c = line.station_errors(4)["light_corner_pct"] / 100.0
    h, w = ratio.shape
    assert ratio[h // 2, w // 2] == pytest.approx(1.0, abs=2e-4)
    assert ratio[0, 0] == pytest.approx(1.0 + c, rel=1e-4)
    assert ratio[h // 2, 0] == pytest.approx(1.0 + c * ((w - 1) / 2) ** 2 / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2),
                                             rel=1e-4)


def test_unit_lens_and_station_pose_reach_the_truth() -> None:
    _, truth = render_mean_electrons(_world(line_unit=True, line_station=2), "main", SETTINGS)
    unit = line.unit_variation(1001)
    errors = line.station_errors(2)
    assert truth["vignetting"]["a2"] == pytest.approx(MAIN_LENS.vignetting[1.8][0] + unit["falloff_a2_delta"])
    pose = truth["pose"]
    assert pose["distance_mm"] == pytest.approx(1000.0 + errors["rail_offset_mm"] + errors["chart_distance_mm"])
    assert pose["tilt_deg"] == pytest.approx(errors["chart_tilt_deg"])
    _, plain = render_mean_electrons(_world(), "main", SETTINGS)
    assert plain["vignetting"]["a2"] == MAIN_LENS.vignetting[1.8][0]  # off unless the line asks


def test_repeats_change_the_noise_only() -> None:
    assert line.noise_seed(_world()) == 1001
    assert line.noise_seed(_world(line_repeat=1)) != line.noise_seed(_world(line_repeat=2))
