"""The SCPI lux meter driver on real wires: the twin's meter, a recorded exchange, faults."""

from __future__ import annotations

import socket

import pytest

from station.config import InstrumentConfig
from station.devices.lux_meter import ScpiLuxMeter
from station.devices.protocols import LuxMeter
from station.errors import DeviceError
from station.twin.world import FULL_SCALE_LUX, World
from tests.unit.replay import TcpReplay
from tests.unit.wires import resource


@pytest.fixture
def world():
    return World(seed=11, time_scale=0.01)


def settled_light(world: World, level_pct: float, cct_k: float = 5000.0) -> None:
    with world.lock:
        world.light.output = level_pct > 0
        world.light.level_pct = level_pct
        world.light.cct_k = cct_k
        world.light.changed_at_sim_s = -1e9


def test_identity(meter):
    assert isinstance(meter, LuxMeter)
    assert meter.identity.startswith("M-Station,TwinLuxMeter,SN0011,")


@pytest.mark.parametrize("level_pct", [5.0, 25.0, 80.0, 100.0])
def test_reading_follows_the_light(meter, world, level_pct):
    settled_light(world, level_pct)
    readings = [meter.illuminance_lux() for _ in range(20)]
    truth = FULL_SCALE_LUX * level_pct / 100  # independent: the twin's light is linear in level
    assert abs(sum(readings) / len(readings) / truth - 1) < 0.003
    assert all(abs(r / truth - 1) < 0.01 for r in readings)


def test_cct_and_dark(meter, world):
    settled_light(world, 30.0, cct_k=3300.0)
    assert meter.cct_k() == 3300.0
    settled_light(world, 0.0)
    assert meter.illuminance_lux() == 0.0 and meter.cct_k() == 0.0


def test_long_form_dialect(meter_server, world):
    settled_light(world, 50.0, cct_k=6100.0)
    with ScpiLuxMeter(InstrumentConfig(resource(meter_server.port), dialect="long-form")) as meter:
        assert meter.illuminance_lux() == pytest.approx(1000.0, rel=0.01)
        assert meter.cct_k() == 6100.0


def test_recorded_exchange():
    replay = TcpReplay([
        (b"*IDN?\n", b"Konica Minolta,T-10A,55,1.0\n"),
        (b"*CLS\n", b""),
        (b"MEAS:ILL?\n", b"+8.123400E+02\n"),
        (b"MEAS:CCT?\n", b"5.55E3\n"),
    ])
    with ScpiLuxMeter(InstrumentConfig(resource(replay.port), timeout_s=1.0)) as meter:
        assert meter.identity == "Konica Minolta,T-10A,55,1.0"
        assert meter.illuminance_lux() == 812.34
        assert meter.cct_k() == 5550.0
    replay.check()


@pytest.mark.parametrize("answer", [b"OVERLOAD", b"9.91E+37", b"-5.0", b"12,5", b""])
def test_garbage_answer(answer):
    replay = TcpReplay([(b"*IDN?\n", b"X,Y,1,2\n"), (b"*CLS\n", b""), (b"MEAS:ILL?\n", answer + b"\n")])
    with ScpiLuxMeter(InstrumentConfig(resource(replay.port), timeout_s=0.5)) as meter, \
            pytest.raises(DeviceError) as info:
        meter.illuminance_lux()
    text = str(info.value)
    assert "\n" not in text and text.startswith("meter: MEAS:ILL? -> unreadable answer")
    replay.check()


def test_timeout_is_retried_then_reported_with_the_devices_words():
    replay = TcpReplay([(b"*IDN?\n", b"X,Y,1,2\n"), (b"*CLS\n", b""),
                        (b"MEAS:ILL?\n", b""), (b"MEAS:ILL?\n", b""), (b"MEAS:ILL?\n", b""),
                        (b"SYST:ERR?\n", b'-230,"Data corrupt or stale"\n')])
    with ScpiLuxMeter(InstrumentConfig(resource(replay.port), timeout_s=0.1)) as meter, \
            pytest.raises(DeviceError) as info:
        meter.illuminance_lux()
    assert str(info.value) == (f"meter: MEAS:ILL? -> no answer within 0.1 s from {meter.resource_name} "
                               '(3 tries); instrument says -230,"Data corrupt or stale"')
    replay.check()


def test_unreachable_meter():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(DeviceError, match=rf"^meter: \*IDN\? -> unreachable at {resource(port)}"):
        ScpiLuxMeter(InstrumentConfig(resource(port), timeout_s=0.5))
