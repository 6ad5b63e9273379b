"""Fixtures shared by the station's plans (tests/plans/): the lenses of the run, a dark bench.

The device fixtures (``station``, ``light``, ``meter``, ``mount``, ``dut``, ``twin``) and the
measurement ones (``measure``, ``limits``, ``baseline``, ``run_record``, ``profile_dir``)
come from the station's pytest plugin (``fixtures/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import allure
import pytest


@pytest.fixture(scope="session")
def lens_ids(request: pytest.FixtureRequest, station: Any, run_record: Any) -> list[str]:
    """The M lenses of this run: ``--lens`` or, on the twin, its whole catalog (recorded)."""
    chosen = list(request.config.option.lens or [])
    if not chosen and station.twin is not None:
        from station.twin.lenses import M_LENSES

        chosen = sorted(M_LENSES)
    run_record.update(lenses=chosen)
    return chosen


@pytest.fixture
def dark(light: Any) -> Iterator[None]:
    """The light is off for the test (and stays off after it)."""
    with allure.step("light off (settled)"):
        light.set_output(False)
        light.wait_settled()
    yield
