"""The twin's operator stand-in: each change through the twin's control interface (``TwinControl``).

The one place outside the CLI that talks to ``station.twin.control``: it is handed the station's
``TwinControl`` and only calls its chart, lens and aperture requests.
"""

from __future__ import annotations

from typing import Any

from station.errors import DeviceError, StationError
from station.operator.protocol import OperatorRequest


class TwinOperator:
    """Does what it is asked on the twin's world, nothing else."""

    name = "twin"

    def __init__(self, control: Any) -> None:
        if control is None:
            raise DeviceError("operator", "the twin operator needs the twin's control interface")
        self.control = control

    def _do(self, what: str, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except StationError as exc:
            raise DeviceError("operator", f"twin stand-in could not {what}: {exc}") from exc

    def chart(self, request: OperatorRequest) -> None:
        # the chart at its own size (the one the plan uses): the twin's holder takes the exact spec
        self._do(f"put up {request.chart}", self.control.chart_set, request.chart_spec or request.chart)

    def lens(self, request: OperatorRequest) -> None:
        self._do(f"mount {request.lens}", self.control.lens_mount, request.lens, request.aperture)

    def aperture(self, request: OperatorRequest) -> None:
        self._do(f"set f/{request.aperture}", self.control.lens_aperture, request.aperture)

    def close(self) -> None:
        """The control connection belongs to the station: nothing to close here."""
