"""Station TOML: validated, with errors that name the file, the key and what is allowed."""

from __future__ import annotations

import os
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
        (("[dut]", "[dut]\ncolour = 3"), "dut.colour", "unknown key (allowed: address, driver, timeout_s)"),
        (("[dut]", '[dut]\ndriver = "adb"'), "dut", "driver 'adb' is not a registered dut driver (registered: phone)"),
        (("[mount]", '[mount]\ndriver = "Grbl"'), "mount.driver", "lower-case name"),
        (('name = "line-3"', "name = 3"), "station.name", "3 is not a string"),
        (("timeout_s = 3", 'timeout_s = "3"'), "meter.timeout_s", "'3' is not a number"),
        (("timeout_s = 3", "timeout_s = -1"), "meter.timeout_s", "greater than 0"),
        (('resource = "TCPIP0::10.0.0.5::5025::SOCKET"\n', ""), "light.resource", "missing"),
        (('axis = "X"', 'axis = "Q"'), "mount.axes.focus.axis", "allowed: X, Y, Z, A, B, C"),
        (("max = 270", "max = -5"), "mount.axes.focus", "must be below max"),
        (('address = "127.0.0.1:7000"', 'address = "phone"'), "dut.address", "host:port"),
        (('axis = "Y"', 'axis = "X"'), "mount.axes", "share a controller axis"),
        (("[mount.axes.distance]", "[mount.axes.zoom]"), "mount.axes.zoom", "focus, distance, pan, tilt"),
        (('resource = "TCPIP0::10.0.0.5::5025::SOCKET"', 'resource = "TCPIP0::x;rm -rf /::1::SOCKET"'),
         "light.resource", "VISA resource"),
        # issue 10 Found 1, 3, 4: bounds, control characters, non-ASCII hosts, escaping device paths
        (("[dut]", "[dut]\ntimeout_s = inf"), "dut.timeout_s", "not a finite number"),
        (("[mount]", "[mount]\ntimeout_s = inf"), "mount.timeout_s", "not a finite number"),
        (("[mount]", "[mount]\ntimeout_s = 1e9"), "mount.timeout_s", "less than or equal to 3600"),
        (("[mount]", "[mount]\nbaudrate = 1000000000000000000"), "mount.baudrate", "standard baud rate"),
        (("[mount]", "[mount]\nbaudrate = 115201"), "mount.baudrate", "standard baud rate"),
        (('name = "line-3"', 'name = "line-3\\n"'), "station.name", "control characters"),
        (('address = "127.0.0.1:7000"', 'address = "127.0.0.1:7000\\n"'), "dut.address", "control characters"),
        (('address = "127.0.0.1:7000"', 'address = "phöne:7000"'), "dut.address", "ASCII host"),
        (('address = "127.0.0.1:7000"', 'address = "127.0.0.1:70000"'), "dut.address", "port 1..65535"),
        (('resource = "TCPIP0::10.0.0.5::5025::SOCKET"', 'resource = "TCPIP0::hôst::5025::SOCKET"'),
         "light.resource", "VISA resource"),
        (('resource = "TCPIP0::10.0.0.5::5025::SOCKET"', 'resource = "TCPIP0::10.0.0.5::5025::SOCKET\\n"'),
         "light.resource", "control characters"),
        (('resource = "ASRL/dev/ttyUSB1::INSTR"', 'resource = "ASRL/dev/../etc/passwd::INSTR"'),
         "meter.resource", "normalised /dev/"),
        (('port = "/dev/serial/by-id/usb-grblHAL-if00"', 'port = "/dev/../tmp/x"'), "mount.port", "normalised /dev/"),
        (('port = "/dev/serial/by-id/usb-grblHAL-if00"', 'port = "/dev//ttyACM0"'), "mount.port", "normalised /dev/"),
        (("[dut]", "[records]\ndatabase = \"mysql://x\"\n[dut]"), "records.database", "sqlite:///"),
        (("[dut]", "[records]\ngolden_units = [\"A1\", \"B 2\"]\n[dut]"), "records.golden_units[1]",
         "serial number"),
        (('name = "line-3"', 'name = "line-3"\noperator = "tcp://host"'), "station.operator", "prompt or tcp://"),
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
    with pytest.raises(ConfigError, match=r"station.toml: 1 problem: \[dut\] missing"):
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


def test_driver_keys_default_round_trip_and_join_the_other_problems(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    drivers = (config.light.driver, config.meter.driver, config.mount.driver, config.dut.driver)
    assert drivers == ("scpi", "scpi", "grbl", "phone")
    assert "driver" not in tomllib.loads(to_toml(config))["light"]  # a default is not written out
    text = GOOD.replace("[dut]\n", '[dut]\ndriver = "phone"\n').replace("[mount]\n", '[mount]\ndriver = "grbl"\n')
    assert load_config(write(tmp_path, text)) == config
    text = GOOD.replace("[dut]\n", '[dut]\ndriver = "adb"\n').replace("timeout_s = 3", 'timeout_s = "3"')
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    message = str(err.value)
    assert "2 problems" in message and "meter.timeout_s: '3' is not a number" in message
    assert "dut: driver 'adb' is not a registered dut driver (registered: phone)" in message


def test_twin_faults_table_is_validated() -> None:
    data = tomllib.loads(to_toml(twin_config(1, 2, "/dev/pts/1", 3, 4)))
    data["twin"]["faults"] = {"light_no_answer": 3}
    assert parse_config(data).twin.faults == {"light_no_answer": 3}
    data["twin"]["faults"] = {"light_no_answer": [1, 2]}
    with pytest.raises(ConfigError, match="twin.faults.light_no_answer"):
        parse_config(data, "t.toml")


def test_three_mistakes_are_reported_in_one_error(tmp_path: Path) -> None:
    """Issue 11 must-show: a misspelt key, a wrong type and a missing table, all in one line."""
    text = GOOD.replace("resource = \"TCPIP0", "resourse = \"TCPIP0")
    text = text.replace("[mount]\n", "[mount]\ntimeout_s = \"x\"\n")
    text = text.replace(text[text.index("[meter]"):text.index("[mount]")], "")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: 3 problems: "), message
    assert "[meter] missing" in message
    assert ("light.resourse: unknown key, did you mean resource? "
            "(allowed: dialect, driver, interlock, resource, timeout_s)" in message)
    assert "light.resource: missing" not in message  # one mistake, reported once
    assert "mount.timeout_s: 'x' is not a number" in message
    assert "\n" not in message


def test_new_keys_database_golden_units_operator_lens_catalog(tmp_path: Path) -> None:
    text = GOOD.replace('name = "line-3"', 'name = "line-3"\noperator = "tcp://10.0.0.9:7100"\n'
                                             'lens_catalog = "lenses.toml"')
    text += '\n[records]\ndatabase = "sqlite:///var/records.db"\ngolden_units = ["G-001", "G-002"]\n'
    config = load_config(write(tmp_path, text))
    assert config.operator == "tcp://10.0.0.9:7100"
    assert config.lens_catalog == tmp_path / "lenses.toml"
    assert config.records.database == "sqlite:///var/records.db"
    assert config.records.golden_units == ("G-001", "G-002")
    again = parse_config(tomllib.loads(to_toml(config)), str(tmp_path / "again.toml"))
    assert again == config.__class__(**{**config.__dict__, "source": str(tmp_path / "again.toml")})
    plain = load_config(write(tmp_path, GOOD))
    assert plain.operator is None and plain.lens_catalog is None and plain.records.database is None
    assert plain.records.golden_units == ()


def test_special_files_are_refused_without_reading_or_hanging(tmp_path: Path) -> None:
    """Issue 10 Found 1-2: /dev/zero (read whole: MemoryError) and a FIFO with no writer (hang)."""
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"fifo.toml: not a regular file"):
        load_config(fifo)
    with pytest.raises(ConfigError, match=r"/dev/zero: not a regular file"):
        load_config("/dev/zero")
    with pytest.raises(ConfigError, match=r"not a regular file"):
        load_config(tmp_path)
    big = write(tmp_path, "#" * 2_000_000)
    with pytest.raises(ConfigError, match=r"station.toml: 2000000 bytes; a station file is at most"):
        load_config(big)
    with pytest.raises(ConfigError, match=r"not UTF-8"):
        binary = tmp_path / "binary.toml"
        binary.write_bytes(b"\xff\xfe")
        load_config(binary)


def test_settings_built_from_options_fail_in_one_line_too() -> None:
    """CLI options build ``TwinConfig`` directly: a bad one is a one-line ConfigError (exit 2), not pydantic's text."""
    from station.config import AxisConfig, TwinConfig

    with pytest.raises(ConfigError) as err:
        TwinConfig(seed=-1, firmware="gold en")
    text = str(err.value)
    assert text.startswith("twin settings: 2 problems: seed: -1: ") and "firmware: 'gold en'" in text, text
    assert "\n" not in text
    with pytest.raises(ConfigError, match="mount axis config: 1 problem: .*min 5.0 must be below max 1.0"):
        AxisConfig("X", 5.0, 1.0)
    assert TwinConfig(seed=7).seed == 7
