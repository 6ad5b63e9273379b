"""``station soak`` (issue 10 item 5): short runs in a row on one twin in one process, slopes per run.

The default test runs a few phones on the cheapest selection; memory is too noisy over so few runs to bound
tightly (frames come and go), so it is checked by the fit, and descriptors and threads must stay flat. A real
leak (a pytest plugin that keeps one descriptor open per run) must be found and fail the soak with exit 1.
The figure for N = 200 is measured with ``station soak --phones 200`` (see the report), not in the suite.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from station.cli import main

QUICK = ["--select", "test_light_linearity", "--max-rss-kib-per-run", "100000"]


def _soak(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["soak", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_a_short_soak_stays_flat_and_its_slopes_are_least_squares(capsys) -> None:
    code, doc = _soak(capsys, "--phones", "3", "--warmup", "0", *QUICK)
    assert code == 0 and doc["verdict"] == "pass", doc
    runs = doc["runs"]
    assert [r["run"] for r in runs] == [1, 2, 3] and all(r["exit"] == 0 for r in runs)
    assert all(r["rss_kib"] > 10_000 and r["fds"] >= 3 and r["threads"] >= 1 for r in runs)
    for key in ("rss_kib", "fds", "threads"):  # independent maths: numpy's least squares on the samples
        expected = np.polyfit(np.arange(0, 3), [r[key] for r in runs], 1)[0]
        assert doc["slopes"][f"{key}_per_run"] == pytest.approx(expected, abs=1e-9)
    assert doc["slopes"]["fds_per_run"] == 0.0 and doc["slopes"]["threads_per_run"] == 0.0


def test_a_leaking_station_fails_the_soak_with_exit_1(capsys) -> None:
    from tests.unit import soak_leak

    try:
        code, doc = _soak(capsys, "--phones", "3", "--warmup", "0", *QUICK, "--", "-p", "tests.unit.soak_leak")
    finally:
        soak_leak.release()
    assert code == 1 and doc["verdict"] == "fail" and doc["over"] == ["fds_per_run"], doc
    assert doc["slopes"]["fds_per_run"] == pytest.approx(1.0)


def test_a_failing_run_stops_the_soak_with_its_own_exit_code(capsys) -> None:
    code, doc = _soak(capsys, "--phones", "5", "--warmup", "1", *QUICK, "--twin-fault", "light_scpi_error")
    assert code == 3 and doc["verdict"] == "run-failed" and doc["failed_run"] == 1, doc
    assert any("station fault in test_light_linearity" in line for line in doc["failed_output"]), doc


@pytest.mark.parametrize(("argv", "word"), [
    (["--phones", "0"], "--phones 0"),
    (["--phones", "3", "--warmup", "2"], "--warmup 2"),
    (["--time-scale", "nan"], "--time-scale nan"),
    (["--select", "a\nb"], "--select"),
    (["--twin-fault", "no_such_fault"], "--twin-fault"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, argv: list[str], word: str) -> None:
    assert main(["soak", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"station soak: error: {word}") and "\n" not in err
