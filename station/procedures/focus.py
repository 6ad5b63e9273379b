"""The M adapter's flange back-focus error and tilt, from a through-focus sweep of the slanted-edge chart.

The M lens focuses by unit extension on a helicoid: its datasheet gives the extension beyond infinity focus at
each ring angle (linear, ``close_extension * ring / throw``). For a chart at ``s`` the thin lens wants the
sensor at ``v = f s / (s - f)`` behind the lens; the adapter puts it at ``f + extension + back_focus`` and, if
it is tilted, a little further at one side of the frame than at the other (``+ tau_y X - tau_x Y`` at sensor
position (X, Y) mm from the centre, OpenCV's tilted-sensor angles ``tauX``, ``tauY``, small-angle).

The sweep: the chart filling the frame, the ring stepped about the datasheet's angle for the distance by
``BLUR_STEP_PX`` of defocus blur a step (``N * pitch`` of extension per pixel of blur). Every edge's MTF50
(``station.procedures.sfr``) at every step; its line spread variance grows with the square of the defocus, so
``1 / MTF50^2`` against the ring angle is a parabola whose vertex is where that edge is in focus (the same fit
as ``calibration.peaking.fit_focus``). The vertices' extensions over the field, fitted with a plane
``a + b X + c Y``, give ``back_focus = v - f - a``, ``tau_y = b``, ``tau_x = -c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.focus_fit import fit_plane, parabola_vertex
from station.measurements import Declared, measures
from station.pipeline import Pending, analysis_pool
from station.procedures import SweepError
from station.procedures.captures import auto_exposure_us, capture_shot, focus_axis
from station.procedures.framing import (
    case_name,
    frame_scene,
    framing_distance_mm,
    lens_datasheet,
    preview_of_raw,
    sensor_geometry,
)
from station.procedures.geometry import thin_lens_image_distance_mm
from station.procedures.result import ResultParts
from station.procedures.sfr import CHART_FILL, CHART_LEVEL, MIN_EDGES, edge_mtfs, find_edge_rois

if TYPE_CHECKING:
    from station.station import Station

#: Steps of the sweep (odd: the datasheet's ring angle in the middle).
SWEEP_STEPS = 7
#: Defocus blur circle change per step, sensor px.
BLUR_STEP_PX = 1.5
#: Steps each side of an edge's sharpest one that its parabola is fitted over.
FIT_HALF_WIDTH = 3
#: When the sharpest step of the centre edges is at an end of the sweep, it is extended this many steps that
#: way, at most ``MAX_EXTENSIONS`` times.
EXTEND_STEPS = 4
MAX_EXTENSIONS = 3
#: Edges whose vertex lies this many um off the plane (beyond 3 sigma) are left out and the plane refitted.
OUTLIER_SIGMA = 3.0


@dataclass
class AdapterFocus(ResultParts):
    """The adapter's back-focus error and tilt, and the sweep they come from."""

    PROFILE_SECTION = "focus"

    lens: str
    f_number: float
    distance_mm: float
    nominal_ring_deg: float
    rings_deg: list[float]
    edge_xy_mm: np.ndarray  # (E, 2) sensor position of each edge from the frame centre
    mtf50: np.ndarray  # (steps, E) c/px
    best_ring_deg: np.ndarray  # (E,) NaN where the edge gave no vertex
    used: np.ndarray  # (E,) bool: in the plane fit
    back_focus_mm: float
    tilt_x_deg: float
    tilt_y_deg: float
    residual_um: float
    extension_offset_um: np.ndarray  # (E,) each vertex's extension minus the plane's centre value
    pictures: dict[str, bytes] = field(default_factory=dict)  # what a person would rather look at

    @property
    def centre_best_ring_deg(self) -> float:
        """The ring angle focusing the chart at the frame centre (the plane's centre value)."""
        sheet = lens_datasheet("m", self.lens)
        f = sheet.focal_length_mm
        extension = thin_lens_image_distance_mm(f, self.distance_mm) - f - self.back_focus_mm
        return float(extension / sheet.close_extension_mm * sheet.focus_throw_deg)

    @property
    def tilt_deg(self) -> float:
        """The tilt's magnitude, deg."""
        return float(math.hypot(self.tilt_x_deg, self.tilt_y_deg))

    @measures(Declared("adapter_back_focus_mm", "mm"), Declared("adapter_tilt_x_deg", "deg"),
              Declared("adapter_tilt_y_deg", "deg"), Declared("focus_fit_residual_um", "um"))
    def measurements(self) -> dict[str, float]:
        return {"adapter_back_focus_mm": self.back_focus_mm, "adapter_tilt_x_deg": self.tilt_x_deg,
                "adapter_tilt_y_deg": self.tilt_y_deg, "focus_fit_residual_um": self.residual_um}

    def profile_section(self) -> dict[str, Any]:
        return {"method": "through-focus sweep of the slanted-edge chart, 1/MTF50^2 parabola per edge, plane fit",
                "back_focus_error_mm": self.back_focus_mm, "tilt_x_deg": self.tilt_x_deg,
                "tilt_y_deg": self.tilt_y_deg, "residual_um": self.residual_um, "f_number": self.f_number,
                "distance_mm": self.distance_mm, "nominal_ring_deg": self.nominal_ring_deg,
                "best_ring_deg": self.centre_best_ring_deg, "rings_deg": self.rings_deg,
                "edges_used": int(self.used.sum()), "edges": int(len(self.used))}

    def figures(self) -> dict[str, bytes]:
        return {f"m/{self.lens}: through-focus sweep": focus_sweep_png(self)}


def adapter_focus(station: Station, lens: str, f_number: float, *, distance_mm: float | None = None,
                  steps: int = SWEEP_STEPS, blur_step_px: float = BLUR_STEP_PX) -> AdapterFocus:
    """Back-focus error (mm) and tilt (deg) of the M adapter with ``lens`` mounted at ``f_number`` (wide open
    gives the shallowest depth of focus, the sharpest answer).

    Expects the slanted-edge chart on the holder and the light on. ``SweepError`` when the sweep never brings
    the centre into focus, or too few edges give a vertex.
    """
    sheet = lens_datasheet("m", lens)
    geometry = sensor_geometry(station, "m")
    from targets.registry import get_chart

    distance = distance_mm if distance_mm is not None else framing_distance_mm(
        station, "m", lens, get_chart("sfr").width_mm, CHART_FILL)
    nominal = float(sheet.ring_for_distance_deg(distance))
    frame_scene(station, "m", lens, distance, focus_deg=nominal)
    _, shot = auto_exposure_us(station, "m", target_fraction=CHART_LEVEL, statistic="p99")
    label = f"{case_name('m', lens)} f/{f_number:g}"
    picture = analysis_pool(station).submit(f"{label}: datasheet-focus picture", preview_of_raw, shot.frame, 512)
    rois = find_edge_rois(shot.frame.data, shot.frame.black_level, shot.frame.white_level)
    if len(rois) < MIN_EDGES:
        raise SweepError(f"{label}: {len(rois)} slanted edges at the datasheet's focus (needs {MIN_EDGES}); "
                         "is the slanted-edge chart on the holder and the adapter's focus far off?")
    mm_per_deg = sheet.close_extension_mm / sheet.focus_throw_deg
    step = blur_step_px * f_number * geometry.pixel_pitch_um * 1e-3 / mm_per_deg
    axis = focus_axis(station, "m", (0.0, float(sheet.focus_throw_deg)))
    centre = np.array([(geometry.width_px - 1) / 2.0, (geometry.height_px - 1) / 2.0])
    xy_px = np.array([[x + w / 2.0, y + h / 2.0] for (x, y, w, h), _, _ in rois])
    centre_edges = np.argsort(np.hypot(*(xy_px - centre).T))[:8]
    measured: dict[float, np.ndarray] = {}

    def take(rings: list[float]) -> None:
        _measure_rings(station, axis, rings, rois, measured, label)

    half = steps // 2
    take([nominal + k * step for k in range(-half, half + 1)])
    for _ in range(MAX_EXTENSIONS):
        rings = np.array(sorted(measured))
        score = np.array([np.nanmedian(1.0 / measured[r][centre_edges] ** 2) if np.isfinite(
            measured[r][centre_edges]).any() else np.nan for r in rings])
        if not np.isfinite(score).any():
            break
        best = int(np.nanargmin(score))
        if 0 < best < len(rings) - 1:
            break
        direction = -1.0 if best == 0 else 1.0
        if axis.clamp(rings[best] + direction * step) == rings[best]:
            break  # the ring is at its stop
        take([rings[best] + direction * k * step for k in range(1, EXTEND_STEPS + 1)])
    rings = np.array(sorted(measured))
    mtf50 = np.array([measured[r] for r in rings])  # (steps, edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 / mtf50 ** 2
    best_ring = np.array([parabola_vertex(rings, score[:, e], FIT_HALF_WIDTH) for e in range(len(rois))])
    extension = sheet.close_extension_mm * best_ring / sheet.focus_throw_deg
    xy_mm = (xy_px - centre) * geometry.pixel_pitch_um * 1e-3
    coef, used = fit_plane(xy_mm, extension, OUTLIER_SIGMA)
    if used.sum() < MIN_EDGES or not np.all(np.isfinite(coef)):
        raise SweepError(f"{label}: {int(used.sum())} edges came into focus in the sweep of rings "
                         f"{rings.min():.2f}..{rings.max():.2f} deg (needs {MIN_EDGES})")
    a, b, c = (float(v) for v in coef)
    f = float(sheet.focal_length_mm)
    back_focus = thin_lens_image_distance_mm(f, distance) - f - a
    plane = a + b * xy_mm[:, 0] + c * xy_mm[:, 1]
    residual = float(np.sqrt(np.mean((extension[used] - plane[used]) ** 2))) * 1000.0
    return AdapterFocus(lens=lens, f_number=float(f_number), distance_mm=float(distance), nominal_ring_deg=nominal,
                        rings_deg=[float(r) for r in rings], edge_xy_mm=xy_mm, mtf50=mtf50, best_ring_deg=best_ring,
                        used=used, back_focus_mm=float(back_focus), tilt_x_deg=-math.degrees(c),
                        tilt_y_deg=math.degrees(b), residual_um=residual,
                        extension_offset_um=(extension - a) * 1000.0,
                        pictures={f"{label}: through-focus sweep, datasheet focus": picture.result()})


def _measure_rings(station: Station, axis: Any, rings: list[float], rois: list[Any], measured: dict[float, np.ndarray],
                   label: str) -> None:
    """Each ring's MTF50 per edge (``measured``, by ring clamped and rounded), new rings captured in order; a
    frame's edges measured on the analysis pool behind the next ring's move."""
    pool = analysis_pool(station)
    jobs: dict[float, Pending[np.ndarray]] = {}
    for ring in rings:
        ring = round(axis.clamp(ring), 4)
        if ring not in measured and ring not in jobs:
            axis.move(station, ring)
            frame = capture_shot(station, "m", ("raw10",)).frame
            jobs[ring] = pool.submit(f"{label}: edges at ring {ring:g} deg", _edge_mtf50, frame, rois)
    for ring, job in jobs.items():
        measured[ring] = job.result()


def _edge_mtf50(frame: Any, rois: list[tuple[tuple[int, int, int, int], str, float]]) -> np.ndarray:
    """MTF50 (c/px) of each of ``rois`` in ``frame``, NaN where an edge does not measure."""
    by_roi = {e.roi: e.mtf50_cy_px for e in edge_mtfs(frame, rois)}
    return np.array([by_roi.get(r[0], math.nan) for r in rois])


def focus_sweep_png(result: AdapterFocus) -> bytes:
    """Left: MTF50 against the ring for the centre and the four corner-most edges, their vertices marked.
    Right: each edge's best-focus extension over the field (um from the centre's) with the fitted tilt."""
    from calibration.figures import figure_png, new_figure

    rings = np.asarray(result.rings_deg)
    xy = result.edge_xy_mm
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(12.0, 4.6), dpi=100)
    picks = {"centre": int(np.argmin(np.hypot(*xy.T)))}
    for name, sx, sy in (("top-left", -1, -1), ("top-right", 1, -1), ("bottom-left", -1, 1),
                         ("bottom-right", 1, 1)):
        picks[name] = int(np.argmax(sx * xy[:, 0] + sy * xy[:, 1]))
    for name, e in picks.items():
        line, = ax1.plot(rings, result.mtf50[:, e], "o-", ms=3, lw=1, label=name)
        if math.isfinite(result.best_ring_deg[e]):
            ax1.axvline(result.best_ring_deg[e], color=line.get_color(), lw=0.8, ls=":")
    ax1.axvline(result.nominal_ring_deg, color="0.3", lw=1, ls="--", label="datasheet ring for the distance")
    ax1.set_xlabel("focus ring (deg from infinity)")
    ax1.set_ylabel("MTF50 (c/px)")
    ax1.set_title(f"Through-focus: {result.lens} f/{result.f_number:g} at {result.distance_mm:.0f} mm", fontsize=9)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    used = result.used
    sc = ax2.scatter(xy[used, 0], xy[used, 1], c=result.extension_offset_um[used], cmap="coolwarm", s=45,
                     marker="s", edgecolors="k", linewidths=0.3)
    if (~used).any():
        ax2.scatter(xy[~used, 0], xy[~used, 1], marker="x", c="0.4", s=30, label="left out")
        ax2.legend(fontsize=7)
    fig.colorbar(sc, ax=ax2, shrink=0.85, label="best-focus extension - centre's (um)")
    ax2.set_xlabel("sensor x from centre (mm)")
    ax2.set_ylabel("sensor y from centre (mm)")
    ax2.invert_yaxis()
    ax2.set_aspect("equal")
    ax2.set_title(f"back focus {result.back_focus_mm * 1000:+.1f} um, tilt x {result.tilt_x_deg:+.3f} deg, "
                  f"y {result.tilt_y_deg:+.3f} deg (residual {result.residual_um:.2f} um)", fontsize=9)
    return figure_png(fig, tight=True)
