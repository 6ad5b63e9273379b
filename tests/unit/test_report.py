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
from tests.unit.inner_plan import run_inner_plan

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

[measurements.mtf50_centre]
unit = "c/px"
low = 0.2
marginal_pct = 5

[measurements.corner_ratio]
unit = "1"
low = 0.5
"""
PLAN = """
import numpy as np
import pytest
from fixtures.allure_glue import attach_png, png_of
from station.errors import DeviceError

MTF50 = {"main": 0.289, "m": 0.205, "m/summicron-m-50-f2": 0.25}

@pytest.fixture
def lit_bench():
    yield  # its finalizer (``lit_bench::<lambda>``) says nothing: no entry in the report

def test_light_good(measure):
    attach_png("grey ramp", png_of(np.tile(np.arange(256, dtype=np.uint8), (64, 1))))
    measure("lux_error_pct", 0.5)

@pytest.mark.parametrize("case", list(MTF50))
def test_sharpness(case, lit_bench, measure):
    measure("mtf50_centre", MTF50[case], case=case)
    measure("corner_ratio", 0.8, case=case)

def test_m_bare_zebra(measure):
    measure("corner_ratio", 0.7, case="m/luma")

def test_writeback(measure):
    measure("corner_ratio", 0.9)

def test_bad_phone(measure):
    measure("mtf50_centre", 0.1, case="main")

def test_dead_light():
    raise DeviceError("light", "SOUR:LEV? -> no answer within 2 s")
"""
#: (title, case parameter) of each test of the inner plan.
TESTS = (("light good", None), ("sharpness", "main"), ("sharpness", "m"), ("sharpness", "m/summicron-m-50-f2"),
         ("m bare zebra", None), ("writeback", None), ("bad phone", None), ("dead light", None))
#: The tree of the inner plan: (title, case) -> (parentSuite, suite, subSuite).
TREE = {("light good", None): ("station", "self-check", "04 charts"),
        ("sharpness", "main"): ("main", "built-in lens", "04 charts"),
        ("sharpness", "m"): ("m", "bare", "04 charts"),
        ("sharpness", "m/summicron-m-50-f2"): ("m", "summicron-m-50-f2", "04 charts"),
        ("m bare zebra", None): ("m", "bare", "04 charts"),
        ("writeback", None): ("phone", "every case", "04 charts"),
        ("bad phone", None): ("main", "built-in lens", "04 charts"),
        ("dead light", None): ("main", "built-in lens", "04 charts")}


@pytest.fixture
def allure_results(pytester: pytest.Pytester, tmp_path: Path) -> Path:
    """allure-results of a small inner session: passes (one marginal), a product defect and a station fault."""
    results, outcome = run_inner_plan(pytester, tmp_path, LIMITS, PLAN)
    outcome.assert_outcomes(passed=6, failed=2)
    return results


def _key(result: dict) -> tuple[str, str | None]:
    case = {p["name"]: p["value"] for p in result.get("parameters", [])}.get("case")
    return result["name"], None if case is None else case.strip("'")


def _by_name(results: Path) -> dict[tuple[str, str | None], dict]:
    return {_key(d): d for d in (json.loads(p.read_text()) for p in results.glob("*-result.json"))}


def _labels(result: dict) -> dict[str, str]:
    return {lb["name"]: lb["value"] for lb in result["labels"]}


def test_results_carry_failure_kinds_measurement_steps_and_the_environment(allure_results: Path) -> None:
    tests = _by_name(allure_results)
    assert set(tests) == set(TESTS)
    kinds = {key: _labels(t).get("failure") for key, t in tests.items()}
    assert kinds == {**dict.fromkeys(TESTS), ("bad phone", None): "product-defect",
                     ("dead light", None): "station-fault"}
    bad, dead = tests[("bad phone", None)], tests[("dead light", None)]
    assert bad["status"] == "failed" and dead["status"] == "broken"
    step = bad["steps"][0]
    assert step["status"] == "failed" and step["name"] == "mtf50_centre 0.1 c/px  [>= 0.2]  fail"
    assert {p["name"]: p["value"] for p in step["parameters"]} == {
        "value": "0.1", "unit": "c/px", "limits": ">= 0.2 c/px", "verdict": "fail",
        "marginal band": "0.01 c/px inside each limit", "case": "main"}
    assert "mtf50_centre[main] = 0.1 c/px: outside limits >= 0.2" in bad["statusDetails"]["message"]
    png = [a for a in tests[("light good", None)]["attachments"] if a["type"] == "image/png"]
    assert len(png) == 1 and (allure_results / png[0]["source"]).read_bytes()[:4] == b"\x89PNG"
    env = (allure_results / "environment.properties").read_text()
    assert "version.numpy=" in env and "run=20250101T000000Z-abcd" in env and "limits=test-phone 0.1" in env
    # the record lists the kept attachment file and the run stopped at the station fault's test
    record = json.loads(next((allure_results.parents[2] / "records").glob("*.json")).read_text())
    assert record["outcome"] == "station-fault" and Path(record["attachments"][0]["path"]).is_file()


def test_the_tree_is_sensor_lens_step_and_titles_carry_limits_and_verdict(allure_results: Path) -> None:
    tests = _by_name(allure_results)
    tree = {key: tuple(_labels(t).get(n) for n in ("parentSuite", "suite", "subSuite")) for key, t in tests.items()}
    assert tree == TREE
    for t in tests.values():
        assert not {"host", "thread", "language", "framework"} & set(_labels(t)), t["labels"]
    titles = {key: [s["name"] for s in t.get("steps", [])] for key, t in tests.items()}
    assert titles[("sharpness", "main")] == ["mtf50_centre 0.289 c/px  [>= 0.2]  pass",
                                             "corner_ratio 0.8  [>= 0.5]  pass"]
    assert titles[("sharpness", "m")][0] == "mtf50_centre 0.205 c/px  [>= 0.2]  marginal"
    assert titles[("light good", None)] == ["lux_error_pct 0.5 %  [<= 2]  pass"]
    # fixtures that say nothing (``measure``, ``lit_bench::<lambda>``) leave no set-up / tear-down entry
    containers = [json.loads(p.read_text()) for p in allure_results.glob("*-container.json")]
    assert containers, "allure-pytest wrote no fixture containers"
    entries = [f["name"] for c in containers for f in c.get("befores", []) + c.get("afters", [])]
    assert not [n for n in entries if "<lambda>" in n or n in ("measure", "lit_bench", "limits")], entries


def test_measurement_titles_say_marginal_regression_and_no_dimensionless_unit() -> None:
    from fixtures.allure_glue import measurement_title
    from station.measurements import Limits, Tolerance, measure

    limits = Limits(unit="c/px", low=0.2, marginal_pct=10)
    assert measurement_title(measure("mtf50_centre", 0.21, limits)) == "mtf50_centre 0.21 c/px  [>= 0.2]  marginal"
    regressed = measure("mtf50_centre", 0.289, limits, baseline=0.301, tolerance=Tolerance(tolerance_abs=0.005))
    assert measurement_title(regressed) == ("mtf50_centre 0.289 c/px  [>= 0.2]  fail  "
                                            "(baseline 0.301, delta -0.012 c/px)")
    assert measurement_title(measure("r2", 0.99998, Limits(unit="1", low=0.999))) == "r2 0.99998  [>= 0.999]  pass"
    assert measurement_title(measure("dn", 1023.5, Limits(unit="DN", high=1023))) == "dn 1023.5 DN  [<= 1023]  fail"
    assert measurement_title(measure("e", 12345.6, Limits(unit="e-"))) == "e 12346 e-  [none]  pass"


@pytest.mark.skipif(not HAVE_ALLURE, reason="Allure Report 3 not installed (make install runs npm install)")
def test_the_report_is_one_html_file_without_analytics(allure_results: Path, tmp_path: Path) -> None:
    out = build_report(allure_results, tmp_path / "report.html", report_name="M-Station test run")
    html = out.read_text()
    assert [p.name for p in tmp_path.glob("*.html")] == ["report.html"]
    lower = html.lower()
    assert "googletagmanager" not in lower and "gtag(" not in lower and "google-analytics" not in lower
    files = embedded_files(html)
    results = [json.loads(v) for k, v in files.items() if k.startswith("data/test-results/")]
    assert {r["name"] for r in results} == {title for title, _ in TESTS}
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


def test_the_overview_shows_verdict_takt_and_operator_prompts() -> None:
    from station.report import executor_info, run_overview

    record = {"outcome": "fail", "exit_code": 1, "reason": "product failed: test_sfr", "incomplete": True,
              "tests_never_ran": 2, "start": "2025-01-01T00:00:00Z", "end": "2025-01-01T00:02:05.5Z",
              "hw_time_s": {"move": 30.0, "settle": 10.0, "total": 52.25}, "operator_requests": 7,
              "dut": {"serial": "SN1"}, "firmware": "1.2", "plan": "factory", "run_id": "20250101T000000Z-abcd",
              "station": {"name": "line-3"}, "measurements": [{"verdict": "marginal"}, {"verdict": "pass"}]}
    overview = run_overview(record)
    assert overview["verdict"] == "FAIL (exit 1), INCOMPLETE: 2 test(s) never ran"
    assert overview["takt"] == "125.5 s wall, 52.2 s hardware"
    assert overview["operator prompts"] == "7" and overview["marginal measurements"] == "1"
    assert overview["reason"] == "product failed: test_sfr" and overview["DUT"] == "SN1"
    assert run_overview(None) == {"verdict": "unknown (no run record)"}
    executor = executor_info(record, "M-Station run")
    assert executor["name"] == "M-Station line-3"
    assert executor["buildName"].startswith("factory 20250101T000000Z-abcd: FAIL")
