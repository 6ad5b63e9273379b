"""The operator interface: a chart on the holder, an M lens on the adapter, its aperture ring (DESIGN 3.4).

Every physical change a plan needs that the station cannot make itself goes through one ``Operator``;
``station.scene.Scene`` decides when a change is needed, asks, and verifies. An operator that cannot do what
it is asked raises ``DeviceError("operator", ...)``: a station fault naming the operator.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from station.errors import ConfigError

ACTIONS = ("chart", "lens", "aperture")
KINDS = ("prompt", "twin", "tcp")
_TCP_RE = re.compile(r"^tcp://(?P<host>[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:]{2,39}\]):(?P<port>[0-9]{1,5})$")


@dataclass(frozen=True)
class OperatorRequest:
    """One change asked of the operator: step ``step`` of about ``total`` (the plan's estimate, 0: unknown)."""

    action: str  # chart | lens | aperture
    step: int
    total: int = 0
    sensor: str | None = None  # the sensor about to measure
    chart: str | None = None  # the chart's name as ``station chart list`` prints it
    chart_spec: str | None = None  # the exact chart the plan uses (a ChArUco spec carries its board)
    chart_title: str | None = None  # its human description
    size_mm: tuple[float, float] | None = None  # the chart's size
    lens: str | None = None  # lens id (None with action "lens": take the lens off)
    lens_name: str | None = None
    aperture: float | None = None  # f-number (None: wide open)
    attempt: int = 1  # 2, 3 ...: asked again after the check found the scene wrong
    problem: str = ""  # what the check found wrong on the last attempt

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"operator request action {self.action!r}; allowed: {', '.join(ACTIONS)}")

    def text(self) -> str:
        """What a person is asked to do, in one line."""
        if self.action == "chart":
            size = f" ({self.size_mm[0]:g} x {self.size_mm[1]:g} mm)" if self.size_mm else ""
            what = f"put the {self.chart} chart{size} on the chart holder"
            if self.chart_title:
                what += f" [{self.chart_title}]"
        elif self.action == "lens" and self.lens is None:
            what = "take the M lens off the adapter (bare M sensor)"
        elif self.action == "lens":
            ring = f"aperture ring at f/{self.aperture:g}" if self.aperture else "aperture ring wide open"
            what = f"mount the M lens {self.lens_name or self.lens}, {ring}"
        else:
            what = f"turn the aperture ring of {self.lens_name or self.lens} to f/{self.aperture:g}"
        step = f"step {self.step} of {self.total}" if self.total >= self.step else f"step {self.step}"
        sensor = f", sensor {self.sensor}" if self.sensor else ""
        again = f" (again: {self.problem})" if self.attempt > 1 and self.problem else ""
        return f"{step}{sensor}: {what}{again}"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Operator(Protocol):
    """Makes one physical change per call and returns once it is done."""

    name: str

    def chart(self, request: OperatorRequest) -> None: ...

    def lens(self, request: OperatorRequest) -> None: ...

    def aperture(self, request: OperatorRequest) -> None: ...

    def close(self) -> None: ...


def parse_operator(text: str | None, *, on_twin: bool) -> tuple[str, str | None, int | None]:
    """``(kind, host, port)`` of an ``--operator`` value: ``prompt``, ``twin`` or ``tcp://HOST:PORT``;
    ``None`` gives the default (``twin`` on the twin, ``prompt`` on a bench). ``ConfigError`` otherwise."""
    if text is None:
        return ("twin" if on_twin else "prompt"), None, None
    if text in ("prompt", "twin"):
        if text == "twin" and not on_twin:
            raise ConfigError("--operator twin: this station has no twin control interface ([twin] control in "
                              "the station TOML); use prompt or tcp://HOST:PORT")
        return text, None, None
    match = _TCP_RE.match(text)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ConfigError(f"--operator {text!r}: expected prompt, twin or tcp://HOST:PORT (port 1..65535)")
    return "tcp", match["host"].strip("[]"), int(match["port"])


def open_operator(text: str | None, station: Any, *, ask: Any = None) -> Operator:
    """The operator ``--operator`` names, for ``station`` (its twin control for ``twin``)."""
    kind, host, port = parse_operator(text, on_twin=station.twin is not None)
    if kind == "twin":
        from station.operator.twin import TwinOperator

        return TwinOperator(station.twin)
    if kind == "tcp":
        from station.operator.tcp import TcpOperator

        assert host is not None and port is not None
        return TcpOperator(host, port)
    from station.operator.prompt import PromptOperator

    return PromptOperator(ask=ask)
