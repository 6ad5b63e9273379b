"""Helpers of the station's plans (tests/plans/): the light on for a block, off after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import allure

from station.errors import DeviceError


@contextlib.contextmanager
def lit(light: Any, level_pct: float) -> Iterator[None]:
    """The light on at ``level_pct`` and settled inside the block; off again after it, whatever happened."""
    try:
        with allure.step(f"light on at {level_pct:g} %"):
            light.set_level_pct(level_pct)
            light.set_output(True)
            light.wait_settled()
        yield
    finally:
        with contextlib.suppress(DeviceError):  # a dead light is already the test's failure
            light.set_output(False)
