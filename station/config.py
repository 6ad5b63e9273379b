"""Station configuration: one TOML file per bench, validated before any device is touched.

The file's shape is a set of pydantic v2 models (``extra="forbid"``): one error lists every
problem with its key path, the value and what is allowed, so an operator can fix the file in
one go. Every number is bounded and finite, every string from the file is free of control
characters, resources follow the VISA resource grammar and serial ports are normalised
``/dev`` paths: all checked before anything opens (exit 2, never 3). ``default_twin_config``
describes the twin; ``to_toml`` writes a config back with tomli-w.
"""

from __future__ import annotations

import functools
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from station.devices import registry
from station.devices.protocols import MOUNT_AXES
from station.errors import ConfigError
from station.pipeline import DEFAULT_WORKERS, MAX_WORKERS
from station.validation import (
    FiniteFloat,
    SafeStr,
    StrictInteger,
    normal_device_path,
    one_line,
    pattern,
    read_text_limited,
)

GRBL_AXES = ("X", "Y", "Z", "A", "B", "C")
INTERLOCKS = ("none", "mount-aux")
#: Baud rates a serial port accepts (POSIX termios set plus the usual USB-serial rates).
STANDARD_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 250000, 460800, 500000,
                      921600, 1000000, 1500000, 2000000)
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,252})"
_PORTNUM = r"(?:6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})"
_DEVPATH = r"/dev/[A-Za-z0-9_./\-:+]{1,200}"
#: VISA resource grammar (NI-VISA / pyvisa-py): TCPIP SOCKET/INSTR, ASRL, USB, GPIB.
RESOURCE_RE = (rf"TCPIP\d{{0,2}}::{_HOST}::{_PORTNUM}::SOCKET|TCPIP\d{{0,2}}::{_HOST}(?:::[A-Za-z0-9_.\-]+)?::INSTR"
               rf"|ASRL(?:\d{{1,3}}|{_DEVPATH}|COM\d{{1,3}})::INSTR"
               r"|USB\d{0,2}::(?:0x[0-9A-Fa-f]{1,4}|\d{1,5})::(?:0x[0-9A-Fa-f]{1,4}|\d{1,5})::[A-Za-z0-9_.\-]{1,64}"
               r"(?:::\d{1,3})?::INSTR|GPIB\d{0,2}::\d{1,2}(?:::\d{1,2})?::INSTR")
PORT_RE = rf"{_DEVPATH}|(?:socket|rfc2217)://{_HOST}:{_PORTNUM}|COM\d{{1,3}}"
HOSTPORT_RE = rf"{_HOST}:{_PORTNUM}"
SLUG_RE = r"[a-z0-9][a-z0-9.\-]{0,63}"
SERIAL_RE = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}"
DATABASE_RE = r"sqlite:///[^\s?#]{1,1000}|postgresql(?:\+[a-z0-9]+)?://[!-~]{1,1000}"
OPERATOR_RE = rf"prompt|tcp://{HOSTPORT_RE}"

_FORBID = ConfigDict(extra="forbid")


def _checked(label: str) -> Any:
    """A frozen pydantic dataclass whose direct construction (from CLI options or code) raises a one-line
    ``ConfigError`` naming ``label`` and the key, as a file's problems do (not pydantic's multi-line text).
    Validation of a whole file goes through the models, which collect every problem first."""

    def wrap(cls: type) -> type:
        cls = dataclass(frozen=True, config=_FORBID)(cls)
        init = cls.__init__

        @functools.wraps(init)
        def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as exc:
                raise ConfigError(one_line(label, exc, cls)) from None

        cls.__init__ = checked_init  # type: ignore[method-assign]
        return cls

    return wrap


def _device_paths_normal(value: str) -> str:
    for part in value.split("::"):
        for start in ("ASRL", ""):
            path = part.removeprefix(start)
            if path.startswith("/dev") and not normal_device_path(path):
                raise ValueError("a device path must be a normalised /dev/... path (no '..', no '//')")
    return value


Resource = Annotated[SafeStr, pattern(RESOURCE_RE, "a VISA resource: TCPIP0::host::5025::SOCKET, "
                                                   "ASRL/dev/ttyUSB0::INSTR or USB0::0x1AB1::0x0588::SERIAL::INSTR"),
                     AfterValidator(_device_paths_normal)]
SerialPort = Annotated[SafeStr, pattern(PORT_RE, "a serial device (/dev/...), socket://host:port, "
                                                 "rfc2217://host:port or COMn"),
                       AfterValidator(_device_paths_normal)]
Slug = Annotated[SafeStr, pattern(SLUG_RE, "a lower-case name (letters, digits, '-', '.')")]
TimeoutS = Annotated[FiniteFloat, Field(gt=0.0, le=3600.0, description="0 < s <= 3600")]
Serial = Annotated[SafeStr, pattern(SERIAL_RE, "a serial number: letters, digits, '.', '_', '-'")]


@_checked("instrument config")
class InstrumentConfig:
    """A VISA instrument: resource string, I/O timeout, command dialect."""

    resource: Resource
    timeout_s: TimeoutS = 2.0
    dialect: Slug = "generic"
    #: The registered driver that opens it (``station.devices.registry``; "scpi" for light and meter).
    driver: Slug = "scpi"
    #: How the safe state can cut the light's power without its own link: "none", or "mount-aux"
    #: (a relay on the mount controller's flood output, M8/M9, which a controller reset opens).
    interlock: Literal["none", "mount-aux"] = "none"


@_checked("mount axis config")
class AxisConfig:
    """A logical mount axis bound to a controller axis, with soft limits in mm or deg."""

    axis: Literal["X", "Y", "Z", "A", "B", "C"]
    min: Annotated[FiniteFloat, Field(ge=-1e5, le=1e5)]
    max: Annotated[FiniteFloat, Field(ge=-1e5, le=1e5)]

    @model_validator(mode="after")
    def _ordered(self) -> AxisConfig:
        if not self.min < self.max:
            raise ValueError(f"min {self.min} must be below max {self.max}")
        return self


AxisName = Literal["focus", "distance", "pan", "tilt"]
assert set(AxisName.__args__) == set(MOUNT_AXES), "AxisName must list station.devices.protocols.MOUNT_AXES"


@_checked("mount config")
class MountConfig:
    """The GRBL/grblHAL mount: serial port, baud rate, motion timeout, axis bindings."""

    port: SerialPort
    baudrate: Annotated[StrictInteger, AfterValidator(lambda v: _baudrate(v))] = 115200
    timeout_s: TimeoutS = 60.0
    axes: dict[AxisName, AxisConfig] = Field(default_factory=dict)
    driver: Slug = registry.DEFAULTS["mount"]

    @field_validator("axes")
    @classmethod
    def _distinct(cls, axes: dict[str, AxisConfig]) -> dict[str, AxisConfig]:
        letters = [a.axis for a in axes.values()]
        if len(set(letters)) != len(letters):
            raise ValueError(f"two logical axes share a controller axis: {letters}")
        return axes


def _baudrate(value: int) -> int:
    if value not in STANDARD_BAUDRATES:
        raise ValueError(f"allowed: a standard baud rate ({', '.join(map(str, STANDARD_BAUDRATES))})")
    return value


@_checked("dut config")
class DutConfig:
    """The phone's test service (on a bench: after ``adb forward tcp:P tcp:P``)."""

    host: Annotated[SafeStr, pattern(_HOST, "a host name or IPv4 address (ASCII)")]
    port: Annotated[StrictInteger, Field(ge=1, le=65535)]
    timeout_s: TimeoutS = 10.0
    driver: Slug = registry.DEFAULTS["dut"]


def _fault_value(value: Any) -> Any:
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) <= 2**53):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= 512 and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        return value
    raise ValueError("allowed: a boolean, a finite number or a one-line string")


FaultValue = Annotated[Any, AfterValidator(_fault_value)]


@_checked("twin settings")
class TwinConfig:
    """Settings of the twin behind this station (absent on a real bench)."""

    control: Annotated[SafeStr, pattern(f"(?:{HOSTPORT_RE})?", "host:port")] = ""  # operator stand-in, truth
    seed: Annotated[StrictInteger, Field(ge=0, le=2**32 - 1)] = 1
    firmware: Annotated[SafeStr, pattern(SLUG_RE, "a firmware build name (station twin firmware --json)")] = "golden"
    resolution: Literal["ci", "full"] = "ci"
    time_scale: Annotated[FiniteFloat, Field(ge=0.0, le=100.0)] = 0.05  # 0: no real waiting
    faults: dict[Annotated[SafeStr, pattern(r"[a-z0-9][a-z0-9_.\-]{0,63}", "a lower-case fault name")],
                 FaultValue] = Field(default_factory=dict)


@_checked("records config")
class RecordsConfig:
    """Where records also go (a database URL), and the serials of the golden units."""

    database: Annotated[SafeStr, pattern(DATABASE_RE, "sqlite:///path or postgresql://user@host/db")] | None = None
    golden_units: tuple[Serial, ...] = ()


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
    #: How the operator is reached: None (no operator), "prompt" (this terminal) or "tcp://HOST:PORT".
    operator: str | None = None
    #: A lens catalogue file (absolute, or relative to the station file's folder when loaded).
    lens_catalog: Path | None = None
    records: RecordsConfig = RecordsConfig()
    #: Threads analysing frames behind the next capture (``station.pipeline``; 0: inline, serial).
    analysis_workers: int = DEFAULT_WORKERS


# --- the file's shape ------------------------------------------------------------------

class StationTable(BaseModel):
    """``[station]``."""

    model_config = _FORBID
    name: Slug = "station"
    operator: Annotated[SafeStr, pattern(OPERATOR_RE, "prompt or tcp://HOST:PORT")] | None = None
    lens_catalog: Annotated[SafeStr, Field(min_length=1, max_length=4096)] | None = None
    analysis_workers: Annotated[StrictInteger, Field(ge=0, le=MAX_WORKERS,
                                               description=f"0..{MAX_WORKERS} threads (0: serial)")] = DEFAULT_WORKERS


class DutTable(BaseModel):
    """``[dut]``: the phone's address as host:port."""

    model_config = _FORBID
    address: Annotated[SafeStr, pattern(HOSTPORT_RE, "host:port (ASCII host, port 1..65535), "
                                                     "e.g. 127.0.0.1:7000 after adb forward")]
    timeout_s: TimeoutS = 10.0
    driver: Slug = registry.DEFAULTS["dut"]


class StationFile(BaseModel):
    """A station TOML document."""

    model_config = _FORBID
    station: StationTable = StationTable()
    light: InstrumentConfig
    meter: InstrumentConfig
    mount: MountConfig
    dut: DutTable
    twin: TwinConfig | None = None
    records: RecordsConfig = RecordsConfig()

    @field_validator("light", "meter", "mount", "dut")
    @classmethod
    def _driver_registered(cls, table: Any, info: ValidationInfo) -> Any:
        registry.check_name(str(info.field_name), table.driver)
        return table

    @field_validator("meter")
    @classmethod
    def _meter_has_no_interlock(cls, meter: InstrumentConfig) -> InstrumentConfig:
        if meter.interlock != "none":
            raise ValueError("only the light has an interlock")
        return meter

    @field_validator("mount")
    @classmethod
    def _mount_has_axes(cls, mount: MountConfig) -> MountConfig:
        if not mount.axes:
            raise ValueError("[mount.axes] needs at least one axis (focus, distance, pan, tilt)")
        return mount


def parse_config(data: dict[str, Any], source: str = "<built-in>") -> StationConfig:
    """Validate a parsed TOML document into a ``StationConfig``; raise ``ConfigError`` listing every problem."""
    try:
        doc = StationFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(one_line(source, exc, StationFile)) from None
    host, port = doc.dut.address.rsplit(":", 1)
    catalog = doc.station.lens_catalog
    lens_catalog = None
    if catalog is not None:
        lens_catalog = Path(catalog)
        if not lens_catalog.is_absolute() and source not in ("<built-in>", ""):
            lens_catalog = Path(source).parent / lens_catalog
    return StationConfig(name=doc.station.name, light=doc.light, meter=doc.meter, mount=doc.mount,
                         dut=DutConfig(host=host, port=int(port), timeout_s=doc.dut.timeout_s,
                                                 driver=doc.dut.driver), twin=doc.twin,
                         source=source, operator=doc.station.operator, lens_catalog=lens_catalog,
                         records=doc.records, analysis_workers=doc.station.analysis_workers)


def load_config(path: str | Path) -> StationConfig:
    """Read (regular file, bounded size) and validate a station TOML; every failure is a one-line ``ConfigError``."""
    path = Path(path)
    text = read_text_limited(path, "station file", ConfigError, max_bytes=1_000_000)
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


def _instrument_table(inst: InstrumentConfig, light: bool) -> dict[str, Any]:
    table: dict[str, Any] = {"resource": inst.resource, "timeout_s": inst.timeout_s, "dialect": inst.dialect}
    if light:
        table["interlock"] = inst.interlock
    return _with_driver(table, "light" if light else "meter", inst.driver)


def _with_driver(table: dict[str, Any], kind: str, driver: str) -> dict[str, Any]:
    """The table, with its ``driver`` key when it is not the kind's default."""
    if driver != registry.DEFAULTS[kind]:
        table["driver"] = driver
    return table


def to_document(config: StationConfig) -> dict[str, Any]:
    """The TOML document (a dict) of a config; ``parse_config`` reads it back to an equal config."""
    station: dict[str, Any] = {"name": config.name}
    if config.operator is not None:
        station["operator"] = config.operator
    if config.lens_catalog is not None:
        station["lens_catalog"] = str(config.lens_catalog)
    if config.analysis_workers != DEFAULT_WORKERS:
        station["analysis_workers"] = config.analysis_workers
    m = config.mount
    doc: dict[str, Any] = {
        "station": station,
        "light": _instrument_table(config.light, True),
        "meter": _instrument_table(config.meter, False),
        "mount": _with_driver({"port": m.port, "baudrate": m.baudrate, "timeout_s": m.timeout_s,
                               "axes": {name: {"axis": a.axis, "min": a.min, "max": a.max}
                                        for name, a in m.axes.items()}}, "mount", m.driver),
        "dut": _with_driver({"address": f"{config.dut.host}:{config.dut.port}", "timeout_s": config.dut.timeout_s},
                            "dut", config.dut.driver),
    }
    records: dict[str, Any] = {}
    if config.records.database is not None:
        records["database"] = config.records.database
    if config.records.golden_units:
        records["golden_units"] = list(config.records.golden_units)
    if records:
        doc["records"] = records
    if config.twin is not None:
        t = config.twin
        doc["twin"] = {"control": t.control, "seed": t.seed, "firmware": t.firmware, "resolution": t.resolution,
                       "time_scale": t.time_scale}
        if t.faults:
            doc["twin"]["faults"] = dict(t.faults)
    return doc


def to_toml(config: StationConfig) -> str:
    """Write a config as TOML (tomli-w) that ``load_config`` reads back to an equal config."""
    return tomli_w.dumps(to_document(config))
