"""Fixtures shared by the station's plans (station/plans/): the capture matrix, the operator, the results.

The capture matrix is {main; m bare; m + each M lens}. The lenses are ``--lens`` (repeatable) or, on the twin,
the line's reference lens (``factory``) or the whole lens catalogue (``lens``); a bench without ``--lens`` tests
no M lens. A test that takes the ``m_lens`` fixture runs
once per lens, and pytest runs all of one lens's tests before the next lens is mounted (the fixture is
module-scoped: one lens change per lens).

The device fixtures (``station``, ``light``, ``meter``, ``mount``, ``dut``, ``twin``) and the measurement ones
(``measure``, ``limits``, ``baseline``, ``run_record``, ``run_dir``, ``profile_dir``) come from the station's
pytest plugin (``fixtures/``). On the twin the plans run with ``--twin-time-scale 0`` (no real waiting for
the simulated hardware; its time is still accounted) unless the option is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import allure
import pytest

from station.errors import DeviceError
from station.plans.helpers import Kept, RunResults
from station.plans.units import with_unit_faults
from station.scene import Scene

if TYPE_CHECKING:
    from station.station import Station

#: The twin's time scale for the plans unless ``--twin-time-scale`` is given: 0, no real waits.
PLAN_TIME_SCALE = 0.0
#: The light level the plans work at (% of full scale): exposures stay short.
WORKING_LEVEL_PCT = 80.0


def pytest_configure(config: pytest.Config) -> None:
    if not any(str(a).startswith("--twin-time-scale") for a in config.invocation_params.args):
        config.option.twin_time_scale = PLAN_TIME_SCALE
    if not config.option.station:  # the factory plan's twin is a line's unit (station.plans.units)
        config.option.twin_fault = with_unit_faults(plan_of(config), config.option.twin_fault or [])


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """After each plan test, the memory its frames were in back to the system (``station.memory``): what the
    next test holds is then what the station's RSS shows."""
    from station.memory import trim_heap

    trim_heap()


def on_twin(config: pytest.Config) -> bool:
    """The run is on a twin: one the plugin starts (no ``--station``), or one a station file points at."""
    if not config.option.station:
        return True
    from station.config import load_config

    try:
        station_config = load_config(config.option.station)
    except Exception:  # noqa: BLE001 - a bad file is reported by the station fixture, not at collection
        return False
    return station_config.twin is not None and bool(station_config.twin.control)


#: The line's reference M lens: the factory plan's lens through the adapter on the twin without ``--lens``.
REFERENCE_LENS = "summicron-m-50-f2"


def plan_of(config: pytest.Config) -> str:
    """The plan this session runs: ``--plan-name`` (``station run``), else the plan folder named on the
    command line (``factory`` when none)."""
    if getattr(config.option, "plan_name", None):
        return str(config.option.plan_name)
    for arg in config.args:
        parts = str(arg).replace("\\", "/").split("/")
        if "plans" in parts and parts.index("plans") + 1 < len(parts):
            return parts[parts.index("plans") + 1].split("::")[0]
    return "factory"


def configured_lenses(config: pytest.Config) -> list[str]:
    """The M lenses of the run: ``--lens`` (in the order given); else on the twin the line's reference lens
    (factory, regression) or every M lens of the station's lens catalogue (the ``lens`` plan); on a bench none."""
    chosen = list(dict.fromkeys(config.option.lens or []))
    if not chosen and on_twin(config):
        from station.lens_catalog import m_lenses

        chosen = sorted(m_lenses()) if plan_of(config) == "lens" else [REFERENCE_LENS]
    return chosen


def capture_cases(config: pytest.Config) -> list[str]:
    """The capture matrix's cases: ``main``, ``m`` (bare), ``m/<lens>`` for each lens (the ``lens`` plan: only
    the lenses, profiled on a reference phone)."""
    lenses = [f"m/{lens}" for lens in configured_lenses(config)]
    return lenses if plan_of(config) == "lens" else ["main", "m", *lenses]


#: What a plan test needs of a station, by the fixtures it takes: markers that select what a station can do.
NEEDS = {"operator": "needs_operator", "m_lens": "needs_m_lens"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each plan test with what it needs (``NEEDS``), from the fixtures it (or its fixtures) take."""
    for item in items:
        for fixture, marker in NEEDS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))


#: Set when ``-k``, ``-m`` or ``--deselect`` left part of the plan out: its declared scene needs then over-count.
PART_OF_PLAN = pytest.StashKey[bool]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        items[0].config.stash[PART_OF_PLAN] = True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "m_lens" in metafunc.fixturenames:
        lenses = configured_lenses(metafunc.config)
        metafunc.parametrize("m_lens", lenses, ids=lenses, indirect=True, scope="module")
    if "case" in metafunc.fixturenames:
        cases = capture_cases(metafunc.config)
        metafunc.parametrize("case", cases, ids=cases)


@pytest.fixture(scope="session", autouse=True)
def lens_ids(request: pytest.FixtureRequest, run_record: Any) -> list[str]:
    """The M lenses of this run (recorded in the run's record)."""
    chosen = configured_lenses(request.config)
    run_record.update(lenses=chosen)
    return chosen


@pytest.fixture(scope="session")
def operator(request: pytest.FixtureRequest, station: Station, lens_ids: list[str]) -> Scene:
    """The scene: every chart, lens and aperture change of the plan, through the run's operator; its ``total``
    (the N of "step n of N") from the plan's ``scene_needs``, when the plan declares them and runs whole."""
    scene = station.operator
    if scene is not None and not scene.total and not request.config.stash.get(PART_OF_PLAN, False):
        scene.total = planned_total(request.session.items, lens_ids)
    return scene


def planned_total(items: list[pytest.Item], lenses: list[str]) -> int:
    """The operator requests the plan of ``items`` plans (``scene_needs`` of its package; 0: not declared)."""
    import importlib

    from station.scene import planned_requests

    packages = {getattr(getattr(item, "module", None), "__package__", None) for item in items}
    packages.discard(None)
    if len(packages) != 1:
        return 0
    needs = getattr(importlib.import_module(packages.pop()), "scene_needs", None)
    return planned_requests(needs(lenses)) if needs is not None else 0


@pytest.fixture(scope="session")
def results() -> RunResults:
    """What each case of the capture matrix measured, by case (``main``, ``m``, ``m/<lens>``): the profile
    sections and the phone's calibration entries, filled in by the tests and written at the end."""
    return RunResults()


@pytest.fixture(scope="session")
def kept() -> Kept:
    """Captures a test takes for a later one (``Kept``): the slanted-edge captures the lateral CA reuses
    (``sfr/<case>``), the ColorChecker half of RAW integrity (``raw_colour/<sensor>``: its checks, no pixels);
    each taken (``Kept.take``) by its one consumer, so it does not stay for the session."""
    return Kept()


@pytest.fixture(scope="module")
def m_lens(request: pytest.FixtureRequest, operator: Scene, lens_ids: list[str]) -> Iterator[str]:
    """The M lens of this group of tests, mounted wide open by the operator."""
    lens = request.param
    operator.lens(lens, None)
    yield lens


@pytest.fixture
def lit_bench(station: Station) -> Iterator[None]:
    """The light on at the plans' working level for the test, off after it."""
    from station.procedures.captures import set_light

    with allure.step(f"light on at {WORKING_LEVEL_PCT:g} % (settled)"):
        set_light(station, WORKING_LEVEL_PCT)
    try:
        yield
    finally:
        with contextlib.suppress(DeviceError):  # a dead light is already the test's failure
            station.light.set_output(False)


@pytest.fixture
def dark(light: Any) -> Iterator[None]:
    """The light is off for the test (and stays off after it)."""
    with allure.step("light off (settled)"):
        light.set_output(False)
        light.wait_settled()
    yield
