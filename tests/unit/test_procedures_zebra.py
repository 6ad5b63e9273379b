"""station.procedures.zebra on the twin, judged by the twin's truth (issue 5, "Must show").

For each catalog M lens at two apertures (widest, f/5.6) and two gains (1: the full well clips at 964 DN;
2: the ADC at 1023 DN): the calibrated T_raw within 1 DN of the twin's true clip level minus 2 % of
(clip - black); the phone's zebra at the calibrated thresholds (raw and luma mode) then misses at most
0.5 % of the pixels whose quad truly clips and flags at most 0.5 % of those below 95 % of the true clip.
Four combinations (two lenses x two gains, both apertures) run by default, the other twelve are ``slow``.
The zebra-shift build is caught; a sweep that never clips fails saying so and writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from station.procedures import SweepError, calibration_path, write_back
from station.procedures.zebra import ZebraResult, calibrate_zebra, verify_zebra
from station.station import Station
from station.twin.lenses import M_LENSES
from tests.unit.twin_station import station_fixture

MARGIN = 0.02
LIMIT = 0.005
DEFAULT = {("summicron-m-50-f2", 2.0, 1.0), ("summicron-m-50-f2", 5.6, 2.0),
           ("noctilux-m-50-f0.95", 0.95, 2.0), ("noctilux-m-50-f0.95", 5.6, 1.0)}
COMBOS = [(lens, aperture, gain) for lens in sorted(M_LENSES)
          for aperture in (M_LENSES[lens].widest_f_number, 5.6) for gain in (1.0, 2.0)]


def _param(combo: tuple[str, float, float]) -> Any:
    marks = () if combo in DEFAULT else (pytest.mark.slow,)
    return pytest.param(*combo, marks=marks, id=f"{combo[0]}-f{combo[1]:g}-gain{combo[2]:g}")


station = station_fixture(seed=5, distance_mm=1000.0)


@pytest.fixture(scope="module")
def calibrated(station: Station) -> Any:
    """Calibrate a combination once per module (golden build); later tests reuse the result."""
    cache: dict[tuple[str, float, float], ZebraResult] = {}

    def get(lens: str, aperture: float, gain: float) -> ZebraResult:
        key = (lens, aperture, gain)
        if key not in cache:
            station.twin.firmware_set("golden")
            cache[key] = calibrate_zebra(station, "m", gain=gain, lens=lens, aperture=aperture, margin=MARGIN)
        return cache[key]

    return get


def _truth(result: ZebraResult) -> tuple[float, float]:
    """The twin's true clip level and black level at the result's gain (from its capture truth)."""
    clips = {s["truth_clip_level_dn"] for s in result.sweep}
    blacks = {s["truth_black_level_dn"] for s in result.sweep}
    assert len(clips) == 1 and len(blacks) == 1
    return float(clips.pop()), float(blacks.pop())


@pytest.mark.parametrize(("lens", "aperture", "gain"), [_param(c) for c in COMBOS])
def test_zebra_calibration_and_phone_masks_against_twin_truth(station: Station, calibrated: Any, lens: str,
                                                             aperture: float, gain: float) -> None:
    result = calibrated(lens, aperture, gain)
    clip, black = _truth(result)
    expected = clip - MARGIN * (clip - black)
    assert abs(result.raw_threshold_dn - expected) <= 1.0, (result.raw_threshold_dn, expected)
    assert 200 <= result.luma_threshold <= 255
    # written into the phone and read back
    stored = station.dut.calibration_read()["sensors"]["m"]["lenses"][lens]["zebra"][f"{gain:g}"]
    assert stored["raw_threshold_dn"] == result.raw_threshold_dn
    assert stored["luma_threshold"] == result.luma_threshold
    assert result.write_back["read_back_match"]
    assert result.plot_png.startswith(b"\x89PNG") and json.loads(json.dumps(result.to_dict()))
    size = 2048 * 1536
    exposure = None  # the first check picks the scene's exposure, the second reuses it
    for mode in ("raw", "luma"):
        check = verify_zebra(station, "m", result, mode, clip_level_dn=clip, exposure_us=exposure)
        exposure = check.exposure_us
        counts = check.counts
        assert counts["clipped_pixels"] > 0.05 * size and counts["below_pixels"] > 0.05 * size, counts
        assert check.missed_fraction <= LIMIT, (mode, check.missed_fraction)
        assert check.false_flag_fraction <= LIMIT, (mode, check.false_flag_fraction)
        assert check.passed and json.loads(json.dumps(check.to_dict()))


def test_zebra_shift_build_is_caught(station: Station, calibrated: Any) -> None:
    result = calibrated("summicron-m-50-f2", 2.0, 1.0)
    clip, _ = _truth(result)
    golden = verify_zebra(station, "m", result, "raw", clip_level_dn=clip)
    assert golden.passed
    try:
        station.twin.firmware_set("zebra-shift")
        for mode in ("raw", "luma"):
            check = verify_zebra(station, "m", result, mode, clip_level_dn=clip, exposure_us=golden.exposure_us)
            # the shifted threshold sits above the clip level: the clipped pixels go unflagged
            assert not check.passed and check.missed_fraction > 0.5, (mode, check.missed_fraction)
    finally:
        station.twin.firmware_set("golden")


@pytest.mark.parametrize(("exposure_us", "max_level_pct"), [(40, 100.0), (2000, 25.0)],
                         ids=["short-exposure", "light-capped-low"])
def test_sweep_that_never_clips_fails_and_writes_no_threshold(station: Station, exposure_us: int,
                                                              max_level_pct: float) -> None:
    before = station.dut.calibration_read()
    with pytest.raises(SweepError, match="never reaches clipping"):
        calibrate_zebra(station, "m", gain=1.0, lens="elmarit-m-28-f2.8", aperture=2.8, exposure_us=exposure_us,
                        max_level_pct=max_level_pct)
    assert station.dut.calibration_read() == before
    assert station.light.output() is False


def test_write_back_keeps_the_rest_of_the_blob(station: Station) -> None:
    before = station.dut.calibration_read()
    station.dut.calibration_write({**before, "station_note": {"kept": True},
                                   "sensors": {**before.get("sensors", {}), "main": {"wb_gains": [1.7, 1.0, 1.6]}}})
    try:
        path = calibration_path("main", None, "zebra", "4")
        receipt = write_back(station, path, {"raw_threshold_dn": 1004, "luma_threshold": 253})
        after = station.dut.calibration_read()
        assert receipt["path"] == "sensors.main.zebra.4" and receipt["read_back_match"]
        assert after["station_note"] == {"kept": True}
        assert after["sensors"]["main"]["wb_gains"] == [1.7, 1.0, 1.6]
        assert after["sensors"]["main"]["zebra"]["4"] == {"raw_threshold_dn": 1004, "luma_threshold": 253}
    finally:
        station.dut.calibration_write(before)
