"""One self-contained HTML report of a run, built with Allure Report 3 (npm ``allure``, no Java).

The project's set-up (``make install``) runs ``npm install`` beside ``package.json``, which
pins ``allure`` 3.x; this module runs its CLI, ``allure generate RESULTS --config
allurerc.json -o DIR``, with the ``awesome`` plugin in single-file mode and categories
that put station faults and product defects apart (matched on the ``failure`` label the
station's pytest plugin puts on every failed test). The analytics tag Allure embeds in
its HTML is removed before the file is written (atomically).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from station.atomic import atomic_write_text
from station.errors import ConfigError, InputError

#: The label the pytest plugin sets on failed tests, and its values.
FAILURE_LABEL = "failure"
CATEGORIES: list[dict[str, Any]] = [
    {"id": "station-faults", "name": "Station faults (bench device failed: not the product's fault)",
     "matchers": {"labels": {FAILURE_LABEL: "^station-fault$"}}, "expand": True},
    {"id": "setup-faults", "name": "Setup faults (wrong chart, lens or scene: fix the setup and retry)",
     "matchers": {"labels": {FAILURE_LABEL: "^setup-fault$"}}, "expand": True},
    {"id": "config-errors", "name": "Usage or config errors",
     "matchers": {"labels": {FAILURE_LABEL: "^config-error$"}}},
    {"id": "product-defects", "name": "Product defects",
     "matchers": {"labels": {FAILURE_LABEL: "^product-defect$"}}, "expand": True},
]
ALLURE_TIMEOUT_S = 300.0
_ANALYTICS_PATTERNS = (
    re.compile(r"<script[^>]*googletagmanager\.com[^>]*>\s*</script>", re.IGNORECASE),
    re.compile(r"<script>\s*window\.dataLayer\s*=(?:(?!</script>)[\s\S])*?</script>", re.IGNORECASE),
)
_ANALYTICS_MARKERS = ("googletagmanager", "google-analytics", "gtag(")
_EMBEDDED_RE = re.compile(r'\bd\("([^"]+)","([A-Za-z0-9+/=]*)"\)')


#: The report's tree: sensor, lens, step (the labels ``fixtures.allure_glue`` sets on every test).
GROUP_BY = ["parentSuite", "suite", "subSuite"]


def allure_config(report_name: str, variables: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``allurerc.json`` of a run's report: awesome plugin, single file, the tree by sensor / lens / step,
    our categories, and the run's overview (``run_overview``) as the report's variables."""
    config: dict[str, Any] = {
        "name": report_name,
        "plugins": {"awesome": {"options": {"singleFile": True, "reportName": report_name, "groupBy": GROUP_BY,
                                            "stepTreeExpansion": "expand_failed_only"}}},
        "categories": {"rules": CATEGORIES},
    }
    if variables:
        config["variables"] = dict(variables)
    return config


def _seconds_between(start: Any, end: Any) -> float | None:
    from datetime import datetime

    try:
        return (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
    except ValueError:
        return None


def run_overview(record: dict[str, Any] | None) -> dict[str, str]:
    """What the report's overview shows of a run record: verdict (outcome, exit code, reason), takt (wall time
    and, when the record has it, hardware time), operator prompts, DUT, firmware, plan, marginal values."""
    if not record:
        return {"verdict": "unknown (no run record)"}
    outcome = str(record.get("outcome") or "unfinished").upper()
    verdict = f"{outcome} (exit {record.get('exit_code')})"
    if record.get("incomplete"):
        verdict += f", INCOMPLETE: {record.get('tests_never_ran', 0)} test(s) never ran"
    wall_s = _seconds_between(record.get("start"), record.get("end"))
    takt = f"{wall_s:.1f} s wall" if wall_s is not None else "unknown"
    hw = record.get("hw_time_s")
    hw_total = hw.get("total") if isinstance(hw, dict) else hw
    if isinstance(hw_total, (int, float)):
        takt += f", {float(hw_total):.1f} s hardware"
    marginal = sum(1 for m in record.get("measurements") or [] if m.get("verdict") == "marginal")
    overview = {"verdict": verdict, "takt": takt, "operator prompts": str(record.get("operator_requests", 0)),
                "DUT": str((record.get("dut") or {}).get("serial") or "unknown"),
                "firmware": str(record.get("firmware") or "unknown"), "plan": str(record.get("plan") or ""),
                "marginal measurements": str(marginal), "reason": str(record.get("reason") or "")[:300]}
    return {k: v for k, v in overview.items() if v}


def executor_info(record: dict[str, Any] | None, report_name: str) -> dict[str, Any]:
    """Allure's ``executor.json`` of a run: the station that ran it, the run as the build, its verdict."""
    record = record or {}
    station = (record.get("station") or {}).get("name") or ("twin" if (record.get("station") or {}).get("twin")
                                                            else "station")
    overview = run_overview(record or None)
    return {"name": f"M-Station {station}", "type": "m-station", "reportName": report_name,
            "buildName": f"{record.get('plan') or 'run'} {record.get('run_id') or ''}: {overview['verdict']}".strip(),
            "buildOrder": 1}


def record_of(results: Path) -> dict[str, Any] | None:
    """The run record beside ``RUN_DIR/allure-results`` (``REPORTS/records/*-RUN_ID.json``), None if none reads."""
    from station.records import find_run, load_record

    run_dir = results.resolve().parent
    try:
        _, path, _ = find_run(run_dir.parent.parent, str(run_dir))
        return load_record(path) if path is not None else None
    except InputError:
        return None


def repo_root() -> Path:
    import station

    return Path(station.__file__).resolve().parents[1]


def find_allure() -> Path:
    """The Allure 3 CLI the project installed (``node_modules/.bin/allure``), Node.js checked.

    ``M_STATION_ALLURE`` may name another Allure 3 CLI. ``ConfigError`` with what to do otherwise.
    """
    if shutil.which("node") is None:
        raise ConfigError("report: needs Node.js (node not found on PATH); install Node.js 20+ and npm, "
                          "then run `make install`")
    override = os.environ.get("M_STATION_ALLURE")
    if override:
        if not Path(override).is_file():
            raise ConfigError(f"report: M_STATION_ALLURE={override}: no such file (an Allure Report 3 CLI)")
        return Path(override)
    candidates = [repo_root() / "node_modules" / ".bin" / "allure",  # a checkout after `make install`
                  Path.cwd() / "node_modules" / ".bin" / "allure"]  # an installed wheel: npm install here
    on_path = shutil.which("allure")
    if on_path:
        candidates.append(Path(on_path))
    for cli in candidates:
        if cli.is_file():
            return cli
    raise ConfigError("report: Allure Report 3 not found (node_modules/.bin/allure of the checkout or of this "
                      "folder, or allure on PATH): run `npm install allure@3` here, or `make install` in the "
                      "checkout")


def strip_analytics(html: str) -> str:
    """Remove Allure's Google Analytics tag; ``InputError`` if any trace of it remains."""
    for pattern in _ANALYTICS_PATTERNS:
        html = pattern.sub("", html)
    lower = html.lower()
    left = [m for m in _ANALYTICS_MARKERS if m in lower]
    if left:
        raise InputError(f"report: could not remove the analytics tag ({', '.join(left)} left); not writing it")
    return html


def embedded_files(html: str) -> dict[str, bytes]:
    """The files a single-file Allure 3 report carries (``data/test-results/<id>.json``, widgets, attachments)."""
    files: dict[str, bytes] = {}
    for match in _EMBEDDED_RE.finditer(html):
        try:
            files[match.group(1)] = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            continue
    return files


def build_report(results_dir: str | Path, out_html: str | Path, *, report_name: str = "M-Station run",
                 record: dict[str, Any] | None = None, timeout_s: float = ALLURE_TIMEOUT_S) -> Path:
    """Build the single-file HTML of ``results_dir`` (allure-results) into ``out_html``.

    ``record``: the run's record for the overview (verdict, takt, operator prompts); by default the one
    beside the results (``record_of``)."""
    results = Path(results_dir)
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise InputError(f"{results}: no allure results (expected *-result.json files from a run)")
    out = Path(out_html)
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist")
    cli = find_allure()
    with tempfile.TemporaryDirectory(prefix="m-station-report-") as tmp:
        work = Path(tmp)
        config = work / "allurerc.json"
        if record is None:
            record = record_of(results)
        config.write_text(json.dumps(allure_config(report_name, run_overview(record)), indent=2), encoding="utf-8")
        run_info = work / "run-info"  # a second results folder: the run's own is left as the run wrote it
        run_info.mkdir()
        (run_info / "executor.json").write_text(json.dumps(executor_info(record, report_name)), encoding="utf-8")
        out_dir = work / "html"
        env = {**os.environ, "ALLURE_NO_ANALYTICS": "true", "NO_COLOR": "1"}
        try:
            done = subprocess.run([str(cli), "generate", str(results.resolve()), str(run_info), "--config", str(config),
                                   "--output", str(out_dir), "--cwd", str(work)],
                                  cwd=work, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise InputError(f"report: allure generate did not finish within {timeout_s:g} s") from None
        except OSError as exc:
            raise ConfigError(f"report: cannot run {cli}: {exc.strerror or exc}") from None
        pages = sorted(out_dir.glob("*.html")) if out_dir.is_dir() else []
        if done.returncode != 0 or not pages:
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else f"exit code {done.returncode}"
            raise InputError(f"report: allure generate failed: {why[:300]}")
        html = (out_dir / "index.html" if (out_dir / "index.html").is_file() else pages[0]).read_text("utf-8")
    html = strip_analytics(html)
    if not any(name.startswith("data/test-results/") for name in embedded_files(html)):
        raise InputError("report: allure generate wrote a report without test results; not writing it")
    atomic_write_text(out, html)
    return out
