"""Allure glue and the single-file HTML report (Allure Report 3 through npm, no Java)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# Imported before any in-process inner session: pytester restores sys.modules after each
# inner run, and numpy-based extensions (cv2) cannot be loaded twice in one process.
import cv2  # noqa: F401
import pytest

import fixtures.allure_glue  # noqa: F401
from station.cli import build_parser, main
from station.errors import ConfigError, InputError
from station.report import allure_config, build_report, embedded_files, repo_root, strip_analytics

build_parser()  # imports every subcommand module now, before pytester's sys.modules snapshots

ALLURE_CLI = repo_root() / "node_modules" / ".bin" / "allure"
HAVE_ALLURE = ALLURE_CLI.is_file() and shutil.which("node") is not None
LIMITS = """
[meta]
product = "test-phone"
version = "0.1"

[measurements.lux_error_pct]
unit = "%"
high = 2.0
"""
PLAN = """
import numpy as np
from fixtures.allure_glue import attach_png, png_of
from station.errors import DeviceError

def test_good_light(measure):
    attach_png("grey ramp", png_of(np.tile(np.arange(256, dtype=np.uint8), (64, 1))))
    measure("lux_error_pct", 0.5)

def test_bad_phone(measure):
    measure("lux_error_pct", 5.0)

def test_dead_light():
    raise DeviceError("light", "SOUR:LEV? -> no answer within 2 s")
"""
NAMES = ("test_good_light", "test_bad_phone", "test_dead_light")


@pytest.fixture
def allure_results(pytester: pytest.Pytester, tmp_path: Path) -> Path:
    """allure-results of a small inner session: a pass, a product defect and a station fault."""
    limits = tmp_path / "limits.toml"
    limits.write_text(LIMITS)
    results = tmp_path / "reports" / "runs" / "20250101T000000Z-abcd" / "allure-results"
    pytester.makepyfile(test_inner=PLAN)
    result = pytester.runpytest("--alluredir", str(results), "--limits", str(limits), "-p", "no:cacheprovider",
                                "--reports", str(tmp_path / "reports"), "--run-id", "20250101T000000Z-abcd")
    result.assert_outcomes(passed=1, failed=2)
    return results


def _by_name(results: Path) -> dict[str, dict]:
    return {d["name"]: d for d in (json.loads(p.read_text()) for p in results.glob("*-result.json"))}


def test_results_carry_failure_kinds_measurement_steps_and_the_environment(allure_results: Path) -> None:
    tests = _by_name(allure_results)
    assert set(tests) == set(NAMES)
    kinds = {name: {lb["name"]: lb["value"] for lb in t["labels"]}.get("failure") for name, t in tests.items()}
    assert kinds == {"test_good_light": None, "test_bad_phone": "product-defect", "test_dead_light": "station-fault"}
    assert tests["test_bad_phone"]["status"] == "failed" and tests["test_dead_light"]["status"] == "broken"
    step = tests["test_bad_phone"]["steps"][0]
    assert step["status"] == "failed" and step["name"] == "measure lux_error_pct = 5 % [fail]"
    assert {p["name"]: p["value"] for p in step["parameters"]} == {
        "value": "5", "unit": "%", "limits": "<= 2 %", "verdict": "fail"}
    assert "lux_error_pct = 5 %: outside limits <= 2 %" in tests["test_bad_phone"]["statusDetails"]["message"]
    png = [a for a in tests["test_good_light"]["attachments"] if a["type"] == "image/png"]
    assert len(png) == 1 and (allure_results / png[0]["source"]).read_bytes()[:4] == b"\x89PNG"
    env = (allure_results / "environment.properties").read_text()
    assert "version.numpy=" in env and "run=20250101T000000Z-abcd" in env and "limits=test-phone 0.1" in env
    # the record lists the kept attachment file and the run stopped at the station fault's test
    record = json.loads(next((allure_results.parents[2] / "records").glob("*.json")).read_text())
    assert record["outcome"] == "station-fault" and Path(record["attachments"][0]["path"]).is_file()


@pytest.mark.skipif(not HAVE_ALLURE, reason="Allure Report 3 not installed (make install runs npm install)")
def test_the_report_is_one_html_file_without_analytics(allure_results: Path, tmp_path: Path) -> None:
    out = build_report(allure_results, tmp_path / "report.html", report_name="M-Station test run")
    html = out.read_text()
    assert [p.name for p in tmp_path.glob("*.html")] == ["report.html"]
    lower = html.lower()
    assert "googletagmanager" not in lower and "gtag(" not in lower and "google-analytics" not in lower
    files = embedded_files(html)
    results = [json.loads(v) for k, v in files.items() if k.startswith("data/test-results/")]
    assert {r["name"] for r in results} == set(NAMES)
    assert any(k.startswith("data/attachments/") and v[:4] == b"\x89PNG" for k, v in files.items())
    # the categories put the station fault and the product defect apart
    categories = json.loads(files["widgets/categories.json"])
    names = {n["name"]: n for n in categories["nodes"].values() if n.get("type") == "category"}
    station = next(n for k, n in names.items() if k.startswith("Station faults"))
    product = names["Product defects"]
    assert station["statistic"]["total"] == 1 and product["statistic"]["total"] == 1


def test_station_report_cli_builds_the_latest_run(allure_results: Path, tmp_path: Path, capsys) -> None:
    if not HAVE_ALLURE:
        pytest.skip("Allure Report 3 not installed (make install runs npm install)")
    assert main(["report", "--reports", str(tmp_path / "reports")]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == allure_results.parent / "report.html" and path.stat().st_size > 100_000


def test_without_node_report_says_so_in_one_line(allure_results: Path, tmp_path: Path, capsys,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["report", "--reports", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Node.js" in err[0]
    assert not (allure_results.parent / "report.html").exists()


def test_without_the_npm_package_report_says_so(allure_results: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("node") is None:
        pytest.skip("needs node on PATH to get past the Node.js check")
    monkeypatch.setenv("M_STATION_ALLURE", str(tmp_path / "no" / "allure"))
    with pytest.raises(ConfigError, match="M_STATION_ALLURE=.*no such file"):
        build_report(allure_results, tmp_path / "r.html")
    # an installed wheel (no checkout's node_modules), nothing here, none on PATH: one line saying how to install
    import station.report

    monkeypatch.delenv("M_STATION_ALLURE")
    monkeypatch.setattr(station.report, "repo_root", lambda: tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(Path(shutil.which("node")).parent))
    with pytest.raises(ConfigError, match=r"Allure Report 3 not found .*npm install allure@3"):
        build_report(allure_results, tmp_path / "r.html")


def test_no_results_no_report(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no allure results"):
        build_report(tmp_path, tmp_path / "r.html")


# Allure's own template text (plugin-awesome 3.x) around the tag it embeds
TEMPLATE = """<body><div id="app"></div>
    <script async src="https://www.googletagmanager.com/gtag/js?id=G-LNDJ3J7WT0"></script>
    <script>
        window.dataLayer = window.dataLayer || [];
        function gtag(){dataLayer.push(arguments);}
        gtag('js', new Date());
        gtag('config', 'G-LNDJ3J7WT0', {"report": "awesome"});
    </script>
    <script async>window.allureReportData = {};</script>
</body>"""


def test_strip_analytics_removes_only_the_tag() -> None:
    html = strip_analytics(TEMPLATE)
    assert "googletagmanager" not in html and "gtag" not in html and "dataLayer" not in html
    assert '<div id="app"></div>' in html and "<script async>window.allureReportData = {};</script>" in html


def test_strip_analytics_refuses_a_tag_it_does_not_know() -> None:
    with pytest.raises(InputError, match="analytics"):
        strip_analytics('<script>var x = "https://www.google-analytics.com/collect";</script>')


def test_the_allure_config_is_single_file_with_our_categories() -> None:
    config = allure_config("run")
    assert config["plugins"]["awesome"]["options"]["singleFile"] is True
    labels = [rule["matchers"]["labels"]["failure"] for rule in config["categories"]["rules"]]
    assert labels == ["^station-fault$", "^setup-fault$", "^config-error$", "^product-defect$"]
