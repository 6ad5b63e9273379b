"""Run records: failure kinds, outcome precedence, atomic writes, names from serials, finding runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from station.errors import ConfigError, DeviceError, InputError, ProductError, StationError
from station.measurements import Limits, measure
from station.records import (
    CONFIG_ERROR,
    PRODUCT_DEFECT,
    STATION_FAULT,
    RunRecord,
    check_serial,
    decide_outcome,
    failure_kind,
    file_safe_serial,
    find_run,
    load_record,
    new_run_id,
)


class _BenchTroubleError(StationError):
    exit_code = 3


def _caused_by_device() -> RuntimeError:
    try:
        try:
            raise DeviceError("mount", "ALARM:1 hard limit")
        except DeviceError as inner:
            raise RuntimeError("capture sweep aborted") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize("exc, kind", [
    (DeviceError("light", "no answer"), STATION_FAULT),
    (_BenchTroubleError("bench"), STATION_FAULT),
    (_caused_by_device(), STATION_FAULT),
    (AssertionError("mtf50 low"), PRODUCT_DEFECT),
    (ProductError("calibration rejected"), PRODUCT_DEFECT),
    (InputError("truncated RAW10"), PRODUCT_DEFECT),
    (ValueError("no edge"), PRODUCT_DEFECT),
    (ConfigError("limits: x"), CONFIG_ERROR),
    (pytest.UsageError("--dut-serial mismatch"), CONFIG_ERROR),
])
def test_failure_kinds(exc: BaseException, kind: str) -> None:
    assert failure_kind(exc) == kind


def _t(name: str, outcome: str, category: str | None = None) -> dict:
    return {"name": name, "outcome": outcome, "category": category, "message": f"{name} says"}


@pytest.mark.parametrize("tests, kwargs, expected", [
    ([_t("a", "passed"), _t("b", "passed")], {}, ("pass", 0)),
    ([_t("a", "passed"), _t("b", "skipped")], {}, ("pass", 0)),
    ([_t("a", "failed", PRODUCT_DEFECT), _t("b", "passed")], {}, ("fail", 1)),
    ([_t("a", "failed", PRODUCT_DEFECT), _t("b", "error", STATION_FAULT)], {}, ("station-fault", 3)),
    ([_t("a", "error", STATION_FAULT), _t("b", "failed", CONFIG_ERROR)], {}, ("station-fault", 3)),
    ([_t("a", "failed", PRODUCT_DEFECT), _t("b", "error", CONFIG_ERROR)], {}, ("aborted", 2)),
    ([_t("a", "failed", PRODUCT_DEFECT)], {"interrupted": True}, ("aborted", 130)),
    ([_t("a", "error", STATION_FAULT)], {"interrupted": True}, ("station-fault", 3)),
    ([_t("a", "passed")], {"collection_errors": 1}, ("aborted", 2)),
    ([], {}, ("aborted", 2)),
    ([_t("a", "skipped")], {}, ("aborted", 2)),
])
def test_outcome_precedence(tests: list, kwargs: dict, expected: tuple) -> None:
    outcome, code, reason = decide_outcome(tests, **kwargs)
    assert (outcome, code) == expected
    if outcome == "station-fault":
        assert reason.startswith("station fault in ") and "says" in reason


def test_the_record_is_rewritten_after_each_test_and_renamed_when_the_serial_is_known(tmp_path: Path) -> None:
    run_id = new_run_id()
    record = RunRecord(run_id=run_id, records_dir=tmp_path / "records", plan="factory")
    first = record.write()
    assert first == tmp_path / "records" / f"unknown-{run_id}.json"
    record.update(dut={"serial": "SN 7/../x"})  # from a phone: made safe, never a path
    m = measure("mount_repeatability_mm", 0.004, Limits(unit="mm", high=0.02))
    record.add_measurement(m, "t::a")
    record.add_test("t::a", "a", "passed")
    second = record.write()
    assert second.name == f"SN_7_.._x-{run_id}.json" and second.parent == first.parent
    assert not first.exists() and sorted(p.name for p in first.parent.iterdir()) == [second.name]
    data = load_record(second)
    assert data["measurements"][0]["key"] == "mount_repeatability_mm" and data["tests"][0]["outcome"] == "passed"
    assert data["outcome"] is None  # not finished: a crash here still leaves what ran
    record.add_test("t::b", "b", "failed", category=PRODUCT_DEFECT, message="AssertionError: x")
    record.finish()
    record.write()
    data = load_record(second)
    assert (data["outcome"], data["exit_code"]) == ("fail", 1)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", data["end"]) and data["end"] >= data["start"]


def test_a_record_without_folder_stays_in_memory() -> None:
    record = RunRecord(run_id=new_run_id())
    assert record.path is None and record.write() is None


@pytest.mark.parametrize("serial", ["SN-0042", "a", "R5CX123ABC", "unit_7.2"])
def test_good_serials(serial: str) -> None:
    assert check_serial(serial) == serial and file_safe_serial(serial) == serial


@pytest.mark.parametrize("serial", ["", "../etc/passwd", "a b", "-x", "x" * 65, "é"])
def test_serials_that_would_reach_a_path_badly_are_refused(serial: str) -> None:
    with pytest.raises(ConfigError, match="--dut-serial"):
        check_serial(serial)
    safe = file_safe_serial(serial)
    assert "/" not in safe and " " not in safe and safe and not safe.startswith((".", "-"))


def test_run_ids_are_fresh() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) > 40 and all(re.match(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$", i) for i in ids)


def test_find_run_by_id_folder_record_and_latest(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    ids = ["20250101T000000Z-aaaa", "20250102T000000Z-bbbb"]
    for run_id in ids:
        (reports / "runs" / run_id).mkdir(parents=True)
        rec = RunRecord(run_id=run_id, records_dir=reports / "records", data={"paths": {
            "run_dir": str(reports / "runs" / run_id)}})
        rec.update(dut={"serial": "SN1"})
        rec.write()
    assert find_run(reports) == (ids[1], reports / "records" / f"SN1-{ids[1]}.json", reports / "runs" / ids[1])
    assert find_run(reports, ids[0])[1] == reports / "records" / f"SN1-{ids[0]}.json"
    assert find_run(reports, str(reports / "runs" / ids[0]))[0] == ids[0]
    assert find_run(reports, str(reports / "records" / f"SN1-{ids[0]}.json"))[2] == reports / "runs" / ids[0]
    with pytest.raises(InputError, match="not a run id"):
        find_run(reports, "latest; rm -rf /")
    with pytest.raises(InputError, match="no runs yet"):
        find_run(tmp_path / "empty")


def test_load_record_refuses_other_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="not an m-station run record"):
        load_record(path)
    path.write_text("{")
    with pytest.raises(InputError, match="not a readable JSON record"):
        load_record(path)


def test_load_record_lists_every_problem_of_a_garbled_record(tmp_path: Path) -> None:
    record = RunRecord(run_id=new_run_id(), records_dir=tmp_path, plan="factory")
    path = record.write()
    good = json.loads(path.read_text())
    assert load_record(path) == good
    bad = dict(good, run_id="../../etc", outcome="maybe", measurements=[{"name": "x", "key": "x", "value": "7"}])
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError) as err:
        load_record(path)
    text = str(err.value)
    assert text.startswith(f"{path}: 3 problems: ") and "\n" not in text, text
    assert "run_id: '../../etc': allowed: a run id" in text and "outcome: 'maybe' not allowed" in text
    assert "measurements[0].value: '7' is not a number" in text
    with pytest.raises(InputError, match="/dev/zero: not a regular file"):
        load_record("/dev/zero")


def test_serials_with_a_trailing_newline_are_refused() -> None:
    """``$`` matches before a final newline: the serial check uses a full match."""
    assert check_serial("SN-1") == "SN-1"
    with pytest.raises(ConfigError, match="--dut-serial"):
        check_serial("SN-1\n")


def test_a_record_of_every_outcome_loads(tmp_path) -> None:
    """The record model admits every outcome a run can end with (a new outcome must not make records unreadable)."""
    from station.records import EXIT_CODES, load_record

    for outcome, code in EXIT_CODES.items():
        path = tmp_path / f"{outcome}.json"
        path.write_text(json.dumps({"format": "m-station-record", "run_id": "20261205T160000Z-abcd",
                                    "outcome": outcome, "exit_code": code}))
        assert load_record(path)["outcome"] == outcome
