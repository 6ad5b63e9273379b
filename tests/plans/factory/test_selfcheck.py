"""Station self-check, first in the factory plan: the mount homes and repeats, the light is linear
against the lux meter and the closed loop reaches a target illuminance.

A failure here is the station's, not the phone's: the plan stops before touching a phone.
(Placeholder of the factory plan: exercises the run machinery; the plan grows beside it.)
"""

from __future__ import annotations

import io
from typing import Any

import allure
import numpy as np
import pytest

from fixtures.allure_glue import attach_png
from station.devices.light import set_illuminance
from tests.plans.helpers import lit

pytestmark = pytest.mark.bench

LEVELS_PCT = (20.0, 40.0, 60.0, 80.0)
CLOSED_LOOP_TARGET_LUX = 1000.0
REPEAT_TARGET_MM = 800.0
REPEAT_FROM_MM = (600.0, 1000.0)  # approach the target alternately from below and from above
REPEATS = 5


def _rail_mm(station: Any) -> float:
    """Where the rail really is: the twin's truth on the twin, the controller's MPos on a bench."""
    if station.twin is not None:
        return float(station.twin.truth()["pose"]["distance"])
    return float(station.mount.position()["distance"])


def test_mount_homing(station: Any, mount: Any, measure: Any) -> None:
    homed = []
    for attempt in (1, 2):
        with allure.step(f"home the mount ($H), {attempt} of 2"):
            if attempt == 2:
                mount.move_to(distance=REPEAT_FROM_MM[1])
            mount.home()
            homed.append(_rail_mm(station))
    measure("mount_home_error_mm", abs(homed[1] - homed[0]))


def test_mount_repeatability(station: Any, mount: Any, measure: Any) -> None:
    reached = []
    for k in range(REPEATS):
        start = REPEAT_FROM_MM[k % 2]
        with allure.step(f"approach {REPEAT_TARGET_MM:g} mm from {start:g} mm"):
            mount.move_to(distance=start)
            mount.move_to(distance=REPEAT_TARGET_MM)
            reached.append(_rail_mm(station))
    allure.attach("\n".join(f"{r:.4f}" for r in reached), name="rail positions reached (mm)",
                  attachment_type=allure.attachment_type.TEXT)
    measure("mount_repeatability_mm", max(reached) - min(reached))


def _linearity_png(levels: np.ndarray, lux: np.ndarray, slope: float, offset: float) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=100)
    try:
        ax.plot(levels, lux, "o", label="lux meter")
        x = np.array([0.0, 100.0])
        ax.plot(x, slope * x + offset, "-", lw=1, label=f"fit {slope:.4g} lux/% {offset:+.3g} lux")
        ax.set_xlabel("light level (% of full scale)")
        ax.set_ylabel("illuminance at the chart (lux)")
        ax.set_title("Light linearity against the lux meter")
        ax.grid(True, alpha=0.3)
        ax.legend()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


def test_light_linearity(light: Any, meter: Any, measure: Any) -> None:
    readings = []
    for level in LEVELS_PCT:
        with lit(light, level), allure.step(f"read the lux meter at {level:g} %"):
            readings.append(meter.illuminance_lux())
    levels, lux = np.array(LEVELS_PCT), np.array(readings)
    slope, offset = np.polyfit(levels, lux, 1)
    residual = lux - (slope * levels + offset)
    r2 = 1.0 - float(np.sum(residual**2)) / float(np.sum((lux - lux.mean()) ** 2))
    attach_png("light linearity", _linearity_png(levels, lux, slope, offset))
    measure("light_linearity_r2", r2)
    measure("light_linearity_max_dev_pct", float(np.max(np.abs(residual)) / lux[-1] * 100.0))


def test_light_closed_loop(light: Any, meter: Any, measure: Any) -> None:
    try:
        with allure.step(f"closed loop to {CLOSED_LOOP_TARGET_LUX:g} lux"):
            set_illuminance(light, meter, CLOSED_LOOP_TARGET_LUX)
        with allure.step("read the lux meter again"):
            reading = meter.illuminance_lux()
    finally:
        light.set_output(False)
    measure("light_closed_loop_error_pct", abs(reading - CLOSED_LOOP_TARGET_LUX) / CLOSED_LOOP_TARGET_LUX * 100.0)
