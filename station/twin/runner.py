"""Start and stop the whole twin: every device served on its own wire, on free ports.

``Twin(...).start()`` returns the ``StationConfig`` that points at it: the same kind of
config a real bench has, so everything downstream uses the real drivers.
"""

from __future__ import annotations

import contextlib
from typing import Any

from station.config import StationConfig, TwinConfig, twin_config
from station.errors import ConfigError
from station.twin.faults import all_faults, check_fault_value
from station.twin.world import World


class Twin:
    """The simulated bench: light, meter, mount, phone and the control interface."""

    def __init__(self, settings: TwinConfig | None = None, host: str = "127.0.0.1") -> None:
        self.settings = settings or TwinConfig()
        self.host = host
        from station.twin.firmware import FIRMWARE_BUILDS

        if self.settings.firmware not in FIRMWARE_BUILDS:
            raise ConfigError(f"twin firmware {self.settings.firmware!r}: unknown build; allowed: "
                              f"{', '.join(FIRMWARE_BUILDS)}")
        known = all_faults()
        for name, value in self.settings.faults.items():
            if name not in known:
                raise ConfigError(f"twin fault {name!r}: unknown; allowed: {', '.join(known)}")
            check_fault_value(name, value)
        self.world = World(seed=self.settings.seed, firmware=self.settings.firmware,
                           resolution=self.settings.resolution, time_scale=self.settings.time_scale,
                           faults=dict(self.settings.faults))
        self._servers: list[Any] = []
        self.config: StationConfig | None = None

    def start(self) -> StationConfig:
        """Serve every wire; return the station config that points at them."""
        from station.twin.control import ControlServer
        from station.twin.grbl_emulator import GrblEmulator
        from station.twin.phone_server import PhoneServer
        from station.twin.scpi_server import ScpiServer

        try:
            light = ScpiServer(self.world, "light", host=self.host).start()
            self._servers.append(light)
            meter = ScpiServer(self.world, "meter", host=self.host).start()
            self._servers.append(meter)
            mount = GrblEmulator(self.world).start()
            self._servers.append(mount)
            phone = PhoneServer(self.world, host=self.host).start()
            self._servers.append(phone)
            control = ControlServer(self.world, host=self.host).start()
            self._servers.append(control)
        except BaseException:
            self.stop()
            raise
        self.config = twin_config(light.port, meter.port, mount.port, phone.port, control.port,
                                  twin=self.settings, host=self.host)
        return self.config

    def stop(self) -> None:
        """Stop every server (idempotent)."""
        while self._servers:
            server = self._servers.pop()
            with contextlib.suppress(Exception):  # stopping must go on for the rest
                server.stop()

    def __enter__(self) -> Twin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
