"""Helpers of the station's plans: pictures, procedures as Allure steps, station-side self-check limits.

Charts, lenses and apertures are the scene's (``station.scene.Scene``, the ``operator`` fixture)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import allure

from fixtures.allure_glue import attach_png
from station.errors import DeviceError
from station.procedures import ProcedureError
from station.procedures.profile import CaseResults


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


def station_check(measure: Any, name: str, value: float, device: str, case: str = "") -> Any:
    """A self-check measurement: out of its limits it is the station's fault (``DeviceError`` naming the
    device: exit 3, the run stops), never the phone's."""
    m = measure(name, value, case=case, check=False)
    if not m.passed:
        raise DeviceError(device, f"self-check failed: {m.failure_message()}")
    return m


def case_results(results: dict[str, CaseResults], station: Any, sensor: str, lens: str | None = None
                 ) -> CaseResults:
    """The results of one case, made on first use with the sensor's size and pixel pitch."""
    from station.procedures.geometry import sensor_geometry

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
    from station.procedures.geometry import lens_datasheet

    apertures = lens_datasheet("m", lens).apertures
    return STOPPED_DOWN if STOPPED_DOWN in apertures else float(max(apertures))


def wide_open(lens: str) -> float:
    """The lens's widest aperture (the station's lens catalogue)."""
    from station.procedures.geometry import lens_datasheet

    return float(lens_datasheet("m", lens).apertures[0])
