"""Measurements: limits with a marginal band, regression tolerances, verdicts and messages."""

from __future__ import annotations

import json
import math

import pytest

from station.measurements import FAIL, MARGINAL, PASS, Limits, Tolerance, measure


@pytest.mark.parametrize("value, verdict", [
    (9.99, FAIL), (10.0, MARGINAL), (10.99, MARGINAL), (11.01, PASS), (15.0, PASS),
    (18.99, PASS), (19.01, MARGINAL), (20.0, MARGINAL), (20.01, FAIL), (math.nan, FAIL), (math.inf, FAIL),
])
def test_two_sided_limits_flag_the_band_inside_each_limit(value: float, verdict: str) -> None:
    # 10 % of the span 10..20 is 1 unit inside each limit
    assert Limits(unit="mm", low=10.0, high=20.0, marginal_pct=10.0).verdict(value) == verdict


@pytest.mark.parametrize("value, verdict", [(1.4, PASS), (1.6, MARGINAL), (2.0, MARGINAL), (2.0001, FAIL),
                                            (-100.0, PASS)])
def test_a_one_sided_limit_takes_its_band_from_the_limit(value: float, verdict: str) -> None:
    # 25 % of |2| is 0.5 below the high limit
    assert Limits(unit="%", high=2.0, marginal_pct=25.0).verdict(value) == verdict


def test_no_marginal_band_and_no_limits() -> None:
    assert Limits(unit="1", low=0.999).verdict(0.999) == PASS
    assert Limits(unit="1", low=0.999).verdict(0.99899) == FAIL
    assert Limits(unit="lux").verdict(-1e9) == PASS
    assert Limits(unit="lux").describe() == "none"


@pytest.mark.parametrize("tol, value, baseline, verdict", [
    (Tolerance(tolerance_abs=1.0), 65.0, 64.0, PASS),
    (Tolerance(tolerance_abs=1.0), 62.9, 64.0, FAIL),
    (Tolerance(tolerance_abs=1.0, direction="increase"), 62.0, 64.0, PASS),
    (Tolerance(tolerance_abs=1.0, direction="increase"), 65.5, 64.0, FAIL),
    (Tolerance(tolerance_abs=1.0, direction="decrease"), 70.0, 64.0, PASS),
    (Tolerance(tolerance_abs=1.0, direction="decrease"), 62.5, 64.0, FAIL),
    (Tolerance(tolerance_pct=20.0), 2.39, 2.0, PASS),  # 20 % of 2.0 is 0.4
    (Tolerance(tolerance_pct=20.0), 2.41, 2.0, FAIL),
    (Tolerance(tolerance_pct=20.0), -2.41, -2.0, FAIL),  # % of the baseline's magnitude
])
def test_regression_tolerance(tol: Tolerance, value: float, baseline: float, verdict: str) -> None:
    assert tol.verdict(value, baseline) == verdict


def test_a_measurement_carries_limits_baseline_delta_and_the_worse_verdict() -> None:
    limits = Limits(unit="DN", low=32.0, high=128.0)
    m = measure("raw_black_level_dn", 72.0, limits, case="main", baseline=64.0,
                tolerance=Tolerance(tolerance_abs=1.0))
    assert m.key == "raw_black_level_dn[main]"
    assert (m.limits_verdict, m.regression_verdict, m.verdict) == (PASS, FAIL, FAIL)
    assert m.delta == pytest.approx(8.0)
    message = m.failure_message()
    for words in ("raw_black_level_dn[main]", "72 DN", "baseline 64 DN", "delta +8 DN", "± 1 DN"):
        assert words in message
    doc = m.to_dict()
    assert (doc["value"], doc["unit"], doc["low"], doc["high"], doc["baseline"], doc["delta"]) == \
        (72.0, "DN", 32.0, 128.0, 64.0, pytest.approx(8.0))
    assert doc["regression_verdict"] == FAIL and doc["verdict"] == FAIL


def test_out_of_limits_message_names_value_limits_and_unit() -> None:
    m = measure("light_linearity_r2", 0.95, Limits(unit="1", low=0.999))
    assert m.verdict == FAIL and m.regression_verdict is None
    assert m.failure_message() == "measurement light_linearity_r2 = 0.95 1: outside limits >= 0.999 1"


def test_a_baseline_without_tolerance_only_reports_the_delta() -> None:
    m = measure("x_mm", 3.0, Limits(unit="mm", high=5.0), baseline=2.5)
    assert m.verdict == PASS and m.regression_verdict is None and m.delta == pytest.approx(0.5)


def test_a_nan_value_fails_and_the_record_stays_valid_json() -> None:
    m = measure("x_mm", float("nan"), Limits(unit="mm", high=5.0))
    assert m.verdict == FAIL and "not a finite number" in m.failure_message()
    assert json.loads(json.dumps(m.to_dict(), allow_nan=False))["value"] is None


@pytest.mark.parametrize("name, case", [("Bad-Name", ""), ("ok", "../etc"), ("ok", "a b")])
def test_names_and_cases_are_checked(name: str, case: str) -> None:
    with pytest.raises(ValueError):
        measure(name, 1.0, Limits(unit="1"), case=case)


def test_a_value_must_be_a_number() -> None:
    with pytest.raises(TypeError):
        measure("x", "12", Limits(unit="1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        measure("x", True, Limits(unit="1"))
