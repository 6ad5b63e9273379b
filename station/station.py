"""A station: the open drivers of one bench (or the twin), and its safe state.

``Station.open(config)`` connects every device by the config's addresses with the real
drivers; ``safe_state()`` switches the light off and stops motion, best effort, never
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
from typing import Any

from station.config import StationConfig
from station.devices.protocols import Dut, LightSource, LuxMeter, Mount

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
    twin: Any = None  # TwinControl when the station is the twin, else None
    #: The scene (``station.scene.Scene``): the one way a chart, lens or aperture changes; None: no operator.
    operator: Any = None
    identities: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, config: StationConfig) -> Station:
        """Connect every device; a device that fails raises ``DeviceError`` naming it."""
        from station.devices.grbl_mount import GrblMount
        from station.devices.light import ScpiLight
        from station.devices.lux_meter import ScpiLuxMeter
        from station.devices.phone import PhoneClient

        opened: list[Any] = []
        try:
            light = ScpiLight(config.light, name="light")
            opened.append(light)
            meter = ScpiLuxMeter(config.meter, name="meter")
            opened.append(meter)
            mount = GrblMount(config.mount, name="mount")
            opened.append(mount)
            dut = PhoneClient(config.dut, name="dut")
            opened.append(dut)
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
        identities = {name: str(getattr(dev, "identity", "")) for name, dev in
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
        safe_off = getattr(self.light, "safe_off", None)
        if safe_off is not None:
            safe_off()
        else:
            with contextlib.suppress(Exception):
                self.light.set_output(False)

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


def _confirm_dark(meter: Any, wait_s: float = DARK_WAIT_S) -> str:
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


def _confirm_stopped(mount: Any) -> str:
    """The mount's own status reports say the axes rest; '' or why that is not confirmed."""
    confirm = getattr(mount, "confirm_stopped", None)
    if confirm is None:
        return "motion stop not confirmed: the mount driver cannot read its status"
    try:
        return str(confirm())
    except Exception as exc:  # noqa: BLE001 - a confirmation that fails is reported, not raised
        return f"motion stop not confirmed: {exc}"


def _abandon(opened: list[Any], exc: BaseException) -> None:
    """A failed ``open``: light off, motion stopped on what opened, then closed; problems on ``exc``."""
    from station.devices.grbl_mount import GrblMount
    from station.devices.light import ScpiLight
    from station.devices.lux_meter import ScpiLuxMeter

    by_kind = {kind: next((d for d in opened if isinstance(d, kind)), None)
               for kind in (ScpiLight, ScpiLuxMeter, GrblMount)}
    light, meter, mount = by_kind[ScpiLight], by_kind[ScpiLuxMeter], by_kind[GrblMount]
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
    for device in reversed(opened):
        with contextlib.suppress(Exception):
            device.close()
    with contextlib.suppress(Exception):
        exc.safe_state = problems  # type: ignore[attr-defined]
