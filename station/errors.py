"""Errors the station reports to a person: one line, and the exit code DESIGN 8 gives.

Exit codes: 0 pass, 1 product failed, 2 usage or config error (bad input too),
3 station fault (a device of the bench misbehaved).
"""

from __future__ import annotations


class StationError(Exception):
    """Base class: its ``str`` is the one line a user sees; ``exit_code`` is the CLI's."""

    exit_code = 2


class ConfigError(StationError):
    """A station TOML or CLI option is wrong: names the file, the key and what is allowed."""

    exit_code = 2


class InputError(StationError):
    """A file or value from outside is not what was expected (not a DNG, truncated RAW10...)."""

    exit_code = 2


class DeviceError(StationError):
    """A bench device failed (unreachable, garbage, timeout, alarm): a station fault.

    ``device`` names the device as the config does (``light``, ``mount``, ``dut``...).
    """

    exit_code = 3

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.detail = message


class ProductError(StationError):
    """The DUT itself is at fault (a product defect), not the station."""

    exit_code = 1
