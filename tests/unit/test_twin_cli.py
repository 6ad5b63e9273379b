"""``station twin`` in the foreground: any VISA client and any serial terminal reach it; its catalogs."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import tomllib

import pytest
import pyvisa
import serial

from station.cli import main
from station.twin.firmware import FIRMWARE_FAULTS, firmware_catalog
from station.twin.grbl_emulator import MOUNT_FAULTS
from station.twin.lenses import M_LENSES, MAIN_LENS
from station.twin.line import LINE_FAULTS
from station.twin.phone_server import PHONE_FAULTS
from station.twin.scpi_server import LIGHT_FAULTS


def read_toml(proc: subprocess.Popen[str], timeout_s: float = 20.0) -> dict:
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("time_scale"):  # last key of the [twin] table
            break
    return tomllib.loads("".join(lines))


def test_station_twin_serves_visa_and_serial_at_the_printed_addresses() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "station", "twin", "--time-scale", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        config = read_toml(proc)
        rm = pyvisa.ResourceManager("@py")
        light = rm.open_resource(config["light"]["resource"], read_termination="\n",
                                 write_termination="\n", timeout=2000)
        try:
            assert "TwinLight" in light.query("*IDN?")
            light.write("SOUR:LEV 40")
            assert float(light.query("SOUR:LEV?")) == 40.0
            assert light.query("SYST:ERR?").startswith("0,")
        finally:
            light.close()
        with serial.serial_for_url(config["mount"]["port"], baudrate=115200, timeout=2) as term:
            term.reset_input_buffer()
            term.write(b"?")
            status = term.readline().decode().strip()
        assert re.fullmatch(r"<Idle\|MPos:-?[\d.]+,-?[\d.]+,-?[\d.]+,-?[\d.]+\|.*>", status), status
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0  # a loaded CI machine: the twin stops its servers and threads
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def catalog(capsys: pytest.CaptureFixture[str], name: str) -> dict:
    assert main(["twin", name, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_lenses_catalog_is_the_lens_truth(capsys: pytest.CaptureFixture[str]) -> None:
    data = catalog(capsys, "lenses")
    lenses = data["lenses"]
    assert set(lenses) == {"main", *M_LENSES}
    for lens_id, lens in M_LENSES.items():
        entry = lenses[lens_id]
        assert entry["focal_length_mm"] == lens.focal_length_mm and entry["code"] == lens.code
        assert entry["distortion"]["coefficients"] == list(lens.distortion)
        assert entry["apertures"] == list(lens.apertures)
    assert lenses["main"]["focal_length_mm"] == MAIN_LENS.focal_length_mm
    assert set(data["mounts"]["optical_centre_offset_mm"]) == {"main", "m"}


def test_sensors_catalog_gives_both_readout_modes(capsys: pytest.CaptureFixture[str]) -> None:
    sensors = catalog(capsys, "sensors")["sensors"]
    assert set(sensors) == {"main", "m"}
    for entry in sensors.values():
        ci, full = entry["modes"]["ci"], entry["modes"]["full"]
        assert (ci["width"], ci["height"], full["width"], full["height"]) == (2048, 1536, 8192, 6144)
        assert (entry["cfa"], entry["black_level"], entry["white_level"]) == ("RGGB", 64, 1023)
        # the clip level: the full well or the ADC's top code, whichever comes first
        assert ci["clip_level_dn"] == min(64 + ci["conversion_gain_dn_per_e"] * ci["full_well_e"], 1023)


def test_firmware_and_faults_catalogs(capsys: pytest.CaptureFixture[str]) -> None:
    assert catalog(capsys, "firmware")["firmware"] == firmware_catalog()
    faults = catalog(capsys, "faults")["faults"]
    assert {*LIGHT_FAULTS, *MOUNT_FAULTS, *PHONE_FAULTS, *FIRMWARE_FAULTS, *LINE_FAULTS} == set(faults)


def test_station_twin_as_pure_hardware_prints_a_bench_toml_says_what_it_does_and_the_phones_serial() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "station", "twin", "--time-scale", "0", "--bench-toml"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # started with SIGINT ignored (as under a pytest-xdist worker): Ctrl-C must still stop it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        head = proc.stdout.readline()
        lines: list[str] = []
        in_dut = False
        while True:  # the [dut] table is the last one of a bench TOML
            line = proc.stdout.readline()
            lines.append(line)
            in_dut = in_dut or line.strip() == "[dut]"
            if not line or (in_dut and line.startswith("timeout_s")):
                break
        config = tomllib.loads("".join(lines))
        assert "twin" not in config and {"light", "meter", "mount", "dut"} <= set(config)
        serial_no = re.search(r"phone serial (\S+);", head)
        assert serial_no and serial_no.group(1).startswith("TWIN-") and "pure hardware" in head
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0  # a loaded CI machine: the twin stops its servers and threads
        progress = proc.stderr.read()
        assert "homing the mount" in progress and f"phone serial {serial_no.group(1)}" in progress
        assert "Traceback" not in progress
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
