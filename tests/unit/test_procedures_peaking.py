"""station.procedures.peaking on the twin, judged by the twin's true focus state (issue 5, "Must show").

The station calibrates T_peak from a focus sweep it plans itself (coarse sharpness search, then a fine
sweep sized by the blur it measures) without reading the twin's truth. Then the phone's own peaking mask at
T_peak, frame by frame against each frame's TRUE defocus blur circle (capture truth): at least 50 % of the
chart's edge pixels flagged where the blur is within the CoC (2 px), at most 5 % where it exceeds twice
the CoC (beyond twice the depth of field), at most 0.1 % of pixels on flat fields. By default one M lens
at one aperture and the main camera; three more M lens / aperture / gain cases are ``slow``. The
peaking-off build is caught; a focus sweep that never comes into focus fails saying so and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from station.procedures import SweepError
from station.procedures.peaking import PeakingResult, calibrate_peaking
from station.procedures.peaking_verify import verify_peaking
from station.station import Station
from tests.unit.twin_station import twin_station

COC_PX = 2.0
CASES = [
    pytest.param("m", "summicron-m-50-f2", 2.0, 1.0, 1000.0, id="summicron-f2-gain1"),
    pytest.param("main", None, None, 1.0, 500.0, id="main-gain1"),
    pytest.param("m", "noctilux-m-50-f0.95", 0.95, 4.0, 1500.0, marks=pytest.mark.slow, id="noctilux-f0.95-gain4"),
    pytest.param("m", "elmarit-m-28-f2.8", 8.0, 1.0, 1000.0, marks=pytest.mark.slow, id="elmarit-f8-gain1"),
    pytest.param("m", "summilux-m-35-f1.4", 1.4, 2.0, 1000.0, marks=pytest.mark.slow, id="summilux-f1.4-gain2"),
]


@pytest.fixture(scope="module")
def station() -> Iterator[Station]:
    with twin_station(seed=7) as st:
        yield st


@pytest.fixture(scope="module")
def calibrated(station: Station) -> Any:
    """Calibrate a case once per module (golden build); later tests reuse the result."""
    cache: dict[tuple[Any, ...], PeakingResult] = {}

    def get(sensor: str, lens: str | None, aperture: float | None, gain: float, distance_mm: float) -> PeakingResult:
        key = (sensor, lens, aperture, gain, distance_mm)
        if key not in cache:
            station.twin.firmware_set("golden")
            cache[key] = calibrate_peaking(station, sensor, lens=lens, aperture=aperture, gain=gain,
                                           coc_px=COC_PX, distance_mm=distance_mm)
        return cache[key]

    return get


@pytest.mark.parametrize(("sensor", "lens", "aperture", "gain", "distance_mm"), CASES)
def test_peaking_at_calibrated_threshold_against_true_focus(station: Station, calibrated: Any, sensor: str,
                                                          lens: str | None, aperture: float | None, gain: float,
                                                          distance_mm: float) -> None:
    result = calibrated(sensor, lens, aperture, gain, distance_mm)
    assert result.feasible[0] <= result.threshold <= result.feasible[1]
    stored = station.dut.calibration_read()["sensors"][sensor]
    stored = (stored["lenses"][lens] if lens else stored)["peaking"][f"f{aperture:g}" if aperture else "fixed"]
    assert stored[f"{gain:g}"]["threshold"] == result.threshold and result.write_back["read_back_match"]
    assert result.plot_png.startswith(b"\x89PNG") and json.loads(json.dumps(result.to_dict()))

    check = verify_peaking(station, sensor, result)
    truth = {f["offset_dof"]: f["truth_blur_px"] for f in check.frames}
    assert truth[0.0] <= COC_PX, "the station's best focus is not in focus by the twin's truth"
    in_focus = [f for f in check.frames if f["truth_blur_px"] <= COC_PX]
    beyond = [f for f in check.frames if f["truth_blur_px"] > 2 * COC_PX]
    assert len(in_focus) >= 2 and len(beyond) >= 2
    for frame in in_focus:
        assert frame["coverage"] >= 0.50, frame
    for frame in beyond:
        assert frame["coverage"] <= 0.05, frame
    assert max(check.flat_rates) <= 0.001
    assert check.passed and json.loads(json.dumps(check.to_dict()))


def test_peaking_off_build_is_caught(station: Station, calibrated: Any) -> None:
    result = calibrated("m", "summicron-m-50-f2", 2.0, 1.0, 1000.0)
    try:
        for build, caught in (("golden", False), ("peaking-off", True)):
            station.twin.firmware_set(build)
            check = verify_peaking(station, "m", result, offsets_dof=(0.0,), flats=1)
            assert check.passed is not caught, (build, check.frames)
        assert check.frames[0]["coverage"] == 0.0  # the in-focus chart's edges: none flagged
    finally:
        station.twin.firmware_set("golden")


@pytest.mark.parametrize(("distance_mm", "focus_range", "why"), [
    pytest.param(1000.0, (0.0, 40.0), "highest at the high end of the range",  # in focus at ~82 deg: ring held short
                 marks=pytest.mark.slow),  # the same refusal as below, from the other end of the ring (20 s)
    (400.0, None, "stays at its highest .* the chart beyond the lens's reach"),  # closer than its 0.7 m
], ids=["ring-range-restricted", "chart-beyond-reach"])
def test_focus_sweep_that_never_comes_into_focus_fails(station: Station, calibrated: Any, distance_mm: float,
                                                       focus_range: tuple[float, float] | None, why: str) -> None:
    exposure = calibrated("m", "summicron-m-50-f2", 2.0, 1.0, 1000.0).exposure_us
    before = station.dut.calibration_read()
    with pytest.raises(SweepError, match=f"never comes into focus.*{why}"):
        calibrate_peaking(station, "m", lens="summicron-m-50-f2", aperture=2.0, gain=1.0, distance_mm=distance_mm,
                          focus_range=focus_range, exposure_us=exposure)
    assert station.dut.calibration_read() == before
    assert station.light.output() is False


def test_flats_taken_while_the_flat_is_up_leave_the_star_phase_without_a_flat(station: Station,
                                                                                calibrated: Any) -> None:
    """Issue 9 item 3: peaking's flat fields come from the flat phase (``preview_flats``), so the calibration on
    the star asks for no flat; verification's flat half (``verify_peaking_flats``) runs when the flat is up."""
    from station.procedures.peaking import preview_flats
    from station.procedures.peaking_verify import verify_peaking_flats

    reference = calibrated("main", None, None, 1.0, 500.0)
    scene = station.operator
    flats = preview_flats(station, "main", gain=1.0, count=1)
    assert scene.chart_up == "flat" and len(flats) == 1 and flats[0].ndim == 2
    asked = scene.requests
    near = (max(reference.best_focus - 1.5, 0.05), reference.best_focus + 1.5)  # diopters, as the plan searches
    result = calibrate_peaking(station, "main", gain=1.0, coc_px=COC_PX, distance_mm=500.0, flat_lumas=flats,
                               exposure_us=reference.exposure_us, focus_range=near, coarse_steps=5, write=False)
    assert scene.requests == asked + 1 and scene.chart_up == "siemens"  # the star only: no flat after it
    assert result.feasible[0] <= result.threshold <= result.feasible[1]
    check = verify_peaking(station, "main", result, flats=0)
    assert scene.chart_up == "siemens" and check.flat_rates == [] and check.passed
    done = verify_peaking_flats(station, check, result, flats=2)
    assert scene.chart_up == "flat" and len(done.flat_rates) == 2
    assert max(done.flat_rates) <= 0.001 and done.passed and done.frames == check.frames
