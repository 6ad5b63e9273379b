"""A small plan run in an inner pytest session under the station's plugin: the common setup of the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The inner run's id (``--run-id``): its allure-results sit under ``reports/runs/RUN_ID``.
RUN_ID = "20250101T000000Z-abcd"


def run_inner_plan(pytester: pytest.Pytester, tmp_path: Path, limits_toml: str,
                   plan: str) -> tuple[Path, pytest.RunResult]:
    """Run ``plan`` (as ``test_04_charts.py``) against ``limits_toml`` with Allure on, in the station's reports
    layout below ``tmp_path``: the run's allure-results directory and its outcome."""
    limits = tmp_path / "limits.toml"
    limits.write_text(limits_toml)
    results = tmp_path / "reports" / "runs" / RUN_ID / "allure-results"
    pytester.makepyfile(test_04_charts=plan)
    outcome = pytester.runpytest("--alluredir", str(results), "--limits", str(limits), "-p", "no:cacheprovider",
                                 "--reports", str(tmp_path / "reports"), "--run-id", RUN_ID)
    return results, outcome
