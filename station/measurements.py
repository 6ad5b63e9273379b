"""Measurements with units, limits and a marginal band, and regression against a baseline.

In the style of OpenHTF's measurements (``openhtf/core/measurements.py``): a measurement
has a name, a value, a unit and validators; its verdict is ``pass``, ``marginal`` (inside
the limits but within the marginal band of one of them: passes, flagged for a person) or
``fail``. A regression tolerance compares the value with the same measurement of an
approved build (the baseline): ``delta = value - baseline``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

PASS, MARGINAL, FAIL = "pass", "marginal", "fail"
VERDICTS = (PASS, MARGINAL, FAIL)
#: Which change of a value is a regression: any beyond the tolerance, only a rise, only a fall.
DIRECTIONS = ("any", "increase", "decrease")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*\Z")
_CASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/=+\-]*\Z")
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Limits:
    """Limits of one measurement: ``low <= value <= high`` (either may be absent), in ``unit``.

    ``marginal_pct``: the marginal band inside each limit, in % of the span ``high - low``
    (one-sided limits: % of the limit's magnitude).
    """

    unit: str
    low: float | None = None
    high: float | None = None
    marginal_pct: float = 0.0

    def marginal_band(self) -> float:
        """Width of the marginal band inside each limit, in the measurement's unit."""
        if self.low is not None and self.high is not None:
            span = self.high - self.low
        else:
            span = abs(self.low if self.low is not None else self.high or 0.0)
        return span * self.marginal_pct / 100.0

    def verdict(self, value: float) -> str:
        if not math.isfinite(value):
            return FAIL
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            return FAIL
        band = self.marginal_band()
        if band > 0 and ((self.low is not None and value < self.low + band)
                         or (self.high is not None and value > self.high - band)):
            return MARGINAL
        return PASS

    def describe(self) -> str:
        """``0.999 .. 1`` / ``>= 0.999`` / ``<= 2`` / ``none``, without the unit."""
        if self.low is not None and self.high is not None:
            return f"{self.low:g} .. {self.high:g}"
        if self.low is not None:
            return f">= {self.low:g}"
        if self.high is not None:
            return f"<= {self.high:g}"
        return "none"


@dataclass(frozen=True)
class Tolerance:
    """Regression tolerance of one measurement against its baseline: absolute or in % of it."""

    tolerance_abs: float | None = None
    tolerance_pct: float | None = None
    direction: str = "any"

    def allowed(self, baseline: float) -> float:
        """The largest change allowed from ``baseline``, in the measurement's unit."""
        if self.tolerance_abs is not None:
            return self.tolerance_abs
        return abs(baseline) * (self.tolerance_pct or 0.0) / 100.0

    def verdict(self, value: float, baseline: float) -> str:
        if not (math.isfinite(value) and math.isfinite(baseline)):
            return FAIL
        delta = value - baseline
        allowed = self.allowed(baseline)
        worse = {"any": abs(delta), "increase": delta, "decrease": -delta}[self.direction]
        return FAIL if worse > allowed else PASS

    def describe(self, unit: str) -> str:
        amount = (f"{self.tolerance_abs:g} {unit}".rstrip() if self.tolerance_abs is not None
                  else f"{self.tolerance_pct:g} %")
        return {"any": f"± {amount}", "increase": f"rise <= {amount}", "decrease": f"fall <= {amount}"}[
            self.direction]


@dataclass(frozen=True)
class Measurement:
    """One measured value with its limits, verdict and, when a baseline was given, its delta."""

    name: str
    value: float
    unit: str
    limits: Limits
    case: str = ""  # where in the capture matrix: "main", "m/summilux-m-35-f1.4/center"...
    limits_verdict: str = PASS
    baseline: float | None = None
    delta: float | None = None
    tolerance: Tolerance | None = None
    regression_verdict: str | None = None  # None: no regression check (no baseline or no tolerance)

    @property
    def key(self) -> str:
        """The name a record and a baseline know it by: ``name`` or ``name[case]``."""
        return f"{self.name}[{self.case}]" if self.case else self.name

    @property
    def verdict(self) -> str:
        """``fail`` if the limits or the regression check fail, else ``marginal`` or ``pass``."""
        if FAIL in (self.limits_verdict, self.regression_verdict):
            return FAIL
        return self.limits_verdict

    @property
    def passed(self) -> bool:
        return self.verdict != FAIL

    def summary(self) -> str:
        """One line: ``key = value unit (limits ..., baseline ..., delta ...) verdict``."""
        parts = [f"limits {self.limits.describe()}"]
        if self.baseline is not None:
            parts.append(f"baseline {self.baseline:.6g}")
            parts.append(f"delta {self.delta:+.6g}")
        return f"{self.key} = {_fmt(self.value)} {self.unit} ({', '.join(parts)}) {self.verdict}"

    def failure_message(self) -> str:
        """Why it failed, naming the measurement, value, limits (or baseline) and unit."""
        unit = self.unit
        if not math.isfinite(self.value):
            return f"measurement {self.key} = {self.value} {unit}: not a finite number"
        reasons = []
        if self.limits_verdict == FAIL:
            reasons.append(f"outside limits {self.limits.describe()} {unit}")
        if self.regression_verdict == FAIL and self.tolerance is not None and self.baseline is not None:
            reasons.append(f"regression: baseline {self.baseline:.6g} {unit}, delta {self.delta:+.6g} {unit} "
                           f"beyond tolerance {self.tolerance.describe(unit)}")
        return f"measurement {self.key} = {_fmt(self.value)} {unit}: {'; '.join(reasons) or 'failed'}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: what a record keeps of it."""
        band = self.limits.marginal_band()
        out: dict[str, Any] = {
            "name": self.name, "case": self.case, "key": self.key, "value": _json_number(self.value),
            "unit": self.unit, "low": self.limits.low, "high": self.limits.high,
            "marginal_low": None if self.limits.low is None or band == 0 else self.limits.low + band,
            "marginal_high": None if self.limits.high is None or band == 0 else self.limits.high - band,
            "verdict": self.verdict, "limits_verdict": self.limits_verdict,
        }
        if self.baseline is not None or self.tolerance is not None:
            out.update(baseline=self.baseline, delta=None if self.delta is None else _json_number(self.delta),
                       regression_verdict=self.regression_verdict,
                       tolerance=None if self.tolerance is None else self.tolerance.describe(self.unit))
        return out


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def check_name(name: Any) -> str:
    """A measurement name: lower-case words joined by ``_`` (``light_linearity_r2``)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"measurement name {name!r}: expected lower-case letters, digits and '_'")
    return name


def check_case(case: Any) -> str:
    """A capture-matrix case: ``main``, ``m/summicron-m-50-f2/center`` (letters, digits, ``._/=+-``)."""
    if case == "":
        return ""
    if not isinstance(case, str) or len(case) > 200 or not _CASE_RE.match(case):
        raise ValueError(f"measurement case {case!r}: expected letters, digits and . _ / = + -")
    return case


def measure(name: str, value: float, limits: Limits, *, case: str = "", baseline: float | None = None,
            tolerance: Tolerance | None = None) -> Measurement:
    """Validate ``value`` against ``limits`` and, given both a baseline and a tolerance, against the baseline."""
    check_name(name)
    check_case(case)
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise TypeError(f"measurement {name}: value must be a number, got {type(value).__name__}")
    number = float(value)
    delta = None if baseline is None else number - float(baseline)
    regression = None
    if baseline is not None and tolerance is not None:
        regression = tolerance.verdict(number, float(baseline))
    return Measurement(name=name, value=number, unit=limits.unit, limits=limits, case=case,
                       limits_verdict=limits.verdict(number),
                       baseline=None if baseline is None else float(baseline), delta=delta,
                       tolerance=tolerance, regression_verdict=regression)


# --- what a step measures, declared next to the code that takes it (OpenHTF ``@measures``) ------------------

#: Where a declared measurement's limits come from: the product's limits file (a failure is the phone's), or
#: the same file's self-check entries judged as the station's (a failure is a station fault naming the device).
LIMITS_SOURCES = ("product", "station")
#: The case patterns a declaration may use: the fields a step fills in (``station.procedures.scene.case_name``).
CASE_FIELDS = {"case": r"(main|m|m/[a-z0-9.\-]+)", "f_case": r"(main|m|m/[a-z0-9.\-]+)(/f[0-9.]+)?",
               "sensor": r"(main|m)", "mode": r"[a-z]+", "source": r"[a-z]+"}


@dataclass(frozen=True)
class Declared:
    """One measurement a step takes: its name, unit (the limits file's), the case it is taken at (a pattern
    of ``CASE_FIELDS``: ``"{case}"``, ``"{case}/{mode}"``, ``""`` for none) and where its limits come from."""

    name: str
    unit: str
    case: str = "{case}"
    limits: str = "product"
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.limits not in LIMITS_SOURCES:
            raise ValueError(f"measurement {self.name}: limits from {self.limits!r}, expected one of "
                             f"{', '.join(LIMITS_SOURCES)}")

    def case_matches(self, case: str) -> bool:
        """``case`` is one this declaration's pattern allows."""
        pattern = re.escape(self.case)
        for field_name, expression in CASE_FIELDS.items():
            pattern = pattern.replace(re.escape("{" + field_name + "}"), expression)
        return re.fullmatch(pattern, case) is not None


#: Every declared measurement of the code imported so far, by name.
DECLARED: dict[str, Declared] = {}


def measures(*declarations: Declared) -> Callable[[_F], _F]:
    """Declare what a step (or a result's ``measurements`` method) measures: ``fn.measurements`` lists them,
    and ``DECLARED`` knows every one by name. A name declared twice must say the same unit."""
    def declare(fn: _F) -> _F:
        for item in declarations:
            known = DECLARED.setdefault(item.name, item)
            if known.unit != item.unit:
                raise ValueError(f"measurement {item.name} declared in {known.unit!r} and in {item.unit!r}")
        fn.measurements = tuple(getattr(fn, "measurements", ())) + declarations  # type: ignore[attr-defined]
        return fn
    return declare


def declarations_of(fn: Callable[..., Any]) -> dict[str, Declared]:
    """What ``fn`` (a ``@measures`` function or bound method) declares, by name."""
    return {item.name: item for item in getattr(fn, "measurements", ())}


def all_declared() -> dict[str, Declared]:
    """Every measurement the station's procedures and the plans' steps declare (their modules imported first)."""
    import importlib
    import pkgutil

    import station.procedures as procedures

    for module in pkgutil.iter_modules(procedures.__path__):
        importlib.import_module(f"{procedures.__name__}.{module.name}")
    importlib.import_module("station.plans.steps")
    return dict(DECLARED)
