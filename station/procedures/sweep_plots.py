"""The end of a sweep plot, shared by the zebra and peaking calibrations: an optional right-hand axis with one
series and its thresholds, the title and legend, PNG bytes (matplotlib's object API, ``calibration.figures``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RightAxis:
    """A second y axis: one series (``fmt`` as matplotlib's, markers 3 pt) and horizontal lines across it."""

    x: Sequence[float]
    y: Sequence[float]
    fmt: str
    colour: str
    label: str
    ylabel: str
    lines: tuple[tuple[float, dict[str, Any]], ...] = ()


def twin_axis_png(fig: Any, ax: Any, title: str, *, right: RightAxis | None, title_size: float,
                  legend_loc: str) -> bytes:
    """Draw ``right`` (if any) on a twin of ``ax``, title and legend ``ax``; the figure as PNG bytes."""
    from calibration.figures import figure_png

    if right is not None:
        axis = ax.twinx()
        axis.plot(right.x, right.y, right.fmt, ms=3, color=right.colour, label=right.label)
        for y, style in right.lines:
            axis.axhline(y, **style)
        axis.set_ylabel(right.ylabel)
    ax.set_title(title, fontsize=title_size)
    ax.legend(fontsize=7, loc=legend_loc)
    return figure_png(fig, tight=True)
