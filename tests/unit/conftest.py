"""Fixtures shared by the device tests: the twin's SCPI and phone servers on a module's ``world``, and the
drivers opened on them. A test module defines ``world`` (its seed and time scale); these build on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from station.config import DutConfig, InstrumentConfig
from station.devices.light import ScpiLight
from station.devices.lux_meter import ScpiLuxMeter
from station.devices.phone import PhoneClient
from station.twin.phone_server import PhoneServer
from station.twin.scpi_server import ScpiServer
from station.twin.world import World
from tests.unit.wires import resource


def _serve(world: World, device: str) -> Iterator[ScpiServer]:
    server = ScpiServer(world, device).start()
    yield server
    server.stop()


@pytest.fixture
def light_server(world: World) -> Iterator[ScpiServer]:
    """The twin's SCPI light on a free port."""
    yield from _serve(world, "light")


@pytest.fixture
def meter_server(world: World) -> Iterator[ScpiServer]:
    """The twin's SCPI lux meter on a free port."""
    yield from _serve(world, "meter")


def _opener(driver: Callable[[InstrumentConfig], Any]) -> Iterator[Callable[..., Any]]:
    opened: list[Any] = []

    def open_on(port: int, **config: Any) -> Any:
        device = driver(InstrumentConfig(resource(port), **config))
        opened.append(device)
        return device

    yield open_on
    for device in opened:
        device.close()


@pytest.fixture
def open_light() -> Iterator[Callable[..., ScpiLight]]:
    """``open_light(port, **InstrumentConfig keys)``: a ``ScpiLight`` on that port, closed after the test."""
    yield from _opener(ScpiLight)


@pytest.fixture
def open_meter() -> Iterator[Callable[..., ScpiLuxMeter]]:
    """``open_meter(port, **InstrumentConfig keys)``: a ``ScpiLuxMeter`` on that port, closed after the test."""
    yield from _opener(ScpiLuxMeter)


@pytest.fixture
def light(light_server: ScpiServer, open_light: Callable[..., ScpiLight]) -> ScpiLight:
    return open_light(light_server.port, timeout_s=0.5)


@pytest.fixture
def meter(meter_server: ScpiServer, open_meter: Callable[..., ScpiLuxMeter]) -> ScpiLuxMeter:
    return open_meter(meter_server.port, timeout_s=0.5)


@pytest.fixture
def phone_server(world: World) -> Iterator[PhoneServer]:
    """The twin's phone service on a free port."""
    with PhoneServer(world) as phone:
        yield phone


@pytest.fixture
def phone_client(phone_server: PhoneServer) -> Iterator[PhoneClient]:
    """The station's phone driver connected to ``phone_server``."""
    client = PhoneClient(DutConfig(host="127.0.0.1", port=phone_server.port))
    try:
        yield client
    finally:
        client.close()
