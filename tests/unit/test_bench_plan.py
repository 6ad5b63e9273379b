"""``station bench plan``: the takt benchmark on a tiny subset of the factory plan, a twin in its own process.

The subset (mount homing, the light's closed loop) uses every wire: the phone (the plugin's identity check),
the light, the lux meter and the mount. The arithmetic of the figures is checked against the fields it is
made of, and the profile against the stats file it wrote.
"""

from __future__ import annotations

import json
import os
import pstats
from pathlib import Path
from typing import Any

import pytest

from station.cli import main
from station.cli.bench_plan import measure

SUBSET = "test_mount_homing or test_light_closed_loop"
DEVICES = ("dut", "light", "meter", "mount")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    profile = tmp_path_factory.mktemp("bench-plan") / "plan.prof"
    return measure("factory", resolution="ci", select=SUBSET, profile=str(profile))["plan"], profile


def test_the_subset_ran_on_a_twin_in_its_own_process(bench: tuple[dict[str, Any], Path]) -> None:
    plan, _ = bench
    assert plan["exit_code"] == 0 and plan["tests"] == {"passed": 2}
    assert plan["select"] == SUBSET and plan["name"] == "factory"
    assert plan["resolution"] == "ci" and plan["frame_size"] == "2048x1536"
    assert plan["pids"]["station"] == os.getpid() and plan["pids"]["twin"] not in (None, os.getpid())
    rss = plan["peak_rss_mb"]
    assert rss["station"] > 50 and rss["twin"] > 50  # both load numpy and the station's code
    assert isinstance(plan["frames"], int) and plan["frames"] >= 0
    # the factory plan's twin is a line's unit, as `station run` makes it (its pose and gains off golden, its
    # defect pixels): the twin itself reports the faults it runs with
    assert plan["twin_faults"].get("unit_variation") and plan["twin_faults"].get("sensor_defects")


def test_the_critical_path_is_wall_time_minus_the_wire_waits(bench: tuple[dict[str, Any], Path]) -> None:
    plan, _ = bench
    wire = plan["wire_wait_s"]
    for device in DEVICES:
        assert wire[device] > 0, f"{device}: no time on its wire"
        assert plan["wire_reads"][device] > 0
    per_device = [wire[d] for d in wire if d != "total"]
    # one thread ran the plan: the union of the waits is their sum (to rounding), and within the wall time
    assert max(per_device) - 2e-3 <= wire["total"] <= sum(per_device) + 2e-3
    assert wire["total"] < plan["wall_s"]
    assert plan["critical_path_s"] == pytest.approx(plan["wall_s"] - wire["total"], abs=1e-3)
    assert 0 < plan["critical_path_s"] < plan["wall_s"]


def test_the_ratio_is_against_the_twins_hardware_time(bench: tuple[dict[str, Any], Path]) -> None:
    plan, _ = bench
    hw = plan["hw_time_s"]
    assert hw["move"] > 0 and hw["settle"] > 0  # homing moves the axes; the closed loop changes the light
    assert hw["total"] == pytest.approx(sum(v for k, v in hw.items() if k != "total"), abs=5e-3)
    assert plan["takt_ratio"] == pytest.approx(plan["critical_path_s"] / hw["total"], rel=1e-3, abs=1e-3)
    assert plan["takt_ratio_goal"] == 1.1 and plan["peak_rss_goal_mb"] == 1536.0


def test_the_profile_names_the_station_code_and_matches_its_file(bench: tuple[dict[str, Any], Path]) -> None:
    plan, profile = bench
    assert plan["profiled"] is True
    top = plan["profile_top"]["cumulative_s"]
    assert top and all(isinstance(seconds, float) for _, seconds in top)
    assert any("run.py" in name for name, _ in top)  # station run, the plan's entry point
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    slowest = max(ct for (f, _, _), (_, _, _, ct, _) in stats.items()
                  if any(p in f for p in ("station/", "calibration/", "targets/", "fixtures/")))
    assert top[0][1] == pytest.approx(slowest, abs=1e-3)
    assert top[0][1] <= plan["wall_s"] + 1e-3


@pytest.mark.parametrize(("argv", "named"), [
    (["--select", "test_x\x01"], "--select"),
    (["--firmware", "nope"], "--firmware 'nope'"),
    (["--time-scale", "-1"], "--time-scale"),
    (["--twin-fault", "no_such_fault"], "no_such_fault"),
])
def test_bad_options_are_one_line_and_exit_2(argv: list[str], named: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "plan", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's /proc")
def test_the_station_peak_is_its_own_not_the_parent_it_was_forked_from() -> None:
    """``station bench all`` forks the plan's process after the 50 MP benchmarks: ``ru_maxrss`` carries the parent's
    size across fork and exec, the peak the benchmark reports (``VmHWM``) does not."""
    import subprocess
    import sys

    import numpy as np

    ballast = np.ones(300 << 17)  # 300 MB touched in this (the parent) process
    code = ("import json, resource; from station.cli.twin_process import own_peak_rss_bytes;"
            "print(json.dumps([own_peak_rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]))")
    own, inherited = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                               check=True).stdout)
    assert float(ballast[-1]) == 1.0
    assert inherited > 300e6 > own > 5e6  # the child's own image is small; ru_maxrss reports the parent's
