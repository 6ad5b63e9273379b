"""Preview frames of a focus sweep for the peaking calibration: each frame's luma worked out on the analysis pool
(``station.pipeline``: its PNG decoded and converted there) while the next focus position is moved to and
captured, and handed there to a ``calibration.peaking_sweep.PeakingSweep`` (which keeps the sharpest frame and
spills the rest), so a 50 MP sweep holds a bounded number of frames; and a few previews at one setting (flat
fields) the same way. Luma is the camera app's (DESIGN 7, Rec. 709 weights, ``calibration.zebra.preview_luma``)."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.peaking_sweep import PeakingSweep
from station.pipeline import Pending, Pipeline, analysis_pool
from station.procedures.captures import FocusAxis, capture_shot
from station.procedures.preview_luma import shot_luma

if TYPE_CHECKING:
    from station.station import Station


class PreviewSweep:
    """Preview frames of a focus sweep, by position, fed to ``frames`` (a ``PeakingSweep``) as they arrive; each
    frame's luma is worked out on the analysis pool while the next position is moved to and captured."""

    def __init__(self, station: Station, axis: FocusAxis, frames: PeakingSweep) -> None:
        self.station, self.axis, self.frames = station, axis, frames
        self.taken: set[float] = set()
        self.truth: dict[float, float | None] = {}

    def take(self, position: float) -> tuple[float, np.ndarray]:
        (taken,) = self.take_all([position])
        return taken  # type: ignore[return-value]

    def take_all(self, positions: list[float], *, luma: bool = True) -> list[tuple[float, np.ndarray | None]]:
        """Each of ``positions`` (clamped, rounded) and its preview luma (None unless ``luma``), in order; new ones
        captured in order. Only the lumas returned are held here: a fine sweep (``luma=False``) holds none."""
        rounded = [round(self.axis.clamp(p), 4) for p in positions]
        pool = analysis_pool(self.station)
        pending = {}
        for position in rounded:
            if position not in self.taken and position not in pending:
                pending[position] = self._capture(pool, position, luma)
        fresh = {position: job.result() for position, job in pending.items()}
        self.taken.update(fresh)
        if not luma:
            return [(p, None) for p in rounded]
        return [(p, fresh[p] if p in fresh else self.frames.luma(p)) for p in rounded]

    def _capture(self, pool: Pipeline, position: float, luma: bool) -> Pending[np.ndarray | None]:
        """Move to ``position``, capture a preview, submit its analysis (the shot is held by the job alone, so
        its decoded preview goes when the job is done)."""
        self.axis.move(self.station, position)
        shot = capture_shot(self.station, self.axis.sensor, ("preview",))
        focus = (shot.truth or {}).get("focus") or {}
        self.truth[position] = focus.get("blur_circle_px")
        return pool.submit(f"peaking sweep: preview at {position:g} {self.axis.unit}", _sweep_frame, shot,
                           self.frames, position, luma)

    def near(self, position: float, tolerance: float) -> bool:
        return any(abs(p - position) <= tolerance for p in self.taken)


def _sweep_frame(shot: Any, frames: PeakingSweep, position: float, keep: bool) -> np.ndarray | None:
    """A sweep preview's luma (its PNG decoded here) into ``frames``; the luma back only when ``keep``."""
    luma = shot_luma(shot)
    frames.add_frame(position, luma)
    return luma if keep else None


def preview_lumas(station: Station, sensor: str, count: int) -> list[np.ndarray]:
    """``count`` previews at the present settings, as luma: each decoded behind the next capture."""
    pool = analysis_pool(station)
    jobs = [pool.submit(f"{sensor}: flat-field preview {i + 1}", shot_luma,
                        capture_shot(station, sensor, ("preview",))) for i in range(count)]
    return [job.result() for job in jobs]


def spilled(lumas: list[np.ndarray]) -> list[np.ndarray]:
    """Each luma written to a temporary file and memory-mapped back read-only (the file unlinked at once: the
    mapping keeps it until the array goes), so a frame kept for a later test (the peaking calibration's flats,
    50 MB at 50 MP) is in the page cache, not in the station's memory, while other tests run."""
    out = []
    for luma in lumas:
        array = np.ascontiguousarray(luma)
        handle, path = tempfile.mkstemp(prefix="m-station-luma-", suffix=".u8")
        try:
            with os.fdopen(handle, "wb") as f:
                array.tofile(f)
            out.append(np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape))
        finally:
            os.unlink(path)
    return out

