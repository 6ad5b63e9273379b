"""The driver registry: which class opens each device kind, by the config's ``driver = "..."``.

As labgrid's ``target_factory``: each driver module registers its class with ``@register(kind,
name)``; ``Station.open`` asks ``driver_class(kind, name)`` for the class the config names and
calls it as ``cls(config_table, name=kind)``. A new light box is then a driver file under
``station/devices/`` (found and imported here) and one line in the station file. Plugins outside
the package register the same way before the config is read.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

from station.errors import ConfigError

#: The device tables of a station file, each with its drivers.
KINDS = ("light", "meter", "mount", "dut")
#: The driver each kind gets when its table has no ``driver`` key (the bench's drivers of today).
DEFAULTS: dict[str, str] = {"light": "scpi", "meter": "scpi", "mount": "grbl", "dut": "phone"}
#: Driver names: lower-case letters, digits and '-' (they appear in config files and errors).
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")

_DRIVERS: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}
_discovered = False

T = TypeVar("T", bound=type)


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: the driver ``name`` of device ``kind`` (one name, one class)."""
    if kind not in _DRIVERS:
        raise ValueError(f"unknown device kind {kind!r}; kinds: {', '.join(KINDS)}")
    if not name or not set(name) <= _NAME_CHARS:
        raise ValueError(f"driver name {name!r}: lower-case letters, digits and '-' only")

    def add(cls: T) -> T:
        known = _DRIVERS[kind].get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"{kind} driver {name!r} is already {known.__module__}.{known.__qualname__}")
        _DRIVERS[kind][name] = cls
        return cls

    return add


def unregister(kind: str, name: str) -> None:
    """Forget a driver (a test's or a plugin's)."""
    _DRIVERS[kind].pop(name, None)


def _discover() -> None:
    """Import every module of ``station.devices`` once, so that their ``@register`` lines have run."""
    global _discovered
    if _discovered:
        return
    import station.devices as package

    for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
    _discovered = True


def names(kind: str) -> tuple[str, ...]:
    """The registered driver names of a device kind, sorted."""
    _discover()
    return tuple(sorted(_DRIVERS[kind]))


def driver_class(kind: str, name: str) -> type:
    """The class registered as ``name`` for ``kind``; ``ConfigError`` listing the names otherwise."""
    if kind not in _DRIVERS:
        raise ConfigError(f"unknown device kind {kind!r}; kinds: {', '.join(KINDS)}")
    _discover()
    try:
        return _DRIVERS[kind][name]
    except (KeyError, TypeError):
        raise ConfigError(f"{kind}.driver: unknown driver {name!r}; registered {kind} drivers: "
                          f"{', '.join(names(kind))}") from None


def check_name(kind: str, name: str) -> str:
    """For the config model: ``name`` if registered for ``kind``, else ``ValueError`` listing the names.

    A kind's default passes without importing the drivers (reading a config stays cheap)."""
    if name == DEFAULTS.get(kind):
        return name
    _discover()
    if name not in _DRIVERS[kind]:
        raise ValueError(f"driver {name!r} is not a registered {kind} driver (registered: {', '.join(names(kind))})")
    return name


def open_device(kind: str, name: str, config: Any) -> Any:
    """Open the ``kind`` device with the driver ``name`` and its config table."""
    return driver_class(kind, name)(config, name=kind)
