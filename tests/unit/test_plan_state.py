"""Issue 11 item 3: the plans pass what one test captures for another through a session store with explicit
scope (``station.plans.helpers.Kept``, the ``kept`` fixture), not module-level dicts: ``-k`` on a test whose
input another test takes fails in one line naming that test, never with a KeyError or a silent skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.cli import main
from station.plans.helpers import Kept


def test_station_run_of_the_lateral_ca_alone_says_it_needs_test_sfr(tmp_path: Path, capsys) -> None:
    reports = tmp_path / "reports"
    code = main(["run", "--reports", str(reports), "--no-report", "--", "-k", "test_lateral_ca and not lens"])
    out = capsys.readouterr().out
    (record,) = [json.loads(p.read_text()) for p in (reports / "records").glob("*.json")]
    (test,) = record["tests"]
    assert code == 1 and test["name"] == "test_lateral_ca" and test["outcome"] == "failed", out
    assert test["message"].startswith("Failed: sfr/main: needs the slanted-edge capture, which test_sfr takes")
    assert "\n" not in test["message"] and "Traceback" not in out


def test_kept_gives_what_was_kept_and_fails_naming_the_test_that_keeps_it() -> None:
    kept = Kept()
    kept["sfr/main"] = capture = object()
    assert kept.need("sfr/main", "the slanted-edge capture", "test_sfr") is capture
    with pytest.raises(pytest.fail.Exception, match=r"^sfr/m/x: needs the edges, which test_y takes"):
        kept.need("sfr/m/x", "the edges", "test_y")
