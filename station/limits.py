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

Every error is one line naming the file, the key and what is allowed.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station.errors import ConfigError
from station.measurements import DIRECTIONS, Limits, Tolerance

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")
_CASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/=+\-]*$")
DEFAULT_PRODUCT = "m-phone"


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


def _fail(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {message}")


def _table(source: str, key: str, value: Any, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        raise _fail(source, key, f"expected a table, got {type(value).__name__}")
    for name in value:
        if name not in allowed:
            raise _fail(source, f"{key}.{name}", f"unknown key; allowed here: {', '.join(sorted(allowed))}")
    for name in sorted(required):
        if name not in value:
            raise _fail(source, f"{key}.{name}", "missing; this key is required")
    return value


def _number(source: str, key: str, value: Any, lo: float = -math.inf, hi: float = math.inf,
            allowed: str = "a finite number") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise _fail(source, key, f"got {value!r}; allowed: {allowed}")
    return float(value)


def _limits(source: str, key: str, spec: dict[str, Any], unit: str, base: Limits | None = None) -> Limits:
    low = _number(source, f"{key}.low", spec["low"]) if "low" in spec else (base.low if base else None)
    high = _number(source, f"{key}.high", spec["high"]) if "high" in spec else (base.high if base else None)
    marginal = (_number(source, f"{key}.marginal_pct", spec["marginal_pct"], 0.0, 49.0, "0 .. 49 (% of the span)")
                if "marginal_pct" in spec else (base.marginal_pct if base else 0.0))
    if low is not None and high is not None and not low < high:
        raise _fail(source, key, f"low {low:g} must be below high {high:g}")
    return Limits(unit=unit, low=low, high=high, marginal_pct=marginal)


def _measurement(source: str, name: str, spec: Any) -> tuple[Limits, dict[str, Limits]]:
    key = f"measurements.{name}"
    spec = _table(source, key, spec, {"unit", "low", "high", "marginal_pct", "case", "description"}, {"unit"})
    unit = spec["unit"]
    if not isinstance(unit, str) or not unit.strip() or len(unit) > 32:
        raise _fail(source, f"{key}.unit", f"got {unit!r}; allowed: a unit such as \"lux\", \"mm\", \"DN\", "
                                           "\"1\" for a ratio")
    if "description" in spec and not isinstance(spec["description"], str):
        raise _fail(source, f"{key}.description", "expected a string")
    limits = _limits(source, key, spec, unit)
    overrides: dict[str, Limits] = {}
    cases = spec.get("case", {})
    if not isinstance(cases, dict):
        raise _fail(source, f"{key}.case", "expected a table of cases")
    for case, case_spec in cases.items():
        case_key = f"{key}.case.\"{case}\""
        if not _CASE_RE.match(case):
            raise _fail(source, case_key, "a case is letters, digits and . _ / = + -")
        case_spec = _table(source, case_key, case_spec, {"low", "high", "marginal_pct"})
        overrides[case] = _limits(source, case_key, case_spec, unit, base=limits)
    return limits, overrides


def _tolerance(source: str, name: str, spec: Any) -> Tolerance:
    key = f"regression.{name}"
    spec = _table(source, key, spec, {"tolerance_abs", "tolerance_pct", "direction"})
    if ("tolerance_abs" in spec) == ("tolerance_pct" in spec):
        raise _fail(source, key, "give exactly one of tolerance_abs (in the unit) or tolerance_pct (% of baseline)")
    direction = spec.get("direction", "any")
    if direction not in DIRECTIONS:
        raise _fail(source, f"{key}.direction", f"got {direction!r}; allowed: {', '.join(DIRECTIONS)}")
    if "tolerance_abs" in spec:
        return Tolerance(tolerance_abs=_number(source, f"{key}.tolerance_abs", spec["tolerance_abs"], 0.0,
                                               allowed="a number >= 0"), direction=direction)
    return Tolerance(tolerance_pct=_number(source, f"{key}.tolerance_pct", spec["tolerance_pct"], 0.0, 1000.0,
                                           allowed="0 .. 1000 (%)"), direction=direction)


def parse_limits(data: dict[str, Any], source: str = "<limits>") -> LimitsFile:
    """Validate a parsed limits document; ``ConfigError`` naming the file and key otherwise."""
    _table(source, "top level", data, {"meta", "measurements", "regression"}, {"meta", "measurements"})
    meta = _table(source, "meta", data["meta"], {"product", "version", "description"}, {"product", "version"})
    product, version = meta["product"], meta["version"]
    if not isinstance(product, str) or not _SLUG_RE.match(product):
        raise _fail(source, "meta.product", f"got {product!r}; allowed: a lower-case product id (m-phone)")
    if isinstance(version, bool) or not isinstance(version, (str, int)) or not str(version).strip():
        raise _fail(source, "meta.version", f"got {version!r}; allowed: a version string such as \"1.0\"")
    measurements: dict[str, Limits] = {}
    cases: dict[str, dict[str, Limits]] = {}
    table = data["measurements"]
    if not isinstance(table, dict) or not table:
        raise _fail(source, "measurements", "expected a table with one [measurements.<name>] per measurement")
    for name, spec in table.items():
        if not _NAME_RE.match(name):
            raise _fail(source, f"measurements.{name}", "a measurement name is lower-case letters, digits and '_'")
        measurements[name], overrides = _measurement(source, name, spec)
        if overrides:
            cases[name] = overrides
    regression: dict[str, Tolerance] = {}
    reg_table = data.get("regression", {})
    if not isinstance(reg_table, dict):
        raise _fail(source, "regression", "expected a table with one [regression.<name>] per metric")
    for name, spec in reg_table.items():
        if name not in measurements:
            raise _fail(source, f"regression.{name}", f"no [measurements.{name}] for its unit and limits")
        regression[name] = _tolerance(source, name, spec)
    return LimitsFile(path=source, product=product, version=str(version), measurements=measurements,
                      regression=regression, cases=cases)


def load_limits(path: str | Path | None = None) -> LimitsFile:
    """Read and validate a limits TOML (default: the shipped ``station/data/limits/m-phone.toml``)."""
    path = Path(path) if path is not None else default_limits_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such limits file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read limits file ({exc.__class__.__name__})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_limits(data, str(path))


__all__ = ["LimitsFile", "load_limits", "parse_limits", "default_limits_path", "limits_dir"]
