"""``station run`` end to end on the twin: exit codes, records, Allure results, safe state, baselines."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from station.cli import main
from station.config import TwinConfig, to_toml
from station.limits import load_limits
from station.twin.runner import Twin

FAST = ("--", "--twin-time-scale", "0.005")  # the twin's own hardware time, 200x faster than real
SELFCHECK = ("test_mount_homing", "test_mount_repeatability", "test_light_linearity", "test_light_closed_loop")


def _record(reports: Path) -> dict:
    records = list((reports / "records").glob("*.json"))
    assert len(records) == 1, records
    return json.loads(records[0].read_text())


def _results(record: dict) -> list[dict]:
    folder = Path(record["paths"]["allure_results"])
    return [json.loads(p.read_text()) for p in folder.glob("*-result.json")]


def _labels(result: dict) -> dict[str, str]:
    return {label["name"]: label["value"] for label in result["labels"]}


def test_golden_factory_run_passes_with_a_record_and_allure_results(tmp_path: Path, capsys) -> None:
    reports = tmp_path / "reports"
    code = main(["run", "--reports", str(reports), "--no-report", "--dut-serial", "SN-0042", *FAST])
    out = capsys.readouterr().out
    assert code == 0, out
    record = _record(reports)
    assert record["outcome"] == "pass" and record["exit_code"] == 0
    assert [t["name"] for t in record["tests"]] == list(SELFCHECK)
    assert all(t["outcome"] == "passed" for t in record["tests"])
    # the record is named after the operator's serial and the run, which names the folders too
    assert Path(record["paths"]["record"]).name == f"SN-0042-{record['run_id']}.json"
    assert record["dut"]["serial"] == "SN-0042" and record["dut"]["reported_serial"].startswith("TWIN-")
    assert record["station"]["identities"]["light"].startswith("M-Station,TwinLight")
    assert record["start"].endswith("Z") and record["end"] > record["start"]
    # each measurement carries the limits file's unit and limits
    limits = load_limits()
    by_key = {m["key"]: m for m in record["measurements"]}
    assert set(by_key) == {"mount_home_error_mm", "mount_repeatability_mm", "light_linearity_r2",
                           "light_linearity_max_dev_pct", "light_closed_loop_error_pct"}
    for key, m in by_key.items():
        assert (m["unit"], m["low"], m["high"]) == (limits.measurements[key].unit, limits.measurements[key].low,
                                                   limits.measurements[key].high)
        assert m["verdict"] in ("pass", "marginal")
    assert by_key["light_linearity_r2"]["value"] > 0.999
    # Allure: one result per test, the measurement as a step with its parameters, the plot attached
    results = {r["name"]: r for r in _results(record)}
    assert set(results) == set(SELFCHECK)
    steps = [s for s in results["test_light_linearity"]["steps"] if s["name"].startswith("measure ")]
    params = {p["name"]: p["value"] for p in steps[0]["parameters"]}
    assert params["unit"] == "1" and params["limits"] == ">= 0.999 1" and params["verdict"] == "pass"
    assert any(a["type"] == "image/png" for a in results["test_light_linearity"]["attachments"])
    env = (Path(record["paths"]["allure_results"]) / "environment.properties").read_text()
    assert "firmware=golden" in env and "dut.serial=SN-0042" in env and "version.opencv=" in env
    assert f"record:   {record['paths']['record']}" in out and "PASS (exit 0)" in out


def test_a_light_that_stops_answering_is_a_station_fault_and_the_bench_is_left_safe(tmp_path: Path, capsys) -> None:
    # the light answers *IDN? and *CLS when the station opens, then never again: the first light
    # command of the plan (in test_light_linearity, after the two mount tests) goes unanswered
    with Twin(TwinConfig(time_scale=0.005, faults={"light_no_answer": 2})) as twin:
        config = replace(twin.config, light=replace(twin.config.light, timeout_s=0.1))
        station_file = tmp_path / "station.toml"
        station_file.write_text(to_toml(config))
        reports = tmp_path / "reports"
        code = main(["run", "--station", str(station_file), "--reports", str(reports), "--no-report"])
        out = capsys.readouterr().out
        assert code == 3, out
        record = _record(reports)
        assert record["outcome"] == "station-fault" and record["exit_code"] == 3
        tests = {t["name"]: t for t in record["tests"]}
        # what ran before the fault is kept, the run stopped after the faulty test
        assert [t["name"] for t in record["tests"]] == list(SELFCHECK[:3])
        assert tests["test_mount_homing"]["outcome"] == tests["test_mount_repeatability"]["outcome"] == "passed"
        assert {m["key"] for m in record["measurements"]} == {"mount_home_error_mm", "mount_repeatability_mm"}
        fault = tests["test_light_linearity"]
        assert fault["outcome"] == "failed" and fault["category"] == "station-fault"
        assert fault["message"].startswith("DeviceError: light: ") and "no answer" in fault["message"]
        assert "station fault in test_light_linearity" in record["reason"]
        results = {r["name"]: r for r in _results(record)}
        assert _labels(results["test_light_linearity"])["failure"] == "station-fault"
        assert results["test_light_linearity"]["status"] == "broken"
        # the bench is safe: light off, motion stopped (the rail does not move any more)
        assert twin.world.light.output is False
        stopped_at = twin.world.pose()
        time.sleep(0.2)
        assert twin.world.pose() == stopped_at
        assert "STATION-FAULT (exit 3)" in out
        # the silent light cannot say it is off; the independent lux meter confirms the dark
        assert twin.world.illuminance_lux() == 0.0
        assert record["safe_state"]["ok"] is True, record["safe_state"]


@pytest.mark.parametrize("interlock", ["mount-aux", "none"])
def test_a_light_that_dies_while_on_is_darkened_by_the_interlock_or_reported(tmp_path: Path, capsys,
                                                                              interlock: str) -> None:
    # the light goes silent the moment it first lights up: nothing can switch it off over its wire
    with Twin(TwinConfig(time_scale=0.005)) as twin:
        config = replace(twin.config, light=replace(twin.config.light, timeout_s=0.1, interlock=interlock))
        station_file = tmp_path / "station.toml"
        station_file.write_text(to_toml(config))
        stop = threading.Event()
        if interlock == "none":  # a bench without the relay: the light's power is simply on
            twin.world.light_interlock, twin.world.light_power = False, True

        def kill_light_when_on() -> None:
            while not stop.is_set():
                with twin.world.lock:
                    if twin.world.light.output:
                        twin.world.faults["light_no_answer"] = 0
                        return
                time.sleep(0.0005)

        watcher = threading.Thread(target=kill_light_when_on, daemon=True)
        watcher.start()
        try:
            code = main(["run", "--station", str(station_file), "--reports", str(tmp_path / "r"), "--no-report"])
        finally:
            stop.set()
            watcher.join()
        out = capsys.readouterr().out
        assert code == 3, out
        assert twin.world.light.output is True  # the dead light never took the OUTP OFF
        record = _record(tmp_path / "r")
        if interlock == "mount-aux":  # the controller reset opened the relay; the meter saw the dark
            assert twin.world.illuminance_lux() == 0.0 and twin.world.light_power is False
            assert record["safe_state"]["ok"] is True, record["safe_state"]
            assert "SAFE STATE NOT CONFIRMED" not in out
        else:  # the station must not claim a safe bench it cannot confirm
            assert twin.world.illuminance_lux() > 100
            assert record["safe_state"]["ok"] is False
            assert any("light still on" in p for p in record["safe_state"]["problems"])
            assert "SAFE STATE NOT CONFIRMED" in out


def test_a_regression_against_the_baseline_fails_the_product_with_its_delta(tmp_path: Path, capsys) -> None:
    reports = tmp_path / "reports"
    assert main(["run", "--plan", "regression", "--reports", str(reports), "--no-report", *FAST]) == 0
    golden = _record(reports)
    baseline_file = tmp_path / "golden.json"
    assert main(["baseline", "save", golden["run_id"], "--reports", str(reports), "-o", str(baseline_file)]) == 0
    saved = json.loads(baseline_file.read_text())
    measured = {m["key"]: m["value"] for m in golden["measurements"]}
    assert {k: v["value"] for k, v in saved["values"].items()} == pytest.approx(measured)
    # an approved build whose main-sensor black level sat 8 DN lower: today's build regressed by +8 DN
    shift_dn = 8.0
    saved["values"]["raw_black_level_dn[main]"]["value"] -= shift_dn
    baseline_file.write_text(json.dumps(saved))
    capsys.readouterr()

    reports2 = tmp_path / "reports2"
    code = main(["run", "--plan", "regression", "--baseline", str(baseline_file), "--reports", str(reports2),
                 "--no-report", *FAST])
    out = capsys.readouterr().out
    assert code == 1, out
    record = _record(reports2)
    assert record["outcome"] == "fail" and record["baseline"]["path"] == str(baseline_file)
    m = next(m for m in record["measurements"] if m["key"] == "raw_black_level_dn[main]")
    assert m["baseline"] == saved["values"]["raw_black_level_dn[main]"]["value"]
    assert m["delta"] == pytest.approx(m["value"] - m["baseline"]) == pytest.approx(shift_dn, abs=0.05)
    assert m["regression_verdict"] == "fail" and m["verdict"] == "fail" and m["limits_verdict"] == "pass"
    # the unshifted values stay within tolerance of their baseline
    other = next(m for m in record["measurements"] if m["key"] == "raw_black_level_dn[m]")
    assert other["regression_verdict"] == "pass" and abs(other["delta"]) < 0.05
    tests = {t["name"]: t for t in record["tests"]}
    assert tests["test_raw_dark_frame[m]"]["outcome"] == "passed"
    failed = tests["test_raw_dark_frame[main]"]
    assert failed["outcome"] == "failed" and failed["category"] == "product-defect"
    assert "raw_black_level_dn[main]" in failed["message"] and "baseline" in failed["message"]
    results = {r["name"]: r for r in _results(record)}
    assert _labels(results["test_raw_dark_frame[main]"])["failure"] == "product-defect"
    assert results["test_raw_dark_frame[main]"]["status"] == "failed"
    assert "FAIL (exit 1)" in out


def test_a_phone_on_another_firmware_than_asked_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with Twin(TwinConfig(time_scale=0.005)) as twin:  # runs golden
        station_file = tmp_path / "station.toml"
        station_file.write_text(to_toml(twin.config))
        code = main(["run", "--station", str(station_file), "--firmware", "bl-offset", "--reports",
                     str(tmp_path / "r"), "--no-report"])
        assert code == 2, capsys.readouterr().out
        record = _record(tmp_path / "r")
        assert record["outcome"] == "aborted" and record["dut"]["firmware"] == "golden"
        assert record["tests"][0]["category"] == "config-error"
        assert "--firmware says 'bl-offset'" in record["reason"]
        assert twin.world.light.output is False


def test_a_bad_station_file_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[light]\nresource = 3\n")
    reports = tmp_path / "reports"
    assert main(["run", "--station", str(bad), "--reports", str(reports)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
    assert not reports.exists()  # nothing started


@pytest.mark.parametrize("args, words", [
    (["--lens", "summicron-m-99-f9"], "not in the twin's catalog"),
    (["--dut-serial", "../etc/passwd"], "--dut-serial"),
    (["--firmware", "no-such-build"], "no such build"),
    (["--twin-fault", "no_such_fault"], "unknown fault"),
    (["--limits", "/nonexistent/limits.toml"], "no such limits file"),
    (["--baseline", "/nonexistent/base.json"], "no such baseline file"),
])
def test_bad_options_are_refused_before_anything_starts(tmp_path: Path, capsys, args: list[str],
                                                        words: str) -> None:
    assert main(["run", "--reports", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_a_baseline_comes_only_from_a_passing_run(tmp_path: Path, capsys) -> None:
    record = {"format": "m-station-record", "run_id": "20250101T000000Z-abcd", "outcome": "fail",
              "measurements": [{"key": "x", "value": 1.0, "unit": "DN"}]}
    path = tmp_path / "rec.json"
    path.write_text(json.dumps(record))
    assert main(["baseline", "save", str(path), "-o", str(tmp_path / "b.json")]) == 2
    assert "passing run" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()
