"""SFR across the field (ISO 12233 e-SFR) and lateral chromatic aberration from the slanted-edge chart.

One RAW capture of the slanted-edge chart filling the frame: every usable edge is found on the 2x2-binned
mosaic (``calibration.edges``, as ``station analyze sfr`` does for a DNG) and measured on the luminance of a
bilinear demosaic (``calibration.sfr.sfr_cfa`` plane ``Y``, cycles per sensor pixel). Luminance rather than a
CFA plane: a plane's Nyquist is 0.25 c/px and sharp lenses put MTF50 beyond it; the demosaic's own blur is in
every value alike, so values compare across lenses, apertures and builds. Each edge's place in the field is
its distance from the frame centre over the half-diagonal (0 centre, 1 corner); ``ZONES`` group them.

Lateral CA from the same edges (``calibration.chromatic``): per edge, the R and B edge positions relative to
G along the edge normal (``edge_shifts`` on the quad RGB image), fitted as a magnification about the centre
plus a plane shift (lensfun's ``linear`` TCA model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from station.capture_preview import capture_png
from station.measurements import Declared, measures
from station.procedures import ProcedureError
from station.procedures.captures import auto_exposure_us
from station.procedures.framing import ChartNotFoundError, case_name, frame_scene, framing_distance_mm
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

#: The chart overfills the frame by this much (its corner squares land near the frame's corners).
CHART_FILL = 1.05
#: The chart's white at this fraction of full scale (auto-exposure on its 99th percentile).
CHART_LEVEL = 0.8
#: Field zones by radius (0 centre .. 1 corner): [low, high).
ZONES: dict[str, tuple[float, float]] = {"centre": (0.0, 0.2), "mid": (0.2, 0.6), "corner": (0.6, 1.01)}
#: Edge finding on the binned mosaic (binned px): ROI along and across the edge, shortest edge.
ROI_ALONG_PX, ROI_ACROSS_PX, MIN_ALONG_PX = 64, 32, 12
#: Edges a field measurement needs.
MIN_EDGES = 8


@dataclass
class EdgeMtf:
    """One edge's e-SFR: where it is (sensor px, field radius), its MTF50 and MTF at Nyquist/2 (c/px)."""

    roi: tuple[int, int, int, int]  # x, y, w, h sensor px
    orientation: str  # "vertical" (runs down the rows) or "horizontal"
    angle_deg: float
    field: float  # radius from the frame centre / half-diagonal
    mtf50_cy_px: float
    mtf_nyq2: float
    freq_cy_px: np.ndarray = field(repr=False)
    mtf: np.ndarray = field(repr=False)
    direction: str = ""  # ISO 12233:2023: "sagittal", "tangential" or "centre" (calibration.sfr_quality)

    @property
    def centre_px(self) -> tuple[float, float]:
        x, y, w, h = self.roi
        return (x + w / 2.0, y + h / 2.0)

    def to_dict(self) -> dict[str, Any]:
        return {"roi": list(self.roi), "orientation": self.orientation, "angle_deg": round(self.angle_deg, 3),
                "field": round(self.field, 4), "direction": self.direction, "mtf50_cy_px": _finite(self.mtf50_cy_px),
                "mtf_nyq2": _finite(self.mtf_nyq2)}


def _finite(value: float) -> float | None:
    return round(float(value), 5) if math.isfinite(value) else None


def find_edge_rois(data: np.ndarray, black_level: float, white_level: float) -> list[tuple[tuple[int, int, int, int],
                                                                                          str, float]]:
    """Usable slanted edges of a RAW mosaic: ``[((x, y, w, h) sensor px, orientation, angle_deg), ...]``, found
    on the 2x2-binned mosaic above black (even sensor coordinates)."""
    from calibration.edges import find_edges

    binned = binned_above_black(data, black_level)
    edges = find_edges(binned, roi_along_px=ROI_ALONG_PX, roi_across_px=ROI_ACROSS_PX, min_along_px=MIN_ALONG_PX,
                       clip_level=0.999 * float(white_level - black_level))
    return [((2 * e.x, 2 * e.y, 2 * e.w, 2 * e.h), e.orientation, float(e.angle_deg)) for e in edges]


def binned_above_black(data: np.ndarray, black_level: float) -> np.ndarray:
    """The mosaic above black, 2x2-binned (float32, the quads' mean; odd last row/column dropped): the four
    quad planes converted one at a time and summed in place, so no float copy of the whole frame is made
    (the same float32 sums, in the same order, as binning a float copy)."""
    h2, w2 = (data.shape[0] // 2) * 2, (data.shape[1] // 2) * 2
    black = np.float32(black_level)
    binned: np.ndarray | None = None
    for row, col in ((0, 0), (0, 1), (1, 0), (1, 1)):
        plane = data[row:h2:2, col:w2:2].astype(np.float32)
        plane -= black
        if binned is None:
            binned = plane
        else:
            binned += plane
    assert binned is not None
    binned *= np.float32(0.25)
    return binned


def field_radius(x_px: float, y_px: float, width: int, height: int) -> float:
    """Distance from the frame centre over the half-diagonal: 0 at the centre, 1 at a corner."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return float(math.hypot(x_px - cx, y_px - cy) / math.hypot(cx, cy))


def edge_mtfs(frame: Any, rois: list[tuple[tuple[int, int, int, int], str, float]] | None = None) -> list[EdgeMtf]:
    """e-SFR (luminance, ISO 12233) of every edge of ``rois`` (default: every usable edge) in a RAW ``frame``.
    An edge the e-SFR cannot measure (clipped, noisy, too short) is left out."""
    from calibration.sfr import SfrError, cfa_at, sfr_cfa
    from calibration.sfr_quality import field_direction

    data = frame.data
    if rois is None:
        rois = find_edge_rois(data, frame.black_level, frame.white_level)
    black = np.float32(frame.black_level)
    height, width = data.shape
    out: list[EdgeMtf] = []
    for (x, y, w, h), orientation, angle in rois:
        roi = data[y:y + h, x:x + w].astype(np.float32)  # each ROI converted, never the whole frame
        roi -= black
        try:
            res = sfr_cfa(roi, cfa_at(frame.cfa, x, y), "Y")
        except SfrError:
            continue
        out.append(EdgeMtf((x, y, w, h), orientation, float(res.angle_deg if math.isfinite(res.angle_deg) else angle),
                           field_radius(x + w / 2.0, y + h / 2.0, width, height), float(res.mtf50_cy_px),
                           float(res.mtf_nyq2), np.asarray(res.freq_cy_px), np.asarray(res.mtf),
                           field_direction((x, y, w, h), res.orientation, (width, height))["direction"]))
    return out


@dataclass
class CaMeasurement(ResultParts):
    """Lateral CA: R and B magnification relative to G and the largest shift at a corner."""

    PROFILE_SECTION = "chromatic"

    result: Any  # calibration.chromatic.LateralCaResult
    sensor: str = ""  # the case the edges come from (the figure's name and title)
    lens: str | None = None
    f_number: float | None = None

    @property
    def r_scale(self) -> float:
        return float(self.result.planes["R"].scale)

    @property
    def b_scale(self) -> float:
        return float(self.result.planes["B"].scale)

    def corner_shift_px(self) -> float:
        """The larger CA shift (R or B against G) at the frame's farthest corner, sensor px."""
        return float(max(self.result.corner_shift_px(p) or 0.0 for p in ("R", "B")))

    @measures(Declared("ca_r_scale_ppm", "ppm"), Declared("ca_b_scale_ppm", "ppm"),
              Declared("ca_corner_shift_px", "px"))
    def measurements(self) -> dict[str, float]:
        return {"ca_r_scale_ppm": (self.r_scale - 1.0) * 1e6, "ca_b_scale_ppm": (self.b_scale - 1.0) * 1e6,
                "ca_corner_shift_px": self.corner_shift_px()}

    def profile_section(self) -> dict[str, Any]:
        return {"r_scale": self.r_scale, "b_scale": self.b_scale, "center_px": list(self.result.center_px),
                "r_scale_ppm": (self.r_scale - 1.0) * 1e6, "b_scale_ppm": (self.b_scale - 1.0) * 1e6,
                "corner_shift_px": self.corner_shift_px(), "edges": int(self.result.planes["R"].n_points),
                "model": "lensfun linear TCA about the frame centre, from slanted edges"}

    def figures(self) -> dict[str, bytes]:
        from calibration.plots import lateral_ca_png

        case = case_name(self.sensor, self.lens)
        title = f"Lateral CA relative to G: {case}" + (f"/f{self.f_number:g}" if self.f_number else "")
        return {f"{case}: lateral chromatic aberration": lateral_ca_png(self.result, title=title)}


def lateral_ca(frame: Any, edges: list[EdgeMtf], *, lens: str | None = None, f_number: float | None = None
               ) -> CaMeasurement:
    """Lateral CA from the edges of a RAW ``frame``: per edge the R and B shifts against G along its normal,
    on the quad RGB image (one pixel per 2x2 quad) of the edge's ROI, fitted about the frame centre."""
    from calibration.chromatic import CaError, edge_shifts, lateral_ca_from_edges
    from calibration.color import cfa_to_rgb

    black = np.float32(frame.black_level)
    positions, normals, shift_r, shift_b = [], [], [], []
    for edge in edges:
        x, y, w, h = (v // 2 for v in edge.roi)  # quad px; the ROI's mosaic crop starts on a quad (even px)
        vertical = edge.orientation == "vertical"
        mosaic = frame.data[2 * y:2 * (y + h), 2 * x:2 * (x + w)].astype(np.float32)
        mosaic -= black
        try:
            shifts = edge_shifts(cfa_to_rgb(mosaic, frame.cfa), reference=1, vertical=vertical)
        except CaError:
            continue
        positions.append(edge.centre_px)
        normals.append((1.0, 0.0) if vertical else (0.0, 1.0))
        shift_r.append(2.0 * shifts[0])  # quad px -> sensor px
        shift_b.append(2.0 * shifts[2])
    height, width = frame.data.shape
    try:
        result = lateral_ca_from_edges(np.array(positions), np.array(normals), {"R": shift_r, "B": shift_b},
                                       image_size=(width, height))
    except CaError as exc:
        raise ProcedureError(f"lateral CA: {exc}") from None
    return CaMeasurement(result, sensor=str(frame.sensor), lens=lens, f_number=f_number)


@dataclass
class SfrMeasurement(ResultParts):
    """The MTF across the field of one (sensor, lens, aperture), and the capture it comes from."""

    PROFILE_SECTION = "sfr"

    sensor: str
    lens: str | None
    f_number: float | None
    distance_mm: float
    exposure_us: int
    edges: list[EdgeMtf]
    image_size: tuple[int, int]
    frame: Any = field(repr=False)
    pictures: dict[str, bytes] = field(default_factory=dict)  # what a person would rather look at

    @property
    def case(self) -> str:
        name = case_name(self.sensor, self.lens)
        return f"{name}/f{self.f_number:g}" if self.f_number else name

    def zone(self, name: str) -> list[EdgeMtf]:
        lo, hi = ZONES[name]
        return [e for e in self.edges if lo <= e.field < hi and math.isfinite(e.mtf50_cy_px)]

    def zone_mtf50(self, name: str) -> float:
        """Mean MTF50 (c/px) of a zone's edges (NaN when the zone has none)."""
        values = [e.mtf50_cy_px for e in self.zone(name)]
        return float(np.mean(values)) if values else math.nan

    def min_mtf50(self) -> float:
        values = [e.mtf50_cy_px for e in self.edges if math.isfinite(e.mtf50_cy_px)]
        return float(min(values)) if values else math.nan

    def summary(self) -> dict[str, Any]:
        return {"f_number": self.f_number, "distance_mm": self.distance_mm, "edges": len(self.edges),
                "plane": "Y (bilinear demosaic luminance), cycles per sensor pixel",
                "mtf50_cy_px": {z: _finite(self.zone_mtf50(z)) for z in ZONES} | {"min": _finite(self.min_mtf50())}}

    @measures(*(Declared(f"mtf50_{zone}_cpp", "c/px", "{f_case}") for zone in ("centre", "mid", "corner", "min")),
              Declared("sfr_edges", "1", "{f_case}"))
    def measurements(self) -> dict[str, float]:
        return {"mtf50_centre_cpp": self.zone_mtf50("centre"), "mtf50_mid_cpp": self.zone_mtf50("mid"),
                "mtf50_corner_cpp": self.zone_mtf50("corner"), "mtf50_min_cpp": self.min_mtf50(),
                "sfr_edges": len(self.edges)}

    def profile_section(self) -> dict[str, Any]:
        """This aperture's entry of the section (``apertures``: ``f<N>`` or ``fixed``)."""
        aperture = f"f{self.f_number:g}" if self.f_number else "fixed"
        return {"apertures": {aperture: self.summary() | {"per_edge": [e.to_dict() for e in self.edges]}}}

    def figures(self) -> dict[str, bytes]:
        case = self.case
        return {f"{case}: MTF curves": mtf_curves_png(self, title=f"MTF across the field: {case}"),
                f"{case}: MTF50 across the field": mtf_field_png(self, title=f"MTF50 across the field: {case}")}


def measure_sfr(station: Station, sensor: str, lens: str | None = None, *, f_number: float | None = None,
                distance_mm: float | None = None) -> SfrMeasurement:
    """The slanted-edge chart through ``sensor`` (and M lens ``lens`` at ``f_number``, as mounted): MTF50 of
    every edge across the field.

    Expects the chart on the holder and the light on. Frames the chart (``CHART_FILL``), focuses on it,
    exposes its white at ``CHART_LEVEL`` and takes one RAW frame. ``ChartNotFoundError`` when fewer than
    ``MIN_EDGES`` edges measure.
    """
    from targets.registry import get_chart

    chart = get_chart("sfr")
    distance = distance_mm if distance_mm is not None else framing_distance_mm(
        station, sensor, lens, chart.width_mm, CHART_FILL)
    frame_scene(station, sensor, lens, distance)
    exposure, shot = auto_exposure_us(station, sensor, target_fraction=CHART_LEVEL, statistic="p99")
    frame = shot.frame
    name = case_name(sensor, lens) + (f" f/{f_number:g}" if f_number else "")
    edges = edge_mtfs(frame)
    attachments = {f"{name}: slanted-edge capture, edge ROIs": capture_png(frame, [e.roi for e in edges], 768)}
    if len(edges) < MIN_EDGES:
        raise ChartNotFoundError(f"{name}: {len(edges)} measurable slanted edges in the capture (needs "
                                 f"{MIN_EDGES}); is the slanted-edge chart on the holder, lit and in focus?",
                                 attachments)
    height, width = frame.data.shape
    return SfrMeasurement(sensor=sensor, lens=lens, f_number=f_number, distance_mm=float(distance),
                          exposure_us=int(exposure), edges=edges, image_size=(width, height), frame=frame,
                          pictures=attachments)


# --- plots ---------------------------------------------------------------------------------------------

_ZONE_COLOURS = {"centre": "tab:blue", "mid": "tab:green", "corner": "tab:red"}


def mtf_curves_png(measurement: SfrMeasurement, *, title: str) -> bytes:
    """Every edge's MTF curve, coloured by field zone, with each zone's mean MTF50."""
    from calibration.figures import figure_png, new_figure

    fig, ax = new_figure(figsize=(7.0, 4.5), dpi=100)
    for zone, colour in _ZONE_COLOURS.items():
        edges = measurement.zone(zone)
        for i, edge in enumerate(edges):
            ax.plot(edge.freq_cy_px, edge.mtf, color=colour, lw=0.8, alpha=0.5,
                    label=f"{zone}: {len(edges)} edges, mean MTF50 {measurement.zone_mtf50(zone):.3f} c/px"
                    if i == 0 else None)
    ax.axvline(0.5, color="0.5", ls="--", lw=0.8)
    ax.axhline(0.5, color="0.8", lw=0.8)
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("spatial frequency (cycles/pixel; Nyquist 0.5)")
    ax.set_ylabel("MTF (e-SFR, ISO 12233; luminance)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_png(fig, tight=True)


def mtf_field_png(measurement: SfrMeasurement, *, title: str) -> bytes:
    """MTF50 of each edge at its place in the frame (colour), with the values written beside."""
    import matplotlib.colors

    from calibration.figures import figure_png, new_figure

    w, h = measurement.image_size
    fig, ax = new_figure(figsize=(7.0, 5.4), dpi=100)
    xs = [e.centre_px[0] for e in measurement.edges]
    ys = [e.centre_px[1] for e in measurement.edges]
    values = [e.mtf50_cy_px if math.isfinite(e.mtf50_cy_px) else np.nan for e in measurement.edges]
    finite = [v for v in values if math.isfinite(v)]
    norm = matplotlib.colors.Normalize(min(finite, default=0.0), max(finite, default=1.0))
    sc = None
    # ISO 12233:2023: sagittal and tangential edges apart (marker), MTF50 the colour
    for direction, marker in (("sagittal", "^"), ("tangential", "s"), ("centre", "o"), ("", "s")):
        idx = [i for i, e in enumerate(measurement.edges) if e.direction == direction]
        if idx:
            sc = ax.scatter([xs[i] for i in idx], [ys[i] for i in idx], c=[values[i] for i in idx], cmap="viridis",
                            norm=norm, s=60, marker=marker, edgecolors="k", linewidths=0.4,
                            label=direction or None)
    if any(e.direction for e in measurement.edges):
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)  # off the map
    if sc is not None:
        fig.colorbar(sc, ax=ax, shrink=0.85, label="MTF50 (c/px)")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_aspect("equal")
    _label_without_overlap(fig, ax, xs, ys, values)
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title(title, fontsize=10)
    return figure_png(fig, tight=True)


#: Where a value's label may sit around its marker (points right/up of it), tried in this order.
_LABEL_OFFSETS_PT = ((6, 4), (6, -10), (-26, 4), (-26, -10), (-10, 9), (-10, -15))
_LABEL_FONT_PT = 7.0


def _label_without_overlap(fig: Any, ax: Any, xs: list[float], ys: list[float], values: list[float]) -> None:
    """Write each MTF50 beside its marker at the first offset whose box overlaps no marker and no label already
    placed (greedy placement in display pixels); a value with no free place keeps only its colour."""
    fig.draw_without_rendering()  # the axes' final transform (equal aspect)
    to_px = fig.dpi / 72.0
    points = ax.transData.transform(np.column_stack([xs, ys])) if xs else np.empty((0, 2))
    marker_r = 4.5 * to_px
    taken = [(px - marker_r, py - marker_r, px + marker_r, py + marker_r) for px, py in points]
    for (px, py), value in zip(points, values, strict=True):
        if not math.isfinite(value):
            continue
        text = f"{value:.3f}"
        box_w, box_h = len(text) * 0.6 * _LABEL_FONT_PT * to_px, _LABEL_FONT_PT * to_px
        for dx, dy in _LABEL_OFFSETS_PT:
            x0, y0 = px + dx * to_px, py + dy * to_px
            box = (x0, y0, x0 + box_w, y0 + box_h)
            if not any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken):
                taken.append(box)
                ax.annotate(text, ax.transData.inverted().transform((px, py)), textcoords="offset points",
                            xytext=(dx, dy), fontsize=_LABEL_FONT_PT, va="bottom", ha="left")
                break
