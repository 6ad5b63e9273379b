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


def allure_config(report_name: str) -> dict[str, Any]:
    """The ``allurerc.json`` of a run's report: awesome plugin, single file, our categories."""
    return {
        "name": report_name,
        "plugins": {"awesome": {"options": {"singleFile": True, "reportName": report_name,
                                            "stepTreeExpansion": "expand_failed_only"}}},
        "categories": {"rules": CATEGORIES},
    }


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
                 timeout_s: float = ALLURE_TIMEOUT_S) -> Path:
    """Build the single-file HTML of ``results_dir`` (allure-results) into ``out_html``."""
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
        config.write_text(json.dumps(allure_config(report_name), indent=2), encoding="utf-8")
        out_dir = work / "html"
        env = {**os.environ, "ALLURE_NO_ANALYTICS": "true", "NO_COLOR": "1"}
        try:
            done = subprocess.run([str(cli), "generate", str(results.resolve()), "--config", str(config),
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
