"""Station TOML: validated, with errors that name the file, the key and what is allowed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from station.config import load_config, parse_config, to_toml, twin_config
from station.errors import ConfigError

GOOD = """
[station]
name = "line-3"

[light]
resource = "TCPIP0::10.0.0.5::5025::SOCKET"

[meter]
resource = "ASRL/dev/ttyUSB1::INSTR"
timeout_s = 3

[mount]
port = "/dev/serial/by-id/usb-grblHAL-if00"

[mount.axes.focus]
axis = "X"
min = 0
max = 270

[mount.axes.distance]
axis = "Y"
min = 200.0
max = 1500.0

[dut]
address = "127.0.0.1:7000"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def test_good_config_loads_with_units_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.name == "line-3"
    assert config.meter.timeout_s == 3.0 and isinstance(config.meter.timeout_s, float)
    assert config.light.timeout_s == 2.0
    assert config.mount.axes["focus"].max == 270.0
    assert set(config.mount.axes) == {"focus", "distance"}
    assert (config.dut.host, config.dut.port) == ("127.0.0.1", 7000)
    assert config.twin is None


@pytest.mark.parametrize(
    ("change", "key", "allowed"),
    [
        (("[dut]", "[dut]\ncolour = 3"), "dut.colour", "allowed here: address, timeout_s"),
        (('name = "line-3"', "name = 3"), "station.name", "expected str"),
        (("timeout_s = 3", 'timeout_s = "3"'), "meter.timeout_s", "expected float"),
        (("timeout_s = 3", "timeout_s = -1"), "meter.timeout_s", "a number > 0"),
        (('resource = "TCPIP0::10.0.0.5::5025::SOCKET"\n', ""), "light.resource", "required"),
        (('axis = "X"', 'axis = "Q"'), "mount.axes.focus.axis", "X, Y, Z, A, B, C"),
        (("max = 270", "max = -5"), "mount.axes.focus", "must be below max"),
        (('address = "127.0.0.1:7000"', 'address = "phone"'), "dut.address", "host:port"),
        (('axis = "Y"', 'axis = "X"'), "mount.axes", "share a controller axis"),
        (("[mount.axes.distance]", "[mount.axes.zoom]"), "mount.axes.zoom", "distance, focus, pan, tilt"),
        (('resource = "TCPIP0::10.0.0.5::5025::SOCKET"', 'resource = "TCPIP0::x;rm -rf /::1::SOCKET"'),
         "light.resource", "VISA resource"),
    ],
)
def test_bad_config_names_file_key_and_what_is_allowed(tmp_path: Path, change: tuple[str, str],
                                                        key: str, allowed: str) -> None:
    assert change[0] in GOOD
    path = write(tmp_path, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and key in message and allowed in message, message
    assert "\n" not in message


def test_missing_device_table_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"station.toml: dut: missing"):
        load_config(write(tmp_path, GOOD.split("[dut]")[0]))
    with pytest.raises(ConfigError, match="no such station file"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[light\nresource="))


def test_twin_config_round_trips_through_toml() -> None:
    config = twin_config(5025, 5026, "/dev/pts/7", 7000, 7001)
    text = to_toml(config)
    again = parse_config(tomllib.loads(text), "printed")
    assert again.light == config.light and again.mount == config.mount and again.dut == config.dut
    assert again.twin == config.twin
    assert again.light.resource == "TCPIP0::127.0.0.1::5025::SOCKET"
    assert again.mount.port == "/dev/pts/7"


def test_twin_faults_table_is_validated() -> None:
    data = tomllib.loads(to_toml(twin_config(1, 2, "/dev/pts/1", 3, 4)))
    data["twin"]["faults"] = {"light_no_answer": 3}
    assert parse_config(data).twin.faults == {"light_no_answer": 3}
    data["twin"]["faults"] = {"light_no_answer": [1, 2]}
    with pytest.raises(ConfigError, match="twin.faults.light_no_answer"):
        parse_config(data, "t.toml")
