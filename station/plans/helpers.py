"""Helpers of the station's plans: pictures, procedures as Allure steps, any result kept the same way (``keep``),
station-side self-check limits.

Charts, lenses and apertures are the scene's (``station.scene.Scene``, the ``operator`` fixture)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import allure

from fixtures.allure_glue import attach_png
from station.errors import DeviceError
from station.measurements import declarations_of
from station.procedures import ProcedureError
from station.procedures.profile import CaseResults
from station.procedures.result import ProcedureResult, store_result

if TYPE_CHECKING:
    from station.station import Station


def attach_all(pictures: Mapping[str, bytes]) -> None:
    """Attach every PNG of ``pictures`` (name -> bytes) to the current test."""
    for name, png in pictures.items():
        if png:
            attach_png(name, png)


@contextlib.contextmanager
def procedure(title: str) -> Iterator[None]:
    """An Allure step around a procedure; a procedure error's pictures (the capture that showed no chart)
    are attached before the error goes on."""
    with allure.step(title):
        try:
            yield
        except ProcedureError as exc:
            attach_all(getattr(exc, "attachments", None) or {})
            raise


def take(measure: Any, values: Callable[[], Mapping[str, float]], case: str = "", *, check: bool = True) -> list[Any]:
    """Take every measurement ``values`` (a ``@measures`` method, ``station.measurements``) declares, at
    ``case``: each recorded before the test fails on any (``measure.check()``). A value the function did not
    declare, a declared one it did not give, or a case its pattern does not allow is a bug of the step
    (``ValueError``)."""
    declared = declarations_of(values)
    taken = dict(values())
    if set(taken) != set(declared):
        raise ValueError(f"{getattr(values, '__qualname__', values)}: gave {sorted(taken)}, "
                         f"declares {sorted(declared)}")
    wrong = [name for name, item in declared.items() if not item.case_matches(case)]
    if wrong:
        raise ValueError(f"case {case!r} does not match the declared case of {', '.join(wrong)}")
    out = [measure(name, value, case=case, check=False) for name, value in taken.items()]
    if check:
        measure.check()
    return out


def keep(measure: Any, result: ProcedureResult, case: str = "", entry: CaseResults | None = None, *,
         values: Callable[[], Mapping[str, float]] | None = None, check: bool = True) -> list[Any]:
    """Any procedure result the same way (``station.procedures.result``): its pictures and figures attached, its
    profile section and phone entries kept in ``entry`` (its case's results, when the plan keeps them), then its
    measurements taken at ``case`` (``values``: another ``@measures`` method of it; ``take``)."""
    if not isinstance(result, ProcedureResult):
        raise TypeError(f"{type(result).__name__} is not a procedure result (station.procedures.result)")
    attach_all(result.attachments())
    attach_all(result.figures())
    if entry is not None:
        store_result(entry.sections, entry.phone, result)
    return take(measure, values or result.measurements, case, check=check)


def chart_step(station: Station, operator: Any, measure: Any, results: dict[str, CaseResults], chart: str,
               title: str, run: Callable[[], ProcedureResult], sensor: str, lens: str | None, case: str) -> Any:
    """One plan step on a chart: ``chart`` up for ``sensor`` (the scene asks only when it must), ``run()`` inside
    the Allure step ``title``, then its result kept at ``case`` in the results of ``sensor`` / ``lens``."""
    operator.chart(chart, sensor=sensor)
    with procedure(title):
        result = run()
    keep(measure, result, case, case_results(results, station, sensor, lens))
    return result


def station_check(measure: Any, values: Callable[[], Mapping[str, float]], device: str) -> list[Any]:
    """Self-check measurements (declared with limits from ``station``): out of its limits one is the station's
    fault (``DeviceError`` naming the device: exit 3, the run stops), never the phone's."""
    declared = declarations_of(values)
    if any(item.limits != "station" for item in declared.values()):
        raise ValueError(f"{getattr(values, '__qualname__', values)}: a self-check declares limits from 'station'")
    taken = take(measure, values, check=False)
    for m in taken:
        if not m.passed:
            raise DeviceError(device, f"self-check failed: {m.failure_message()}")
    return taken


class RunResults(dict[str, CaseResults]):
    """What each case of the capture matrix measured, by case (``main``, ``m``, ``m/<lens>``): the session's
    (the ``results`` fixture), filled by the measuring tests, read by the ones that write profiles and the phone."""

    def need(self, case: str, what: str, by: str) -> CaseResults:
        """The case's results; when nothing was measured for it (its tests failed, or ``-k`` left them out) the
        test fails saying what it needs and which tests give it."""
        if case not in self:
            import pytest

            pytest.fail(f"{case}: needs {what}, which {by} measure; nothing was measured for {case} (select those "
                        "tests too, or see why they failed)", pytrace=False)
        return self[case]


class Kept(dict[str, Any]):
    """What a test captured for a later test of the plan (a slanted-edge capture for the lateral CA, the
    ColorChecker half of RAW integrity), by key: the session's (the ``kept`` fixture). ``need`` is how a test
    takes one: when the test that keeps it did not run (``-k``) or failed, it fails in one line naming it.
    ``take`` and ``take_if`` hand a one-consumer thing over and forget it: what one test keeps for one other
    (a 50 MP frame is 100 MB) does not stay for the whole session."""

    def need(self, key: str, what: str, by: str) -> Any:
        if key not in self:
            import pytest

            pytest.fail(f"{key}: needs {what}, which {by} takes; it was not taken in this run (select that test "
                        "too, or see why it failed)", pytrace=False)
        return self[key]

    def take(self, key: str, what: str, by: str) -> Any:
        """``need``, then the store lets it go: its one consumer holds the only reference."""
        return self.pop(key) if key in self else self.need(key, what, by)

    def take_if(self, key: str) -> Any:
        """The kept thing, let go by the store, or None when nothing was kept (the consumer then takes it
        itself)."""
        return self.pop(key, None)


def case_results(results: dict[str, CaseResults], station: Station, sensor: str, lens: str | None = None
                 ) -> CaseResults:
    """The results of one case, made on first use with the sensor's size and pixel pitch."""
    from station.procedures.framing import sensor_geometry

    key = sensor if lens is None else f"{sensor}/{lens}"
    if key not in results:
        geometry = sensor_geometry(station, sensor)
        results[key] = CaseResults(sensor=sensor, lens=lens, image_size=(geometry.width_px, geometry.height_px),
                                   pixel_pitch_um=geometry.pixel_pitch_um)
    return results[key]


#: The stopped-down aperture of the M lens cases (depth of field for the tilted board; the sharpest region).
STOPPED_DOWN = 8.0


def stopped_down(lens: str) -> float:
    """f/8, or the lens's smallest aperture when its ring stops before f/8 (the station's lens catalogue)."""
    from station.procedures.framing import lens_datasheet

    apertures = lens_datasheet("m", lens).apertures
    return STOPPED_DOWN if STOPPED_DOWN in apertures else float(max(apertures))


def wide_open(lens: str) -> float:
    """The lens's widest aperture (the station's lens catalogue)."""
    from station.procedures.framing import lens_datasheet

    return float(lens_datasheet("m", lens).apertures[0])
