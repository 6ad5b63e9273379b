"""Figures to PNG bytes, in one place: matplotlib's object API (``matplotlib.figure.Figure``, drawn by the Agg
canvas), never pyplot, so no GUI backend is chosen, no global figure list grows and nothing needs closing
(matplotlib's "Embedding in a web application server" recipe)."""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (7.0, 5.0), dpi: float = 100,
               **subplots: Any) -> tuple[Figure, Any]:
    """A figure and its axes (``Figure.subplots``: one ``Axes`` or an array of them)."""
    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **subplots)


def figure_bytes(fig: Figure, fmt: str = "png", *, tight: bool = False) -> bytes:
    """The figure encoded as ``fmt`` (png, svg, pdf); the caller writes the bytes where it wants."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def figure_png(fig: Figure, *, tight: bool = False) -> bytes:
    """The figure as PNG bytes."""
    return figure_bytes(fig, "png", tight=tight)
