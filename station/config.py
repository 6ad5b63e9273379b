"""Station configuration: one TOML file per bench, validated before any device is touched.

Every error names the file, the key (dotted) and what is allowed, so an operator can fix
the file without reading code. ``default_twin_config`` describes the twin; ``to_toml``
writes a config back (``station twin`` prints the one that points at itself).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station.devices.protocols import MOUNT_AXES
from station.errors import ConfigError

GRBL_AXES = ("X", "Y", "Z", "A", "B", "C")
INTERLOCKS = ("none", "mount-aux")
_RESOURCE_RE = re.compile(r"^(TCPIP\d*::[\w.\-]+::\d+::SOCKET|TCPIP\d*::[\w.\-]+(::[\w.\-]+)?::INSTR"
                          r"|ASRL[\w/.\-]+::INSTR|USB\d*::[\w:.\-]+::INSTR|GPIB\d*::\d+(::\d+)?::INSTR)$")
_PORT_RE = re.compile(r"^(/dev/[\w/.\-:+]+|(socket|rfc2217)://[\w.\-]+:\d+|COM\d+)$")
_HOSTPORT_RE = re.compile(r"^[\w.\-]+:\d{1,5}$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")


@dataclass(frozen=True)
class InstrumentConfig:
    """A VISA instrument: resource string, I/O timeout, command dialect."""

    resource: str
    timeout_s: float = 2.0
    dialect: str = "generic"
    #: How the safe state can cut the light's power without its own link: "none", or "mount-aux"
    #: (a relay on the mount controller's flood output, M8/M9, which a controller reset opens).
    interlock: str = "none"


@dataclass(frozen=True)
class AxisConfig:
    """A logical mount axis bound to a controller axis, with soft limits in mm or deg."""

    axis: str
    min: float
    max: float


@dataclass(frozen=True)
class MountConfig:
    """The GRBL/grblHAL mount: serial port, baud rate, motion timeout, axis bindings."""

    port: str
    baudrate: int = 115200
    timeout_s: float = 60.0
    axes: dict[str, AxisConfig] = field(default_factory=dict)


@dataclass(frozen=True)
class DutConfig:
    """The phone's test service (on a bench: after ``adb forward tcp:P tcp:P``)."""

    host: str
    port: int
    timeout_s: float = 10.0


@dataclass(frozen=True)
class TwinConfig:
    """Settings of the twin behind this station (absent on a real bench)."""

    control: str = ""  # host:port of the twin's control interface (operator stand-in, truth)
    seed: int = 1
    firmware: str = "golden"
    resolution: str = "ci"
    time_scale: float = 0.05
    faults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StationConfig:
    """A whole station: where each device is, and the twin's settings when it is the twin."""

    name: str
    light: InstrumentConfig
    meter: InstrumentConfig
    mount: MountConfig
    dut: DutConfig
    twin: TwinConfig | None = None
    source: str = "<built-in>"


# --- validation helpers -------------------------------------------------------------

def _fail(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {message}")


def _check_keys(source: str, prefix: str, table: Any, allowed: dict[str, bool]) -> dict[str, Any]:
    """Check that ``table`` is a table whose keys are in ``allowed`` (key -> required)."""
    where = prefix or "top level"
    if not isinstance(table, dict):
        raise _fail(source, where, f"expected a table, got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            raise _fail(source, _join(prefix, key),
                        f"unknown key; allowed here: {', '.join(sorted(allowed))}")
    for key, required in allowed.items():
        if required and key not in table:
            raise _fail(source, _join(prefix, key), "missing; this key is required")
    return table


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _get(source: str, table: dict[str, Any], prefix: str, key: str, kind: type | tuple[type, ...],
         default: Any = None, check: Callable[[Any], bool] | None = None, allowed: str = "") -> Any:
    if key not in table:
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise _fail(source, _join(prefix, key), f"expected {names}, got {type(value).__name__} {value!r}")
    if check is not None and not check(value):
        raise _fail(source, _join(prefix, key), f"got {value!r}; allowed: {allowed}")
    return value


def _positive(value: float) -> bool:
    return value > 0


def _instrument(source: str, data: dict[str, Any], name: str) -> InstrumentConfig:
    allowed = {"resource": True, "timeout_s": False, "dialect": False}
    if name == "light":
        allowed["interlock"] = False
    table = _check_keys(source, name, data.get(name), allowed)
    return InstrumentConfig(
        resource=_get(source, table, name, "resource", str, check=_RESOURCE_RE.match,
                      allowed="a VISA resource: TCPIP0::host::5025::SOCKET or ASRL/dev/ttyUSB0::INSTR"),
        timeout_s=_get(source, table, name, "timeout_s", float, 2.0, _positive, "a number > 0"),
        dialect=_get(source, table, name, "dialect", str, "generic", _SLUG_RE.match,
                     "a lower-case dialect name"),
        interlock=_get(source, table, name, "interlock", str, "none", lambda v: v in INTERLOCKS,
                       ", ".join(INTERLOCKS)),
    )


def _mount(source: str, data: dict[str, Any]) -> MountConfig:
    table = _check_keys(source, "mount", data.get("mount"),
                        {"port": True, "baudrate": False, "timeout_s": False, "axes": True})
    axes_table = _check_keys(source, "mount.axes", table["axes"], {name: False for name in MOUNT_AXES})
    axes: dict[str, AxisConfig] = {}
    for name, spec in axes_table.items():
        prefix = f"mount.axes.{name}"
        spec = _check_keys(source, prefix, spec, {"axis": True, "min": True, "max": True})
        axis = _get(source, spec, prefix, "axis", str, check=lambda a: a in GRBL_AXES,
                    allowed=", ".join(GRBL_AXES))
        lo = _get(source, spec, prefix, "min", float)
        hi = _get(source, spec, prefix, "max", float)
        if not lo < hi:
            raise _fail(source, prefix, f"min {lo} must be below max {hi}")
        axes[name] = AxisConfig(axis=axis, min=lo, max=hi)
    letters = [a.axis for a in axes.values()]
    if len(set(letters)) != len(letters):
        raise _fail(source, "mount.axes", f"two logical axes share a controller axis: {letters}")
    return MountConfig(
        port=_get(source, table, "mount", "port", str, check=_PORT_RE.match,
                  allowed="a serial device (/dev/...), socket://host:port or rfc2217://host:port"),
        baudrate=_get(source, table, "mount", "baudrate", int, 115200, _positive, "an integer > 0"),
        timeout_s=_get(source, table, "mount", "timeout_s", float, 60.0, _positive, "a number > 0"),
        axes=axes,
    )


def _dut(source: str, data: dict[str, Any]) -> DutConfig:
    table = _check_keys(source, "dut", data.get("dut"), {"address": True, "timeout_s": False})
    address = _get(source, table, "dut", "address", str, check=_HOSTPORT_RE.match,
                   allowed="host:port, e.g. 127.0.0.1:7000 after adb forward")
    host, port = address.rsplit(":", 1)
    if not 0 < int(port) < 65536:
        raise _fail(source, "dut.address", f"port {port} out of range 1..65535")
    return DutConfig(host=host, port=int(port),
                     timeout_s=_get(source, table, "dut", "timeout_s", float, 10.0, _positive,
                                    "a number > 0"))


def _twin(source: str, data: dict[str, Any]) -> TwinConfig | None:
    if "twin" not in data:
        return None
    allowed = {"control": False, "seed": False, "firmware": False, "resolution": False,
               "time_scale": False, "faults": False}
    table = _check_keys(source, "twin", data["twin"], allowed)
    faults = _get(source, table, "twin", "faults", dict, {})
    for key, value in faults.items():
        if not _SLUG_RE.match(key.replace("_", "-")):
            raise _fail(source, f"twin.faults.{key}", "fault names are lower-case words")
        if not isinstance(value, (bool, int, float, str)):
            raise _fail(source, f"twin.faults.{key}", "expected a boolean, number or string")
    return TwinConfig(
        control=_get(source, table, "twin", "control", str, "", _HOSTPORT_RE.match, "host:port"),
        seed=_get(source, table, "twin", "seed", int, 1),
        firmware=_get(source, table, "twin", "firmware", str, "golden", _SLUG_RE.match,
                      "a firmware build name (station twin firmware --json)"),
        resolution=_get(source, table, "twin", "resolution", str, "ci",
                        lambda v: v in ("ci", "full"), "ci, full"),
        time_scale=_get(source, table, "twin", "time_scale", float, 0.05,
                        lambda v: v >= 0, "a number >= 0 (0: no real waiting)"),
        faults=dict(faults),
    )


def parse_config(data: dict[str, Any], source: str = "<built-in>") -> StationConfig:
    """Validate a parsed TOML document into a ``StationConfig``; raise ``ConfigError``."""
    _check_keys(source, "", data, {"station": False, "light": True, "meter": True, "mount": True,
                                   "dut": True, "twin": False})
    station = _check_keys(source, "station", data.get("station", {}), {"name": False})
    return StationConfig(
        name=_get(source, station, "station", "name", str, "station", _SLUG_RE.match,
                  "a lower-case name (letters, digits, '-', '.')"),
        light=_instrument(source, data, "light"),
        meter=_instrument(source, data, "meter"),
        mount=_mount(source, data),
        dut=_dut(source, data),
        twin=_twin(source, data),
        source=source,
    )


def load_config(path: str | Path) -> StationConfig:
    """Read and validate a station TOML; every failure is a one-line ``ConfigError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such station file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read station file ({exc.__class__.__name__})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path))


#: Controller axes and soft limits of the twin's mount (the bench the twin simulates).
TWIN_AXES: dict[str, AxisConfig] = {
    "focus": AxisConfig(axis="X", min=0.0, max=300.0),
    "distance": AxisConfig(axis="Y", min=150.0, max=3000.0),
    "pan": AxisConfig(axis="Z", min=-30.0, max=30.0),
    "tilt": AxisConfig(axis="A", min=-20.0, max=20.0),
}


def twin_config(light_port: int, meter_port: int, pty: str, dut_port: int, control_port: int,
                twin: TwinConfig | None = None, host: str = "127.0.0.1") -> StationConfig:
    """The station config that points at a running twin."""
    base = twin or TwinConfig()
    return StationConfig(
        name="twin",
        light=InstrumentConfig(resource=f"TCPIP0::{host}::{light_port}::SOCKET", interlock="mount-aux"),
        meter=InstrumentConfig(resource=f"TCPIP0::{host}::{meter_port}::SOCKET"),
        mount=MountConfig(port=pty, axes=dict(TWIN_AXES)),
        dut=DutConfig(host=host, port=dut_port),
        twin=TwinConfig(control=f"{host}:{control_port}", seed=base.seed, firmware=base.firmware,
                        resolution=base.resolution, time_scale=base.time_scale,
                        faults=dict(base.faults)),
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(config: StationConfig) -> str:
    """Write a config as TOML that ``load_config`` reads back to an equal config."""
    lines = ["[station]", f"name = {_toml_value(config.name)}", ""]
    for name in ("light", "meter"):
        inst: InstrumentConfig = getattr(config, name)
        lines += [f"[{name}]", f"resource = {_toml_value(inst.resource)}",
                  f"timeout_s = {inst.timeout_s!r}", f"dialect = {_toml_value(inst.dialect)}"]
        if name == "light":
            lines.append(f"interlock = {_toml_value(inst.interlock)}")
        lines.append("")
    m = config.mount
    lines += ["[mount]", f"port = {_toml_value(m.port)}", f"baudrate = {m.baudrate}",
              f"timeout_s = {m.timeout_s!r}", ""]
    for axis_name, axis in m.axes.items():
        lines += [f"[mount.axes.{axis_name}]", f"axis = {_toml_value(axis.axis)}",
                  f"min = {axis.min!r}", f"max = {axis.max!r}", ""]
    lines += ["[dut]", f"address = {_toml_value(f'{config.dut.host}:{config.dut.port}')}",
              f"timeout_s = {config.dut.timeout_s!r}", ""]
    if config.twin is not None:
        t = config.twin
        lines += ["[twin]", f"control = {_toml_value(t.control)}", f"seed = {t.seed}",
                  f"firmware = {_toml_value(t.firmware)}", f"resolution = {_toml_value(t.resolution)}",
                  f"time_scale = {t.time_scale!r}", ""]
        if t.faults:
            lines += ["[twin.faults]"] + [f"{k} = {_toml_value(v)}" for k, v in t.faults.items()] + [""]
    return "\n".join(lines)
