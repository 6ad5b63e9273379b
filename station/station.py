"""A station: the open drivers of one bench (or the twin), and its safe state.

``Station.open(config)`` connects every device by the config's addresses with the real
drivers; ``safe_state()`` switches the light off and stops motion, best effort, never
raising (it runs at the end of every session, after failures and on Ctrl-C).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from station.config import StationConfig
from station.devices.protocols import Dut, LightSource, LuxMeter, Mount


@dataclass
class Station:
    """Open devices of one station. Close it (or use ``with``) to release them."""

    config: StationConfig
    light: LightSource
    meter: LuxMeter
    mount: Mount
    dut: Dut
    twin: Any = None  # TwinControl when the station is the twin, else None
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
                from station.twin.control import TwinControl

                twin = TwinControl(config.twin.control)
        except BaseException:
            for device in reversed(opened):
                with contextlib.suppress(Exception):
                    device.close()
            raise
        identities = {name: str(getattr(dev, "identity", "")) for name, dev in
                      (("light", light), ("meter", meter), ("mount", mount), ("dut", dut))}
        return cls(config=config, light=light, meter=meter, mount=mount, dut=dut, twin=twin,
                   identities=identities)

    def safe_state(self) -> list[str]:
        """Light off, motion stopped. Never raises; returns what could not be done."""
        problems: list[str] = []
        for what, action in (("light off", self._light_off), ("motion stop", self.mount.stop)):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - the safe state is best effort
                problems.append(f"{what}: {exc}")
        return problems

    def _light_off(self) -> None:
        safe_off = getattr(self.light, "safe_off", None)
        if safe_off is not None:
            safe_off()
        else:
            self.light.set_output(False)

    def close(self) -> None:
        for device in (self.dut, self.mount, self.meter, self.light, self.twin):
            if device is not None:
                with contextlib.suppress(Exception):
                    device.close()

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc: object) -> None:
        self.safe_state()
        self.close()
