"""The scene in front of the phone: which chart is up, which M lens is on and at what aperture.

Every procedure and plan step that needs a chart, a lens or an aperture asks the station's ``Scene``
(``station.operator``): it knows what is up, asks the operator (``station.operator`` package) only when a change
is needed, switches the light off while hands are at the bench and restores it, counts the requests, then
verifies what it can: the chart through the main camera (``station.scene_check``), the lens by the 6-bit code
the phone reads on its adapter (``info``). A wrong scene is asked for again, up to ``max_attempts``; then it
is a ``SetupError`` (a setup fault: exit 3, with what to do), never a device fault.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from station.errors import DeviceError
from station.operator.protocol import Operator, OperatorRequest
from station.procedures import ProcedureError

if TYPE_CHECKING:
    from station.station import Station

#: How many times a change is asked for before the run stops with a setup fault.
MAX_ATTEMPTS = 3
_UNKNOWN = object()


class SetupError(ProcedureError):
    """The scene is not what the plan needs after the operator was asked ``MAX_ATTEMPTS`` times: a setup fault
    (exit 3), which the operator can fix and retry."""


def chart_label(chart_spec: str) -> tuple[str, str, tuple[float, float]]:
    """``(name, title, size_mm)`` of a chart spec as ``station chart list`` names it."""
    from targets.registry import get_chart

    chart = get_chart(chart_spec)
    return chart.name, chart.title, (float(chart.width_mm), float(chart.height_mm))


class Scene:
    """What is in front of the phone, and the only way to change it."""

    def __init__(self, station: Station, operator: Operator, *, max_attempts: int = MAX_ATTEMPTS, verify: bool = True,
                 total: int = 0, on_request: Callable[[OperatorRequest], None] | None = None) -> None:
        self.station = station
        self.operator = operator
        self.max_attempts = int(max_attempts)
        self.verify = verify
        self.total = int(total)  # the plan's expected number of requests (0: unknown)
        self.on_request = on_request
        self.chart_up: Any = _UNKNOWN
        self.lens_on: Any = _UNKNOWN
        self.aperture_set: Any = _UNKNOWN
        self.requests = 0
        self.log: list[dict[str, Any]] = []
        #: Captures a step took while a chart was up, for a later step that would otherwise ask for it again
        #: (the peaking calibration's flat fields, by case).
        self.kept: dict[Any, Any] = {}

    # --- what a step needs ---------------------------------------------------------------------------
    def chart(self, chart_spec: str, *, sensor: str | None = None) -> None:
        """``chart_spec`` on the holder (asked for only when something else is, or may be, up)."""
        if self.chart_up == chart_spec:
            return
        name, title, size = chart_label(chart_spec)

        def request(attempt: int, problem: str) -> OperatorRequest:
            return OperatorRequest("chart", self.requests + 1, self.total, sensor=sensor, chart=name,
                                   chart_spec=chart_spec, chart_title=title, size_mm=size, attempt=attempt,
                                   problem=problem)

        self._change(request, self.operator.chart, lambda: self._check_chart(chart_spec),
                     f"the {name} chart is not on the holder")
        self.chart_up = chart_spec

    def lens(self, lens: str | None, aperture: float | None = None, *, sensor: str | None = "m") -> None:
        """M lens ``lens`` on the adapter (None: bare) at f/``aperture`` (None: wide open)."""
        aperture = self._f_number(lens, aperture)
        if self.lens_on == lens and (lens is None or self.aperture_set == aperture):
            return
        if self.lens_on == lens and lens is not None:
            self.set_aperture(lens, aperture)
            return
        name = self._lens_name(lens)

        def request(attempt: int, problem: str) -> OperatorRequest:
            return OperatorRequest("lens", self.requests + 1, self.total, sensor=sensor, lens=lens,
                                   lens_name=name, aperture=aperture, attempt=attempt, problem=problem)

        self._change(request, self.operator.lens, lambda: self._check_lens(lens),
                     "no M lens is on the adapter" if lens is None else f"{name} is not on the adapter")
        self.lens_on, self.aperture_set = lens, aperture

    def set_aperture(self, lens: str, aperture: float | None) -> None:
        """The mounted ``lens``'s aperture ring at f/``aperture`` (mounting it first when it is not on)."""
        aperture = self._f_number(lens, aperture)
        if self.lens_on != lens:
            self.lens(lens, aperture)
            return
        if self.aperture_set == aperture:
            return
        request = OperatorRequest("aperture", self.requests + 1, self.total, sensor="m", lens=lens,
                                  lens_name=self._lens_name(lens), aperture=aperture)
        self._ask(request, self.operator.aperture)  # the ring has no electrical contact: nothing to check
        self.aperture_set = aperture

    def forget(self) -> None:
        """Nothing is known about the scene any more (the next need asks)."""
        self.chart_up = self.lens_on = self.aperture_set = _UNKNOWN

    # --- asking and checking -------------------------------------------------------------------------
    def _change(self, make: Callable[[int, str], OperatorRequest], act: Callable[[OperatorRequest], None],
                check: Callable[[], str], failure: str) -> None:
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            self._ask(make(attempt, problem), act)
            problem = check() if self.verify else ""
            if not problem:
                return
            self.log[-1]["problem"] = problem
        raise SetupError(f"setup: {failure} after {self.max_attempts} requests to the operator ({problem}): "
                         "put it right and run again")

    def _ask(self, request: OperatorRequest, act: Callable[[OperatorRequest], None]) -> None:
        """One request: the light off while hands are at the bench, back as it was after."""
        self.requests += 1
        self.log.append(request.to_dict())
        if self.on_request is not None:
            self.on_request(request)
        light = self.station.light
        was_on = bool(light.output())
        if was_on:
            light.set_output(False)
        try:
            act(request)
        finally:
            if was_on:
                with contextlib.suppress(DeviceError):  # a dead light is the next step's failure
                    light.set_output(True)
                    light.wait_settled()

    def _check_chart(self, chart_spec: str) -> str:
        from station.scene_check import check_chart

        result = check_chart(self.station, chart_spec)
        return "" if result.ok else result.detail

    def _check_lens(self, lens: str | None) -> str:
        from station.lens_catalog import get_lens

        info = self.station.dut.info().get("m_lens")
        if lens is None:
            return "" if not info else f"the adapter still reads a lens ({_read(info)})"
        if not isinstance(info, dict):
            return "the adapter reads no lens"
        expected = get_lens(lens).code
        if info.get("code") != expected:
            return f"the adapter reads {_read(info)}, {lens} carries code {expected}"
        return ""

    @staticmethod
    def _lens_name(lens: str | None) -> str | None:
        from station.lens_catalog import get_lens

        return None if lens is None else get_lens(lens).name

    @staticmethod
    def _f_number(lens: str | None, aperture: float | None) -> float | None:
        """``aperture`` checked against the lens's ring (None: wide open, the ring's first stop)."""
        if lens is None:
            return None
        from station.lens_catalog import get_lens

        stops = get_lens(lens).apertures
        if aperture is None:
            return float(stops[0])
        if not min(stops) - 1e-9 <= float(aperture) <= max(stops) + 1e-9:
            raise ProcedureError(f"lens {lens}: f/{aperture:g} is outside its ring f/{min(stops):g}..f/{max(stops):g}")
        return float(aperture)


class _DryScene(Scene):
    """A scene that only counts: the same rules decide when to ask, nobody is asked, nothing is checked."""

    def __init__(self) -> None:
        from station.operator.prompt import PromptOperator

        super().__init__(None, PromptOperator(ask=lambda _text: None), verify=False)  # type: ignore[arg-type]

    def _ask(self, request: OperatorRequest, act: Callable[[OperatorRequest], None]) -> None:
        self.requests += 1


def planned_requests(needs: Iterable[tuple[Any, ...]]) -> int:
    """How many times a plan asks the operator, from its scene needs in run order (a dry pass through the
    scene's own rules): ``("chart", spec)``, ``("lens", lens_or_None, aperture)``, ``("aperture", lens, f)``."""
    scene = _DryScene()
    for need in needs:
        kind, *args = need
        if kind == "chart":
            scene.chart(*args)
        elif kind == "lens":
            scene.lens(*args)
        elif kind == "aperture":
            scene.set_aperture(*args)
        else:
            raise ValueError(f"scene need {need!r}: expected chart, lens or aperture")
    return scene.requests


def _read(info: Any) -> str:
    if not isinstance(info, dict):
        return "nothing"
    return f"code {info.get('code')!r} ({info.get('id') or 'unknown lens'})"


# --- what procedures call ----------------------------------------------------------------------------

def scene_of(station: Station) -> Scene:
    """The station's scene; a ``ProcedureError`` when the station was opened without an operator."""
    scene = getattr(station, "operator", None)
    if scene is None:
        raise ProcedureError("this step needs a chart or lens change, but the station has no operator "
                             "(open it with one: station run --operator ...)")
    return scene


def require_chart(station: Station, chart: str | None, *, sensor: str | None = None) -> None:
    """``chart`` on the holder (None: leave the holder as it is)."""
    if chart is not None:
        scene_of(station).chart(chart, sensor=sensor)


def require_lens(station: Station, sensor: str, lens: str | None, aperture: float | None = None) -> None:
    """For sensor ``m``: M lens ``lens`` (None: bare) at f/``aperture``; the main sensor has its own lens."""
    if sensor != "m":
        if lens not in (None, "main"):
            raise ProcedureError(f"sensor {sensor!r} has its own lens; an M lens ({lens}) goes on sensor 'm'")
        return
    scene_of(station).lens(lens, aperture)
