"""Preview frames of a focus sweep for the peaking calibration: each frame's luma worked out on the analysis pool
(``station.pipeline``: its PNG decoded and converted there) while the next focus position is moved to and
captured; and a few previews at one setting (flat fields) the same way. Luma is the camera app's (DESIGN 7,
Rec. 709 weights, ``calibration.zebra.preview_luma``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.zebra import preview_luma
from station.pipeline import analysis_pool
from station.procedures.captures import FocusAxis, capture_shot

if TYPE_CHECKING:
    from station.station import Station


class PreviewSweep:
    """Preview frames of a focus sweep, by position (the luma kept, the rest dropped); each frame's luma is
    worked out on the analysis pool while the next position is moved to and captured."""

    def __init__(self, station: Station, axis: FocusAxis) -> None:
        self.station, self.axis = station, axis
        self.luma: dict[float, np.ndarray] = {}
        self.truth: dict[float, float | None] = {}

    def take(self, position: float) -> tuple[float, np.ndarray]:
        (taken,) = self.take_all([position])
        return taken

    def take_all(self, positions: list[float]) -> list[tuple[float, np.ndarray]]:
        """Each of ``positions`` (clamped, rounded) and its preview luma, in order; new ones captured in order."""
        rounded = [round(self.axis.clamp(p), 4) for p in positions]
        pool = analysis_pool(self.station)
        pending = {}
        for position in rounded:
            if position not in self.luma and position not in pending:
                self.axis.move(self.station, position)
                shot = capture_shot(self.station, self.axis.sensor, ("preview",))
                focus = (shot.truth or {}).get("focus") or {}
                self.truth[position] = focus.get("blur_circle_px")
                pending[position] = pool.submit(f"peaking sweep: preview at {position:g} {self.axis.unit}",
                                                _shot_luma, shot)
        for position, job in pending.items():
            self.luma[position] = job.result()
        return [(p, self.luma[p]) for p in rounded]

    def near(self, position: float, tolerance: float) -> bool:
        return any(abs(p - position) <= tolerance for p in self.luma)


def _shot_luma(shot: Any) -> np.ndarray:
    """The preview luma of a shot (its PNG decoded here)."""
    return preview_luma(shot.preview)


def preview_lumas(station: Station, sensor: str, count: int) -> list[np.ndarray]:
    """``count`` previews at the present settings, as luma: each decoded behind the next capture."""
    pool = analysis_pool(station)
    jobs = [pool.submit(f"{sensor}: flat-field preview {i + 1}", _shot_luma,
                        capture_shot(station, sensor, ("preview",))) for i in range(count)]
    return [job.result() for job in jobs]
