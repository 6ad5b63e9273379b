"""A small simulated line (twin stations x phones x repeats) through the database into stats and msa.

The figures of ``station stats --json`` and ``station msa --json`` are recomputed here from the JSON
records alone (the stations' canonical copies), by independent code: yields exactly, Cpk and %GRR to
1e-9. The HTML page is opened in headless Chromium. The full 3 x 30 x 2 line is ``-m slow``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from station.cli import line as line_cli
from station.cli import main
from station.twin import line as twin_line

SMALL = {"stations": 2, "phones": 2, "repeats": 2}
SUBSET = "test_02_flat and test_shading"
#: One xdist worker builds the small line once (make test runs --dist loadgroup).
pytestmark = pytest.mark.xdist_group("line")


def _simulate(root: Path, database: str, stations: int, phones: int, repeats: int, subset: str) -> None:
    code = main(["line", "simulate", "--stations", str(stations), "--phones", str(phones), "--repeats",
                 str(repeats), "--reports", str(root), "--database", database, "--subset", subset, "--jobs", "2",
                 "--json"])
    assert code == 0


@pytest.fixture(scope="session")
def small_line(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """2 twin stations x 2 phones x 2 repeats of the main sensor's shading, into SQLite (once a session)."""
    root = tmp_path_factory.mktemp("line")
    database = f"sqlite:///{root / 'line.sqlite'}"
    _simulate(root, database, SMALL["stations"], SMALL["phones"], SMALL["repeats"], SUBSET)
    return {"root": root, "database": database}


def records_of(root: Path) -> list[dict[str, Any]]:
    """Every station's JSON records (each station keeps its own under ROOT/line-N/records)."""
    found = [json.loads(p.read_text()) for p in sorted(root.glob("line-*/records/*.json"))]
    return sorted((r for r in found if r["outcome"]), key=lambda r: (r["start"], r["run_id"]))  # finished runs


def _cli_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


# --- independent figures from the records ------------------------------------------------------------

def my_yields(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, list[str]]] = {}
    for rec in records:
        if rec["outcome"] not in ("pass", "fail"):
            continue
        out.setdefault(rec["station"]["name"], {}).setdefault(rec["dut"]["serial"], []).append(rec["outcome"])
    return {s: {"first_pass": sum(v[0] == "pass" for v in d.values()) / len(d),
                "final": sum(v[-1] == "pass" for v in d.values()) / len(d)} for s, d in out.items()}


def my_values(records: list[dict[str, Any]], key: str) -> list[tuple[str, str, float]]:
    return [(r["station"]["name"], r["dut"]["serial"], m["value"]) for r in records
            if r["outcome"] in ("pass", "fail") for m in r["measurements"] if m["key"] == key]


def my_cpk(values: list[float], low: float | None, high: float | None) -> float:
    x = np.array(values)
    sigma = np.mean([abs(b - a) for a, b in zip(x[:-1], x[1:], strict=True)]) / 1.128
    sides = [s for s in ((high - x.mean()) if high is not None else None,
                         (x.mean() - low) if low is not None else None) if s is not None]
    return min(sides) / (3 * sigma)


def my_grr(points: list[tuple[str, str, float]], low: float | None, high: float | None) -> dict[str, float]:
    """%GRR by statsmodels' two-way ANOVA (interaction pooled when p > 0.05) and the AIAG formulas."""
    pd = pytest.importorskip("pandas")
    sm = pytest.importorskip("statsmodels.api")
    smf = pytest.importorskip("statsmodels.formula.api")
    cells: dict[tuple[str, str], list[float]] = {}
    for station, part, y in points:  # in run order
        cells.setdefault((station, part), []).append(y)
    stations = {s for s, _ in cells}
    parts = [d for d in {d for _, d in cells} if all(len(cells.get((s, d), [])) >= 2 for s in stations)]
    trials = min(len(cells[(s, d)]) for s in stations for d in parts)
    frame = pd.DataFrame([(s, d, y) for s in stations for d in parts for y in cells[(s, d)][:trials]],
                         columns=["station", "part", "y"])
    table = sm.stats.anova_lm(smf.ols("y ~ C(part) * C(station)", data=frame).fit(), typ=2)
    p, o = frame["part"].nunique(), frame["station"].nunique()
    r = len(frame) // (p * o)
    ms = table["sum_sq"] / table["df"]
    if table.loc["C(part):C(station)", "PR(>F)"] > 0.05:
        e = (table.loc["C(part):C(station)", "sum_sq"] + table.loc["Residual", "sum_sq"]) / (
            table.loc["C(part):C(station)", "df"] + table.loc["Residual", "df"])
        rep, inter, denom = e, 0.0, e
    else:
        rep, denom = ms["Residual"], ms["C(part):C(station)"]
        inter = max(0.0, (denom - rep) / r)
    station = max(0.0, (ms["C(station)"] - denom) / (p * r))
    part = max(0.0, (ms["C(part)"] - denom) / (o * r))
    grr = rep + station + inter
    mean = frame["y"].mean()
    tol = (high - low) if low is not None and high is not None else 2 * abs((high if high is not None else low) - mean)
    return {"grr_pct_total": 100 * math.sqrt(grr / (grr + part)), "grr_pct_tolerance": 600 * math.sqrt(grr) / tol,
            "ndc": math.floor(1.41 * math.sqrt(part / grr)), "reproducibility_sigma": math.sqrt(station + inter)}


def check_agreement(root: Path, database: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    records = records_of(root)
    stats = _cli_json(["stats", "--database", database, "--json"], capsys)
    msa = _cli_json(["msa", "--database", database, "--json"], capsys)
    assert stats["runs"] == len(records)
    mine = my_yields(records)
    assert {s: {k: y[k] for k in ("first_pass", "final")} for s, y in stats["yields"]["station"].items()} == mine
    checked = 0
    for key, m in stats["measurements"].items():
        if m["cpk"] is None or not m["sigma_within"]:
            continue
        values = [v for _, _, v in my_values(records, key)]
        assert m["n"] == len(values)
        assert m["cpk"] == pytest.approx(my_cpk(values, m["low"], m["high"]), rel=1e-9, abs=1e-9)
        checked += 1
    assert checked >= 3
    assert msa["measurements"], "no Gage R&R study"
    for key, g in msa["measurements"].items():
        if g["grr_sigma"] == 0:
            continue
        points = my_values(records, key)
        mine = my_grr(points, g["low"], g["high"])
        assert g["grr_pct_total"] == pytest.approx(mine["grr_pct_total"], rel=1e-9, abs=1e-9)
        assert g["grr_pct_tolerance"] == pytest.approx(mine["grr_pct_tolerance"], rel=1e-9, abs=1e-9)
        assert g["ndc"] == mine["ndc"]
    return {"stats": stats, "msa": msa, "records": records}


def test_small_line_stats_and_msa_agree_with_the_records(small_line: dict[str, Any],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = check_agreement(small_line["root"], small_line["database"], capsys)
    expected = SMALL["stations"] * SMALL["phones"] * SMALL["repeats"]
    assert len(out["records"]) == expected
    assert set(out["stats"]["yields"]["station"]) == {"line-1", "line-2"}
    assert "shading_corner_falloff_pct[main]" in out["msa"]["measurements"]
    from station.db.store import load_runs, open_engine

    for folder in sorted(small_line["root"].glob("line-*")):  # station run's own upload: the station's SQLite
        engine = open_engine(f"sqlite:///{folder / 'records.sqlite'}")
        held = sorted(r["run_id"] for r in load_runs(engine))
        engine.dispose()
        assert held == sorted(json.loads(p.read_text())["run_id"] for p in folder.glob("records/*.json"))
        assert not list(folder.glob("spool/*.json"))


def test_golden_units_and_type1(small_line: dict[str, Any], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    records = records_of(small_line["root"])
    golden = records[0]["dut"]["serial"]
    (tmp_path / "golden.txt").write_text(f"# golden units\n{golden}\n")
    stats = _cli_json(["stats", "--database", small_line["database"], "--golden", str(tmp_path / "golden.txt"),
                       "--json"], capsys)
    key = "shading_corner_falloff_pct[main]"
    offsets = stats["golden"]["correlation"][key]
    values = {s: [v for st, d, v in my_values(records, key) if d == golden and st == s] for s in offsets}
    overall = np.mean([v for vs in values.values() for v in vs])
    for station, entry in offsets.items():
        assert entry["offset"] == pytest.approx(np.mean(values[station]) - overall, rel=1e-9, abs=1e-12)
    msa = _cli_json(["msa", "--database", small_line["database"], "--golden-unit", golden, "--json"], capsys)
    study = msa["type1"]["measurements"][key]
    assert set(study) == set(offsets) and all(t["n"] == SMALL["repeats"] for t in study.values())


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([chromium(), *flags, *extra, page.as_uri()], capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]


def test_stats_html_renders_in_chromium(small_line: dict[str, Any], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    if chromium() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but chromium is not installed (.ci/system-packages.sh)")
        pytest.skip("chromium not installed (Debian's chromium; .ci/system-packages.sh installs it)")
    page = tmp_path / "stats.html"
    assert main(["stats", "--database", small_line["database"], "--html", str(page)]) == 0
    capsys.readouterr()
    images = page.read_text().count("<img ")
    dom = run_chromium(page, tmp_path, "--dump-dom")
    assert f'data-plots-rendered="{images}"' in dom.stdout and images >= 3, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    shot = tmp_path / "stats.png"
    run_chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1200) and pixels.std() > 10  # something drawn, not a blank page
    broken = tmp_path / "broken.html"  # the console check does see an error
    broken.write_text("<!doctype html><html><body><script>throw new Error('boom')</script></body></html>")
    assert console_errors(run_chromium(broken, tmp_path, "--dump-dom").stderr)


@pytest.mark.slow
def test_full_line_recovers_the_station_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """3 stations x 30 phones x 2 repeats (M_STATION_TEST_POSTGRES when set, else SQLite).

    The light box's corner error c_s of station s scales the light left at the frame corner by (1 + c_s):
    the corner falloff F (in %) becomes 100 - (100 - F)(1 + c_s), an offset of -(100 - F) c_s. The
    stations' offsets in the Gage R&R table (station mean - grand mean) must match these predictions,
    each within 4 standard errors of a station mean (sqrt(MS_error / (parts * trials))) plus 10 % of the
    predictions' spread (the model's approximation: the falloff is measured on corner patches a little
    inside the corner, against the brightest point); and the reproducibility sigma Gage R&R reports must
    be the predictions' standard deviation within 15 %.
    """
    database = os.environ.get("M_STATION_TEST_POSTGRES") or f"sqlite:///{tmp_path / 'line.sqlite'}"
    _simulate(tmp_path, database, 3, 30, 2, line_cli.SUBSET)
    out = check_agreement(tmp_path, database, capsys)
    recover_station_errors(out["records"], out["msa"])


def recover_station_errors(records: list[dict[str, Any]], msa: dict[str, Any]) -> None:
    from station.msa import gage_rr
    from station.stats.msa_data import study_table

    key = "shading_corner_falloff_pct[main]"
    points = [(r["run_id"], r["station"]["name"], r["dut"]["serial"], r["start"], m["value"])
              for r in records if r["outcome"] in ("pass", "fail") for m in r["measurements"] if m["key"] == key]
    data, parts, stations = study_table(points)
    grand = data.mean()
    remaining = 100.0 - grand
    truth = np.array([-remaining * twin_line.station_errors(int(s.split("-")[1]))["light_corner_pct"] / 100
                      for s in stations])
    measured = data.mean(axis=(0, 2)) - grand
    se = math.sqrt(gage_rr(data).ms["error"] / (len(parts) * data.shape[2]))
    sigma_true = float(np.std(truth, ddof=1))
    assert np.all(np.abs(measured - (truth - truth.mean())) <= 4 * se + 0.1 * sigma_true)
    sigma_msa = msa["measurements"][key]["reproducibility_sigma"]
    assert sigma_msa == pytest.approx(sigma_true, rel=0.15)
