"""A flaky link (issue 10 item 6): the twin drops one reply in K; the drivers' bounded retries carry the run.

DESIGN 10: transient device errors are retried with a bound, then reported as station faults with the
device's own words. For K large a short plan passes, and the twin's truth shows replies were really lost;
for K = 1 (every reply lost) the run ends as a station fault naming the device and what it did not answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import DutConfig, InstrumentConfig
from station.devices.light import ScpiLight
from station.devices.lux_meter import ScpiLuxMeter
from station.devices.phone import PhoneClient
from station.errors import DeviceError
from station.twin.phone_server import PhoneServer
from station.twin.scpi_server import ScpiServer
from station.twin.world import World
from tests.unit.station_runs import station_file, station_run, twin_with

LIGHT_TESTS = "test_light_linearity or test_light_closed_loop"


def _resource(port: int) -> str:
    return f"TCPIP0::127.0.0.1::{port}::SOCKET"


@pytest.fixture
def world() -> World:
    return World(seed=3, time_scale=0.01)


@pytest.mark.parametrize("k", [2, 3])
def test_light_and_meter_retry_a_lost_reply(world: World, k: int) -> None:
    world.faults.update(light_flaky=k, meter_flaky=k)
    with ScpiServer(world, "light") as light_server, ScpiServer(world, "meter") as meter_server, \
            ScpiLight(InstrumentConfig(_resource(light_server.port), timeout_s=0.1)) as light, \
            ScpiLuxMeter(InstrumentConfig(_resource(meter_server.port), timeout_s=0.1)) as meter:
        for level_pct in (10.0, 75.0):
            light.set_output(True)
            light.set_level_pct(level_pct)
            light.set_cct_k(4000.0)
            light.wait_settled(2.0)
            assert light.level_pct() == level_pct and world.light.level_pct == level_pct
            assert meter.illuminance_lux() == pytest.approx(world.illuminance_lux(), rel=0.01)
        assert light_server.dropped_replies >= 2 and meter_server.dropped_replies >= 1


def test_a_link_that_loses_every_reply_is_a_bounded_device_error(world: World) -> None:
    with ScpiServer(world, "meter") as meter_server:
        meter = ScpiLuxMeter(InstrumentConfig(_resource(meter_server.port), timeout_s=0.1))
        world.faults["meter_flaky"] = 1
        with pytest.raises(DeviceError) as caught:
            meter.illuminance_lux()
        meter.close()
    text = str(caught.value)
    assert text.startswith("meter: MEAS:ILL? -> no answer within 0.1 s") and "(3 tries)" in text
    assert "\n" not in text and meter_server.dropped_replies == 3 + 1  # 3 tries and the error query after


def test_phone_retries_a_lost_reply_on_a_new_connection(world: World) -> None:
    world.faults["dut_flaky"] = 2
    with PhoneServer(world) as server:
        with PhoneClient(DutConfig("127.0.0.1", server.port, timeout_s=0.5)) as phone:
            for _ in range(3):
                assert phone.info()["serial"] == world.phone_serial()
            assert phone.configure("main", exposure_us=2000)["exposure_us"] == 2000
        assert server.dropped_replies >= 2
        world.faults["dut_flaky"] = 1
        with pytest.raises(DeviceError) as caught:
            PhoneClient(DutConfig("127.0.0.1", server.port, timeout_s=0.2))
    text = str(caught.value)
    assert text.startswith("dut: info: no") and text.endswith("(failed 3 of 3 attempts)"), text


def test_a_short_plan_passes_on_a_flaky_link_with_k_large(tmp_path: Path) -> None:
    with twin_with({"light_flaky": 6, "meter_flaky": 3}) as twin:
        servers = [s for s in twin._servers if isinstance(s, ScpiServer)]
        station = station_file(twin, tmp_path, {"light": 0.15, "meter": 0.15})  # a lost reply costs one timeout
        run = station_run(station, tmp_path / "reports", "factory", LIGHT_TESTS, 90.0)
        dropped = {s.role: s.dropped_replies for s in servers}
    assert run.code == 0, run.out[-1500:]
    assert run.record is not None and run.record["outcome"] == "pass"
    assert dropped["light"] >= 2 and dropped["meter"] >= 1, dropped  # replies were lost, and retried


@pytest.mark.slow  # the fast proof of the bound is the driver test above; this is the whole run's word
def test_a_short_plan_on_a_link_that_loses_every_reply_is_a_station_fault_in_the_devices_words(
        tmp_path: Path) -> None:
    with twin_with({"light_flaky": 1}) as twin:
        run = station_run(station_file(twin, tmp_path), tmp_path / "reports", "factory", LIGHT_TESTS, 90.0)
    assert run.code == 3, run.out[-1500:]
    record = run.record
    assert record is not None and record["outcome"] == "station-fault"
    assert "DeviceError: light: *IDN? -> no answer within 0.3 s" in record["reason"]
    assert "(3 tries)" in record["reason"] and "Traceback" not in run.out


@pytest.mark.parametrize("item", ["light_flaky=0", "meter_flaky=2.5", "light_flaky=often"])
def test_a_flaky_link_needs_a_whole_k(item: str) -> None:
    from station.errors import ConfigError
    from station.twin.faults import parse_fault_args

    with pytest.raises(ConfigError, match="K >= 1"):
        parse_fault_args([item])
    assert parse_fault_args(["light_flaky=4", "meter_flaky"]) == {"light_flaky": 4, "meter_flaky": True}


@pytest.mark.slow  # a capture's lost reply costs the phone's whole timeout
def test_a_plan_that_captures_passes_with_every_link_flaky(tmp_path: Path) -> None:
    with twin_with({"light_flaky": 6, "meter_flaky": 2, "dut_flaky": 4}) as twin:
        station = station_file(twin, tmp_path, {"light": 0.15, "meter": 0.15, "dut": 4.0})
        run = station_run(station, tmp_path / "reports", "regression", "test_histogram", 180.0)
        dropped = {getattr(s, "role", "dut"): s.dropped_replies for s in twin._servers
                   if isinstance(s, (ScpiServer, PhoneServer))}
    assert run.code == 0, run.out[-1500:]
    assert run.record is not None and run.record["outcome"] == "pass"
    assert min(dropped.values()) >= 1 and set(dropped) == {"light", "meter", "dut"}, dropped
