"""The SCPI light driver on real wires: the twin's server, a recorded exchange, dead and garbled peers."""

from __future__ import annotations

import math
import shutil
import socket
import time
from pathlib import Path

import pytest

from station.config import InstrumentConfig
from station.devices.light import ScpiLight, set_illuminance
from station.devices.protocols import LightSource
from station.errors import ConfigError, DeviceError, InputError
from station.twin.world import FULL_SCALE_LUX, World
from tests.unit.replay import TcpReplay
from tests.unit.wires import resource


@pytest.fixture
def world():
    return World(seed=5, time_scale=0.01)


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_identity_recorded_at_open(light):
    assert isinstance(light, LightSource)
    maker, model, serial, _version = light.identity.split(",")
    assert (maker, model, serial) == ("M-Station", "TwinLight", "SN0005")


def test_level_cct_output_round_trip(light, world):
    light.set_output(True)
    light.set_level_pct(37.5)
    light.set_cct_k(4200)
    assert (light.output(), light.level_pct(), light.cct_k()) == (True, 37.5, 4200.0)
    assert (world.light.output, world.light.level_pct, world.light.cct_k) == (True, 37.5, 4200.0)
    light.set_output(False)
    assert world.light.output is False and light.output() is False


def test_long_form_dialect_speaks_the_same_instrument(light_server, world):
    config = InstrumentConfig(resource(light_server.port), timeout_s=0.5, dialect="long-form")
    with ScpiLight(config) as light:
        assert light.dialect.level_set.startswith("SOURce:LEVel")
        light.set_level_pct(61.25)
        light.set_output(True)
        assert (world.light.level_pct, world.light.output) == (61.25, True)


def test_unknown_dialect_is_a_config_error_listing_the_allowed():
    with pytest.raises(ConfigError) as info:
        ScpiLight(InstrumentConfig("TCPIP0::127.0.0.1::1::SOCKET", dialect="acme-9000"))
    assert "acme-9000" in str(info.value) and "generic" in str(info.value)


@pytest.mark.parametrize(("method", "value"), [
    ("set_level_pct", 150), ("set_level_pct", -1), ("set_level_pct", math.nan), ("set_level_pct", math.inf),
    ("set_level_pct", "40"), ("set_level_pct", True), ("set_cct_k", 2000), ("set_cct_k", 7000.5),
    ("set_cct_k", None), ("set_output", "ON"),
])
def test_arguments_checked_before_the_wire(light, world, method, value):
    before = (world.light.output, world.light.level_pct, world.light.cct_k)
    with pytest.raises(InputError) as info:
        getattr(light, method)(value)
    assert one_line(info.value).startswith("light: ")
    assert (world.light.output, world.light.level_pct, world.light.cct_k) == before
    assert light.errors("check") == []  # nothing malformed reached the instrument


def test_no_line_injection(light, world):
    with pytest.raises(InputError):
        light.write("SOUR:LEV 1\nOUTP ON")
    assert world.light.output is False


def test_error_queue_after_out_of_range_sent_raw(light, world):
    light.write("SOUR:LEV 150")
    found = light.errors("raw")
    assert len(found) == 1 and found[0].startswith('-222,"Data out of range')
    assert light.errors("raw") == []
    with pytest.raises(DeviceError) as info:
        light.setting("SOUR:CCT 99999")
    assert one_line(info.value).startswith('light: SOUR:CCT 99999 -> -222,"Data out of range')
    assert info.value.exit_code == 3
    assert world.light.cct_k == 5000.0


def test_wait_settled(light, world):
    world.light.settle_s = 20.0  # simulated; 0.2 s of real time
    light.set_level_pct(60)
    assert light.settled() is False
    light.wait_settled(5.0)
    assert world.light_settled()
    light.set_level_pct(20)
    with pytest.raises(DeviceError, match=r"not settled within 0\.01 s"):
        light.wait_settled(0.01)


def test_closed_loop_hits_the_target_and_the_meter_agrees_with_truth(light, meter, world):
    target_lux = 640.0
    got = set_illuminance(light, meter, target_lux, tol_pct=1.0)
    assert abs(got / target_lux - 1) <= 0.01
    truth = world.illuminance_lux()
    assert abs(truth / target_lux - 1) <= 0.012  # meter tolerance plus its ~0.2 % noise
    assert abs(meter.illuminance_lux() / truth - 1) < 0.01
    # the twin's light is linear: the level that gives the target is target / full scale
    assert light.level_pct() == pytest.approx(100 * target_lux / FULL_SCALE_LUX, rel=0.012)


def test_closed_loop_reports_an_unreachable_target_with_numbers(light, meter):
    with pytest.raises(DeviceError) as info:
        set_illuminance(light, meter, 5000.0)
    text = one_line(info.value)
    assert "5000 lux" in text and "100 %" in text
    with pytest.raises(InputError):
        set_illuminance(light, meter, -3.0)


def test_fault_drift_moves_the_illuminance_and_the_loop_brings_it_back(light, meter, world):
    drift_pct_per_s = 2.0
    world.faults["light_drift"] = drift_pct_per_s
    target_lux = 600.0
    assert abs(set_illuminance(light, meter, target_lux, hold_s=0) / target_lux - 1) <= 0.01
    time.sleep(0.1)  # 10 simulated s: +20 % by the drift model (DESIGN 5), whatever the driver does
    before = world.illuminance_lux()
    drifted = meter.illuminance_lux()
    after = world.illuminance_lux()
    assert before * 0.99 <= drifted <= after * 1.01  # the meter reads the drifting truth (0.2 % noise)
    with world.lock:  # the drift model: linear in simulated time since the output settled
        settled_lux = 2000.0 * world.light.level_pct / 100
        since_s = world.now_sim_s() - world.light.changed_at_sim_s - world.light.settle_s
        now_lux = world.illuminance_lux()
    assert now_lux / settled_lux == pytest.approx(1 + drift_pct_per_s / 100 * since_s, rel=1e-3)
    assert drifted > 1.15 * target_lux
    assert abs(set_illuminance(light, meter, target_lux, hold_s=0) / target_lux - 1) <= 0.01


def test_closed_loop_refuses_a_light_that_does_not_hold_its_output(light, meter, world):
    # 0.2 %/s simulated drift is 20 %/s real at this time scale: slow enough for the loop to reach the target
    # on a loaded machine, fast enough to walk 5 % out of it while the loop holds for 0.25 s
    world.faults["light_drift"] = 0.2
    with pytest.raises(DeviceError) as info:
        set_illuminance(light, meter, 600.0, hold_s=0.25)
    text = one_line(info.value)
    assert text.startswith("light: output does not hold") and text.endswith("the light drifts")
    assert text.count("0.25 s later") == 2
    world.faults.pop("light_drift")  # a steady light holds: the same loop passes
    assert abs(set_illuminance(light, meter, 600.0) / 600.0 - 1) <= 0.01


def test_fault_no_answer_at_open(light_server, world):
    world.faults["light_no_answer"] = 0
    config = InstrumentConfig(resource(light_server.port), timeout_s=0.1)
    with pytest.raises(DeviceError) as info:
        ScpiLight(config)
    assert one_line(info.value) == (f"light: *IDN? -> no answer within 0.1 s from {config.resource} "
                                    "(3 tries)")


def test_fault_no_answer_part_way(light_server, world):
    with ScpiLight(InstrumentConfig(resource(light_server.port), timeout_s=0.1)) as light:
        assert light.level_pct() == 0.0  # an answer: every command sent at open has been executed
        world.faults["light_no_answer"] = 1  # SOUR:LEV is executed, its SYST:ERR? is not answered
        with pytest.raises(DeviceError) as info:
            light.set_level_pct(30)
        assert one_line(info.value).startswith("light: SYST:ERR? -> no answer within 0.1 s from TCPIP0::")
        assert world.light.level_pct == 30.0


def test_fault_scpi_error_in_the_devices_words(light, world):
    world.faults["light_scpi_error"] = True
    with pytest.raises(DeviceError) as info:
        light.set_output(True)
    assert one_line(info.value) == 'light: OUTP ON -> -300,"Device-specific error; lamp fault"'
    assert world.light.output is False
    assert light.level_pct() == 0.0  # queries still answer


def test_unreachable_instrument():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    with pytest.raises(DeviceError) as info:
        ScpiLight(InstrumentConfig(resource(port), timeout_s=0.5))
    assert one_line(info.value) == f"light: *IDN? -> unreachable at {resource(port)} (connection refused)"
    assert info.value.exit_code == 3


def test_garbage_answers():
    idn = (b"*IDN?\n", b"ACME,Box,1,2\n")
    replay = TcpReplay([idn, (b"*CLS\n", b""), (b"SOUR:LEV?\n", b"\x13\x37garbage\n"),
                        (b"OUTP ON\n", b""), (b"SYST:ERR?\n", b"lamp says hello\n")])
    with ScpiLight(InstrumentConfig(resource(replay.port), timeout_s=0.5)) as light:
        with pytest.raises(DeviceError) as info:
            light.level_pct()
        text = one_line(info.value)
        assert text.startswith("light: SOUR:LEV? -> unreadable answer ") and "garbage" in text
        with pytest.raises(DeviceError, match=r"SYST:ERR\? \(after OUTP ON\) -> unreadable answer 'lamp"):
            light.set_output(True)
    replay.check()

    for idn in (b"\x00\xff\xfe", b"HTTP/1.1 400 Bad Request"):  # not IEEE 488.2's four fields
        replay = TcpReplay([(b"*IDN?\n", idn + b"\n")])
        with pytest.raises(DeviceError, match=r"^light: \*IDN\? -> unreadable answer"):
            ScpiLight(InstrumentConfig(resource(replay.port), timeout_s=0.5))
        replay.check()


def test_recorded_exchange():
    replay = TcpReplay([
        (b"*IDN?\n", b"Acme Lighting,LB-200,1234,2.1\n"),
        (b"*CLS\n", b""),
        (b"OUTP ON\n", b""), (b"SYST:ERR?\n", b'+0,"No error"\n'), (b"OUTP?\n", b"1\n"),
        (b"SOUR:LEV 40\n", b""), (b"SYST:ERR?\n", b'+0,"No error"\n'), (b"SOUR:LEV?\n", b"+4.000000E+01\n"),
        (b"SOUR:CCT 5600\n", b""), (b"SYST:ERR?\n", b'0,"No error"\n'), (b"SOUR:CCT?\n", b"5600\n"),
        (b"SOUR:SETT?\n", b"0\n"), (b"SOUR:SETT?\n", b"1\n"),
        (b"OUTP OFF\n", b""),
    ])
    light = ScpiLight(InstrumentConfig(resource(replay.port), timeout_s=1.0))
    assert light.identity == "Acme Lighting,LB-200,1234,2.1"
    light.set_output(True)
    light.set_level_pct(40)
    light.set_cct_k(5600)
    light.wait_settled(2.0, poll_s=0.001)
    light.safe_off()
    light.close()
    replay.check()


def test_safe_off_never_raises(light, world):
    light.set_output(True)
    light.safe_off()
    assert light.output() is False and world.light.output is False
    light.close()
    light.safe_off()  # closed: still quiet
    with pytest.raises(DeviceError, match="is closed"):
        light.output()


def test_driver_on_a_pyvisa_sim_model(tmp_path):
    pytest.importorskip("pyvisa_sim")
    model = tmp_path / "light_sim.yaml"  # pyvisa-sim keeps state per YAML path: a fresh copy per test
    shutil.copy(Path(__file__).with_name("data") / "light_sim.yaml", model)
    config = InstrumentConfig("TCPIP0::sim-light::5025::SOCKET", timeout_s=0.2)
    with ScpiLight(config, visa_library=f"{model}@sim") as light:
        assert light.identity == "SimVendor,SimLight,S42,1.0"
        light.set_output(True)  # this model answers OUTP? with ON / OFF
        light.set_level_pct(12.5)
        light.set_cct_k(3100)
        assert (light.output(), light.level_pct(), light.cct_k()) == (True, 12.5, 3100.0)
        light.write("SOUR:LEV 150")
        assert light.errors("raw") == ['-100,"Command error"']
        assert light.level_pct() == 12.5
        light.wait_settled(1.0)


def test_closing_one_driver_leaves_the_others_open(light, meter, world):
    light.close()  # pyvisa shares one ResourceManager per backend: it must not be closed with the light
    world.set_light(output=True, level_pct=10.0)
    assert meter.illuminance_lux() >= 0.0


def _sim_model(tmp_path: Path, name: str) -> Path:
    pytest.importorskip("pyvisa_sim")
    model = tmp_path / name  # pyvisa-sim keeps state per YAML path: a fresh copy per test
    shutil.copy(Path(__file__).with_name("data") / name, model)
    return model


def test_serial_crlf_dialect_on_a_pyvisa_sim_light_box(tmp_path):
    # an RS-232 box: CR LF, 9600 8N1, no error queue, no settle query, settings answer nothing
    from pyvisa import constants

    from station.devices.visa import SERIAL_CRLF

    model = _sim_model(tmp_path, "light_serial_crlf.yaml")
    config = InstrumentConfig("ASRL7::INSTR", timeout_s=0.2, dialect="serial-crlf")
    with ScpiLight(config, visa_library=f"{model}@sim") as light:
        assert light.identity == "SimLED,LB-200,0042,2.1"
        res = light._res
        assert (res.read_termination, res.write_termination) == ("\r\n", "\r\n")
        assert (res.baud_rate, res.data_bits, res.parity, res.stop_bits, res.flow_control) == (
            9600, 8, constants.Parity.none, constants.StopBits.one, constants.ControlFlow.none)
        light.set_output(True)
        light.set_level_pct(37.5)
        light.set_cct_k(3200)
        assert (light.output(), light.level_pct(), light.cct_k()) == (True, 37.5, 3200.0)
        assert light.errors("no queue") == []  # nothing to drain, and nothing sent for it
        # settle by time: the box cannot be asked, the driver waits the dialect's settle time
        assert not light.settled()
        started = time.monotonic()
        light.wait_settled(5.0)
        waited_s = time.monotonic() - started
        assert SERIAL_CRLF.settle_s - 0.05 <= waited_s <= SERIAL_CRLF.settle_s + 0.3
        assert light.settled()
        started = time.monotonic()
        light.wait_settled(5.0)  # nothing changed since: no wait
        assert time.monotonic() - started < 0.05
        light.set_output(False)
        assert light.output() is False and not light.settled()


def test_a_wrong_terminator_is_no_answer_not_a_hang(tmp_path):
    # the same box driven with the generic dialect (LF only) never sees a line end: a one-line timeout
    model = _sim_model(tmp_path, "light_serial_crlf.yaml")
    config = InstrumentConfig("ASRL7::INSTR", timeout_s=0.1, dialect="generic")
    with pytest.raises(DeviceError) as caught:
        ScpiLight(config, visa_library=f"{model}@sim")
    assert "*IDN? -> no answer" in one_line(caught.value)


def test_a_configured_settle_time_overrides_the_dialects(tmp_path):
    # the config's settle_s (a key the station TOML's [light] table is to carry) wins over the dialect's 0.5 s
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class WithSettle(InstrumentConfig):
        settle_s: float | None = None

    model = _sim_model(tmp_path, "light_serial_crlf.yaml")
    config = WithSettle("ASRL7::INSTR", timeout_s=0.2, dialect="serial-crlf", settle_s=0.1)
    with ScpiLight(config, visa_library=f"{model}@sim") as light:
        assert light.settle_s == 0.1
        light.set_level_pct(20.0)
        started = time.monotonic()
        light.wait_settled(5.0)
        assert 0.05 <= time.monotonic() - started <= 0.3
    with pytest.raises(ConfigError, match=r"light\.settle_s: expected seconds"):  # before anything opens
        ScpiLight(WithSettle("ASRL7::INSTR", timeout_s=0.2, dialect="serial-crlf", settle_s=-1.0),
                  visa_library=f"{model}@sim")
