"""The driver registry: a new light box is a driver file plus a config line (labgrid's target_factory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from station.cli import main
from station.config import TwinConfig, load_config, to_document
from station.devices import registry
from station.devices.grbl_mount import GrblMount
from station.devices.light import ScpiLight
from station.devices.lux_meter import ScpiLuxMeter
from station.devices.phone import PhoneClient
from station.devices.protocols import LightSource
from station.devices.visa import VisaInstrument, format_number
from station.errors import ConfigError, DeviceError
from station.station import Station
from station.twin.runner import Twin

EXTRA = "long-form-box"


class LongFormLight(VisaInstrument):
    """A light box whose firmware only takes SCPI long forms, written as its own small class (no dialect
    table): the same wire as the twin's light, another driver."""

    def set_output(self, on: bool) -> None:
        self.setting(f"OUTPut {'ON' if on else 'OFF'}")

    def output(self) -> bool:
        return self.query_bool("OUTPut?")

    def set_level_pct(self, level_pct: float) -> None:
        self.setting(f"SOURce:LEVel {format_number(level_pct)}")

    def level_pct(self) -> float:
        return self.query_float("SOURce:LEVel?")

    def set_cct_k(self, cct_k: float) -> None:
        self.setting(f"SOURce:CCT {format_number(cct_k)}")

    def cct_k(self) -> float:
        return self.query_float("SOURce:CCT?")

    def wait_settled(self, timeout_s: float = 10.0) -> None:
        if not self.query_bool("SOURce:SETTled?"):
            raise DeviceError(self.name, "not settled")

    def safe_off(self) -> None:
        self.write("OUTPut OFF")


class NotALight:
    """A class registered as a light that lacks most of the Protocol."""

    def __init__(self, config: object, name: str) -> None:
        self.name, self.identity = name, "none"

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def twin() -> Iterator[Twin]:
    with Twin(TwinConfig(time_scale=0.0)) as running:
        yield running


@pytest.fixture
def extra_drivers() -> Iterator[None]:
    registry.register("light", EXTRA)(LongFormLight)
    registry.register("light", "not-a-light")(NotALight)
    yield
    registry.unregister("light", EXTRA)
    registry.unregister("light", "not-a-light")


def station_file(tmp_path: Path, twin: Twin, table: str, driver: str) -> Path:
    """The twin's station file with one ``driver = ...`` line added to ``[table]``."""
    doc = to_document(twin.config)
    doc[table]["driver"] = driver
    path = tmp_path / "station.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def test_builtin_drivers_are_the_defaults_when_the_key_is_absent(twin: Twin) -> None:
    assert {kind: registry.names(kind) for kind in registry.KINDS} == {
        "light": ("scpi",), "meter": ("scpi",), "mount": ("grbl",), "dut": ("phone",)}
    config = twin.config
    assert "driver" not in to_document(config)["light"]
    with Station.open(config) as station:
        kinds = (type(station.light), type(station.meter), type(station.mount), type(station.dut))
        assert kinds == (ScpiLight, ScpiLuxMeter, GrblMount, PhoneClient)


def test_a_registered_light_driver_opens_from_one_config_line(twin: Twin, tmp_path: Path, extra_drivers) -> None:
    config = load_config(station_file(tmp_path, twin, "light", EXTRA))
    assert config.light.driver == EXTRA
    with Station.open(config) as station:
        assert type(station.light) is LongFormLight and isinstance(station.light, LightSource)
        assert station.identities["light"].count(",") == 3  # the twin's *IDN? through the new driver
        station.light.set_level_pct(37.5)
        station.light.set_output(True)
        station.light.wait_settled()
        assert twin.world.light.level_pct == 37.5 and twin.world.light.output is True  # the twin's truth
        assert station.meter.illuminance_lux() > 0
        assert station.safe_state() == []  # safe_off through the new driver, the meter as witness
        assert twin.world.light.output is False


def test_an_unknown_driver_is_one_config_error_listing_the_registered_ones(twin: Twin, tmp_path: Path,
                                                                           capsys) -> None:
    path = station_file(tmp_path, twin, "mount", "grbll")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "mount: driver 'grbll' is not a registered mount driver (registered: grbl)" in message
    assert main(["capture", "--station", str(path), "--sensor", "main", "--format", "dng",
                 "-o", str(tmp_path / "x.dng")]) == 2
    assert "registered: grbl" in capsys.readouterr().err


def test_a_driver_missing_protocol_methods_is_refused_at_open(twin: Twin, tmp_path: Path, extra_drivers) -> None:
    config = load_config(station_file(tmp_path, twin, "light", "not-a-light"))
    with pytest.raises(ConfigError, match=r"light.driver: NotALight is not a LightSource \(missing: .*safe_off"):
        Station.open(config)


def test_a_name_is_one_class() -> None:
    with pytest.raises(ValueError, match="already"):
        registry.register("light", "scpi")(LongFormLight)
    with pytest.raises(ConfigError, match="registered light drivers: scpi"):
        registry.driver_class("light", "nope")
