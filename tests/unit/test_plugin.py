"""The pytest plugin: fixtures on the twin or a bench, and the safe state whatever happens."""

from __future__ import annotations

from pathlib import Path

# Imported here, before any in-process inner session: pytester restores sys.modules after
# each inner run, and numpy-based extensions (cv2) cannot be loaded twice in one process.
import cv2  # noqa: F401
import pytest

import station.devices.grbl_mount  # noqa: F401
import station.devices.light  # noqa: F401
import station.devices.lux_meter  # noqa: F401
import station.devices.phone  # noqa: F401
import station.station  # noqa: F401
import station.twin.control  # noqa: F401
from station.config import TwinConfig, to_toml
from station.twin.runner import Twin


@pytest.fixture
def outer_twin(tmp_path: Path):
    """A twin outside the inner session, so the test can read its world after the session ends."""
    with Twin(TwinConfig(time_scale=0.05)) as twin:
        path = tmp_path / "station.toml"
        path.write_text(to_toml(twin.config))
        yield twin, path


def test_fixtures_reach_every_device_of_the_station(pytester: pytest.Pytester, outer_twin) -> None:
    twin, path = outer_twin
    pytester.makepyfile("""
        def test_devices(station, light, meter, mount, dut, twin):
            assert "TwinLight" in light.identity and "TwinLuxMeter" in meter.identity
            mount.home()
            assert mount.move_to(distance=700.0)["distance"] == 700.0
            assert dut.info()["sensors"]["main"]["bit_depth"] == 10
            assert twin.truth()["pose"]["distance"] == 700.0
    """)
    pytester.runpytest("--station", str(path), "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_light_off_and_motion_stopped_after_a_failure(pytester: pytest.Pytester, outer_twin) -> None:
    twin, path = outer_twin
    pytester.makepyfile("""
        def test_breaks(light, mount):
            mount.home()
            light.set_level_pct(60)
            light.set_output(True)
            assert light.output()
            raise AssertionError("the product broke")
    """)
    pytester.runpytest("--station", str(path), "-p", "no:cacheprovider").assert_outcomes(failed=1)
    assert twin.world.light.output is False


def test_ctrl_c_mid_move_leaves_the_bench_safe(pytester: pytest.Pytester, outer_twin) -> None:
    twin, path = outer_twin
    pytester.makepyfile("""
        import contextlib, threading, time
        from station.errors import DeviceError

        def move(mount):
            with contextlib.suppress(DeviceError):  # the stop interrupts it
                mount.move_to(distance=2900.0)

        def test_interrupted(light, mount, twin):
            mount.home()
            light.set_level_pct(80)
            light.set_output(True)
            threading.Thread(target=move, args=(mount,), daemon=True).start()
            time.sleep(0.3)
            assert twin.truth()["pose"]["distance"] < 2900.0
            raise KeyboardInterrupt
    """)
    result = pytester.runpytest("--station", str(path), "-p", "no:cacheprovider", no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert twin.world.light.output is False
    stopped_at = twin.world.pose()["distance"]
    import time

    time.sleep(0.3)
    assert twin.world.pose()["distance"] == stopped_at < 2900.0  # motion stopped, not finished


def test_each_xdist_worker_starts_its_own_twin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pathlib, pytest
        @pytest.mark.parametrize("n", range(4))
        def test_port(n, station, worker_id):
            out = pathlib.Path(__file__).parent / f"{worker_id}-{n}.txt"
            out.write_text(f"{station.config.dut.port} {station.config.mount.port}")
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    seen: dict[str, set[str]] = {}
    for path in pytester.path.glob("gw*-*.txt"):
        seen.setdefault(path.name.split("-")[0], set()).add(path.read_text())
    assert len(seen) == 2, seen  # both workers ran tests
    # one twin per worker: the same addresses within a worker, different across workers
    assert all(len(v) == 1 for v in seen.values()), seen
    assert len(set.union(*seen.values())) == 2, seen


def test_a_bad_station_file_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[light]\nresource = 3\n")
    pytester.makepyfile("def test_x(station):\n    pass\n")
    result = pytester.runpytest("--station", str(bad), "-p", "no:cacheprovider")
    assert result.ret != 0
    assert str(bad) in result.stdout.str() + result.stderr.str()
