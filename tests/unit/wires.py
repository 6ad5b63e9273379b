"""Plain helpers of the device tests (the fixtures built on them are in ``conftest.py``)."""

from __future__ import annotations

from station.twin.world import World


def resource(port: int) -> str:
    """The VISA resource of a SCPI server on this machine's ``port``."""
    return f"TCPIP0::127.0.0.1::{port}::SOCKET"


def lit_world(seed: int = 11, level_pct: float = 50.0, distance_mm: float = 700.0) -> World:
    """A settled CI-resolution world, the light at ``level_pct``, the chart (flat) ``distance_mm`` away."""
    world = World(seed=seed, time_scale=0.001, resolution="ci")
    world.light.settle_s = 0.0
    world.set_light(output=True, level_pct=level_pct)
    world.axes[world.axis_map["distance"]] = distance_mm
    return world
