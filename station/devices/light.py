"""SCPI light source over VISA (DESIGN 3.1), and the closed loop that sets a target illuminance.

Settings are checked twice: the error queue is drained after each, and the value is read
back where that is one cheap query (level, CCT, output).
"""

from __future__ import annotations

import math
import time

from station.config import InstrumentConfig
from station.devices.protocols import LightSource, LuxMeter
from station.devices.registry import register
from station.devices.visa import VisaInstrument, checked_number, dialect_for, format_number
from station.errors import ConfigError, DeviceError, InputError


@register("light", "scpi")
class ScpiLight(VisaInstrument):
    """A light box speaking SCPI (``SOUR:LEV``, ``SOUR:CCT``, ``OUTP``, ``SOUR:SETT?``); a ``LightSource``."""

    def __init__(self, config: InstrumentConfig, name: str = "light", *, visa_library: str = "@py") -> None:
        configured = getattr(config, "settle_s", None)  # a bench's own figure overrides the dialect's
        settle_s = dialect_for(config.dialect, name).settle_s if configured is None else configured
        if isinstance(settle_s, bool) or not isinstance(settle_s, (int, float)) \
                or not (math.isfinite(settle_s) and 0.0 <= settle_s <= 60.0):
            raise ConfigError(f"{name}.settle_s: expected seconds in 0..60, got {settle_s!r}")
        self.settle_s = float(settle_s)
        super().__init__(config, name, visa_library=visa_library)
        self._changed_at = time.monotonic()  # a box of unknown state settles from power-on

    # --- output -------------------------------------------------------------------------
    def set_output(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise InputError(f"{self.name}: output must be true or false, got {on!r}")
        command = self.dialect.output_on if on else self.dialect.output_off
        self.setting(command)
        self._changed_at = time.monotonic()
        if self.output() != on:
            raise DeviceError(self.name, f"{command} -> {self.dialect.output_query} still reads "
                                         f"{'off' if on else 'on'}")

    def output(self) -> bool:
        return self.query_bool(self.dialect.output_query)

    # --- level and colour temperature ------------------------------------------------------
    def set_level_pct(self, level_pct: float) -> None:
        d = self.dialect
        self._set_verified("level_pct", level_pct, d.level_set, d.level_query, d.level_range_pct,
                           d.level_tolerance_pct, "%")

    def set_cct_k(self, cct_k: float) -> None:
        d = self.dialect
        self._set_verified("cct_k", cct_k, d.cct_set, d.cct_query, d.cct_range_k, d.cct_tolerance_k, "K")

    def level_pct(self) -> float:
        return self.query_float(self.dialect.level_query)

    def cct_k(self) -> float:
        return self.query_float(self.dialect.cct_query)

    def _set_verified(self, what: str, value: float, template: str, query: str, limits: tuple[float, float],
                      tolerance: float, unit: str) -> None:
        """Range-check ``value``, send the setting, drain the error queue, and read it back within ``tolerance``."""
        text = format_number(checked_number(self.name, what, value, limits[0], limits[1], unit))
        command = template.format(value=text)
        self.setting(command)
        self._changed_at = time.monotonic()
        readback = self.query_float(query)
        if abs(readback - float(text)) > tolerance:
            raise DeviceError(self.name, f"{command} -> {query} reads back {readback:g} {unit}")

    # --- settling ---------------------------------------------------------------------------
    def settled(self) -> bool:
        """The box says it has settled (``SOUR:SETT?``), or, without a settle query, the settle
        time has passed since the last change."""
        if self.dialect.settled_query is None:
            return time.monotonic() >= self._changed_at + self.settle_s
        return self.query_bool(self.dialect.settled_query)

    def wait_settled(self, timeout_s: float = 10.0, poll_s: float = 0.01) -> None:
        """Poll ``SOUR:SETT?`` until it answers 1; ``DeviceError`` after ``timeout_s``.

        A box without a settle query: sleep out ``settle_s`` from the last change.
        """
        timeout_s = checked_number(self.name, "settle timeout_s", timeout_s, 0.0, 3600.0, "s")
        if self.dialect.settled_query is None:
            time.sleep(max(self._changed_at + self.settle_s - time.monotonic(), 0.0))
            return
        deadline = time.monotonic() + timeout_s
        while not self.settled():
            if time.monotonic() >= deadline:
                raise DeviceError(self.name, f"not settled within {timeout_s:g} s "
                                             f"({self.dialect.settled_query} still 0)")
            time.sleep(poll_s)

    # --- safe state ---------------------------------------------------------------------------
    def safe_off(self) -> None:
        """Output off, best effort, never raises: for the safe state after a failure or Ctrl-C."""
        try:
            if self._res is not None:
                self._res.write(self.dialect.output_off)
        except Exception:  # the safe state must not raise
            pass


#: How long the closed loop checks that a settled light holds its output, s (DESIGN 3.1).
HOLD_S = 0.1


def _held(meter: LuxMeter, hold_s: float) -> float:
    """The meter's reading ``hold_s`` after the last one."""
    time.sleep(hold_s)
    return meter.illuminance_lux()


def set_illuminance(light: LightSource, meter: LuxMeter, target_lux: float, tol_pct: float = 1.0,
                    max_iter: int = 8, settle_timeout_s: float = 10.0, hold_s: float = HOLD_S) -> float:
    """Drive the light until the meter reads ``target_lux`` within ``tol_pct``; return the reading.

    The station sets a target illuminance, not a blind percentage (DESIGN 3.1). Each step
    waits for the light to settle, then moves the level along the secant through the last
    two (level, lux) points (through the origin at first: a light's output is proportional
    to its level to first order). ``DeviceError`` with the numbers if it does not converge.

    Once on target, the reading must hold for ``hold_s`` (0: not checked): a settled light keeps
    its output. A reading that walks out of tolerance is re-adjusted once; a second time the
    light is drifting, a ``DeviceError`` with both readings.
    """
    device = light.name
    if isinstance(target_lux, bool) or not isinstance(target_lux, (int, float)) \
            or not math.isfinite(target_lux) or target_lux <= 0:
        raise InputError(f"{device}: target illuminance must be a number > 0 lux, got {target_lux!r}")
    if not (isinstance(tol_pct, (int, float)) and 0 < tol_pct < 100):
        raise InputError(f"{device}: tol_pct must be in (0, 100) %, got {tol_pct!r}")
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise InputError(f"{device}: max_iter must be an integer >= 1, got {max_iter!r}")
    hold_s = checked_number(device, "hold_s", hold_s, 0.0, 60.0, "s")
    tolerance_lux = target_lux * tol_pct / 100.0
    if not light.output():
        light.set_output(True)
    level = light.level_pct()
    if level <= 0:
        level = 50.0
        light.set_level_pct(level)
    previous: tuple[float, float] | None = None
    history: list[str] = []
    drifted: list[str] = []
    for _ in range(max_iter):
        light.wait_settled(settle_timeout_s)
        lux = meter.illuminance_lux()
        history.append(f"{level:.3g} % -> {lux:.4g} lux")
        if abs(lux - target_lux) <= tolerance_lux:
            if not hold_s:
                return lux
            held_lux = _held(meter, hold_s)
            if abs(held_lux - target_lux) <= tolerance_lux:
                return held_lux
            drifted.append(f"{lux:.4g} lux then {held_lux:.4g} lux {hold_s:g} s later")
            if len(drifted) >= 2:
                raise DeviceError(device, f"output does not hold at level {level:g} % (target {target_lux:g} "
                                          f"lux ± {tol_pct:g} %): {'; '.join(drifted)}: the light drifts")
            previous = (level, held_lux)
            level = min(max(level * target_lux / held_lux, 0.001), 100.0) if held_lux > 0 else level
            light.set_level_pct(round(level, 3))
            level = round(level, 3)
            continue
        if lux <= 0:
            raise DeviceError(device, f"meter reads {lux:g} lux at level {level:g} %: no light at the "
                                      f"chart plane, cannot reach {target_lux:g} lux")
        slope = lux / level
        if previous is not None and previous[0] != level:
            secant = (lux - previous[1]) / (level - previous[0])
            if secant > 0:
                slope = secant
        if level >= 100.0 and lux < target_lux:
            raise DeviceError(device, f"cannot reach {target_lux:g} lux: {lux:.4g} lux at 100 %")
        previous = (level, lux)
        level = min(max(level + (target_lux - lux) / slope, 0.001), 100.0)
        light.set_level_pct(round(level, 3))
        level = round(level, 3)
    raise DeviceError(device, f"illuminance did not converge to {target_lux:g} lux ± {tol_pct:g} % in "
                              f"{max_iter} steps: {', '.join(history)}")
