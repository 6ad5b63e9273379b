"""The light's power relay on the mount controller's flood output: the safe state that needs no light link."""

from __future__ import annotations

import serial

from station.config import TwinConfig
from station.station import Station
from station.twin.runner import Twin


def status(port: str) -> str:
    with serial.serial_for_url(port, baudrate=115200, timeout=2) as term:
        term.reset_input_buffer()
        term.write(b"?")
        return term.readline().decode().strip()


def test_station_closes_the_relay_and_the_safe_state_opens_it_with_the_meter_as_witness() -> None:
    with Twin(TwinConfig(time_scale=0.01)) as twin:
        world = twin.world
        assert world.light_power is False  # power-up: the controller's outputs are off
        with Station.open(twin.config) as station:  # homes the locked controller, then M8
            assert world.light_power is True
            assert "|A:F" in status(twin.config.mount.port)  # GRBL reports the flood output on
            station.light.set_level_pct(50)
            station.light.set_output(True)
            station.light.wait_settled()
            assert station.meter.illuminance_lux() > 500
            world.faults["light_no_answer"] = 0  # the light's link dies while it is on
            assert station.safe_state() == []  # the reset opened the relay: the meter reads dark
        assert world.light.output is True  # the dead light never heard OUTP OFF
        assert world.light_power is False and world.illuminance_lux() == 0.0
        assert "A:F" not in status(twin.config.mount.port)


def test_without_the_relay_a_dead_light_is_reported_not_hidden() -> None:
    with Twin(TwinConfig(time_scale=0.01)) as twin:
        twin.world.light_interlock = False
        twin.world.light_power = True
        with Station.open(twin.config) as station:
            station.light.set_level_pct(50)
            station.light.set_output(True)
            station.light.wait_settled()
            twin.world.faults["light_no_answer"] = 0
            problems = station.safe_state()
            assert len(problems) == 1 and problems[0].startswith("light still on: the lux meter reads")
            station.close()
