"""``calibration.peaking.calibrate_peaking`` fed one frame at a time, in bounded memory (issue 13: a 50 MP sweep).

The batch function needs every frame at once because the chart's edges come from the sharpest frame, known
only when the sweep is over. ``PeakingSweep`` takes each frame as it arrives (from any thread): it works out
the frame's sharpness (mean P^2, from the histogram of P: exact, the squares are integers) and keeps the
sharpest frame so far in memory; every other frame goes to a raw spill file in a private temporary folder
(page cache, not the process's memory). A flat field is reduced at once to its flag-rate curve. ``calibrate()``
then runs the batch method's steps with one spilled frame loaded at a time, so at most two frames live at
once, and gives the very same ``PeakingCalibration`` as ``calibrate_peaking`` on the frames ordered by focus
position (the tests say so, bit for bit).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from calibration.peaking import (
    DEFAULT_COC_PX,
    PeakingCalibration,
    choose_threshold,
    focus_state,
    histogram,
    response_counts,
    response_histogram,
)
from calibration.peaking_edges import MIN_PROFILES, PeakingCalibrationError, chart_edges, lsf_variance
from calibration.preview import preview_luma


def sharpness(response: np.ndarray) -> float:
    """Mean P^2 of a peaking response, from its histogram (equal to ``np.mean(np.square(P, float64))``: every
    partial sum is an integer below 2^53, so both are the exact sum divided once by the pixel count)."""
    return mean_square(histogram(response), response.size)


def mean_square(hist: np.ndarray, size: int) -> float:
    """Mean P^2 from the histogram of P over ``size`` pixels (the exact sum of squares, divided once)."""
    values = np.arange(hist.size, dtype=np.int64)
    return float(int(hist @ (values * values))) / size


class PeakingSweep:
    """A focus sweep for ``calibrate_peaking``, frame by frame: ``add_frame`` and ``add_flat`` (thread-safe),
    then ``calibrate()``; ``close()`` (or ``with``) deletes the spill folder."""

    def __init__(self, coc_px: float = DEFAULT_COC_PX, *, tone: str = "srgb") -> None:
        if not coc_px > 0:
            raise ValueError(f"coc_px {coc_px!r}: expected a positive number of pixels")
        self.coc_px, self.tone = float(coc_px), tone
        self._dir = tempfile.TemporaryDirectory(prefix="peaking-sweep-")
        self._lock = threading.Lock()
        self._frames: list[tuple[float, float, Path]] = []  # position, sharpness, spill file
        self._shape: tuple[int, ...] | None = None
        self._best: tuple[float, float, np.ndarray] | None = None  # sharpness, position, luma
        self._flat_rate: np.ndarray | None = None
        self._flat_shapes: list[tuple[int, ...]] = []

    def __enter__(self) -> PeakingSweep:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._best = None
        self._dir.cleanup()

    @property
    def positions(self) -> list[float]:
        with self._lock:
            return [p for p, _, _ in self._frames]

    def add_frame(self, position: float, image: np.ndarray) -> float:
        """Take the frame at focus ``position`` (8-bit luma or the RGB preview); returns its sharpness."""
        luma = preview_luma(image)
        value = mean_square(response_histogram(luma), luma.size)  # band by band: no 100 MB response frame
        with self._lock:
            if self._shape is not None and luma.shape != self._shape:
                raise PeakingCalibrationError(f"frame at focus {position:g} is {luma.shape}, expected {self._shape}")
            index = len(self._frames)
            path = Path(self._dir.name) / f"frame{index}.u8"
            self._frames.append((float(position), value, path))
            self._shape = self._shape or luma.shape
            # the batch picks the first maximum by position: on a tie the smaller position wins
            if self._best is None or (value, -position) > (self._best[0], -self._best[1]):
                self._best = (value, float(position), luma)
        np.ascontiguousarray(luma).tofile(path)
        return value

    def luma(self, position: float) -> np.ndarray:
        """The luma of the frame taken at ``position`` (read back from its spill file)."""
        with self._lock:
            found = [(path, self._shape) for p, _, path in self._frames if p == position]
        if not found:
            raise KeyError(f"no frame at focus {position:g}")
        path, shape = found[0]
        return np.fromfile(path, dtype=np.uint8).reshape(shape)  # type: ignore[arg-type]

    def add_flat(self, image: np.ndarray) -> None:
        """Take a flat field at the sweep's gain: reduced at once to its flag rate at every threshold."""
        flat = preview_luma(image)
        rate = response_counts(flat) / flat.size
        with self._lock:
            self._flat_shapes.append(flat.shape)
            self._flat_rate = rate if self._flat_rate is None else np.maximum(self._flat_rate, rate)

    def calibrate(self) -> PeakingCalibration:
        """``calibrate_peaking`` of the frames taken (ordered by focus position) and the flats."""
        with self._lock:
            frames = sorted(self._frames, key=lambda f: f[0])
            best, flat_rate, flat_shapes, shape = self._best, self._flat_rate, list(self._flat_shapes), self._shape
        if len(frames) < 2:
            raise PeakingCalibrationError(f"a focus sweep needs two or more frames, got {len(frames)}")
        if flat_rate is None:
            raise PeakingCalibrationError("no flat-field frames: the threshold must be checked against noise")
        assert best is not None
        focus = np.array([p for p, _, _ in frames])
        reach = max(8.0, 4.0 * self.coc_px)
        edges = chart_edges(best[2], tone=self.tone, reach_px=reach)
        if len(edges.points) < MIN_PROFILES:
            raise PeakingCalibrationError(f"only {len(edges.points)} clean edge profiles in the sharpest frame (focus "
                                          f"{best[1]:g}); need {MIN_PROFILES} edges with one boundary within "
                                          f"{reach:g} px")
        edge_mask, edges = edges.edge_mask, edges.profiles_only()  # the binary map goes
        n_edges = int(edge_mask.sum())
        variance, coverage = [], []
        for position, _, path in frames:
            luma = best[2] if position == best[1] else np.fromfile(path, dtype=np.uint8).reshape(shape)  # type: ignore[arg-type]
            variance.append(lsf_variance(luma, edges, tone=self.tone, reach_px=reach))
            coverage.append(response_counts(luma, edge_mask) / n_edges)
        variance_px2 = np.array(variance)
        state = focus_state(focus, variance_px2, self.coc_px)
        for flat_shape in flat_shapes:
            if flat_shape != shape:
                raise PeakingCalibrationError(f"flat frame is {flat_shape}, the sweep's frames {shape}")
        return choose_threshold(focus, variance_px2, state, np.array(coverage), flat_rate, edge_mask, self.coc_px)


def calibrate_sweep(frames: list[tuple[float, Any]], flats: list[Any], coc_px: float = DEFAULT_COC_PX, *,
                    tone: str = "srgb") -> PeakingCalibration:
    """``PeakingSweep`` over ready frames (the incremental path end to end, for tests and tools)."""
    with PeakingSweep(coc_px, tone=tone) as sweep:
        for position, image in frames:
            sweep.add_frame(position, image)
        for flat in flats:
            sweep.add_flat(flat)
        return sweep.calibrate()
