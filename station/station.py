"""A station: the open drivers of one bench (or the twin), and its safe state.

``Station.open(config)`` connects every device by the config's addresses with the drivers the
config names (``driver = "..."`` in each device table, looked up in ``station.devices.registry``;
today's drivers when absent); ``safe_state()`` switches the light off and stops motion, best effort, never
raising (it runs at the end of every session, after failures and on Ctrl-C).

Where the light's power hangs on a relay of the mount controller (``[light] interlock =
"mount-aux"``), the station closes it at open (homing the mount first if it is locked in
Alarm) and the safe state's controller reset opens it: the light goes dark even when its own
link is dead. The lux meter, an independent instrument, confirms the dark; the mount's own
status reports (``?``: Idle or Alarm, feed 0, the position still) confirm the motion stopped.
When ``open`` fails half way, the devices already open are brought to the same safe state and
the exception carries what could not be confirmed (``safe_state``), so a record never lacks it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from station.config import StationConfig
from station.devices import registry
from station.devices.protocols import Dut, LightSource, LuxMeter, Mount
from station.errors import ConfigError

if TYPE_CHECKING:
    from station.scene import Scene
    from station.twin.control import TwinControl

#: Illuminance below which the chart plane counts as dark (the safe state's confirmation), lux.
DARK_LUX = 1.0
#: How long the safe state waits for the meter to read dark (the output's settling), s.
DARK_WAIT_S = 3.0


@dataclass
class Station:
    """Open devices of one station. Close it (or use ``with``) to release them."""

    config: StationConfig
    light: LightSource
    meter: LuxMeter
    mount: Mount
    dut: Dut
    twin: TwinControl | None = None  # the twin's control link when the station is the twin
    #: The scene: the one way a chart, lens or aperture changes; None: no operator.
    operator: Scene | None = None
    identities: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, config: StationConfig) -> Station:
        """Connect every device with the driver its table names (``station.devices.registry``); a device that
        fails raises ``DeviceError`` naming it, a driver that is not its kind's Protocol ``ConfigError``."""
        tables = {"light": config.light, "meter": config.meter, "mount": config.mount, "dut": config.dut}
        opened: dict[str, object] = {}
        try:
            for kind, table in tables.items():
                opened[kind] = registry.open_device(kind, table.driver, table)
            light, meter = _typed(opened, "light", LightSource), _typed(opened, "meter", LuxMeter)
            mount, dut = _typed(opened, "mount", Mount), _typed(opened, "dut", Dut)
            twin = None
            if config.twin is not None and config.twin.control:
                from station.twin.control_client import TwinControl

                twin = TwinControl(config.twin.control)
        except BaseException as exc:
            _abandon(opened, exc)
            raise
        if config.light.interlock == "mount-aux":
            try:
                if mount.state().startswith("Alarm"):
                    mount.home()  # power-up or after a hard stop: the controller locks G-code until homed
                mount.set_aux_output(True)  # close the light's power relay
            except BaseException as exc:
                _abandon(opened, exc)
                raise
        identities = {name: str(dev.identity) for name, dev in
                      (("light", light), ("meter", meter), ("mount", mount), ("dut", dut))}
        return cls(config=config, light=light, meter=meter, mount=mount, dut=dut, twin=twin,
                   identities=identities)

    def safe_state(self) -> list[str]:
        """Light off, motion stopped, the dark confirmed by the lux meter.

        Never raises; returns what could not be done or confirmed (empty: the bench is safe).
        """
        problems: list[str] = []
        self._light_off()
        try:
            self.mount.stop()  # feed hold and reset: also opens the light's interlock relay
        except Exception as exc:  # noqa: BLE001 - the safe state is best effort
            problems.append(f"motion stop: {exc}")
        still = _confirm_stopped(self.mount)
        if still:
            problems.append(still)
        dark = self._confirm_dark()
        if dark:
            problems.append(dark)
        return problems

    def _confirm_dark(self, wait_s: float = DARK_WAIT_S) -> str:
        return _confirm_dark(self.meter, wait_s)

    def _light_off(self) -> None:
        """Output off without waiting for an answer (a dead light must not hold up the safe state)."""
        with contextlib.suppress(Exception):
            self.light.safe_off()

    def close(self) -> None:
        """Close every device (best effort; the safe state is ``safe_state()``)."""
        for device in (self.dut, self.mount, self.meter, self.light, self.twin):
            if device is not None:
                with contextlib.suppress(Exception):
                    device.close()

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc: object) -> None:
        self.safe_state()
        self.close()


def _typed(opened: dict[str, object], kind: str, protocol: type) -> Any:
    """The opened device of ``kind``, checked against its Protocol (a driver missing a method is a
    ``ConfigError`` naming it, before the station is used)."""
    device = opened[kind]
    if not isinstance(device, protocol):
        missing = [m for m in _members(protocol) if not hasattr(device, m)]
        raise ConfigError(f"{kind}.driver: {type(device).__qualname__} is not a {protocol.__name__} "
                          f"(missing: {', '.join(missing)})")
    return device


def _members(protocol: type) -> list[str]:
    """The attributes and methods a Protocol asks for, its own and those of the Protocols it extends."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls is Protocol:
            break
        names |= set(vars(cls).get("__annotations__", {}))
        names |= {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}
    return sorted(names)


def _confirm_dark(meter: LuxMeter, wait_s: float = DARK_WAIT_S) -> str:
    """Wait for the meter to read dark (the light's output settles); '' or what is wrong."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lux = meter.illuminance_lux()
        except Exception as exc:  # noqa: BLE001
            return f"light off not confirmed: the lux meter: {exc}"
        if lux < DARK_LUX:
            return ""
        if time.monotonic() >= deadline:
            return f"light still on: the lux meter reads {lux:.1f} lux {wait_s:g} s after the safe state"
        time.sleep(0.05)


def _confirm_stopped(mount: Mount) -> str:
    """The mount's own status reports say the axes rest; '' or why that is not confirmed."""
    try:
        return str(mount.confirm_stopped())
    except Exception as exc:  # noqa: BLE001 - a confirmation that fails is reported, not raised
        return f"motion stop not confirmed: {exc}"


def _abandon(opened: dict[str, Any], exc: BaseException) -> None:
    """A failed ``open``: light off, motion stopped on what opened, then closed; problems on ``exc``."""
    light, meter, mount = (opened.get(kind) for kind in ("light", "meter", "mount"))
    problems: list[str] = []
    if light is not None:
        with contextlib.suppress(Exception):
            light.safe_off()
    if mount is None:
        problems.append("motion stop not confirmed: the mount did not open")
    else:
        with contextlib.suppress(Exception):
            mount.stop()
        still = _confirm_stopped(mount)
        if still:
            problems.append(still)
    if meter is None:
        problems.append("light off not confirmed: the lux meter did not open")
    else:
        dark = _confirm_dark(meter)
        if dark:
            problems.append(dark)
    for device in reversed(list(opened.values())):
        with contextlib.suppress(Exception):
            device.close()
    with contextlib.suppress(Exception):
        exc.safe_state = problems  # type: ignore[attr-defined]
