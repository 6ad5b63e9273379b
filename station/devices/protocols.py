"""The device kinds of a bench, as small Protocols (DESIGN 3).

Plans and the CLI depend on these, never on a concrete driver, so a bench may swap a
light box or mount controller by writing one driver that satisfies the Protocol and registering
it (``station.devices.registry``). Each Protocol lists everything ``Station`` and the procedures
call; ``name`` is the device as the config names it (``light``...), ``identity`` what it answered.
Units follow DESIGN 2: level in % of full scale, colour temperature in K,
illuminance in lux, mount axes in mm or degrees by their logical names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from station.frame import Frame

#: Logical mount axes and their units (DESIGN 3.2).
MOUNT_AXES: dict[str, str] = {"focus": "deg", "distance": "mm", "pan": "deg", "tilt": "deg"}


@runtime_checkable
class Device(Protocol):
    """What every device of a station has: its config name, its identity (recorded), and ``close``."""

    name: str  # as the config names it: light, meter, mount, dut
    identity: str  # what it answered at open (*IDN?, the GRBL banner, the phone's info)

    def close(self) -> None:
        """Release the link (idempotent, never raises)."""
        ...


@runtime_checkable
class LightSource(Device, Protocol):
    """A controllable light (SCPI over VISA on the bench and on the twin)."""

    def set_output(self, on: bool) -> None: ...
    def output(self) -> bool: ...
    def set_level_pct(self, level_pct: float) -> None:
        """Output level, % of full scale, checked against the box's range and read back."""
        ...

    def level_pct(self) -> float: ...
    def set_cct_k(self, cct_k: float) -> None: ...
    def cct_k(self) -> float: ...
    def wait_settled(self, timeout_s: float = 10.0) -> None:
        """Block until the output has settled after the last change (``DeviceError`` after ``timeout_s``)."""
        ...

    def safe_off(self) -> None:
        """Output off, best effort, never raises (the safe state, also when the link is dead)."""
        ...


@runtime_checkable
class LuxMeter(Device, Protocol):
    """An illuminance meter at the chart plane (same SCPI wire as the light)."""

    def illuminance_lux(self) -> float: ...
    def cct_k(self) -> float: ...


@runtime_checkable
class Mount(Device, Protocol):
    """The motorized mount: focus ring, chart rail, pan and tilt (GRBL over serial)."""

    def home(self) -> None: ...
    def move_to(self, **axes: float) -> dict[str, float]:
        """Move logical axes (``focus=12.0, distance=800``) and wait for Idle; return position."""
        ...

    def position(self) -> dict[str, float]: ...
    def state(self) -> str:
        """The controller's state: Idle, Run, Hold..., Home or Alarm."""
        ...

    def set_aux_output(self, on: bool) -> None:
        """The controller's switched output (GRBL flood, M8/M9): a bench relay, e.g. the light's power."""
        ...

    def stop(self) -> None:
        """Feed hold and soft reset: motion stops now (safe state)."""
        ...

    def confirm_stopped(self) -> str:
        """The controller's own status says the axes rest: '' , or what is not confirmed."""
        ...


@runtime_checkable
class Dut(Device, Protocol):
    """The phone's test service (JSON lines + binary payload, DESIGN 3.3)."""

    def info(self) -> dict[str, Any]: ...
    def configure(self, sensor: str, **settings: Any) -> dict[str, Any]: ...
    def capture(self, sensor: str, fmt: str, frame: str = "new") -> tuple[dict[str, Any], bytes]:
        """A capture in format ``fmt``; ``frame="last"`` gives the sensor's last frame again."""
        ...

    def capture_frame(self, sensor: str, frame: str = "new") -> Frame:
        """A RAW10 capture as a ``station.frame.Frame``."""
        ...

    def histogram_reply(self, sensor: str, source: str) -> dict[str, Any]: ...
    def histogram(self, sensor: str, source: str) -> list[int]: ...
    def calibration_read(self) -> dict[str, Any]: ...
    def calibration_write(self, blob: dict[str, Any]) -> dict[str, Any]: ...
