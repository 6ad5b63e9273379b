"""The twin's control interface (operator stand-in, faults, truth) on a real socket."""

from __future__ import annotations

import json
import socket

import pytest

from station.config import DutConfig
from station.devices.phone import PhoneClient
from station.errors import DeviceError, InputError
from station.twin.control import ControlServer, TwinControl
from station.twin.phone_server import PHONE_FAULTS, PhoneServer
from station.twin.world import FULL_SCALE_LUX, World


@pytest.fixture
def world() -> World:
    return World(seed=21, time_scale=0.001)


@pytest.fixture
def control(world: World):
    with ControlServer(world) as server, TwinControl(server.address) as client:
        yield client


def test_chart_set(control: TwinControl, world: World) -> None:
    assert control.chart_set("siemens-star") == {"chart": "siemens-star"}
    assert world.chart == "siemens-star" and control.truth()["chart"] == "siemens-star"


def test_lens_mount_is_seen_by_the_phone(control: TwinControl, world: World) -> None:
    with PhoneServer(world) as phone:
        dut = PhoneClient(DutConfig(host="127.0.0.1", port=phone.port, timeout_s=2.0))
        assert dut.info()["m_lens"] is None
        assert control.lens_mount("noctilux-m-50-f0.95") == {"lens": "noctilux-m-50-f0.95"}
        assert world.m_lens == "noctilux-m-50-f0.95"
        assert dut.info()["m_lens"]["id"] == "noctilux-m-50-f0.95"
        control.lens_mount(None)
        assert dut.info()["m_lens"] is None and control.truth()["lens"] is None
        dut.close()


def test_unknown_lens_is_refused(control: TwinControl, world: World) -> None:
    with pytest.raises(InputError, match="not in the M lens catalog"):
        control.lens_mount("summicron-m-90-f2")
    assert world.m_lens is None


def test_firmware_set(control: TwinControl, world: World) -> None:
    assert control.firmware_set("zebra-shift") == {"firmware": "zebra-shift"}
    assert world.firmware == "zebra-shift" and control.truth()["firmware"] == "zebra-shift"


def test_faults_set_list_clear(control: TwinControl, world: World) -> None:
    listed = control.fault_list()
    assert listed["active"] == {} and set(PHONE_FAULTS) <= set(listed["known"])
    assert control.fault_set("dut_drop_frame", 3)["faults"] == {"dut_drop_frame": 3}
    assert control.fault_set("dut_disconnect")["faults"]["dut_disconnect"] is True
    assert world.faults == {"dut_drop_frame": 3, "dut_disconnect": True}
    assert control.fault_list()["active"] == world.faults
    assert control.fault_clear("dut_drop_frame")["faults"] == {"dut_disconnect": True}
    assert control.fault_clear("dut_drop_frame")["faults"] == {"dut_disconnect": True}  # idempotent
    assert world.faults == {"dut_disconnect": True}


@pytest.mark.parametrize("name, value, words", [
    ("no_such_fault", True, "unknown fault"),
    ("dut_drop_frame", "sometimes", "whole number"),
    ("dut_drop_frame", -2, "whole number"),
])
def test_bad_faults_are_refused(control: TwinControl, world: World, name: str, value: object,
                                words: str) -> None:
    with pytest.raises(InputError, match=words):
        control.fault_set(name, value)
    assert world.faults == {}


def test_truth_reports_the_world(control: TwinControl, world: World) -> None:
    world.light.settle_s = 0.0
    world.set_light(output=True, level_pct=25.0, cct_k=4000.0)
    world.axes.update({"X": 12.5, "Y": 800.0, "Z": -3.0, "A": 1.5})
    world.spend("move", 1.25)
    truth = control.truth()
    assert truth["light"]["output"] is True and truth["light"]["level_pct"] == 25.0
    assert truth["light"]["cct_k"] == 4000.0
    assert truth["light"]["illuminance_lux"] == pytest.approx(0.25 * FULL_SCALE_LUX)
    assert truth["pose"] == {"focus": 12.5, "distance": 800.0, "pan": -3.0, "tilt": 1.5}
    assert truth["hw_time_s"] == {"move": 1.25}
    assert (truth["seed"], truth["firmware"], truth["chart"], truth["lens"]) == (21, "golden", "flat", None)


@pytest.mark.parametrize("call", [
    lambda c: c.chart_set("Star/../../etc"),
    lambda c: c.lens_mount("SUMMICRON"),
    lambda c: c.firmware_set("build; rm -rf /"),
    lambda c: c.fault_set("Bad-Name"),
    lambda c: c.fault_clear(""),
])
def test_client_checks_names_before_sending(call) -> None:
    control = TwinControl("127.0.0.1:1")  # never contacted: the name is refused first
    with pytest.raises(InputError) as info:
        call(control)
    assert str(info.value).startswith("twin control: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("request_, words", [
    ({"cmd": "chart.set", "chart": "../x"}, "lower-case slug"),
    ({"cmd": "chart.set", "chart": 5}, "lower-case slug"),
    ({"cmd": "firmware.set", "build": "A B"}, "lower-case slug"),
    ({"cmd": "fault.set", "name": "dut_drop_frame", "value": [1]}, "expected true/false"),
    ({"cmd": "fault.set", "name": "x" * 100}, "fault name"),
    ({"cmd": "lens.mount"}, "missing argument 'lens'"),
    ({"cmd": "truth", "all": True}, "unknown argument 'all'"),
    ({"cmd": "explode"}, "unknown command 'explode'"),
])
def test_server_checks_names_too(world: World, request_: dict, words: str) -> None:
    with ControlServer(world) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.sendall(json.dumps(request_).encode() + b"\n")
        reply = json.loads(sock.makefile("rb").readline())
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request"
    assert words in reply["error"]["message"]
    assert (world.chart, world.firmware, world.faults) == ("flat", "golden", {})


def test_unreachable_control_is_a_device_error() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(DeviceError, match=f"twin: cannot connect to control 127.0.0.1:{port}"):
        TwinControl(f"127.0.0.1:{port}").truth()
    with pytest.raises(InputError, match="expected host:port"):
        TwinControl("nowhere")


def test_control_reconnects_after_the_server_restarts(world: World) -> None:
    server = ControlServer(world).start()
    control = TwinControl(server.address)
    assert control.truth()["seed"] == 21
    port = server.port
    server.stop()
    server = ControlServer(world, port=port).start()
    try:
        assert control.chart_set("charuco")["chart"] == "charuco"
    finally:
        control.close()
        server.stop()


def test_a_busy_port_is_a_one_line_error(world: World) -> None:
    with ControlServer(world) as first:
        busy = first.port
        with pytest.raises(DeviceError, match=f"cannot listen on 127.0.0.1:{busy}"):
            PhoneServer(world, port=busy).start()
