"""Limits as data: one versioned TOML per product, read by the plans (DESIGN 8).

::

    [meta]
    product = "m-phone"
    version = "1.0"

    [measurements.light_linearity_r2]
    unit = "1"
    low = 0.999
    marginal_pct = 10          # optional: marginal band inside each limit, % of the span

    [measurements.mtf50_cpp.case."m/noctilux-m-50-f0.95"]
    low = 0.12                 # optional per-case override of low / high / marginal_pct

    [regression.raw_black_level_dn]
    tolerance_abs = 1.0        # or tolerance_pct = 2.0 (of the baseline value)
    direction = "any"          # any | increase | decrease: which change is a regression

    [readout.full]             # a sensor readout mode, known by its frame size (the phone's ``info``)
    width = 8192
    height = 6144
    [readout.full.measurements.mtf50_cpp]
    low = 0.12                 # overrides for a sensor read out in this mode (its own .case."..." too)

Limits of one measurement for a case and a readout: the longest case prefix with an override wins (the
readout's own case override before the file's at the same prefix), else the readout's override of the
measurement, else the file's.

The file's shape is a set of pydantic v2 models (``extra="forbid"``): one error, on one line,
lists every problem with its key path, the value and what is allowed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from station.errors import ConfigError
from station.measurements import Limits, Tolerance
from station.validation import FiniteFloat, SafeStr, pattern, read_text_limited, validate

DEFAULT_PRODUCT = "m-phone"
_FORBID = ConfigDict(extra="forbid")
MeasurementName = Annotated[str, pattern(r"[a-z][a-z0-9_]{0,63}", "lower-case letters, digits and '_'")]
CaseName = Annotated[str, pattern(r"[A-Za-z0-9][A-Za-z0-9._/=+\-]{0,199}", "letters, digits and . _ / = + -")]
MarginalPct = Annotated[FiniteFloat, Field(ge=0.0, le=49.0, description="% of the span")]


def limits_dir() -> Path:
    """The limits shipped in the package (``station/data/limits``), found through ``importlib.resources``."""
    from importlib import resources

    return Path(str(resources.files("station").joinpath("data", "limits")))


def default_limits_path(product: str = DEFAULT_PRODUCT) -> Path:
    return limits_dir() / f"{product}.toml"


@dataclass(frozen=True)
class Readout:
    """``[readout.<name>]``: a sensor readout mode by its frame size, and the limits that differ in it."""

    width: int
    height: int
    measurements: dict[str, Limits] = field(default_factory=dict)  # name -> override
    cases: dict[str, dict[str, Limits]] = field(default_factory=dict)  # name -> case -> override


@dataclass(frozen=True)
class LimitsFile:
    """A product's limits: per measurement its unit and limits, and regression tolerances."""

    path: str
    product: str
    version: str
    measurements: dict[str, Limits]
    regression: dict[str, Tolerance] = field(default_factory=dict)
    cases: dict[str, dict[str, Limits]] = field(default_factory=dict)  # name -> case -> override
    readouts: dict[str, Readout] = field(default_factory=dict)  # readout name -> its size and overrides

    def limits_for(self, name: str, case: str = "", readout: str | None = None) -> Limits:
        """The limits of ``name`` for ``case`` and the sensor's ``readout`` mode (None: the file's own):
        the longest matching case prefix overrides, the readout's case overrides first."""
        if name not in self.measurements:
            raise ConfigError(f"{self.path}: measurements.{name}: missing; every measurement a plan takes "
                              f"needs its unit and limits here")
        base, overrides = self.measurements[name], self.cases.get(name, {})
        if readout is not None:
            if readout not in self.readouts:
                raise ConfigError(f"{self.path}: readout.{readout}: missing; declared readouts: "
                                  f"{', '.join(self.readouts) or 'none'}")
            mode = self.readouts[readout]
            base = mode.measurements.get(name, base)
            overrides = {**overrides, **mode.cases.get(name, {})}
        probe = case
        while probe:
            if probe in overrides:
                return overrides[probe]
            probe = probe.rpartition("/")[0]
        return base

    def readout_of(self, width: int, height: int) -> str | None:
        """The readout mode declared for a ``width`` x ``height`` frame, or None (the file's own limits)."""
        for name, mode in self.readouts.items():
            if (mode.width, mode.height) == (int(width), int(height)):
                return name
        return None

    def tolerance_for(self, name: str) -> Tolerance | None:
        return self.regression.get(name)

    def meta(self) -> dict[str, str]:
        return {"path": self.path, "product": self.product, "version": self.version}


# --- the file's shape ------------------------------------------------------------------

class _Bounds(BaseModel):
    model_config = _FORBID
    low: FiniteFloat | None = None
    high: FiniteFloat | None = None
    marginal_pct: MarginalPct | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Bounds:
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"low {self.low:g} must be below high {self.high:g}")
        return self


class CaseSpec(_Bounds):
    """``[measurements.<name>.case."<case>"]``: overrides of low / high / marginal_pct."""


class MeasurementSpec(_Bounds):
    """``[measurements.<name>]``: unit, limits, optional per-case overrides."""

    unit: Annotated[SafeStr, Field(min_length=1, max_length=32), pattern(r"\S(?:.*\S)?",
                    'a unit such as "lux", "mm", "DN", "1" for a ratio')]
    description: SafeStr | None = None
    case: dict[CaseName, CaseSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cases_ordered(self) -> MeasurementSpec:
        for name, spec in self.case.items():
            low = spec.low if spec.low is not None else self.low
            high = spec.high if spec.high is not None else self.high
            if low is not None and high is not None and not low < high:
                raise ValueError(f"case {name!r}: low {low:g} must be below high {high:g}")
        return self


ReadoutName = Annotated[str, pattern(r"[a-z][a-z0-9_\-]{0,31}", "lower-case letters, digits, '_' and '-'")]
FrameSide = Annotated[int, Field(ge=2, le=100_000, strict=True)]


class ReadoutMeasurementSpec(_Bounds):
    """``[readout.<name>.measurements.<name>]``: overrides of low / high / marginal_pct, and per case."""

    case: dict[CaseName, CaseSpec] = Field(default_factory=dict)


class ReadoutSpec(BaseModel):
    """``[readout.<name>]``: a readout mode's frame size (pixels) and its limit overrides."""

    model_config = _FORBID
    width: FrameSide
    height: FrameSide
    description: SafeStr | None = None
    measurements: dict[MeasurementName, ReadoutMeasurementSpec] = Field(default_factory=dict)


class ToleranceSpec(BaseModel):
    """``[regression.<name>]``: exactly one of tolerance_abs (in the unit) or tolerance_pct."""

    model_config = _FORBID
    tolerance_abs: Annotated[FiniteFloat, Field(ge=0.0)] | None = None
    tolerance_pct: Annotated[FiniteFloat, Field(ge=0.0, le=1000.0)] | None = None
    direction: Literal["any", "increase", "decrease"] = "any"

    @model_validator(mode="after")
    def _exactly_one(self) -> ToleranceSpec:
        if (self.tolerance_abs is None) == (self.tolerance_pct is None):
            raise ValueError("give exactly one of tolerance_abs (in the unit) or tolerance_pct (% of baseline)")
        return self


def _version(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9:
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= 32 and value.isprintable() and value.strip() == value:
        return value
    raise ValueError('allowed: a version string such as "1.0"')


class MetaSpec(BaseModel):
    """``[meta]``."""

    model_config = _FORBID
    product: Annotated[SafeStr, pattern(r"[a-z0-9][a-z0-9.\-]{0,63}", "a lower-case product id (m-phone)")]
    version: Annotated[object, AfterValidator(_version)]
    description: SafeStr | None = None


class LimitsDocument(BaseModel):
    """A limits TOML document."""

    model_config = _FORBID
    meta: MetaSpec
    measurements: Annotated[dict[MeasurementName, MeasurementSpec], Field(min_length=1)]
    regression: dict[MeasurementName, ToleranceSpec] = Field(default_factory=dict)
    readout: dict[ReadoutName, ReadoutSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _regression_has_measurements(self) -> LimitsDocument:
        unknown = sorted(set(self.regression) - set(self.measurements))
        if unknown:
            raise ValueError(f"regression.{unknown[0]}: no [measurements.{unknown[0]}] for its unit and limits")
        return self

    @model_validator(mode="after")
    def _readouts_known_and_distinct(self) -> LimitsDocument:
        sizes: dict[tuple[int, int], str] = {}
        for name, mode in self.readout.items():
            unknown = sorted(set(mode.measurements) - set(self.measurements))
            if unknown:
                raise ValueError(f"readout.{name}.measurements.{unknown[0]}: no [measurements.{unknown[0]}] "
                                 "to override")
            other = sizes.setdefault((mode.width, mode.height), name)
            if other != name:
                raise ValueError(f"readout.{name}: {mode.width}x{mode.height} is readout.{other}'s size already")
            for key, spec in mode.measurements.items():
                _check_order(f"readout.{name}.measurements.{key}", spec, self.measurements[key])
        return self


def _check_order(where: str, spec: ReadoutMeasurementSpec, parent: MeasurementSpec) -> None:
    """A readout override and its cases, with what they inherit, must keep low below high."""
    low = spec.low if spec.low is not None else parent.low
    high = spec.high if spec.high is not None else parent.high
    if low is not None and high is not None and not low < high:
        raise ValueError(f"{where}: low {low:g} must be below high {high:g}")
    for case, c in spec.case.items():
        c_low = c.low if c.low is not None else low
        c_high = c.high if c.high is not None else high
        if c_low is not None and c_high is not None and not c_low < c_high:
            raise ValueError(f"{where}.case {case!r}: low {c_low:g} must be below high {c_high:g}")


def _readout(spec: ReadoutSpec, measurements: dict[str, Limits]) -> Readout:
    """A readout's limits: each override inherits what it leaves out from the file's measurement."""
    bases = {name: _limits(m, measurements[name].unit, measurements[name]) for name, m in spec.measurements.items()}
    cases = {name: {case: _limits(c, bases[name].unit, bases[name]) for case, c in m.case.items()}
             for name, m in spec.measurements.items() if m.case}
    return Readout(width=spec.width, height=spec.height, measurements=bases, cases=cases)


def _limits(spec: _Bounds, unit: str, base: Limits | None = None) -> Limits:
    def pick(value: float | None, inherited: float | None) -> float | None:
        return value if value is not None else inherited

    return Limits(unit=unit, low=pick(spec.low, base.low if base else None),
                  high=pick(spec.high, base.high if base else None),
                  marginal_pct=pick(spec.marginal_pct, base.marginal_pct if base else 0.0) or 0.0)


def parse_limits(data: object, source: str = "<limits>") -> LimitsFile:
    """Validate a parsed limits document; ``ConfigError`` listing every problem otherwise."""
    doc: LimitsDocument = validate(LimitsDocument, data, source, ConfigError)
    measurements: dict[str, Limits] = {}
    cases: dict[str, dict[str, Limits]] = {}
    for name, spec in doc.measurements.items():
        measurements[name] = _limits(spec, spec.unit)
        if spec.case:
            cases[name] = {case: _limits(c, spec.unit, measurements[name]) for case, c in spec.case.items()}
    regression = {name: Tolerance(tolerance_abs=t.tolerance_abs, tolerance_pct=t.tolerance_pct,
                                  direction=t.direction) for name, t in doc.regression.items()}
    readouts = {name: _readout(spec, measurements) for name, spec in doc.readout.items()}
    return LimitsFile(path=source, product=doc.meta.product, version=str(doc.meta.version),
                      measurements=measurements, regression=regression, cases=cases, readouts=readouts)


def load_limits(path: str | Path | None = None) -> LimitsFile:
    """Read (regular file, bounded size) and validate a limits TOML (default: the shipped
    ``station/data/limits/m-phone.toml``)."""
    path = Path(path) if path is not None else default_limits_path()
    text = read_text_limited(path, "limits file", ConfigError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_limits(data, str(path))


__all__ = ["LimitsFile", "Readout", "load_limits", "parse_limits", "default_limits_path", "limits_dir"]
