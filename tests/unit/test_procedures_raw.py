"""station.procedures.raw_checks on the twin: histogram and 10-bit RAW integrity, each RAW or histogram
regression build caught by a named test, the golden build passing them all (issue 5, "Must show").

Truth: the twin's sensor (black level 64 DN, RGGB, the clip level at the gain) from ``station.twin.sensor``,
never from what the phone declares; the builds' regressions from ``station.twin.firmware``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from station.procedures.captures import auto_exposure_us, lit
from station.procedures.raw_checks import check_histogram, check_raw_integrity
from station.scene import require_chart
from station.station import Station
from station.twin import firmware as fw
from station.twin.sensor import BLACK_LEVEL_DN, CFA, WHITE_LEVEL_DN, sensor_params, sensor_spec
from tests.unit.twin_station import station_fixture

TRUE_CLIP_DN = sensor_params(sensor_spec("ci"), 1.0)["clip_level_dn"]


station = station_fixture(seed=9, distance_mm=1000.0)


@pytest.fixture(scope="module")
def exposure_us(station: Station) -> int:
    """The main camera's exposure for the step chart at 50 % light (its white at 70 %)."""
    require_chart(station, "steps")
    with lit(station, 50.0):
        exposure, _ = auto_exposure_us(station, "main", target_fraction=0.7, statistic="p99", tolerance=0.15)
    return exposure


@pytest.fixture
def build(station: Station, request: pytest.FixtureRequest) -> Iterator[str]:
    """The phone runs the build named by the test's parameter; golden again after it."""
    station.twin.firmware_set(request.param)
    try:
        yield request.param
    finally:
        station.twin.firmware_set("golden")


def _histogram(station: Station, source: str, exposure: int) -> Any:
    return check_histogram(station, "main", source, chart="steps", exposure_us=exposure)


@pytest.mark.parametrize("source", ["preview", "raw"])
def test_golden_histograms_equal_the_reference_of_the_same_frame(station: Station, exposure_us: int,
                                                                 source: str) -> None:
    check = _histogram(station, source, exposure_us)
    assert check.bins == (256 if source == "preview" else 1024)
    assert check.l1 == 0 and check.shift_bins == 0 and check.passed
    assert check.plot_png.startswith(b"\x89PNG") and json.loads(json.dumps(check.to_dict()))


@pytest.mark.parametrize("build", ["histogram-bin"], indirect=True)
def test_histogram_bin_build_is_caught(station: Station, exposure_us: int, build: str) -> None:
    for source in ("preview", "raw"):
        check = _histogram(station, source, exposure_us)
        assert not check.passed
        assert check.shift_bins == fw.HISTOGRAM_BIN_SHIFT and check.l1 > 0


def _assert_only(result: Any, failing: set[str]) -> None:
    states = {"codes": result.codes["pass"], "black": result.black["pass"], "cfa": result.cfa["pass"],
              "raw10_dng": result.raw10_dng["pass"]}
    assert {name for name, ok in states.items() if not ok} == failing, states
    assert result.passed is (not failing)


@pytest.mark.parametrize("build", ["golden"], indirect=True)
def test_golden_build_passes_raw_integrity_against_the_sensor_truth(station: Station, build: str) -> None:
    result = check_raw_integrity(station, "main")
    _assert_only(result, set())
    assert result.codes["missing_count"] == 0 and result.codes["checked"][0] == BLACK_LEVEL_DN
    assert abs(result.codes["clip_level_dn"] - TRUE_CLIP_DN) <= 2.0  # the pile the clipped pixels sit on
    assert all(abs(v - BLACK_LEVEL_DN) <= 0.5 for v in result.black["measured_dn"].values())
    assert result.cfa["measured"] == CFA == result.declared["cfa"]
    assert result.raw10_dng["equal"] and result.raw10_dng["differing_pixels"] == 0
    assert result.plot_png.startswith(b"\x89PNG") and json.loads(json.dumps(result.to_dict()))
    assert station.light.output() is False


@pytest.mark.parametrize("build", ["raw8-truncation"], indirect=True)
def test_raw8_truncation_build_is_caught(station: Station, build: str) -> None:
    result = check_raw_integrity(station, "main")
    _assert_only(result, {"codes"})
    assert result.codes["constant_lsbs"] == fw.TRUNCATED_BITS
    assert "8-bit truncation" in result.codes["pattern"]


@pytest.mark.parametrize("build", ["bl-offset"], indirect=True)
def test_bl_offset_build_is_caught(station: Station, build: str) -> None:
    result = check_raw_integrity(station, "main")
    assert not result.black["pass"] and not result.passed
    assert abs(result.black["max_offset_dn"] - fw.BLACK_OFFSET_DN) <= 0.5
    assert result.declared["black_level"] == BLACK_LEVEL_DN  # the phone still declares the true level
    assert result.codes["bottom_gap_dn"] > 0  # codes just above the declared black never occur
    assert result.cfa["pass"] and result.raw10_dng["pass"]


@pytest.mark.parametrize("build", ["cfa-swap"], indirect=True)
def test_cfa_swap_build_is_caught(station: Station, build: str) -> None:
    result = check_raw_integrity(station, "main")
    _assert_only(result, {"cfa"})
    assert result.cfa["measured"] == CFA and result.cfa["declared"] == fw.swap_rb(CFA)


@pytest.mark.slow
def test_raw_integrity_through_an_m_lens(station: Station) -> None:
    station.twin.lens_mount("summicron-m-50-f2", 4.0)
    station.mount.move_to(distance=2000.0)  # the whole ColorChecker (fiducials included) in view
    try:
        result = check_raw_integrity(station, "m")
    finally:
        station.mount.move_to(distance=1000.0)
    _assert_only(result, set())


def _arrays_in(value: Any) -> list[str]:
    """Every array (pixels) held anywhere in ``value``'s fields, dicts and lists, by path."""
    import dataclasses

    import numpy as np

    if isinstance(value, np.ndarray):
        return [f"{value.dtype}{value.shape}"]
    if dataclasses.is_dataclass(value):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return [f"{k}.{p}" for k, v in value.items() for p in _arrays_in(v)]
    if isinstance(value, list | tuple):
        return [f"[{i}].{p}" for i, v in enumerate(value) for p in _arrays_in(v)]
    return [] if value is None or isinstance(value, str | int | float | bool) else [type(value).__name__]


def test_the_kept_colour_half_holds_no_pixels_and_completes_raw_integrity(station: Station) -> None:
    """Issue 13: a plan keeps ``capture_raw_colour``'s result until the step chart is up; it holds what
    ``check_raw_integrity`` needs (the declared levels and CFA, the exposure, the checks), never the shot."""
    from station.procedures.raw_checks import capture_raw_colour

    colour = capture_raw_colour(station, "main")
    assert _arrays_in(colour) == []
    assert colour.declared == {"cfa": CFA, "black_level": BLACK_LEVEL_DN, "white_level": WHITE_LEVEL_DN}
    result = check_raw_integrity(station, "main", colour=colour)
    _assert_only(result, set())
    assert result.declared == colour.declared and result.cfa is colour.cfa and result.raw10_dng is colour.raw10_dng
    assert result.codes["missing_count"] == 0 and abs(result.codes["clip_level_dn"] - TRUE_CLIP_DN) <= 2.0
    assert all(abs(v - BLACK_LEVEL_DN) <= 0.5 for v in result.black["measured_dn"].values())
