"""Measurement system analysis: Gage R&R by crossed ANOVA and the type-1 gauge study (Cg, Cgk).

Gage R&R follows AIAG, *Measurement Systems Analysis*, 4th ed. (2010), ch. III-B, ANOVA method:
a two-way crossed random-effects ANOVA of parts x appraisers (here: stations, or operators on a
bench) x trials. The parts x appraisers interaction is pooled into the error when it is not
significant (p > 0.05, the usual "alpha to remove interaction"), as in the manual's worked example
(10 parts x 3 appraisers x 3 trials: sigma^2 repeatability 0.0400, reproducibility 0.0515,
part 1.086, %GRR 27.9 %, ndc 4). %GRR against total variation is ``100 sigma_GRR / sigma_TV``;
against tolerance ``100 * 6 sigma_GRR / (USL - LSL)`` (a one-sided limit: ``2 |limit - mean|``);
ndc = ``floor(1.41 sigma_part / sigma_GRR)``. Verdict: acceptable <= 10 %, marginal <= 30 %,
else unacceptable (on the larger of the two %GRR figures that exist).

The type-1 gauge study follows VDA 5 / Bosch Booklet 10: ``Cg = 0.2 T / (6 s)``,
``Cgk = (0.1 T - |mean - reference|) / (3 s)``, capable at Cg, Cgk >= 1.33.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

POOL_ALPHA = 0.05


@dataclass(frozen=True)
class GageRR:
    """Variance components (squared units) and the ANOVA behind them."""

    parts: int  # DUTs
    appraisers: int  # stations
    trials: int  # repeat runs of each DUT on each station
    ss: dict[str, float]  # sums of squares by source: part, appraiser, interaction, repeatability, total
    df: dict[str, int]  # their degrees of freedom
    ms: dict[str, float]  # their mean squares, ss / df
    p_interaction: float  # F-test of part x appraiser; pooled into repeatability when above POOL_ALPHA
    pooled: bool
    var_repeatability: float
    var_appraiser: float
    var_interaction: float
    var_part: float

    @property
    def var_reproducibility(self) -> float:
        return self.var_appraiser + self.var_interaction

    @property
    def var_grr(self) -> float:
        return self.var_repeatability + self.var_reproducibility

    @property
    def var_total(self) -> float:
        return self.var_grr + self.var_part

    def grr_pct_total(self) -> float:
        return 100.0 * math.sqrt(self.var_grr / self.var_total) if self.var_total > 0 else 0.0

    def grr_pct_tolerance(self, tolerance: float | None) -> float | None:
        if not tolerance or tolerance <= 0:
            return None
        return 100.0 * 6.0 * math.sqrt(self.var_grr) / tolerance

    def ndc(self) -> int:
        if self.var_grr <= 0:
            return 999
        return int(math.floor(1.41 * math.sqrt(self.var_part / self.var_grr)))


def gage_rr(data: np.ndarray) -> GageRR:
    """Crossed Gage R&R of ``data[part, appraiser, trial]`` (balanced, at least 2 trials and 2 parts)."""
    y = np.asarray(data, dtype=float)
    if y.ndim != 3 or y.shape[0] < 2 or y.shape[1] < 1 or y.shape[2] < 2 or not np.all(np.isfinite(y)):
        raise ValueError(f"gage R&R needs a full parts x appraisers x trials table (>= 2 x 1 x 2), got {y.shape}")
    p, o, r = y.shape
    grand = y.mean()
    part_mean, app_mean, cell = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean(axis=2)
    ss = {"part": o * r * float(np.sum((part_mean - grand) ** 2)),
          "appraiser": p * r * float(np.sum((app_mean - grand) ** 2)),
          "interaction": r * float(np.sum((cell - part_mean[:, None] - app_mean[None, :] + grand) ** 2)),
          "error": float(np.sum((y - cell[:, :, None]) ** 2))}
    ss["total"] = float(np.sum((y - grand) ** 2))
    df = {"part": p - 1, "appraiser": o - 1, "interaction": (p - 1) * (o - 1), "error": p * o * (r - 1),
          "total": p * o * r - 1}
    ms = {k: (ss[k] / df[k] if df[k] > 0 else 0.0) for k in ("part", "appraiser", "interaction", "error")}
    if df["interaction"] > 0 and ms["error"] > 0:
        p_int = float(stats.f.sf(ms["interaction"] / ms["error"], df["interaction"], df["error"]))
    else:
        p_int = 1.0
    pooled = p_int > POOL_ALPHA
    if pooled:
        ms["pooled"] = (ss["interaction"] + ss["error"]) / (df["interaction"] + df["error"])
        e = ms["pooled"]
        var_e, var_int, denom = e, 0.0, e
    else:
        var_e = ms["error"]
        var_int = max(0.0, (ms["interaction"] - ms["error"]) / r)
        denom = ms["interaction"]
    var_o = max(0.0, (ms["appraiser"] - denom) / (p * r)) if o > 1 else 0.0
    var_p = max(0.0, (ms["part"] - denom) / (o * r))
    return GageRR(p, o, r, ss, df, ms, p_int, pooled, var_e, var_o, var_int, var_p)


def tolerance_of(low: float | None, high: float | None, mean: float) -> float | None:
    """USL - LSL; with one limit, twice its distance from the mean (one-sided tolerance)."""
    if low is not None and high is not None:
        return float(high - low)
    if low is not None:
        return 2.0 * abs(mean - low)
    if high is not None:
        return 2.0 * abs(high - mean)
    return None


def verdict(pct: float | None) -> str:
    """AIAG: acceptable <= 10 %, marginal <= 30 %, unacceptable above."""
    if pct is None or not math.isfinite(pct):
        return "unknown"
    return "acceptable" if pct <= 10.0 else "marginal" if pct <= 30.0 else "unacceptable"


def grr_summary(result: GageRR, low: float | None, high: float | None, mean: float) -> dict[str, Any]:
    """The JSON-able summary of one measurement's Gage R&R (sigmas in the measurement's unit)."""
    tolerance = tolerance_of(low, high, mean)
    pct_tol, pct_total = result.grr_pct_tolerance(tolerance), result.grr_pct_total()
    worst = max(v for v in (pct_tol, pct_total) if v is not None)
    return {"parts": result.parts, "appraisers": result.appraisers, "trials": result.trials,
            "repeatability_sigma": math.sqrt(result.var_repeatability),
            "reproducibility_sigma": math.sqrt(result.var_reproducibility),
            "appraiser_sigma": math.sqrt(result.var_appraiser),
            "interaction_sigma": math.sqrt(result.var_interaction),
            "grr_sigma": math.sqrt(result.var_grr), "part_sigma": math.sqrt(result.var_part),
            "total_sigma": math.sqrt(result.var_total), "interaction_pooled": result.pooled,
            "p_interaction": result.p_interaction, "tolerance": tolerance,
            "grr_pct_tolerance": pct_tol, "grr_pct_total": pct_total, "ndc": result.ndc(),
            "verdict": verdict(worst)}


def type1_study(values: np.ndarray, tolerance: float, reference: float) -> dict[str, float]:
    """Type-1 gauge study of repeated measurements of one reference part (VDA 5, Bosch Booklet 10)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2 or not tolerance or tolerance <= 0:
        raise ValueError("a type-1 study needs >= 2 measurements and a positive tolerance")
    s = float(np.std(x, ddof=1))
    mean = float(np.mean(x))
    bias = mean - float(reference)
    cg = 0.2 * tolerance / (6.0 * s) if s > 0 else math.inf
    cgk = (0.1 * tolerance - abs(bias)) / (3.0 * s) if s > 0 else math.inf
    return {"n": int(x.size), "mean": mean, "sigma": s, "reference": float(reference), "bias": bias,
            "tolerance": float(tolerance), "cg": cg, "cgk": cgk, "capable": bool(cg >= 1.33 and cgk >= 1.33)}
