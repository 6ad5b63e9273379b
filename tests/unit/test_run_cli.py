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


#: The default suite's factory run: one M lens, the zebra and peaking calibrations, the sensor sweeps and the
#: geometry left out (``tests/unit/test_procedures_*`` check those procedures against the twin's truth; the
#: slow test runs the whole plan on the whole catalog).
LENS = "summicron-m-50-f2"
QUICK = ("-k", "not zebra and not peaking and not sensor_characterization and not geometry")


def _check_factory_run(record: dict, lenses: list[str], out: str, *, whole: bool = True) -> None:
    """A passing factory run: every test passed, each measurement with the limits file's unit and limits,
    a valid profile (with its digest) for main, m bare and each lens, listed in the record, Allure results."""
    from calibration.profile import loads_profile, verify_digest

    assert record["outcome"] == "pass" and record["exit_code"] == 0, record["reason"]
    assert all(t["outcome"] == "passed" for t in record["tests"]), [t for t in record["tests"] if
                                                                     t["outcome"] != "passed"]
    names = [t["name"] for t in record["tests"]]
    assert names[:4] == list(SELFCHECK)  # the self-check first, before anything touches the phone
    assert names[-1] == "test_calibration_writeback"
    assert record["lenses"] == lenses
    limits = load_limits()
    for m in record["measurements"]:
        expected = limits.limits_for(m["name"], m["case"])
        assert (m["unit"], m["low"], m["high"]) == (expected.unit, expected.low, expected.high), m["key"]
        assert m["verdict"] in ("pass", "marginal")
    cases = ["main", "m", *(f"m/{lens}" for lens in lenses)]
    by_case = {p["case"]: p for p in record["profiles"]}
    assert sorted(by_case) == sorted(cases)
    for case in cases:
        path = Path(by_case[case]["path"])
        assert path.parent == Path(record["paths"]["run_dir"]) / "profiles"
        doc = loads_profile(path.read_text())
        assert verify_digest(doc) and doc["digest"] == by_case[case]["digest"]
        sensor, _, lens = case.partition("/")
        assert (doc["sensor"], doc["lens"]) == (sensor, lens or None)
        assert "shading" in doc
        if case != "m":
            assert {"sfr", "chromatic"} <= set(doc) and ("geometry" in doc or not whole)
        if whole:
            assert "sensor_response" in doc or lens
        if lens:
            assert doc["focus"]["edges_used"] >= 40 and len(doc["sfr"]["apertures"]) == 2
    keys = {m["key"] for m in record["measurements"]}
    for lens in lenses:
        assert {f"adapter_back_focus_mm[m/{lens}]", f"mtf50_centre_cpp[m/{lens}/f8]"} <= keys
    assert record["calibration"]["mismatched"] == [] and record["calibration"]["bytes"] > 0
    # Allure: one result per test, measurements as steps with their limits, pictures attached
    listed = _results(record)
    assert len(listed) == len(record["tests"])
    results = {r["fullName"].split("#")[-1]: r for r in listed}  # by test function (titles are for people)
    steps = [s for s in results["test_light_linearity"]["steps"] if s["name"].startswith("light_linearity_r2 ")]
    params = {p["name"]: p["value"] for p in steps[0]["parameters"]}
    assert params["unit"] == "1" and params["limits"] == ">= 0.999 1" and params["verdict"] == "pass"
    assert steps[0]["name"].endswith("  [>= 0.999]  pass")
    sfr = results["test_sfr"]
    pictures = [a["name"] for a in sfr["attachments"] if a["type"] == "image/png"]
    assert any("MTF curves" in n for n in pictures) and any("slanted-edge capture" in n for n in pictures)
    env = (Path(record["paths"]["allure_results"]) / "environment.properties").read_text()
    assert "firmware=golden" in env and "version.opencv=" in env
    assert f"record:   {record['paths']['record']}" in out and "PASS (exit 0)" in out
    assert f"profiles: {len(cases)} in" in out


def test_golden_factory_run_passes_with_a_record_profiles_and_allure_results(tmp_path: Path, capsys) -> None:
    """The bench rehearsal of the factory plan (one M lens): the twin as pure hardware (no [twin] in the station
    TOML), every change made by the line's robot over --operator tcp:// (tests/unit/robot.py)."""
    from tests.unit.bench_twin import bench_twin
    from tests.unit.robot import Robot

    reports = tmp_path / "reports"
    with bench_twin(tmp_path, faults=UNIT) as bench, Robot(bench.control) as robot:
        code = main(["run", "--station", str(bench.toml), "--operator", robot.address, "--reports", str(reports),
                     "--no-report", "--dut-serial", bench.serial, "--lens", LENS, "--", *QUICK])
        blocks = _phone_blob(bench.toml) if code == 0 else {}
    out = capsys.readouterr().out
    assert code == 0, out
    record = _record(reports)
    _check_factory_run(record, [LENS], out, whole=False)
    assert record["station"]["twin"] is False and record["operator"]["kind"] == "tcp"
    assert record["operator_requests"] == len(robot.requests) > 0
    assert f"operator: {len(robot.requests)} request(s) (tcp)" in out
    assert record["incomplete"] is True and record["tests_never_ran"] > 0  # QUICK is a subset of the plan
    assert not any("of" in r for r in robot.requests)  # a part of the plan: its declared N would over-count
    # the record is named after the operator's serial and the run, which names the folders too
    assert Path(record["paths"]["record"]).name == f"{bench.serial}-{record['run_id']}.json"
    assert record["dut"]["serial"] == bench.serial and record["dut"]["reported_serial"].startswith("TWIN-")
    assert record["station"]["identities"]["light"].startswith("M-Station,TwinLight")
    assert record["start"].endswith("Z") and record["end"] > record["start"]
    env = (Path(record["paths"]["allure_results"]) / "environment.properties").read_text()
    assert f"dut.serial={bench.serial}" in env
    _check_blob_against_truth(record, blocks)


#: The bench's phone is a unit of its own (as the factory plan's twin is by default): defects, gains, pose.
UNIT = {"unit_variation": True, "sensor_defects": True}


def _phone_blob(toml: Path) -> dict:
    """The checksummed calibration blob the phone holds, read over its own wire after the run."""
    from station import calblob
    from station.config import load_config
    from station.devices.phone import PhoneClient

    with PhoneClient(load_config(toml).dut, name="dut") as phone:
        return calblob.read_blocks(phone)


def _check_blob_against_truth(record: dict, blocks: dict) -> None:
    """The blob the run wrote (AF, pose, AWB, defects) against the twin's held-out truth of the unit."""
    import numpy as np

    from calibration.af import extension_um
    from calibration.stereo import rotation_angle_deg
    from station.twin.lenses import MAIN_LENS, actuator_truth, sensor_pose_truth

    serial = record["dut"]["reported_serial"]
    assert record["calblob"]["blocks"] == [b for b in ("dpc", "afc", "wbc", "lsc", "pose") if b in blocks]
    assert {"dpc", "afc", "wbc", "pose"} <= set(blocks) and record["calblob"]["bytes"] > 0
    af, truth = blocks["afc"].content["main"], actuator_truth(serial)
    inf_um = abs(af["infinity_code"] - truth["infinity_code"]) * truth["um_per_code"]
    true_macro = truth["infinity_code"] + extension_um(MAIN_LENS.focal_length_mm, af["macro_distance_mm"]) / \
        truth["um_per_code"]
    macro_um = abs(af["macro_code"] - true_macro) * truth["um_per_code"]
    pose, true_pose = blocks["pose"].content[f"m/{LENS}"], sensor_pose_truth(serial)
    angle = rotation_angle_deg(np.array(pose["rotation"]) @ np.array(true_pose["rotation"]).T)
    offset = float(np.linalg.norm(np.array(pose["centre_mm"]) - np.array(true_pose["centre_mm"])))
    print(f"\nplan run vs truth: AF infinity {inf_um:.1f} um, macro {macro_um:.1f} um off (depth of focus "
          f"+-{af['depth_of_focus_um']} um); pose {angle:.4f} deg, {offset:.3f} mm off")
    assert inf_um <= af["depth_of_focus_um"] and macro_um <= af["depth_of_focus_um"]
    assert af["hyperfocal_check"]["pass"]
    assert angle < 0.1 and offset < POSE_TOLERANCE_MM


#: The pose's centre against truth (issue 14): 0.2 mm, on the plan's one ChArUco chart (the geometry board), the
#: views at two rail distances and the rig's bundle adjustment tying the 50 mm lens's focal length.
POSE_TOLERANCE_MM = 0.2


@pytest.mark.slow
def test_the_whole_factory_plan_on_the_catalog_passes_with_a_profile_for_every_lens(tmp_path: Path, capsys) -> None:
    from station.twin.lenses import M_LENSES

    reports = tmp_path / "reports"
    code = main(["run", "--reports", str(reports), "--no-report",
                 *(arg for lens in sorted(M_LENSES) for arg in ("--lens", lens))])
    out = capsys.readouterr().out
    assert code == 0, out
    _check_factory_run(_record(reports), sorted(M_LENSES), out)


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
        results = {r["fullName"].split("#")[-1]: r for r in _results(record)}  # by test function
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


#: The test named for each feature a firmware regression alters (``station.twin.firmware``'s ``feature``).
FEATURE_TEST = {"raw": "test_raw_integrity", "zebra": "test_zebra", "peaking": "test_peaking",
                "histogram": "test_histogram", "preview": "test_preview_shading"}
#: Image-quality tests measured on the RAW itself: a RAW regression may also show there (a black-level offset
#: tints the ColorChecker's dark patches: bl-offset raises CIEDE2000 max by about 4), an app feature's never.
RAW_IQ_TESTS = {"test_sfr", "test_raw_shading", "test_color", "test_noise"}
#: The default suite runs two representative builds (one RAW, one app feature) with -x; the slow test all of them.
QUICK_BUILDS = ("bl-offset", "zebra-shift")


@pytest.fixture(scope="module")
def golden_baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The golden build's regression run (it must pass) and the baseline saved from it, once per module: the
    bench rehearsal of the regression plan (the twin as pure hardware, the robot over --operator tcp://)."""
    from tests.unit.bench_twin import bench_twin
    from tests.unit.robot import Robot

    folder = tmp_path_factory.mktemp("baseline")
    reports = folder / "reports"
    with bench_twin(folder) as bench, Robot(bench.control) as robot:
        assert main(["run", "--plan", "regression", "--station", str(bench.toml), "--operator", robot.address,
                     "--reports", str(reports), "--no-report", "--lens", LENS]) == 0
    golden = _record(reports)
    assert golden["station"]["twin"] is False and golden["operator_requests"] == len(robot.requests) > 0
    # the plan's declared scene needs (station.plans.regression.scene_needs) gave every request its "of N"
    assert [r.get("of") for r in robot.requests] == [len(robot.requests)] * len(robot.requests)
    assert golden["incomplete"] is False
    baseline_file = folder / "golden.json"
    assert main(["baseline", "save", golden["run_id"], "--reports", str(reports), "-o", str(baseline_file)]) == 0
    return baseline_file, golden


def _regression_run(tmp_path: Path, build: str, baseline_file: Path, *extra: str) -> tuple[int, dict, str]:
    import contextlib
    import io

    reports = tmp_path / build
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", "--plan", "regression", "--firmware", build, "--baseline", str(baseline_file),
                     "--reports", str(reports), "--no-report", "--lens", LENS, *extra])
    return code, _record(reports), out.getvalue()


def _check_regression_caught(build: str, code: int, record: dict, out: str, *, only: bool) -> None:
    from station.twin.firmware import firmware_catalog

    named = FEATURE_TEST[firmware_catalog()[build]["feature"]]
    assert code == 1 and record["outcome"] == "fail", out
    failed = [t for t in record["tests"] if t["outcome"] != "passed" and t["outcome"] != "skipped"]
    assert failed and all(t["category"] == "product-defect" for t in failed), failed
    assert any(t["name"].split("[")[0] == named for t in failed), (build, named, [t["name"] for t in failed])
    if only:  # the whole plan ran: nothing but the test named for the regression failed (and, for a RAW
        # regression, image quality measured on that RAW)
        others = {t["name"].split("[")[0] for t in failed} - {named}
        allowed = RAW_IQ_TESTS if named == "test_raw_integrity" else set()
        assert others <= allowed, (build, [t["name"] for t in failed])
    # the report shows the failing measurement with its baseline and delta
    failing = [m for m in record["measurements"] if m["verdict"] == "fail"]
    assert failing and any(named.removeprefix("test_").split("_")[0] in m["name"] for m in failing)
    bad = next(r for r in _results(record) if r["fullName"].split("#")[-1] == named and r["status"] == "failed")
    assert _labels(bad)["failure"] == "product-defect"
    with_baseline = [s for s in bad.get("steps", []) if "  (baseline " in s["name"] and
                     any(p["name"] == "delta" for p in s["parameters"])]
    assert with_baseline, "the failing test's measurements carry the baseline and delta"
    assert "FAIL (exit 1)" in out
    # the terminal: one line per failed measurement (name, value, unit, limits), no traceback, no unit "1"
    for m in failing:
        (line,) = [x for x in out.splitlines() if x.startswith(f"  failed:   {m['name']} [{m['case']}] = ")]
        assert "limits" in line and " 1," not in line and not line.endswith(" 1")
    assert "Traceback" not in out and "b'" not in out


def test_the_golden_builds_regression_run_passes_and_makes_a_baseline(golden_baseline) -> None:
    baseline_file, golden = golden_baseline
    saved = json.loads(baseline_file.read_text())
    measured = {m["key"]: m["value"] for m in golden["measurements"] if m["value"] is not None}
    assert {k: v["value"] for k, v in saved["values"].items()} == pytest.approx(measured)
    assert {"raw_black_level_dn[main]", "mtf50_centre_cpp[main]", "preview_shading_corner_ratio[main]",
            "zebra_mask_mismatch_pct[main/luma]", "noise_snr[main]"} <= set(saved["values"])
    assert saved["firmware"] == "golden"


@pytest.mark.parametrize("build", QUICK_BUILDS)
def test_a_regression_build_fails_the_test_named_for_it(tmp_path: Path, golden_baseline, build: str) -> None:
    code, record, out = _regression_run(tmp_path, build, golden_baseline[0], "--", "-x")
    _check_regression_caught(build, code, record, out, only=False)
    if build == "bl-offset":  # the delta is the build's own offset, against the approved build's value
        from station.twin.firmware import BLACK_OFFSET_DN

        m = next(m for m in record["measurements"] if m["key"] == "raw_black_level_dn[main]")
        assert m["delta"] == pytest.approx(BLACK_OFFSET_DN, abs=0.1) and m["regression_verdict"] == "fail"


@pytest.mark.slow
def test_every_regression_build_fails_only_the_test_named_for_it_and_golden_passes(tmp_path: Path,
                                                                                   golden_baseline) -> None:
    from station.twin.firmware import FIRMWARE_BUILDS

    code, record, out = _regression_run(tmp_path, "golden", golden_baseline[0])
    assert code == 0 and record["outcome"] == "pass", out
    assert all(m.get("regression_verdict") in (None, "pass") for m in record["measurements"])
    for build in FIRMWARE_BUILDS:
        if build == "golden":
            continue
        code, record, out = _regression_run(tmp_path, build, golden_baseline[0])
        _check_regression_caught(build, code, record, out, only=True)


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
    (["--lens", "summicron-m-99-f9"], "not in the station's lens catalogue"),
    (["--lens-catalog", "/nonexistent/lenses.toml"], "--lens-catalog /nonexistent/lenses.toml: cannot read"),
    (["--operator", "robot"], "--operator 'robot': expected prompt, twin or tcp://HOST:PORT"),
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
