"""The charts as the twin renders them (``targets.registry``): definitions, mean and uniform reflectance,
and every chart's shapes as flat polygon arrays (cached per chart and size)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from station.errors import ConfigError


@lru_cache(maxsize=16)
def chart_definition(name: str, size: tuple[float, float] | None) -> Any:
    from targets.registry import get_chart

    try:
        return get_chart(name) if size is None else get_chart(name, *size)
    except ValueError as exc:
        raise ConfigError(f"twin chart holder: {exc}") from None


@lru_cache(maxsize=16)
def mean_reflectance(name: str, size: tuple[float, float] | None) -> tuple[float, float, float]:
    chart = chart_definition(name, size)
    ppm = 512.0 / max(chart.width_mm, chart.height_mm)
    raster = chart.raster(0.0, 0.0, ppm, int(chart.width_mm * ppm), int(chart.height_mm * ppm))
    return tuple(float(v) for v in raster.reshape(-1, 3).mean(axis=0))


def uniform_reflectance(chart: Any) -> np.ndarray | None:
    """The reflectance if the chart is uniform over the whole view (the flat diffuser), else None."""
    if all(np.allclose(s.reflectance, chart.background) for s in chart.shapes):
        return np.asarray(chart.background, dtype=np.float64)
    return None


@dataclass(frozen=True)
class ChartPolygons:
    """A chart's shapes as flat arrays: vertices (N,2) mm, per shape start/count, step and orientation."""

    vertices: np.ndarray
    start: np.ndarray
    count: np.ndarray
    delta: np.ndarray  # (S,3) reflectance step each shape paints over what lies under it
    orientation: np.ndarray  # (S,) sign of the shoelace area in chart coordinates
    background: np.ndarray  # (3,) the holder around the chart
    size_mm: tuple[float, float]


@lru_cache(maxsize=16)
def chart_polygons(name: str, size: tuple[float, float] | None = None) -> ChartPolygons:
    """The flat polygon arrays of chart ``name`` (``targets.registry``), cached."""
    chart = chart_definition(name, size)
    shapes = chart.shapes
    polys = [np.asarray(shape.polygon, dtype=np.float64).reshape(-1, 2) for shape in shapes]
    count = np.array([len(p) for p in polys], dtype=np.int64)
    start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    vertices = np.concatenate(polys) if polys else np.zeros((0, 2))
    x, y = vertices[:, 0], vertices[:, 1]
    nxt = next_in_polygon(start, count)
    cross = x * y[nxt] - x[nxt] * y
    area = np.add.reduceat(cross, start) if len(polys) else np.zeros(0)
    delta = np.array([shape.reflectance - shape.under for shape in shapes], dtype=np.float64).reshape(-1, 3)
    return ChartPolygons(vertices, start, count, delta, np.sign(area), np.asarray(chart.background, np.float64),
                         (float(chart.width_mm), float(chart.height_mm)))


def next_in_polygon(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Index of each vertex's successor, cyclic within its polygon (polygons stored contiguously)."""
    n = int(count.sum())
    nxt = np.arange(1, n + 1)
    nxt[start + count - 1] = start
    return nxt
