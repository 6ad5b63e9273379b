"""The single-file report as a person sees it: opened in headless Chromium (Debian's ``chromium``).

Skips with a reason when Chromium, Node.js or Allure Report 3 is absent, unless ``CI=true`` (CI installs them).
``M_STATION_SCREENSHOTS=DIR`` also keeps screenshots of the two pages in DIR.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

# Before pytester's in-process session (numpy-based extensions cannot be loaded twice in one process).
import cv2  # noqa: F401
import pytest

import fixtures.allure_glue  # noqa: F401
from station.cli import build_parser
from station.report import build_report, embedded_files, repo_root
from tests.unit.inner_plan import run_inner_plan

build_parser()

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).is_file()), None)
HAVE_ALLURE = (repo_root() / "node_modules" / ".bin" / "allure").is_file() and shutil.which("node") is not None
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=15000", "--window-size=1400,1300")
LIMITS = """
[meta]
product = "test-phone"
version = "0.1"

[measurements.mtf50_centre]
unit = "c/px"
low = 0.2
"""
PLAN = """
import pytest

MTF50 = {"main": 0.289, "m/summicron-m-50-f2": 0.15}

@pytest.mark.parametrize("case", list(MTF50))
def test_sfr(case, measure):
    measure("mtf50_centre", MTF50[case], case=case)
"""

pytestmark = pytest.mark.skipif(
    os.environ.get("CI") != "true" and (CHROMIUM is None or not HAVE_ALLURE),
    reason="needs Debian's chromium (apt-get install -y chromium), Node.js and Allure Report 3 (make install)")


def chromium(url: str, out: Path, *, screenshot: Path | None = None) -> str:
    """The DOM of ``url`` after its scripts ran (``--dump-dom``), and a PNG of it with ``screenshot``."""
    assert CHROMIUM is not None, "CI=true but chromium is not installed"
    profile = out / f"profile-{len(list(out.glob('profile-*')))}"  # a fresh profile per call
    args = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def report(pytester: pytest.Pytester, tmp_path: Path) -> Path:
    results, outcome = run_inner_plan(pytester, tmp_path, LIMITS, PLAN)
    outcome.assert_outcomes(passed=1, failed=1)
    return build_report(results, tmp_path / "report.html", report_name="M-Station browser test")


def _texts(dom: str, testid: str) -> list[str]:
    pattern = rf'data-testid="{testid}"[^>]*>(.*?)</'
    return [html.unescape(re.sub(r"<[^>]+>", "", m)).strip() for m in re.findall(pattern, dom, flags=re.S)]


def test_the_report_opens_grouped_by_sensor_lens_step_and_shows_measurement_titles(report: Path,
                                                                                   tmp_path: Path) -> None:
    """One report, two pages: the overview (tree and run variables) and a test's page (its measurement step)."""
    dom = chromium(report.as_uri(), tmp_path)
    shots = os.environ.get("M_STATION_SCREENSHOTS")  # a folder: keep PNGs of both pages to look at
    if shots:
        chromium(report.as_uri(), tmp_path, screenshot=Path(shots) / "report-tree.png")
    # the tree opens on the failure: m > summicron-m-50-f2 > 04 charts > sfr; main (all passed) stays shut
    sections = _texts(dom, "tree-section-title")
    assert sections == ["main", "m", "summicron-m-50-f2", "04 charts"], sections
    assert _texts(dom, "tree-leaf-title") == ["sfr"]
    variables = dict(zip(_texts(dom, "metadata-item-key"), _texts(dom, "metadata-item-value"), strict=False))
    assert variables.get("verdict", "").startswith("FAIL (exit 1)"), variables
    assert "takt" in variables and variables.get("operator prompts") == "0", variables
    assert "googletagmanager" not in dom
    # the passing main case's page: its measurement titled with value, unit, limits and verdict
    results = [json.loads(v) for k, v in embedded_files(report.read_text()).items()
               if k.startswith("data/test-results/")]
    main = next(r for r in results if {"name": "parentSuite", "value": "main"} in r["labels"])
    page = chromium(f"{report.as_uri()}#{main['id']}", tmp_path)
    if shots:
        chromium(f"{report.as_uri()}#{main['id']}", tmp_path, screenshot=Path(shots) / "report-measurement.png")
    assert _texts(page, "test-result-step-title") == ["mtf50_centre 0.289 c/px  [>= 0.2]  pass"]
