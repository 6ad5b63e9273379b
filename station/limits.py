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
class LimitsFile:
    """A product's limits: per measurement its unit and limits, and regression tolerances."""

    path: str
    product: str
    version: str
    measurements: dict[str, Limits]
    regression: dict[str, Tolerance] = field(default_factory=dict)
    cases: dict[str, dict[str, Limits]] = field(default_factory=dict)  # name -> case -> override

    def limits_for(self, name: str, case: str = "") -> Limits:
        """The limits of ``name`` for ``case`` (the longest matching case prefix overrides)."""
        if name not in self.measurements:
            raise ConfigError(f"{self.path}: measurements.{name}: missing; every measurement a plan takes "
                              f"needs its unit and limits here")
        overrides = self.cases.get(name, {})
        probe = case
        while probe:
            if probe in overrides:
                return overrides[probe]
            probe = probe.rpartition("/")[0]
        return self.measurements[name]

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

    @model_validator(mode="after")
    def _regression_has_measurements(self) -> LimitsDocument:
        unknown = sorted(set(self.regression) - set(self.measurements))
        if unknown:
            raise ValueError(f"regression.{unknown[0]}: no [measurements.{unknown[0]}] for its unit and limits")
        return self


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
    return LimitsFile(path=source, product=doc.meta.product, version=str(doc.meta.version),
                      measurements=measurements, regression=regression, cases=cases)


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


__all__ = ["LimitsFile", "load_limits", "parse_limits", "default_limits_path", "limits_dir"]
