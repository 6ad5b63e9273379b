"""The fault matrix (issue 10): every fault of the twin's registry, injected into a short plan run.

Parametrised over ``station twin faults --json``. A device fault must end with exit 3, a station fault naming
the device, and a safe bench confirmed through the twin's truth (no light at the chart plane, the mount's
controller not moving), not only the record's word; a firmware regression must end with exit 1, a product
defect; no run may hang (each is killed and failed past its bound). Each fault runs the plan subset that
exercises it; the twin runs at CI resolution and a fast hardware clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from station.twin.firmware import FIRMWARE_FAULTS
from tests.unit.station_runs import bench_is_safe, station_file, station_run, twin_with

#: Every run must end within this, s (a hang is a failure, not a stuck suite).
BOUND_S = 90.0
LIGHT_TESTS = "test_light_linearity or test_light_closed_loop"
#: Device fault -> (plan, -k selection that reaches the device, the device the fault must be blamed on).
DEVICE_CASES = {
    "light_no_answer": ("factory", LIGHT_TESTS, "light"),
    "light_scpi_error": ("factory", LIGHT_TESTS, "light"),
    "light_drift": ("factory", LIGHT_TESTS, "light"),
    "light_flaky": ("factory", LIGHT_TESTS, "light"),
    "meter_flaky": ("factory", LIGHT_TESTS, "meter"),
    "mount_stall": ("factory", "test_mount_homing", "mount"),
    "mount_alarm": ("factory", "test_mount_homing", "mount"),
    "mount_garbage": ("factory", "test_mount_homing", "mount"),
    "dut_drop_frame": ("regression", "test_histogram", "dut"),
    "dut_corrupt_payload": ("regression", "test_histogram", "dut"),
    "dut_disconnect": ("regression", "test_histogram", "dut"),
    "dut_flaky": ("regression", "test_histogram", "dut"),
}
#: Firmware regression -> (plan, -k selection of the test that must catch it).
FIRMWARE_CASES = {
    "black_level_offset": ("regression", "test_raw_integrity and main"),
    "cfa_order_swap": ("regression", "test_raw_integrity and main"),
    "raw_8bit_truncation": ("regression", "test_raw_integrity and main"),
    "histogram_bin_shift": ("regression", "test_histogram"),
    "lens_shading_off": ("regression", "test_preview_shading"),
    "peaking_off": ("regression", "test_peaking"),
    "zebra_threshold_shift": ("regression", "test_zebra"),
}
#: The default suite's share of the matrix: one fault of each device and one firmware regression (the
#: cheapest that still reach their device); ``-m slow`` runs every fault of the registry.
QUICK = {"light_scpi_error", "meter_flaky", "mount_garbage", "dut_corrupt_payload", "zebra_threshold_shift"}
#: Faults known to leave the bench unsafe (strict xfail: a fix turns them into failures that ask to drop the mark).
KNOWN_UNSAFE: dict[str, str] = {}


#: Entries of the registry that change the world rather than break a device or the firmware, with the test that
#: covers each: they are no station fault and no regression build, so the matrix leaves them to those tests.
WORLD_SETTINGS = {
    "sensor_defects": "tests/unit/test_defects.py (the seeded defect map found, 0 missed, 0 false)",
    "unit_variation": "tests/unit/test_awb.py and test_pose.py (the unit's channel gains and pose recovered)",
    "calblob_corrupt_block": "tests/unit/test_calblob.py (the corrupt block named on read-back)",
    "line_station": "tests/unit/test_line_twin.py (a line station's systematic errors)",
    "line_unit": "tests/unit/test_line_twin.py (unit-to-unit variation)",
    "line_repeat": "tests/unit/test_line_twin.py (fresh temporal noise per repeat)",
}


def _registry() -> dict[str, str]:
    """``station twin faults --json``: what the twin can inject."""
    done = subprocess.run([sys.executable, "-m", "station", "twin", "faults", "--json"], capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)["faults"]


REGISTRY = _registry()


def _params() -> list:
    params = []
    for name in REGISTRY:
        if name in WORLD_SETTINGS:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_UNSAFE[name])] if name in KNOWN_UNSAFE else []
        if name not in QUICK:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def test_every_fault_of_the_registry_has_a_case() -> None:
    assert set(REGISTRY) == set(DEVICE_CASES) | set(FIRMWARE_CASES) | set(WORLD_SETTINGS)
    assert not set(WORLD_SETTINGS) & (set(DEVICE_CASES) | set(FIRMWARE_CASES))
    assert set(REGISTRY) >= QUICK and {c[2] for f, c in DEVICE_CASES.items() if f in QUICK} == {
        "light", "meter", "mount", "dut"}
    assert set(FIRMWARE_CASES) == set(FIRMWARE_FAULTS)


@pytest.mark.parametrize("fault", _params())
def test_fault_is_classified_and_leaves_a_safe_bench(fault: str, tmp_path: Path) -> None:
    if fault in FIRMWARE_CASES:
        plan, select = FIRMWARE_CASES[fault]
        with twin_with({fault: True}) as twin:
            run = station_run(station_file(twin, tmp_path), tmp_path / "reports", plan, select, BOUND_S)
            unsafe = bench_is_safe(twin)
        assert run.code == 1, run.out[-1500:]
        record = run.record
        assert record is not None and record["outcome"] == "fail" and record["exit_code"] == 1
        failed = [t for t in record["tests"] if t["outcome"] not in ("passed", "skipped")]
        assert failed and all(t["category"] == "product-defect" for t in failed), failed
        assert unsafe == [] and record["safe_state"]["ok"] is True, (unsafe, record["safe_state"])
        return
    plan, select, device = DEVICE_CASES[fault]
    with twin_with({fault: True}) as twin:
        run = station_run(station_file(twin, tmp_path), tmp_path / "reports", plan, select, BOUND_S)
        unsafe = bench_is_safe(twin)  # the twin's truth, read after the station process has ended
    assert run.code == 3, run.out[-1500:]
    record = run.record
    assert record is not None and record["outcome"] == "station-fault" and record["exit_code"] == 3
    faulty = [t for t in record["tests"] if t["outcome"] not in ("passed", "skipped")]
    assert faulty and faulty[-1]["category"] == "station-fault", faulty
    assert faulty[-1]["message"].startswith(f"DeviceError: {device}: "), faulty[-1]["message"]
    assert f"DeviceError: {device}: " in record["reason"]
    assert "Traceback" not in run.out
    assert unsafe == [], unsafe
    safe = record["safe_state"]
    assert safe is not None, "safe_state null: the record must say confirmed or not confirmed"
    assert safe["ok"] or "SAFE STATE NOT CONFIRMED" in run.out
