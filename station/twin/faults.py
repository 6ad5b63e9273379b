"""The twin's injectable faults: one registry across its devices, and ``NAME[=VALUE]`` parsing.

Each device module of the twin declares its faults in a ``*_FAULTS`` dict (name ->
description). Firmware regressions are faults too (switch one on over any build), besides
being carried by the named builds of ``station twin firmware``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from station.errors import ConfigError

#: Modules of the twin that declare faults, and the dict holding them.
_SOURCES = (("station.twin.scpi_server", "LIGHT_FAULTS"), ("station.twin.grbl_emulator", "MOUNT_FAULTS"),
            ("station.twin.phone_server", "PHONE_FAULTS"), ("station.twin.firmware", "FIRMWARE_FAULTS"),
            ("station.twin.line", "LINE_FAULTS"))
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def all_faults() -> dict[str, str]:
    """Every fault the twin can inject: name -> what it does."""
    faults: dict[str, str] = {}
    for module_name, attr in _SOURCES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        faults.update(getattr(module, attr, {}))
    return dict(sorted(faults.items()))


def parse_value(text: str) -> Any:
    """``true``/``false``, an int, a float, or the text itself."""
    low = text.lower()
    if low in ("true", "on", "yes"):
        return True
    if low in ("false", "off", "no"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_fault_value(name: str, value: Any, where: str = "twin fault") -> None:
    """Refuse a value the device could not use (before the twin starts, not at the first capture)."""
    try:
        if name in _module_faults("station.twin.firmware", "FIRMWARE_FAULTS"):
            from station.twin.firmware import build_for

            build_for("golden", {name: value})
        elif name in _module_faults("station.twin.phone_server", "PHONE_FAULTS"):
            from station.twin.phone_server import fault_period

            fault_period(value)
        elif name.endswith("_flaky"):
            from station.twin.scpi_server import flaky_period

            if flaky_period(value) is None:
                raise ValueError("expected true or a whole number K >= 1 (one reply in K dropped)")
        elif not isinstance(value, (bool, int, float)) or isinstance(value, float) and value != value:
            raise ValueError(f"expected true/false or a number, got {value!r}")
    except ValueError as exc:
        raise ConfigError(f"{where} {name}={value!r}: {exc}") from None


def _module_faults(module_name: str, attr: str) -> dict[str, str]:
    try:
        return getattr(importlib.import_module(module_name), attr, {})
    except ModuleNotFoundError:
        return {}


def parse_fault_args(items: list[str] | None, where: str = "--twin-fault") -> dict[str, Any]:
    """Parse repeated ``NAME[=VALUE]`` options into a dict, checking each name is a known fault."""
    known = all_faults()
    faults: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not _NAME_RE.match(name) or name not in known:
            allowed = ", ".join(known) or "(none)"
            raise ConfigError(f"{where} {item!r}: unknown fault {name!r}; allowed: {allowed}")
        faults[name] = parse_value(value.strip()) if sep else True
        check_fault_value(name, faults[name], where)
    return faults
