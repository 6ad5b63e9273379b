"""The twin's one physical world, shared by the servers that expose it on their wires.

The SCPI light and meter, the GRBL mount and the phone each read and change this state
under ``World.lock``. Simulated hardware time (moves, settling, exposures) is kept
apart from wall time: real waits are ``simulated * time_scale`` so CI runs fast while the
twin still reports what a bench would spend.

``World.optics`` holds what the operator sets by hand and the image formation reads
(``station.twin.render``): the M lens's aperture ring, the adapter's errors, the chart's size,
the sensors' serials. ``World.snapshot()`` freezes the state a frame is made from.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Illuminance at the chart plane at 100 % level, lux (a bright photographic light box).
FULL_SCALE_LUX = 2000.0


def default_optics() -> dict[str, Any]:
    """The optics of a fresh bench: names as ``station.twin.render`` reads them (None: the default).

    ``aperture`` f-number of the mounted M lens (None: wide open); ``adapter_back_focus_mm`` flange
    back-focus error of the M adapter; ``adapter_tilt_x_deg`` / ``adapter_tilt_y_deg`` its tilt
    (OpenCV tauX, tauY); ``chart_size_mm`` [w, h] of the chart (None: the chart's own size);
    ``sensor_serial`` a serial, or {sensor: serial}, overriding the ones derived from the seed.
    """
    return {"aperture": None, "adapter_back_focus_mm": 0.0, "adapter_tilt_x_deg": 0.0,
            "adapter_tilt_y_deg": 0.0, "chart_size_mm": None, "sensor_serial": None}


def phone_serial_for_seed(seed: int) -> str:
    """The twin phone's serial: ``TWIN-`` and 8 hex digits of SHA-256 of ``m-phone:<seed>``."""
    return "TWIN-" + hashlib.sha256(f"m-phone:{seed}".encode()).hexdigest()[:8].upper()


def _sensor_serial(phone_serial: str, optics: dict[str, Any], sensor: str) -> str:
    override = optics.get("sensor_serial")
    if isinstance(override, dict):
        override = override.get(sensor)
    return str(override) if override else f"{phone_serial}-{sensor}"


@dataclass
class LightState:
    """Light output: level and CCT follow a first-order settle after each change."""

    output: bool = False
    level_pct: float = 0.0
    cct_k: float = 5000.0
    settle_s: float = 0.3  # simulated seconds to settle (time constant settle_s / 5)
    changed_at_sim_s: float = -1e9
    from_fraction: float = 0.0
    drift_pct_per_s: float = 0.0  # fault: level drifts after settling, % of value per simulated s

    def target_fraction(self) -> float:
        return self.level_pct / 100.0 if self.output else 0.0


@dataclass
class World:
    """All state of the simulated bench. Lock ``lock`` around every read-modify-write."""

    seed: int = 1
    firmware: str = "golden"
    resolution: str = "ci"
    time_scale: float = 0.05
    faults: dict[str, Any] = field(default_factory=dict)
    light: LightState = field(default_factory=LightState)
    #: Machine positions of the mount's controller axes (mm or deg as the axis is wired).
    axes: dict[str, float] = field(default_factory=lambda: {"X": 0.0, "Y": 1000.0, "Z": 0.0, "A": 0.0})
    #: Logical axis -> controller axis (the twin bench's wiring, as TWIN_AXES in config).
    axis_map: dict[str, str] = field(default_factory=lambda: {"focus": "X", "distance": "Y",
                                                              "pan": "Z", "tilt": "A"})
    #: The light's mains power, switched by a relay on the mount controller's flood output (M8/M9):
    #: the bench's interlock, so the safe state darkens the light even when its SCPI link is dead.
    light_power: bool = True
    #: Whether the twin bench has that relay wired (False: the light's power is always on).
    light_interlock: bool = True
    chart: str = "flat"  # the chart on the holder
    m_lens: str | None = None  # catalog id of the M lens mounted, None: bare sensor
    #: Operator-set optics (``default_optics``): aperture ring, adapter errors, chart size, serials.
    optics: dict[str, Any] = field(default_factory=default_optics)
    #: Simulated hardware time spent, seconds, by kind ("move", "settle", "exposure", ...).
    hw_time_s: dict[str, float] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _t0: float = field(default_factory=time.monotonic, repr=False)

    # --- time ---------------------------------------------------------------------
    def now_sim_s(self) -> float:
        """Simulated seconds since the twin started (wall time / time_scale)."""
        elapsed = time.monotonic() - self._t0
        return elapsed / self.time_scale if self.time_scale > 0 else math.inf

    def spend(self, kind: str, sim_s: float) -> None:
        """Account ``sim_s`` of simulated hardware time and wait its scaled real time."""
        with self.lock:
            self.hw_time_s[kind] = self.hw_time_s.get(kind, 0.0) + sim_s
        if sim_s > 0 and self.time_scale > 0:
            time.sleep(sim_s * self.time_scale)

    # --- light --------------------------------------------------------------------
    def set_light(self, output: bool | None = None, level_pct: float | None = None,
                  cct_k: float | None = None) -> None:
        """Change the light; the output then settles over ``light.settle_s``."""
        with self.lock:
            now = self.now_sim_s() if self.time_scale > 0 else 0.0
            current = self.light_fraction()
            if output is not None:
                self.light.output = output
            if level_pct is not None:
                self.light.level_pct = level_pct
            if cct_k is not None:
                self.light.cct_k = cct_k
            self.light.from_fraction = current
            self.light.changed_at_sim_s = now
            # the bench waits for the output to settle after each change: hardware time, not wall time
            if self.light.settle_s > 0:
                self.hw_time_s["settle"] = self.hw_time_s.get("settle", 0.0) + self.light.settle_s

    def _since_light_change_s(self) -> float:
        """Simulated seconds since the light last changed (inf when the twin does not wait)."""
        if self.time_scale <= 0:
            return math.inf
        return self.now_sim_s() - self.light.changed_at_sim_s

    def light_settled(self) -> bool:
        with self.lock:
            return self._since_light_change_s() >= self.light.settle_s

    def light_fraction(self) -> float:
        """Present output as a fraction of full scale (settling and drift included)."""
        with self.lock:
            light = self.light
            target = light.target_fraction()
            since = min(self._since_light_change_s(), 1e9)
            tau = max(light.settle_s / 5.0, 1e-9)
            value = target + (light.from_fraction - target) * math.exp(-since / tau)
            if light.drift_pct_per_s and since > light.settle_s:
                value *= 1.0 + light.drift_pct_per_s / 100.0 * (since - light.settle_s)
            return max(value, 0.0)

    def illuminance_lux(self) -> float:
        """Illuminance at the chart plane, lux (dark while the power relay is open)."""
        with self.lock:
            return FULL_SCALE_LUX * self.light_fraction() if self.light_power else 0.0

    # --- mount --------------------------------------------------------------------
    def pose(self) -> dict[str, float]:
        """Logical mount position: focus deg, distance mm, pan deg, tilt deg."""
        with self.lock:
            return {name: self.axes[letter] for name, letter in self.axis_map.items()}

    # --- identity -----------------------------------------------------------------
    def phone_serial(self) -> str:
        """The phone's serial (``info``), derived from the seed."""
        return phone_serial_for_seed(self.seed)

    def sensor_serial_for(self, sensor: str) -> str:
        """A sensor's serial (seeds its PRNU/DSNU): ``<phone serial>-<sensor>`` unless overridden."""
        with self.lock:
            return _sensor_serial(self.phone_serial(), self.optics, sensor)

    # --- a frame's view -----------------------------------------------------------
    def snapshot(self) -> WorldSnapshot:
        """The state a frame is made from, frozen at this instant (light level included)."""
        with self.lock:
            return WorldSnapshot(seed=self.seed, firmware=self.firmware, resolution=self.resolution,
                                 faults=copy.deepcopy(self.faults), light=copy.copy(self.light),
                                 chart=self.chart, m_lens=self.m_lens, optics=copy.deepcopy(self.optics),
                                 axes=dict(self.axes), axis_map=dict(self.axis_map),
                                 lux=self.illuminance_lux(), fraction=self.light_fraction())


@dataclass(frozen=True)
class WorldSnapshot:
    """A frozen copy of the world for one frame: the attributes and readers a renderer uses."""

    seed: int
    firmware: str
    resolution: str
    faults: dict[str, Any]
    light: LightState
    chart: str
    m_lens: str | None
    optics: dict[str, Any]
    axes: dict[str, float]
    axis_map: dict[str, str]
    lux: float
    fraction: float

    def pose(self) -> dict[str, float]:
        return {name: self.axes[letter] for name, letter in self.axis_map.items()}

    def light_fraction(self) -> float:
        return self.fraction

    def illuminance_lux(self) -> float:
        return self.lux

    def phone_serial(self) -> str:
        return phone_serial_for_seed(self.seed)

    def sensor_serial_for(self, sensor: str) -> str:
        return _sensor_serial(self.phone_serial(), self.optics, sensor)
