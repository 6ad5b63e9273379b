"""``station twin`` in the foreground: any VISA client and any serial terminal reach it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib

import pyvisa
import serial


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
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_station_twin_catalog_of_faults_lists_every_device() -> None:
    out = subprocess.run([sys.executable, "-m", "station", "twin", "faults", "--json"],
                         capture_output=True, text=True, check=True, env={**os.environ})
    import json

    faults = json.loads(out.stdout)["faults"]
    assert {"light_no_answer", "mount_stall", "dut_disconnect"} <= set(faults)
