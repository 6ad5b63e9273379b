"""Regression baselines: made from passing runs only, read back, compared per the limits' tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.baseline import baseline_from_record, load_baseline, save_baseline
from station.errors import InputError
from station.measurements import Limits, Tolerance, measure
from station.records import RunRecord


def _record(tmp_path: Path, outcome_failed: bool = False) -> Path:
    record = RunRecord(run_id="20250101T000000Z-abcd", records_dir=tmp_path / "records", plan="regression")
    record.update(dut={"serial": "SN1", "firmware": "golden"}, station={"name": "twin"},
                  limits={"path": "limits/m-phone.toml", "product": "m-phone", "version": "1.0"})
    for case, value in (("main", 64.0012), ("m", 63.9974)):
        record.add_measurement(measure("raw_black_level_dn", value, Limits(unit="DN", low=32, high=128),
                                       case=case), "t::a")
    record.add_measurement(measure("raw_dark_noise_dn", float("nan"), Limits(unit="DN", high=8)), "t::b")
    record.add_test("t::a", "a", "passed")
    record.add_test("t::b", "b", "failed" if outcome_failed else "passed", category="product-defect")
    record.finish()
    return record.write()


def test_a_baseline_holds_the_values_of_a_passing_run(tmp_path: Path) -> None:
    path = _record(tmp_path)
    out = save_baseline(path, tmp_path / "golden.json")
    doc = json.loads(out.read_text())
    assert doc["format"] == "m-station-baseline" and doc["firmware"] == "golden" and doc["run_id"]
    assert doc["values"] == {"raw_black_level_dn[main]": {"value": 64.0012, "unit": "DN"},
                             "raw_black_level_dn[m]": {"value": 63.9974, "unit": "DN"}}  # NaN is no baseline
    baseline = load_baseline(out)
    assert baseline.get("raw_black_level_dn[main]") == 64.0012 and baseline.get("nothing") is None
    assert baseline.units["raw_black_level_dn[m]"] == "DN"
    assert baseline.describe()["firmware"] == "golden" and baseline.describe()["path"] == str(out)
    # compared with a later value by the limits' tolerance
    m = measure("raw_black_level_dn", 72.0012, Limits(unit="DN", low=32, high=128), case="main",
                baseline=baseline.get("raw_black_level_dn[main]"), tolerance=Tolerance(tolerance_abs=1.0))
    assert m.delta == pytest.approx(8.0) and m.regression_verdict == "fail"


def test_a_failed_run_makes_no_baseline(tmp_path: Path) -> None:
    path = _record(tmp_path, outcome_failed=True)
    with pytest.raises(InputError, match="outcome is 'fail'; a baseline comes only from a passing run"):
        save_baseline(path, tmp_path / "golden.json")
    assert not (tmp_path / "golden.json").exists()


def test_a_run_without_values_makes_no_baseline() -> None:
    with pytest.raises(InputError, match="no measurements"):
        baseline_from_record({"outcome": "pass", "measurements": []})


@pytest.mark.parametrize("content, words", [
    ("{", "not a readable JSON baseline"),
    (json.dumps({"format": "m-station-record"}), "not an m-station baseline"),
    (json.dumps({"format": "m-station-baseline", "values": []}), "values: [] is not a table"),
    (json.dumps({"format": "m-station-baseline", "values": {"x": {"value": "7"}}}),
     "values.x.value: '7' is not a number"),
    ('{"format": "m-station-baseline", "values": {"x": {"value": NaN}}}', "values.x.value: nan: not a finite number"),
    (json.dumps({"format": "m-station-baseline", "values": {"x": {"value": 1, "unti": "mm"}}, "station": "a\nb"}),
     "2 problems: station: 'a\\nb': control characters"),
    ("[" * 100000, "not a readable JSON baseline"),
])
def test_bad_baselines_are_one_line_errors(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        load_baseline(path)
    assert words in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_baseline_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such baseline file"):
        load_baseline(tmp_path / "none.json")
    with pytest.raises(InputError, match="/dev/zero: not a regular file"):
        load_baseline("/dev/zero")
