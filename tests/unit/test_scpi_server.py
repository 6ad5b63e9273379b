"""The twin's SCPI light and lux meter on a real TCP socket: protocol, error queue, settle, faults."""

from __future__ import annotations

import socket
import statistics
import threading
import time

import pytest

from station import __version__
from station.twin.scpi_server import ERROR_QUEUE_LEN, LIGHT_FAULTS, ScpiServer
from station.twin.world import FULL_SCALE_LUX, World

TIME_SCALE = 0.01


class Raw:
    """A bare socket client: what any terminal or VISA library puts on the wire."""

    def __init__(self, port: int, timeout_s: float = 1.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.buffer = b""

    def send(self, line: str, end: bytes = b"\n") -> None:
        self.sock.sendall(line.encode("ascii") + end)

    def line(self) -> str:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\n", 1)
        return raw.decode("ascii")

    def do(self, line: str, end: bytes = b"\n") -> None:
        """Send a setting and wait until the server has executed it (IEEE 488.2 ``*OPC?``)."""
        self.send(line, end)
        assert self.ask("*OPC?") == "1"

    def ask(self, line: str) -> str:
        self.send(line)
        return self.line()

    def errors(self) -> list[str]:
        found = []
        while (answer := self.ask("SYST:ERR?")) != '0,"No error"':
            found.append(answer)
            assert len(found) <= ERROR_QUEUE_LEN
        return found

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def world():
    return World(seed=7, time_scale=TIME_SCALE)


@pytest.fixture
def light(light_server):
    client = Raw(light_server.port)
    yield client
    client.close()


def test_identity_and_common_commands(light, meter_server):
    maker, model, serial, version = light.ask("*IDN?").split(",")
    assert (maker, model, serial, version) == ("M-Station", "TwinLight", "SN0007", __version__)
    assert light.ask("*OPC?") == "1"
    meter = Raw(meter_server.port)
    assert meter.ask("*idn?").split(",")[1] == "TwinLuxMeter"
    meter.close()


def test_short_long_forms_and_case(light, world):
    light.do("SOURce:LEVel 12.5")
    assert world.light.level_pct == 12.5
    assert light.ask("sour:lev?") == "12.5"
    assert light.ask(":SOURCE:LEVEL?") == "12.5"
    light.do("OUTPut:STATe ON")
    assert world.light.output is True
    assert light.ask("outp?") == "1"
    light.send("OUTP 0", end=b"\r\n")  # CR LF accepted
    assert light.ask("OUTPUT?") == "0"
    light.send("SOUR:CCT 4100")
    assert light.ask("SOURce:CCT?") == "4100"
    assert light.errors() == []
    light.send("SOURc:LEV?")  # neither the short nor the long form: no answer, -113 queued
    assert [e.split(",")[0] for e in light.errors()] == ["-113"]


def test_compound_line_follows_the_path_rule(light, world):
    light.do("SOUR:LEV 20;CCT 4000")  # CCT is SOUR:CCT by the SCPI path rule
    assert (world.light.level_pct, world.light.cct_k) == (20.0, 4000.0)
    assert light.ask("SOUR:LEV?;:OUTP?") == "20;0"
    assert light.errors() == []


@pytest.mark.parametrize(("line", "code"), [
    ("FOO 1", "-113"), ("SOUR:LEV? 3", "-108"), ("SOUR:LEV 101", "-222"), ("SOUR:LEV -0.5", "-222"),
    ("SOUR:CCT 2000", "-222"), ("SOUR:CCT 9000", "-222"), ("OUTP MAYBE", "-224"), ("SOUR:LEV", "-109"),
    ("SOUR:LEV abc", "-104"), ("SOUR:LEV nan", "-104"), ("SOUR:SETT 1", "-113"), ("SOUR::LEV 1", "-100"),
])
def test_bad_commands_queue_standard_errors_and_change_nothing(light, world, line, code):
    before = (world.light.output, world.light.level_pct, world.light.cct_k)
    light.do(line)
    errors = light.errors()
    assert [e.split(",")[0] for e in errors] == [code]
    assert errors[0].split(",", 1)[1].startswith('"') and errors[0].endswith('"')
    assert (world.light.output, world.light.level_pct, world.light.cct_k) == before


def test_error_queue_is_bounded_and_overflow_is_350(light):
    for i in range(ERROR_QUEUE_LEN + 5):
        light.send(f"SOUR:LEV {200 + i}")
    errors = light.errors()
    assert len(errors) == ERROR_QUEUE_LEN
    assert all(e.startswith("-222,") for e in errors[:-1])
    assert errors[0].startswith('-222,"Data out of range; SOUR:LEV 200 ')  # oldest kept first
    assert errors[-1] == '-350,"Queue overflow"'
    light.send("BAD")
    light.send("*CLS")
    assert light.errors() == []


def test_reset_restores_defaults(light, world):
    light.do("SOUR:LEV 70;:SOUR:CCT 3000;:OUTP ON")
    light.do("*RST")
    assert light.ask("OUTP?;:SOUR:LEV?;:SOUR:CCT?") == "0;0;5000"


def test_settle_answers_zero_until_the_world_has_settled(light, world):
    world.light.settle_s = 20.0  # simulated: 0.2 s real at this time scale
    light.send("SOUR:LEV 30")
    assert light.ask("SOUR:SETT?") == "0"
    deadline = time.monotonic() + 5.0
    while light.ask("SOUR:SETT?") != "1":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert world.now_sim_s() - world.light.changed_at_sim_s >= world.light.settle_s


def test_several_clients_at_once(light_server, world):
    idle = Raw(light_server.port)  # a client that says nothing must not block the others
    failures: list[str] = []

    def client(n: int) -> None:
        raw = Raw(light_server.port)
        for _ in range(50):
            if raw.ask("*OPC?") != "1" or not raw.ask("*IDN?").startswith("M-Station,TwinLight"):
                failures.append(f"client {n}")
        raw.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert idle.ask("*OPC?") == "1"
    idle.close()


def _lit(world: World, level_pct: float) -> None:
    """Put the light at a level that settled long ago (no settling term left)."""
    with world.lock:
        world.light.output = True
        world.light.level_pct = level_pct
        world.light.changed_at_sim_s = -1e9


def test_meter_reads_world_truth_with_small_seeded_noise(world, meter_server):
    _lit(world, 50.0)
    meter = Raw(meter_server.port)
    readings = [float(meter.ask("MEAS:ILL?")) for _ in range(200)]
    truth = FULL_SCALE_LUX * 0.5
    assert abs(statistics.fmean(readings) / truth - 1) < 0.001
    assert 0.001 < statistics.stdev(readings) / truth < 0.0035
    world.light.cct_k = 3200.0
    assert float(meter.ask("MEAS:CCT?")) == 3200.0
    world.light.output = False
    assert float(meter.ask("MEASure:ILLuminance?")) == 0.0
    assert float(meter.ask("MEAS:CCT?")) == 0.0
    meter.close()

    twin = World(seed=7, time_scale=TIME_SCALE)  # same seed, same state: same readings
    _lit(twin, 50.0)
    with ScpiServer(twin, "meter") as other:
        again = Raw(other.port)
        assert [float(again.ask("MEAS:ILL?")) for _ in range(200)] == readings
        again.close()


def test_fault_list_is_documented():
    assert set(LIGHT_FAULTS) == {"light_no_answer", "light_scpi_error", "light_drift", "light_flaky", "meter_flaky"}
    assert all(len(text) > 20 for text in LIGHT_FAULTS.values())


def test_fault_no_answer_at_once_and_cleared_at_run_time(light_server, world):
    raw = Raw(light_server.port, timeout_s=0.2)
    world.faults["light_no_answer"] = 0
    raw.send("*IDN?")
    raw.send("SOUR:LEV 80")  # a silent light does not act either
    with pytest.raises(TimeoutError):
        raw.line()
    del world.faults["light_no_answer"]
    assert raw.ask("SOUR:LEV?") == "0"
    raw.close()


def test_fault_no_answer_after_n_commands(light, world):
    world.faults["light_no_answer"] = 2
    assert light.ask("*OPC?") == "1"
    light.send("SOUR:LEV 25")
    light.sock.settimeout(0.2)
    light.send("SOUR:LEV?")
    with pytest.raises(TimeoutError):
        light.line()
    assert world.light.level_pct == 25.0


def test_fault_no_answer_rearms_when_its_value_changes(light, world):
    world.faults["light_no_answer"] = 100
    assert light.ask("*OPC?") == "1"
    world.faults["light_no_answer"] = 0  # changed at run time: silent at once
    light.sock.settimeout(0.2)
    light.send("*OPC?")
    with pytest.raises(TimeoutError):
        light.line()


def test_fault_scpi_error_refuses_settings(light, world):
    world.faults["light_scpi_error"] = True
    light.send("SOUR:LEV 30")
    light.send("OUTP ON")
    assert light.errors() == ['-300,"Device-specific error; lamp fault"'] * 2
    assert light.ask("SOUR:LEV?;:OUTP?") == "0;0"  # queries still answer, nothing changed
    world.faults["light_scpi_error"] = "ballast overheated"
    light.send("SOUR:CCT 3000")
    assert light.errors() == ['-300,"Device-specific error; ballast overheated"']


def test_fault_drift_raises_the_level_after_settling(light, meter_server, world):
    drift_pct_per_s = 2.0
    world.faults["light_drift"] = drift_pct_per_s
    light.send("OUTP ON;:SOUR:LEV 40")  # the light server reads the fault at this command
    meter = Raw(meter_server.port)

    def expected(sim_s: float) -> float:
        # DESIGN 5: drift after settling, % of value per simulated second (independent of the code)
        since = sim_s - world.light.changed_at_sim_s - world.light.settle_s
        return FULL_SCALE_LUX * 0.40 * (1 + drift_pct_per_s / 100 * max(since, 0.0))

    time.sleep(0.05)
    for _ in range(2):
        before = world.now_sim_s()
        lux = float(meter.ask("MEAS:ILL?"))
        after = world.now_sim_s()
        assert expected(before) * 0.99 < lux < expected(after) * 1.01
        time.sleep(0.15)  # 15 simulated s: +30 % of drift
    assert lux > FULL_SCALE_LUX * 0.40 * 1.2
    del world.faults["light_drift"]
    meter.ask("*OPC?")
    assert world.light.drift_pct_per_s == 0.0
    meter.close()


def test_long_line_is_a_command_error(light):
    light.send("X" * 5000)
    assert [e.split(",")[0] for e in light.errors()] == ["-100"]


def test_stop_closes_listener_and_clients(world):
    server = ScpiServer(world, "light").start()
    port = server.port
    raw = Raw(port)
    assert raw.ask("*OPC?") == "1"
    server.stop()
    assert raw.sock.recv(16) == b""
    raw.close()
    assert not any(thread.is_alive() for thread in server._threads)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_plain_pyvisa_client_reaches_the_twin_light(light_server):
    import pyvisa

    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(f"TCPIP0::127.0.0.1::{light_server.port}::SOCKET",
                            read_termination="\n", write_termination="\n", timeout=2000)
    try:
        assert inst.query("*IDN?").startswith("M-Station,TwinLight,")
        inst.write("SOUR:LEV 40")
        assert float(inst.query("SOUR:LEV?")) == 40.0
        assert inst.query("SYST:ERR?") == '0,"No error"'
    finally:
        inst.close()
        rm.close()


@pytest.fixture
def visa_light(light_server):
    """The twin's light through plain pyvisa (pyvisa-py), as any third-party client reaches it."""
    import pyvisa

    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(f"TCPIP0::127.0.0.1::{light_server.port}::SOCKET",
                            read_termination="\n", write_termination="\n", timeout=2000)
    yield inst
    inst.close()


def test_ieee488_event_register_power_on_and_error_classes(visa_light):
    # IEEE 488.2 11.5.1: PON set at power-on; *ESR? reads and clears; each SCPI error class sets its bit
    assert int(visa_light.query("*ESR?")) == 0x80
    assert int(visa_light.query("*ESR?")) == 0
    visa_light.write("SOUR:BOGUS 1")  # -113 undefined header: command error, CME (bit 5)
    visa_light.write("SOUR:LEV 150")  # -222 data out of range: execution error, EXE (bit 4)
    assert int(visa_light.query("*ESR?")) == 0x20 | 0x10
    assert int(visa_light.query("*ESR?")) == 0
    visa_light.write("*OPC")  # OPC (bit 0) once the operations so far are complete
    assert int(visa_light.query("*ESR?")) == 0x01


def test_ieee488_status_byte_eav_mav_esb_mss_and_cls(visa_light):
    visa_light.write("*CLS")
    assert int(visa_light.query("*STB?")) == 0
    visa_light.write("SOUR:LEV 150")  # an error queued: EAV (bit 2); not enabled into ESB yet
    assert int(visa_light.query("*STB?")) == 0x04
    visa_light.write("*ESE 16")  # enable EXE into the summary: ESB (bit 5)
    assert int(visa_light.query("*ESE?")) == 16
    assert int(visa_light.query("*STB?")) == 0x04 | 0x20
    visa_light.write("*SRE 32")  # ESB requests service: MSS (bit 6); *SRE's own bit 6 is ignored
    assert int(visa_light.query("*SRE?")) == 32
    assert int(visa_light.query("*STB?")) == 0x04 | 0x20 | 0x40
    visa_light.write("*SRE 96")
    assert int(visa_light.query("*SRE?")) == 32
    # MAV (bit 4): an answer waits in the output queue while *STB? is read in the same line
    assert visa_light.query("SOUR:LEV?;*STB?").split(";")[1] == str(0x04 | 0x20 | 0x40 | 0x10)
    assert int(visa_light.query("*STB?")) & 0x10 == 0  # *STB? alone: nothing else waiting
    visa_light.write("*CLS")  # clears queue and event register, not the enable masks
    assert int(visa_light.query("*STB?")) == 0
    assert (int(visa_light.query("*ESE?")), int(visa_light.query("*SRE?"))) == (16, 32)
    assert visa_light.query("SYST:ERR?") == '0,"No error"'
    visa_light.write("*ESE 300")  # out of 0..255: refused with -222, mask unchanged
    assert int(visa_light.query("*ESE?")) == 16
    assert visa_light.query("SYST:ERR?").startswith("-222,")


def test_ieee488_wai_and_self_test(visa_light, world):
    visa_light.write("SOUR:LEV 30;*WAI;:OUTP ON")  # a common command keeps the path: :OUTP from the root
    assert float(visa_light.query("SOUR:LEV?")) == 30.0 and visa_light.query("OUTP?") == "1"
    assert visa_light.query("*TST?") == "0"
    world.faults["light_scpi_error"] = True  # a lamp fault: the self-test fails
    assert visa_light.query("*TST?") == "1"
    assert visa_light.query("SYST:ERR?") == '0,"No error"'  # *TST? is a query, not a refused setting


def test_flaky_link_drops_one_reply_in_k_and_the_command_still_acts(light_server, world):
    world.faults["light_flaky"] = 3
    client = Raw(light_server.port, timeout_s=0.3)
    try:
        answers = []
        for level in (10, 20, 30, 40, 50, 60):
            client.send(f"SOUR:LEV {level};LEV?")
            try:
                answers.append(client.line())
            except TimeoutError:
                answers.append(None)
        assert answers == ["10", "20", None, "40", "50", None]
        world.faults.pop("light_flaky")
        assert client.ask("SOUR:LEV?") == "60"  # the unanswered setting acted
    finally:
        client.close()
