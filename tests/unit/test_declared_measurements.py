"""Every measurement a step declares (``station.measurements.measures``) has its entry in the limits file, in the
same unit, and every entry of the limits file is declared by some step: both directions, so a measurement
cannot be added in one place only."""

from __future__ import annotations

import pytest

import station.measurements
from station.limits import load_limits
from station.measurements import Declared, all_declared, declarations_of, measures


def test_every_declared_measurement_is_in_the_limits_file_with_its_unit() -> None:
    limits = load_limits()
    declared = all_declared()
    missing = sorted(set(declared) - set(limits.measurements))
    assert not missing, f"declared but not in {limits.path}: {missing}"
    wrong = {n: (d.unit, limits.measurements[n].unit) for n, d in declared.items()
             if d.unit != limits.measurements[n].unit}
    assert not wrong, f"declared unit differs from the limits file's: {wrong}"


def test_every_limits_entry_is_declared_by_a_step() -> None:
    limits = load_limits()
    declared = all_declared()
    undeclared = sorted(set(limits.measurements) - set(declared))
    assert not undeclared, f"in {limits.path} but no step declares it: {undeclared}"
    stale = sorted(set(limits.regression) - set(declared))
    assert not stale, f"regression tolerances of measurements no step declares: {stale}"


def test_a_declaration_checks_its_case_pattern_and_unit() -> None:
    d = Declared("x_one_pct", "%", "{case}/{mode}")
    assert d.case_matches("m/summicron-m-50-f2/raw") and d.case_matches("main/luma")
    assert not d.case_matches("main") and not d.case_matches("elsewhere/raw")
    f_case = Declared("x_two_pct", "%", "{f_case}")
    assert f_case.case_matches("m/noctilux-m-50-f0.95/f0.95") and f_case.case_matches("main")
    assert Declared("x_three", "1", "").case_matches("") and not Declared("x_four", "1", "").case_matches("main")
    with pytest.raises(ValueError, match="limits from"):
        Declared("x_five", "1", limits="somewhere")
    with pytest.raises(ValueError, match="expected lower-case"):
        Declared("Bad-Name", "1")


def test_measures_lists_the_declarations_on_the_function_and_refuses_a_second_unit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(station.measurements, "DECLARED", {})  # the test's names stay out of the registry

    @measures(Declared("zz_test_length_mm", "mm", ""), Declared("zz_test_count", "1", ""))
    def values() -> dict[str, float]:
        return {}

    assert set(declarations_of(values)) == {"zz_test_length_mm", "zz_test_count"}
    with pytest.raises(ValueError, match="declared in 'mm' and in 'um'"):
        measures(Declared("zz_test_length_mm", "um", ""))(lambda: None)


def test_take_records_every_declared_value_and_refuses_an_undeclared_one_or_a_wrong_case() -> None:
    from station.plans.helpers import take
    from station.procedures.sensor import TemporalNoise
    from tests.unit.measure_log import MeasureLog as Measure

    noise = TemporalNoise("main", 1000, {"R": 2.0, "B": 3.0}, {"R": 4.0, "B": 5.0}, {"R": 400.0, "B": 300.0})
    measure = Measure()
    take(measure, noise.measurements, "main")
    assert measure.taken == [("noise_dark_dn", 3.0, "main"), ("noise_lit_dn", 5.0, "main"), ("noise_snr", 60.0, "main"),
                     ("checked", 0.0, "")]
    with pytest.raises(ValueError, match="does not match the declared case"):
        take(Measure(), noise.measurements, "m/summicron-m-50-f2")
    with pytest.raises(ValueError, match="declares"):
        take(Measure(), measures(Declared("noise_snr", "1", "{sensor}"))(lambda: {"other": 1.0}), "main")


def test_plan_tests_are_marked_with_what_they_need_of_a_station(pytester: pytest.Pytester) -> None:
    """``-m`` selects by the needs_* markers the plans' conftest gives from the fixtures a test takes."""
    from pathlib import Path

    import station.plans

    factory = str(Path(station.plans.__file__).parent / "factory")
    result = pytester.runpytest_inprocess("--co", "-q", "-p", "no:cacheprovider", factory, "-m", "needs_m_lens")
    lines = [line for line in result.outlines if "::" in line]
    assert lines and all("[" in line for line in lines)  # every one is parametrized by the lens
    result = pytester.runpytest_inprocess("--co", "-q", "-p", "no:cacheprovider", factory, "-m",
                                          "not needs_operator")
    names = {line.split("::")[-1] for line in result.outlines if "::" in line}
    assert "test_mount_homing" in names and "test_shading" not in names and "test_calibration_writeback" in names
