"""The twin's control interface (operator stand-in, faults, truth) on a real socket; what it sets
reaches the phone's frames and their ground truth."""

from __future__ import annotations

import json
import socket

import pytest

from station.config import DutConfig
from station.devices.phone import PhoneClient
from station.errors import DeviceError, InputError
from station.twin.control import ControlServer
from station.twin.control_client import TwinControl
from station.twin.firmware import FIRMWARE_FAULTS
from station.twin.lenses import M_LENSES
from station.twin.phone_server import PHONE_FAULTS, PhoneServer
from station.twin.world import FULL_SCALE_LUX, World
from targets.registry import chart_names


@pytest.fixture
def world() -> World:
    return World(seed=21, time_scale=0.001)


@pytest.fixture
def control(world: World):
    with ControlServer(world) as server, TwinControl(server.address) as client:
        yield client


def test_chart_set(control: TwinControl, world: World) -> None:
    assert control.chart_set("siemens-star") == {"chart": "siemens-star", "size_mm": None}
    assert world.chart == "siemens-star" and control.truth()["chart"] == "siemens-star"
    assert control.chart_set("flat", (600, 450.5))["size_mm"] == [600.0, 450.5]
    assert world.optics["chart_size_mm"] == [600.0, 450.5]
    assert control.chart_set("charuco:48x36:24:18:DICT_5X5_1000")["size_mm"] is None  # its own size
    assert world.optics["chart_size_mm"] is None


def test_unknown_chart_is_refused_naming_the_known_ones(control: TwinControl, world: World) -> None:
    with pytest.raises(InputError) as info:
        control.chart_set("resolution-wedge")
    assert all(name in str(info.value) for name in chart_names())
    with pytest.raises(InputError, match="size_mm"):
        control.chart_set("flat", (0.0, 300.0))
    assert world.chart == "flat"


def test_lens_mount_and_aperture_are_seen_by_the_phone(control: TwinControl, world: World) -> None:
    with PhoneServer(world) as phone:
        dut = PhoneClient(DutConfig(host="127.0.0.1", port=phone.port, timeout_s=2.0))
        assert dut.info()["m_lens"] is None
        assert control.lens_mount("noctilux-m-50-f0.95") == {"lens": "noctilux-m-50-f0.95", "aperture": None}
        assert world.m_lens == "noctilux-m-50-f0.95"
        assert dut.info()["m_lens"] == {"id": "noctilux-m-50-f0.95", "code": M_LENSES["noctilux-m-50-f0.95"].code}
        assert control.lens_mount("summicron-m-50-f2", aperture=4)["aperture"] == 4.0
        assert control.lens_aperture(8.0) == {"lens": "summicron-m-50-f2", "aperture": 8.0}
        truth = control.truth()
        assert truth["lens"] == "summicron-m-50-f2" and truth["optics"]["aperture"] == 8.0
        control.lens_mount(None)
        assert dut.info()["m_lens"] is None and control.truth()["lens"] is None
        assert world.optics["aperture"] is None
        dut.close()


@pytest.mark.parametrize("call, words", [
    (lambda c: c.lens_mount("summicron-m-90-f2"), "not in the M lens catalog; known: " + ", ".join(sorted(M_LENSES))),
    (lambda c: c.lens_mount("main"), "not in the M lens catalog"),
    (lambda c: c.lens_mount("summicron-m-50-f2", aperture=1.4), "outside its range f/2 to f/16"),
    (lambda c: c.lens_mount(None, aperture=2.0), "no aperture"),
    (lambda c: c.lens_aperture(2.0), "no M lens mounted"),
    (lambda c: c.adapter_set(back_focus_mm=5.0), "back_focus_mm 5.0"),
    (lambda c: c.adapter_set(tilt_y_deg=-10), "tilt_y_deg -10.0"),
])
def test_bad_lens_and_adapter_settings_are_refused(control: TwinControl, world: World, call, words: str) -> None:
    with pytest.raises(InputError) as info:
        call(control)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert world.m_lens is None and world.optics["adapter_back_focus_mm"] == 0.0


def test_what_control_sets_is_in_the_capture_truth(control: TwinControl, world: World) -> None:
    world.light.settle_s = 0.0
    world.set_light(output=True, level_pct=40.0)
    world.axes["Y"], world.axes["X"] = 900.0, 30.0  # rail distance, focus ring
    control.chart_set("flat", (800, 600))
    control.lens_mount("elmarit-m-28-f2.8", aperture=5.6)
    assert control.adapter_set(back_focus_mm=0.02, tilt_x_deg=0.5) == {
        "back_focus_mm": 0.02, "tilt_x_deg": 0.5, "tilt_y_deg": 0.0}
    with PhoneServer(world) as phone, PhoneClient(DutConfig(host="127.0.0.1", port=phone.port,
                                                            timeout_s=10.0)) as dut:
        truth = dut.capture_frame("m").extra["truth"]
    assert (truth["lens"], truth["f_number"], truth["chart"]) == ("elmarit-m-28-f2.8", 5.6, "flat")
    assert truth["chart_size_mm"] == [800.0, 600.0]
    assert truth["adapter"] == {"back_focus_error_mm": 0.02, "tilt_x_deg": 0.5, "tilt_y_deg": 0.0}
    assert truth["pose"]["distance_mm"] == 900.0 and truth["focus"]["focus_ring_deg"] == 30.0
    assert truth["illuminance_lux"] == pytest.approx(0.4 * FULL_SCALE_LUX)
    assert truth["sensor_serial"] == control.truth()["sensor_serials"]["m"]


def test_firmware_set(control: TwinControl, world: World) -> None:
    assert control.firmware_set("zebra-shift") == {"firmware": "zebra-shift"}
    assert world.firmware == "zebra-shift" and control.truth()["firmware"] == "zebra-shift"


def test_faults_set_list_clear(control: TwinControl, world: World) -> None:
    listed = control.fault_list()
    assert listed["active"] == {} and set(PHONE_FAULTS) | set(FIRMWARE_FAULTS) <= set(listed["known"])
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
    ("black_level_offset", "lots", "black_level_offset"),
    ("light_drift", float("inf"), "not plain JSON"),
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
    assert truth["optics"] == {"aperture": None, "adapter_back_focus_mm": 0.0, "adapter_tilt_x_deg": 0.0,
                               "adapter_tilt_y_deg": 0.0, "chart_size_mm": None, "sensor_serial": None}
    assert truth["serial"] == world.phone_serial()
    assert truth["sensor_serials"] == {"main": f"{truth['serial']}-main", "m": f"{truth['serial']}-m"}


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
    ({"cmd": "chart.set", "chart": "../x"}, "expected a chart name"),
    ({"cmd": "chart.set", "chart": 5}, "expected a chart name"),
    ({"cmd": "chart.set", "chart": "flat", "size_mm": [100]}, "[width_mm, height_mm]"),
    ({"cmd": "chart.set", "chart": "flat", "size_mm": [100, True]}, "size_mm[1] True"),
    ({"cmd": "lens.mount", "lens": "summicron-m-50-f2", "aperture": "f2"}, "aperture 'f2'"),
    ({"cmd": "adapter.set", "shift_mm": 1}, "unknown argument 'shift_mm'"),
    ({"cmd": "firmware.set", "build": "A B"}, "lower-case slug"),
    ({"cmd": "fault.set", "name": "dut_drop_frame", "value": [1]}, "expected true/false"),
    ({"cmd": "fault.set", "name": "x" * 100}, "fault name"),
    ({"cmd": "lens.mount"}, "missing argument 'lens'"),
    ({"cmd": "truth", "all": True}, "unknown argument 'all'"),
    ({"cmd": "explode"}, "unknown command 'explode'"),
])
def test_server_checks_names_too(idle_control, request_: dict, words: str) -> None:
    world, sock, replies = idle_control
    sock.sendall(json.dumps(request_).encode() + b"\n")
    reply = json.loads(replies.readline())
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request"
    assert words in reply["error"]["message"]
    assert (world.chart, world.firmware, world.faults, world.m_lens) == ("flat", "golden", {}, None)
    assert world.optics["adapter_back_focus_mm"] == 0.0


@pytest.fixture(scope="module")
def idle_control():
    """One control server for the requests it refuses (they change nothing): world, socket, reader."""
    world = World(seed=21, time_scale=0.001)
    with ControlServer(world) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock, \
            sock.makefile("rb") as replies:
        yield world, sock, replies


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


def test_each_light_change_accounts_its_settling_as_hardware_time(control: TwinControl, world: World) -> None:
    world.light.settle_s = 0.3
    world.set_light(output=True, level_pct=40.0)
    world.set_light(level_pct=60.0)
    assert control.truth()["hw_time_s"]["settle"] == pytest.approx(0.6)
