"""Capability, the individuals chart and the Western Electric rules against published examples."""

from __future__ import annotations

import numpy as np
import pytest

from station.stats.capability import (
    capability,
    capability_indices,
    drift_alarm,
    sigma_within,
    western_electric,
)
from station.stats.yields import group_yields


def test_montgomery_piston_ring_cp() -> None:
    """Montgomery, Introduction to SQC, 6th ed., sec. 6.2: USL 74.05, LSL 73.95, R-bar 0.023 (n = 5,
    d2 = 2.326), sigma-hat 0.0099, mean 74.001: Cp = 1.68."""
    assert round(0.023 / 2.326, 4) == 0.0099  # sigma-hat = R-bar / d2, as published
    sigma = 0.0099
    cp, cpk = capability_indices(74.001, sigma, 73.95, 74.05)
    assert round(cp, 2) == 1.68
    assert cpk == pytest.approx((74.05 - 74.001) / (3 * sigma))


def test_one_sided_limits() -> None:
    cp, cpk = capability_indices(70.0, 2.0, None, 80.0)
    assert cp is None and cpk == pytest.approx(10 / 6)
    assert capability_indices(70.0, 2.0, None, None) == (None, None)


def test_capability_by_independent_maths() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(10.0, 0.5, 200)
    out = capability(list(x), 8.0, 12.5)
    mr = np.abs(np.diff(x)).mean() / 1.128
    s = x.std(ddof=1)
    assert out["n"] == 200 and out["sigma_within"] == pytest.approx(mr, rel=1e-12)
    assert out["cp"] == pytest.approx(4.5 / (6 * mr), rel=1e-12)
    assert out["cpk"] == pytest.approx(min(12.5 - x.mean(), x.mean() - 8.0) / (3 * mr), rel=1e-12)
    assert out["pp"] == pytest.approx(4.5 / (6 * s), rel=1e-12)
    assert out["ppk"] == pytest.approx(min(12.5 - x.mean(), x.mean() - 8.0) / (3 * s), rel=1e-12)
    assert out["control"]["ucl"] == pytest.approx(x.mean() + 3 * mr)


def test_western_electric_rules() -> None:
    rules = lambda x: {(v["rule"], v["index"]) for v in western_electric(np.array(x, float), 0.0, 1.0)}  # noqa: E731
    assert (1, 2) in rules([0, 0.5, 3.5, 0])
    assert (2, 2) in rules([2.5, 0, 2.2])
    assert (3, 4) in rules([1.5, 1.2, -0.5, 1.1, 1.3])
    assert (4, 7) in rules([0.1] * 8)
    assert rules([0.5, -0.5] * 6) == set()


def test_drift_alarm_on_a_trend() -> None:
    rng = np.random.default_rng(1)
    flat = rng.normal(0, 1, 60)
    trend = flat + np.linspace(0, 6, 60)
    assert not drift_alarm(flat, western_electric(flat, flat.mean(), sigma_within(flat)), sigma_within(flat))
    assert drift_alarm(trend, western_electric(trend, trend.mean(), sigma_within(trend)), sigma_within(trend))


def test_first_pass_and_final_yield() -> None:
    runs = [{"run_id": str(i), "start_utc": f"2026-01-01T00:00:0{i}Z", "dut_serial": d, "station": s, "outcome": o}
            for i, (d, s, o) in enumerate([("A", "s1", "fail"), ("B", "s1", "pass"), ("A", "s1", "pass"),
                                           ("C", "s1", "station-fault"), ("C", "s2", "fail")])]
    out = group_yields(runs, "station")
    assert out["s1"] == {"duts": 2, "runs": 3, "first_pass": 0.5, "final": 1.0}
    assert out["s2"] == {"duts": 1, "runs": 1, "first_pass": 0.0, "final": 0.0}
