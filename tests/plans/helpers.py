"""Helpers of the station's plans (tests/plans/): the operator's steps, pictures and station-side limits.

``Operator``: a lens change, an aperture ring, a chart on the holder. On the twin its operator stand-in does
them through the control interface; on a bench the station asks on the terminal (pytest's capture suspended)
and waits for Enter, then checks what it can (the lens the phone reads on its adapter).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import allure

from fixtures.allure_glue import attach_png
from station.errors import ConfigError, DeviceError
from station.procedures import ProcedureError
from station.procedures.profile import CaseResults


class Operator:
    """The operator's steps of a plan (twin: its stand-in; bench: a prompt on the terminal)."""

    def __init__(self, station: Any, config: Any = None, ask: Callable[[str], str] | None = None) -> None:
        self.station = station
        self.config = config
        self._ask = ask
        self.chart: str | None = None
        self.lens: tuple[str | None, float | None] | None = None  # (lens, aperture) as last set

    @property
    def on_twin(self) -> bool:
        return self.station.twin is not None

    def prompt(self, text: str) -> None:
        """Ask the operator to do ``text`` and wait for Enter (a bench); ``ConfigError`` without a terminal."""
        if self._ask is not None:
            self._ask(text)
            return
        capman = self.config.pluginmanager.getplugin("capturemanager") if self.config is not None else None
        if capman is not None:
            capman.suspend_global_capture(in_=True)
        try:
            if not sys.stdin or not sys.stdin.isatty():
                raise ConfigError(f"operator step needed ({text}) but there is no terminal to ask on: run "
                                  "`station run` on the bench's terminal")
            input(f"\n>>> OPERATOR: {text}, then press Enter ")
        finally:
            if capman is not None:
                capman.resume_global_capture()

    def place_chart(self, chart: str) -> None:
        """``chart`` on the holder (nothing when it is there already)."""
        if chart == self.chart:
            return
        with allure.step(f"operator: the {chart} chart on the holder"):
            if self.on_twin:
                self.station.twin.chart_set(chart)
            else:
                self.prompt(f"put the {chart} chart on the chart holder")
        self.chart = chart

    def forget_chart(self) -> None:
        """A procedure changed the chart itself (on the twin): the next ``place_chart`` puts it up again."""
        self.chart = None

    def mount_lens(self, lens: str | None, aperture: float | None = None) -> None:
        """M lens ``lens`` (None: take it off, the bare sensor) at f/``aperture`` (None: wide open)."""
        if self.lens == (lens, aperture):
            return
        what = "take the M lens off (bare M sensor)" if lens is None else (
            f"mount the M lens {lens}" + (f", aperture ring at f/{aperture:g}" if aperture else ", wide open"))
        with allure.step(f"operator: {what}"):
            if self.on_twin:
                self.station.twin.lens_mount(lens, aperture)
            else:
                self.prompt(what)
                info = self.station.dut.info().get("m_lens") or {}
                got = info.get("id") if isinstance(info, Mapping) else None
                if got != lens:
                    raise ProcedureError(f"dut: the M adapter reads lens {got!r} after the lens change, "
                                         f"expected {lens!r}")
        self.lens = (lens, aperture)

    def set_aperture(self, lens: str, aperture: float) -> None:
        """The mounted lens's aperture ring to f/``aperture``."""
        if self.lens == (lens, aperture):
            return
        if self.lens is None or self.lens[0] != lens:
            self.mount_lens(lens, aperture)
            return
        with allure.step(f"operator: aperture ring of {lens} to f/{aperture:g}"):
            if self.on_twin:
                self.station.twin.lens_aperture(aperture)
            else:
                self.prompt(f"turn the aperture ring of {lens} to f/{aperture:g}")
        self.lens = (lens, aperture)


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
