"""Process capability and the individuals control chart with the Western Electric rules.

Montgomery, *Introduction to Statistical Quality Control*, 6th ed. (2009): Cp = (USL - LSL) / 6 sigma,
Cpk = min(USL - mu, mu - LSL) / 3 sigma with the within (short-term) sigma; Pp, Ppk the same with the
overall sample standard deviation. For individuals the within sigma is MR-bar / d2, d2 = 1.128
(moving ranges of two). Worked example, sec. 6.2 (piston rings): USL 74.05, LSL 73.95,
sigma = R-bar / d2 = 0.023 / 2.326 = 0.0099, Cp = 1.68. One limit only: Cp, Pp undefined (None).

Individuals chart: centre mu, limits mu +- 3 sigma_within. Western Electric rules (Western Electric
*Statistical Quality Control Handbook*, 1956; Montgomery sec. 5.3.6): 1 one point beyond 3 sigma;
2 two of three beyond 2 sigma on one side; 3 four of five beyond 1 sigma on one side; 4 eight in a
row on one side. Drift alarm: rule 4 (or 3) among the latest points, or a significant linear trend
(scipy ``linregress`` p < 0.001) that moves the mean by more than one within sigma over the series.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

D2_N2 = 1.128


def sigma_within(values: np.ndarray) -> float:
    """MR-bar / d2 of an individuals series (moving ranges of two)."""
    x = np.asarray(values, dtype=float)
    return float(np.mean(np.abs(np.diff(x))) / D2_N2) if x.size >= 2 else float("nan")


def capability_indices(mean: float, sigma: float, low: float | None, high: float | None
                       ) -> tuple[float | None, float | None]:
    """``(Cp, Cpk)`` for a sigma (Cp None with one limit; both None without limits or sigma)."""
    if not (sigma > 0 and math.isfinite(sigma)) or (low is None and high is None):
        return None, None
    cp = (high - low) / (6.0 * sigma) if low is not None and high is not None else None
    sides = [v for v in ((high - mean) if high is not None else None,
                         (mean - low) if low is not None else None) if v is not None]
    return cp, min(sides) / (3.0 * sigma)


def western_electric(values: np.ndarray, centre: float, sigma: float) -> list[dict[str, int]]:
    """Violations of the four Western Electric rules: ``[{"rule", "index"}]`` (index of the last point)."""
    x = (np.asarray(values, dtype=float) - centre) / sigma if sigma > 0 else np.zeros(len(values))
    found: list[dict[str, int]] = []
    for i in range(len(x)):
        if abs(x[i]) > 3:
            found.append({"rule": 1, "index": i})
        for rule, window, need, level in ((2, 3, 2, 2.0), (3, 5, 4, 1.0), (4, 8, 8, 0.0)):
            if i + 1 < window:
                continue
            seg = x[i + 1 - window:i + 1]
            if int(np.sum(seg > level)) >= need or int(np.sum(seg < -level)) >= need:
                found.append({"rule": rule, "index": i})
    return found


def drift_alarm(values: np.ndarray, violations: list[dict[str, int]], sigma: float, recent: int = 8) -> bool:
    """A run rule among the latest ``recent`` points, or a significant trend worth a within sigma."""
    n = len(values)
    if any(v["rule"] in (3, 4) and v["index"] >= n - recent for v in violations):
        return True
    if n >= 10 and sigma > 0:
        fit = stats.linregress(np.arange(n, dtype=float), np.asarray(values, dtype=float))
        return bool(fit.pvalue < 1e-3 and abs(fit.slope) * (n - 1) > sigma)
    return False


def capability(values: list[float], low: float | None, high: float | None) -> dict[str, Any]:
    """n, mean, sigmas, Cp/Cpk (within), Pp/Ppk (overall), the individuals chart and the drift alarm."""
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    mean = float(np.mean(x)) if n else float("nan")
    s_within = sigma_within(x)
    s_overall = float(np.std(x, ddof=1)) if n >= 2 else float("nan")
    cp, cpk = capability_indices(mean, s_within, low, high)
    pp, ppk = capability_indices(mean, s_overall, low, high)
    violations = western_electric(x, mean, s_within) if n >= 2 and s_within > 0 else []
    return {"n": n, "mean": mean, "sigma_within": s_within, "sigma_overall": s_overall, "low": low, "high": high,
            "cp": cp, "cpk": cpk, "pp": pp, "ppk": ppk,
            "control": {"centre": mean, "ucl": mean + 3 * s_within, "lcl": mean - 3 * s_within,
                        "violations": violations},
            "drift": drift_alarm(x, violations, s_within) if n >= 2 else False}
