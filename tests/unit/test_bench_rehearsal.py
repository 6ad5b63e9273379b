"""The bench rehearsal: the twin as pure hardware (a station TOML without ``[twin]``) and every chart, lens
and aperture change made by a line's robot over ``--operator tcp://`` (``tests/unit/robot.py``, which acts only
through the twin's control interface). A missed step is caught by the scene's check; a wrong chart is asked
for again. Subsets of the plans keep it cheap: the procedures themselves are checked in test_procedures_*."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from station.cli import main
from station.config import load_config
from station.operator.tcp import TcpOperator
from station.scene import Scene
from station.station import Station
from tests.unit.bench_twin import bench_twin
from tests.unit.robot import Robot

LENS = "summicron-m-50-f2"
#: The main sensor's shading: one flat field request, cheap.
MAIN_SHADING = ("-k", "test_02_flat and test_shading and not bare and not lens")


def _record(reports: Path) -> dict:
    (path,) = sorted((reports / "records").glob("*.json"))
    return json.loads(path.read_text())


def _run(tmp_path: Path, robot: Robot, bench, *extra: str) -> tuple[int, dict]:
    reports = tmp_path / "reports"
    code = main(["run", "--station", str(bench.toml), "--operator", robot.address, "--dut-serial", bench.serial,
                 "--reports", str(reports), "--no-report", "--lens", LENS, *extra])
    return code, _record(reports)


def test_a_bench_toml_has_no_twin_and_the_station_opens_without_one(tmp_path: Path) -> None:
    with bench_twin(tmp_path) as bench:
        config = load_config(bench.toml)
        assert config.twin is None
        with Station.open(config) as station:
            assert station.twin is None


def test_a_missed_chart_change_is_a_setup_fault_after_three_requests(tmp_path: Path, capsys) -> None:
    with bench_twin(tmp_path) as bench, Robot(bench.control, never="flat") as robot:
        code, record = _run(tmp_path, robot, bench, "--", *MAIN_SHADING)
    out = capsys.readouterr().out
    assert code == 3 and record["outcome"] == "setup-fault", record["reason"]
    assert "bench device failed" not in out and "setup fault" in out
    assert [r["chart"] for r in robot.requests] == ["flat"] * 3
    assert record["operator_requests"] == 3 and "operator: 3 request(s) (tcp)" in out


def test_a_wrong_chart_is_asked_for_again_and_the_run_goes_on(tmp_path: Path, capsys) -> None:
    with bench_twin(tmp_path) as bench, Robot(bench.control, wrong_first="flat") as robot:
        code, record = _run(tmp_path, robot, bench, "--", *MAIN_SHADING)
    out = capsys.readouterr().out
    assert code == 0, out
    assert [(r["chart"], r["step"]) for r in robot.requests] == [("flat", 1), ("flat", 2)]
    assert "not a flat field" in record["operator_log"][0]["problem"]
    assert record["operator_requests"] == 2 and record["incomplete"] is True
    assert "INCOMPLETE" in out and "never ran" in out


@pytest.fixture
def bench_station(tmp_path: Path):
    with bench_twin(tmp_path) as bench, Robot(bench.control) as robot:
        station = Station.open(load_config(bench.toml))
        station.operator = Scene(station, TcpOperator("127.0.0.1", robot.port))
        try:
            yield station, robot
        finally:
            station.safe_state()
            station.operator.operator.close()
            station.close()


def test_peaking_flats_on_a_bench_are_flat_fields_asked_of_the_operator(bench_station) -> None:
    """Today's bug: ``_flats`` swapped charts only on the twin; on a bench the 'flat fields' were star frames."""
    from station.procedures.captures import lit
    from station.procedures.peaking import _flats

    station, robot = bench_station
    station.operator.chart("siemens", sensor="main")
    with lit(station, 50.0):
        lumas = _flats(station, "main", "siemens", 1)
    assert [r["chart"] for r in robot.requests] == ["siemens", "flat"]
    centre = lumas[0][lumas[0].shape[0] // 4: -lumas[0].shape[0] // 4, lumas[0].shape[1] // 4: -lumas[0].shape[1] // 4]
    assert float(np.std(centre)) < 0.05 * float(np.mean(centre)) + 2.0  # a flat field, no star


def test_raw_integrity_on_a_bench_asks_for_the_step_chart(bench_station) -> None:
    """Today's bug: the ramp chart was put up only on the twin; on a bench the ColorChecker stayed up."""
    from station.procedures.color import CHART_FILL
    from station.procedures.framing import frame_scene, framing_distance_mm
    from station.procedures.raw_checks import check_raw_integrity
    from targets.colorchecker import ColorCheckerChart

    station, robot = bench_station
    frame_scene(station, "main", None, framing_distance_mm(station, "main", None, ColorCheckerChart().width_mm,
                                                           CHART_FILL))
    result = check_raw_integrity(station, "main", colour_chart="colorchecker", ramp_chart="steps")
    assert [r["chart"] for r in robot.requests] == ["colorchecker", "steps"]
    assert result.codes["missing_count"] == 0
