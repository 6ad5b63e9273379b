"""Limits files: the product's TOML, per-case overrides, regression tolerances, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from station.errors import ConfigError
from station.limits import default_limits_path, load_limits
from station.measurements import Tolerance

REPO = Path(__file__).resolve().parents[2]
GOOD = """
[meta]
product = "m-phone"
version = "2.1"

[measurements.mtf50_cpp]
unit = "c/px"
low = 0.20
high = 0.5
marginal_pct = 10

[measurements.mtf50_cpp.case."m"]
low = 0.15

[measurements.mtf50_cpp.case."m/noctilux-m-50-f0.95"]
low = 0.10

[regression.mtf50_cpp]
tolerance_pct = 5
direction = "decrease"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "limits.toml"
    path.write_text(text)
    return path


def test_the_product_file_is_the_shipped_one_and_its_tolerances_have_limits() -> None:
    """(Every measurement a step declares is in it, and the other way round: ``test_declared_measurements``.)"""
    limits = load_limits()
    assert Path(limits.path) == default_limits_path() and limits.product == "m-phone" and limits.version
    for name, tol in limits.regression.items():
        assert name in limits.measurements and isinstance(tol, Tolerance)


def test_case_overrides_take_the_longest_matching_prefix(tmp_path: Path) -> None:
    limits = load_limits(_write(tmp_path, GOOD))
    assert (limits.product, limits.version) == ("m-phone", "2.1")
    assert limits.limits_for("mtf50_cpp").low == 0.20
    assert limits.limits_for("mtf50_cpp", "main").low == 0.20
    assert limits.limits_for("mtf50_cpp", "m").low == 0.15
    assert limits.limits_for("mtf50_cpp", "m/summicron-m-50-f2/center").low == 0.15
    noct = limits.limits_for("mtf50_cpp", "m/noctilux-m-50-f0.95/corner")
    assert (noct.low, noct.high, noct.marginal_pct, noct.unit) == (0.10, 0.5, 10.0, "c/px")  # rest inherited
    assert limits.tolerance_for("mtf50_cpp") == Tolerance(tolerance_pct=5.0, direction="decrease")
    assert limits.tolerance_for("nothing") is None


def test_a_measurement_missing_from_the_file_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: measurements.sfr_x: missing"):
        load_limits(path).limits_for("sfr_x")


# Each case: a text in GOOD, what replaces it, and the key path the one-line error names.
@pytest.mark.parametrize("old, new, key", [
    ('[meta]\nproduct = "m-phone"\n', "[meta]\n", "meta.product"),
    ('version = "2.1"', "version = true", "meta.version"),
    ('unit = "c/px"', 'unit = ""', "measurements.mtf50_cpp.unit"),
    ('unit = "c/px"\n', "", "measurements.mtf50_cpp.unit"),
    ("high = 0.5", "high = 0.1", "measurements.mtf50_cpp"),
    ("high = 0.5", 'high = "0.5"', "measurements.mtf50_cpp.high"),
    ("high = 0.5", "hihg = 0.5", "measurements.mtf50_cpp.hihg"),
    ("marginal_pct = 10", "marginal_pct = 60", "measurements.mtf50_cpp.marginal_pct"),
    ("tolerance_pct = 5", "tolerance_pct = 5\ntolerance_abs = 0.01", "regression.mtf50_cpp"),
    ('"decrease"', '"down"', "regression.mtf50_cpp.direction"),
    ("[regression.mtf50_cpp]", "[regression.nope]", "top level: regression.nope"),
    ('case."m"]', 'case."m b"]', 'measurements.mtf50_cpp.case."m b"'),
    ("[meta]", "[extra]\n[meta]", "extra: unknown key (allowed: measurements, meta, readout, regression)"),
    ("high = 0.5", "high = inf", "measurements.mtf50_cpp.high: inf: not a finite number"),
    ("low = 0.10", "low = 0.6", "measurements.mtf50_cpp: case 'm/noctilux-m-50-f0.95'"),
    ('unit = "c/px"', 'unit = "c/px\\n"', "measurements.mtf50_cpp.unit"),
])
def test_every_error_is_one_line_naming_file_and_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_limits(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: 1 problem: {key}"), text


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such limits file"):
        load_limits(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_limits(_write(tmp_path, "[meta\n"))
    with pytest.raises(ConfigError, match="/dev/zero: not a regular file"):
        load_limits("/dev/zero")


def test_every_problem_of_a_limits_file_in_one_error(tmp_path: Path) -> None:
    text = GOOD.replace('product = "m-phone"\n', "").replace("high = 0.5", 'hihg = 0.5').replace('"decrease"', '"down"')
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_limits(path)
    text = str(err.value)
    assert text.startswith(f"{path}: 3 problems: "), text
    assert "meta.product: missing" in text and "measurements.mtf50_cpp.hihg: unknown key" in text
    assert "regression.mtf50_cpp.direction: 'down' not allowed (allowed: any, increase, decrease)" in text


READOUTS = GOOD + """
[measurements.shift_px]
unit = "px"
high = 2.0

[measurements.shift_px.case."main"]
low = 0.5
high = 3.0

[readout.ci]
width = 2048
height = 1536

[readout.full]
width = 8192
height = 6144
description = "full resolution"

[readout.full.measurements.mtf50_cpp]
low = 0.12

[readout.full.measurements.shift_px]
high = 8.0

[readout.full.measurements.shift_px.case."main"]
low = 2.0
"""


def test_readout_overrides_by_frame_size_and_precedence(tmp_path: Path) -> None:
    limits = load_limits(_write(tmp_path, READOUTS))
    assert (limits.readout_of(8192, 6144), limits.readout_of(2048, 1536), limits.readout_of(4000, 3000)) == \
        ("full", "ci", None)
    # a readout without overrides, and no readout: the file's own limits
    assert limits.limits_for("mtf50_cpp", "main", "ci") == limits.limits_for("mtf50_cpp", "main")
    full = limits.limits_for("mtf50_cpp", "main", "full")
    assert (full.low, full.high, full.marginal_pct, full.unit) == (0.12, 0.5, 10.0, "c/px")  # rest inherited
    # the file's case override is more specific than the readout's measurement override
    assert limits.limits_for("mtf50_cpp", "m/noctilux-m-50-f0.95/f0.95", "full").low == 0.10
    # the readout's own case override first; it inherits from the readout's measurement override
    main = limits.limits_for("shift_px", "main", "full")
    assert (main.low, main.high) == (2.0, 8.0)
    assert limits.limits_for("shift_px", "m/summicron-m-50-f2", "full").high == 8.0
    assert limits.limits_for("shift_px", "main").high == 3.0
    with pytest.raises(ConfigError, match=r"readout.binned: missing; declared readouts: ci, full"):
        limits.limits_for("shift_px", "main", "binned")


@pytest.mark.parametrize("edit, key", [
    (lambda t: t.replace("[readout.full.measurements.shift_px]", "[readout.full.measurements.nope]"),
     "readout.full.measurements.nope: no [measurements.nope] to override"),
    (lambda t: t.replace("width = 8192", "width = 2048").replace("height = 6144", "height = 1536"),
     "readout.full: 2048x1536 is readout.ci's size already"),
    (lambda t: t.replace("width = 8192", "width = 8192.5"), "readout.full.width"),
    (lambda t: t.replace("width = 8192", 'width = "8192"'), "readout.full.width"),
    (lambda t: t.replace("[readout.full]", "[readout.Full]").replace("[readout.full.", "[readout.Full."),
     "readout.Full"),
    (lambda t: t.replace("high = 8.0", "high = 0.4"),
     "readout.full.measurements.shift_px.case 'main': low 2 must be below high 0.4"),
    (lambda t: t.replace("low = 0.12", "low = 0.7"), "readout.full.measurements.mtf50_cpp: low 0.7 must be below"),
    (lambda t: t.replace('description = "full resolution"', "binning = 4"), "readout.full.binning: unknown key"),
])
def test_readout_errors_are_one_line_naming_the_key(tmp_path: Path, edit, key: str) -> None:
    path = _write(tmp_path, edit(READOUTS))
    with pytest.raises(ConfigError) as err:
        load_limits(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: 1 problem: ") and key in text, text


def test_the_product_file_overrides_per_pixel_limits_at_full_resolution() -> None:
    """In pixels, a displacement on the sensor is 4x at full resolution's quarter pitch: the full readout's
    limits are the CI mode's times 4; MTF50 in c/px falls at the finer pitch, its limits too."""
    limits = load_limits()
    assert limits.readout_of(2048, 1536) == "ci" and limits.readout_of(8192, 6144) == "full"
    for name, case in [("geometry_corner_distortion_px", "main"), ("geometry_corner_distortion_px", "m/x"),
                       ("shading_centre_offset_px", "main"), ("ca_corner_shift_px", "main")]:
        ci, full = limits.limits_for(name, case, "ci"), limits.limits_for(name, case, "full")
        assert full.high == 4 * ci.high and (full.low or 0) == 4 * (ci.low or 0), (name, case)
    for name in ("mtf50_centre_cpp", "mtf50_mid_cpp", "mtf50_corner_cpp", "mtf50_min_cpp",
                 "sensor_saturation_capacity_e"):
        assert limits.limits_for(name, "main", "full").low < limits.limits_for(name, "main", "ci").low
    k_ci, k_full = (limits.limits_for("sensor_conversion_gain_dn_per_e", "main", mode) for mode in ("ci", "full"))
    assert (k_full.low, k_full.high) == pytest.approx((2 * k_ci.low, 2 * k_ci.high))  # the full mode's K is twice
