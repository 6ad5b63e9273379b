"""Gage R&R and the type-1 study against the AIAG MSA 4th ed. worked example and independent maths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from station.msa import gage_rr, grr_summary, tolerance_of, type1_study, verdict

# AIAG MSA 4th ed. (2010), ch. III-B: 10 parts x appraisers A, B, C x 3 trials (rows: trials; columns: parts)
AIAG = {
    "A": [[0.29, -0.56, 1.34, 0.47, -0.80, 0.02, 0.59, -0.31, 2.26, -1.36],
          [0.41, -0.68, 1.17, 0.50, -0.92, -0.11, 0.75, -0.20, 1.99, -1.25],
          [0.64, -0.58, 1.27, 0.64, -0.84, -0.21, 0.66, -0.17, 2.01, -1.31]],
    "B": [[0.08, -0.47, 1.19, 0.01, -0.56, -0.20, 0.47, -0.63, 1.80, -1.68],
          [0.25, -1.22, 0.94, 1.03, -1.20, 0.22, 0.55, 0.08, 2.12, -1.62],
          [0.07, -0.68, 1.34, 0.20, -1.28, 0.06, 0.83, -0.34, 2.19, -1.50]],
    "C": [[0.04, -1.38, 0.88, 0.14, -1.46, -0.29, 0.02, -0.46, 1.77, -1.49],
          [-0.11, -1.13, 1.09, 0.20, -1.07, -0.67, 0.01, -0.56, 1.45, -1.77],
          [-0.15, -0.96, 0.67, 0.11, -1.45, -0.49, 0.21, -0.49, 1.87, -2.16]],
}


def aiag_table() -> np.ndarray:
    return np.array([[[AIAG[a][t][p] for t in range(3)] for a in "ABC"] for p in range(10)])


def test_aiag_worked_example_anova() -> None:
    """The published ANOVA: SS part 88.362, appraiser 3.167, pooled MS 0.0400 (interaction not significant),
    sigma^2 repeatability 0.0400, reproducibility 0.0515, part 1.086, %GRR 27.9 %, ndc 4."""
    result = gage_rr(aiag_table())
    assert result.ss["part"] == pytest.approx(88.362, abs=5e-4)
    assert result.ss["appraiser"] == pytest.approx(3.167, abs=5e-4)
    assert result.pooled and result.ms["pooled"] == pytest.approx(0.0400, abs=5e-5)
    assert result.var_repeatability == pytest.approx(0.0400, abs=5e-5)
    assert result.var_reproducibility == pytest.approx(0.0515, abs=5e-5)
    assert result.var_part == pytest.approx(1.086, abs=5e-4)
    assert result.grr_pct_total() == pytest.approx(27.9, abs=0.05)
    assert result.ndc() == 4
    assert verdict(result.grr_pct_total()) == "marginal"


def test_sums_of_squares_match_statsmodels_anova() -> None:
    """The same decomposition by an independent implementation (statsmodels OLS, type-2 ANOVA)."""
    pd = pytest.importorskip("pandas")
    smf = pytest.importorskip("statsmodels.formula.api")
    sm = pytest.importorskip("statsmodels.api")
    y = aiag_table()
    rows = [{"part": p, "op": o, "y": y[p, o, t]} for p in range(10) for o in range(3) for t in range(3)]
    table = sm.stats.anova_lm(smf.ols("y ~ C(part) * C(op)", data=pd.DataFrame(rows)).fit(), typ=2)
    result = gage_rr(y)
    assert result.ss["part"] == pytest.approx(table.loc["C(part)", "sum_sq"], rel=1e-9)
    assert result.ss["appraiser"] == pytest.approx(table.loc["C(op)", "sum_sq"], rel=1e-9)
    assert result.ss["interaction"] == pytest.approx(table.loc["C(part):C(op)", "sum_sq"], rel=1e-9)
    assert result.ss["error"] == pytest.approx(table.loc["Residual", "sum_sq"], rel=1e-9)
    assert result.p_interaction == pytest.approx(table.loc["C(part):C(op)", "PR(>F)"], rel=1e-9)


def test_significant_interaction_is_kept() -> None:
    """Hand-worked 3 x 3 x 2 study with a designed interaction: MS part 600, appraiser 150, int 48, error 2."""
    part, app = [10, 20, 30], [0, 5, -5]
    inter = [[4, -4, 0], [-4, 0, 4], [0, 4, -4]]
    y = np.array([[[part[p] + app[a] + inter[a][p] + e for e in (-1, 1)] for a in range(3)] for p in range(3)])
    result = gage_rr(y)
    assert not result.pooled
    assert (result.ms["part"], result.ms["appraiser"], result.ms["interaction"], result.ms["error"]) == \
        pytest.approx((600, 150, 48, 2))
    assert result.var_repeatability == pytest.approx(2)
    assert result.var_interaction == pytest.approx(23)
    assert result.var_appraiser == pytest.approx(17)
    assert result.var_part == pytest.approx(92)
    summary = grr_summary(result, 0.0, 100.0, float(y.mean()))
    assert summary["grr_pct_tolerance"] == pytest.approx(100 * 6 * math.sqrt(42) / 100)
    assert summary["grr_pct_total"] == pytest.approx(100 * math.sqrt(42 / 134))
    assert summary["ndc"] == 2 and summary["verdict"] == "unacceptable"


def test_tolerance_and_verdicts() -> None:
    assert tolerance_of(1.0, 3.0, 2.5) == 2.0
    assert tolerance_of(None, 80.0, 70.0) == 20.0  # one-sided: twice the distance to the limit
    assert tolerance_of(0.2, None, 0.25) == pytest.approx(0.1)
    assert tolerance_of(None, None, 1.0) is None
    assert [verdict(v) for v in (10.0, 10.01, 30.0, 30.01)] == ["acceptable", "marginal", "marginal", "unacceptable"]


def test_type1_study() -> None:
    """VDA 5 / Bosch Booklet 10: Cg = 0.2 T / 6 s, Cgk = (0.1 T - |bias|) / 3 s."""
    x = np.array([10.01, 9.99, 10.02, 9.98, 10.00, 10.01, 9.99, 10.00])
    s = float(np.std(x, ddof=1))
    out = type1_study(x, tolerance=1.0, reference=9.99)
    assert out["cg"] == pytest.approx(0.2 / (6 * s))
    assert out["cgk"] == pytest.approx((0.1 - abs(x.mean() - 9.99)) / (3 * s))
    assert out["capable"] is True
    with pytest.raises(ValueError):
        type1_study(x[:1], 1.0, 0.0)


def test_bad_table_is_refused() -> None:
    with pytest.raises(ValueError, match="parts x appraisers x trials"):
        gage_rr(np.ones((3, 2, 1)))
