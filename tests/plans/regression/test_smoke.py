"""Firmware regression smoke: RAW black level and dark noise of each sensor against the baseline.

With ``--baseline FILE`` each value is compared with the approved build's (the limits file's
``[regression.*]`` tolerances); without one the values are only checked against their limits.
(Placeholder of the regression plan: exercises the run machinery; the plan grows beside it.)
"""

from __future__ import annotations

from typing import Any

import allure
import numpy as np
import pytest

from fixtures.allure_glue import attach_png, png_of

pytestmark = pytest.mark.bench

EXPOSURE_US = 10_000


@pytest.mark.parametrize("sensor", ["main", "m"])
def test_raw_dark_frame(sensor: str, dut: Any, dark: None, measure: Any) -> None:
    with allure.step(f"capture a dark RAW10 frame from {sensor}"):
        dut.configure(sensor, exposure_us=EXPOSURE_US, analog_gain=1.0)
        frame = dut.capture_frame(sensor)
    data = frame.data
    mean = float(data.mean(dtype=np.float64))
    # the dark frame, stretched so black level +- 8 DN spans the grey scale
    stretched = np.clip((data.astype(np.float32) - (frame.black_level - 8)) * (255 / 16), 0, 255).astype(np.uint8)
    attach_png(f"dark frame {sensor} (black level ±8 DN)", png_of(stretched, 512))
    measure("raw_black_level_dn", mean, case=sensor)
    measure("raw_black_offset_dn", mean - frame.black_level, case=sensor)
    measure("raw_dark_noise_dn", float(data.std(dtype=np.float64)), case=sensor)
