"""Per-edge quality checks of an e-SFR measurement (ISO 12233:2023 clause 6 / annex on e-SFR edge requirements),
and the edge's direction in the field (sagittal or tangential, ISO 12233:2023).

ISO 12233 asks of a measurable edge: enough contrast (the standard chart is 4:1; low-contrast charts still
give well above 1.25:1), an angle off the pixel axis large enough for the phases to fill the bins and well
short of 45 deg (ISO recommends about 5 deg; below 2 deg the super-sampled ESF comes from very few phase
cycles), enough rows, an edge standing well out of the noise, and no clipped pixels; here also rows that lie
on one smooth curve (a chart's edge, not the ragged outline of a natural scene). Each check that fails
names a flag; ``station analyze sfr`` refuses edges that carry any of ``GATE_FLAGS`` (a photo without a
chart reports no edges) and lists the flags in ``--json``.
"""

from __future__ import annotations

import math

#: ISO 12233: the darker side no less than this modulation, (hi - lo) / (hi + lo) (1.5:1).
MIN_MODULATION = 0.2
#: Edge angle off the pixel axis, degrees: below this too few phase cycles; from the upper one on, towards 45
#: (the pixel aperture along the normal is no longer the axis's, the rows' phases repeat).
MIN_ANGLE_DEG = 2.0
MAX_ANGLE_DEG = 30.0
#: Rows (along the edge) actually projected into the ESF.
MIN_ROWS = 20
#: Edge contrast over the pixel noise (sigma).
MIN_CONTRAST_TO_NOISE = 20.0
#: Per-row edge locations scattering more than this (px RMS) around the fitted polynomial: not one clean edge
#: (the rows of a sharp, straight chart edge scatter 0.1-0.3 px; a ragged natural outline, 0.6 and more).
MAX_FIT_RMS_PX = 0.45
#: The fitted polynomial may leave its line by at most this fraction of the edge's length (rows): a lens's
#: distortion bends a chart edge over a radius of thousands of px (0.5 % of a 128-row ROI at 3,000 px); this
#: allows radii down to 6x the ROI length, and refuses the outline of a blob or a leaf.
MAX_BEND_FRACTION = 0.02
#: Fraction of the ROI's pixels at or beyond the clip level.
MAX_CLIPPED_FRACTION = 0.005
#: Flags that make ``station analyze sfr`` refuse an edge it found by itself.
GATE_FLAGS = ("contrast", "angle", "length", "noise", "clipping", "straightness")
#: Edges whose centre is nearer the image centre than this fraction of the half-diagonal have no direction.
CENTRE_RADIUS_FRACTION = 0.05


def edge_quality(lo: float, hi: float, noise: float, angle_deg: float, rows: int,
                 clipped_fraction: float | None, fit_rms_px: float = 0.0, bend_px: float = 0.0) -> dict:
    """The measured quantities and the names of the checks that fail (``"flags"``).

    ``lo``/``hi`` are the dark and light plateau levels (linear, above black), ``noise`` the pixel
    noise sigma, ``rows`` the rows projected, ``clipped_fraction`` None when the clip level is unknown."""
    contrast = hi - lo
    modulation = contrast / (hi + lo) if hi + lo > 0 and lo >= 0 else float("nan")
    cnr = contrast / noise if noise > 0 else float("inf")
    flags = []
    if not modulation >= MIN_MODULATION:
        flags.append("contrast")
    if not MIN_ANGLE_DEG <= abs(angle_deg) < MAX_ANGLE_DEG:
        flags.append("angle")
    if rows < MIN_ROWS:
        flags.append("length")
    if cnr < MIN_CONTRAST_TO_NOISE:
        flags.append("noise")
    if clipped_fraction is not None and clipped_fraction > MAX_CLIPPED_FRACTION:
        flags.append("clipping")
    if fit_rms_px > MAX_FIT_RMS_PX or bend_px > MAX_BEND_FRACTION * rows:
        flags.append("straightness")
    return {"modulation": modulation, "contrast_to_noise": cnr, "angle_deg": abs(angle_deg), "rows": rows,
            "clipped_fraction": clipped_fraction, "bend_px": bend_px, "flags": tuple(flags)}


def field_direction(roi_xywh: tuple[int, int, int, int], orientation: str, image_wh: tuple[int, int]) -> dict:
    """Sagittal or tangential, ISO 12233:2023: an edge running along the radius from the image centre (its
    normal across the radius) measures the sagittal MTF, an edge across the radius the tangential one.

    Returns the direction ("sagittal", "tangential" or "centre"), the ROI centre's radius as a fraction
    of the half-diagonal, and the angle (deg) between the edge normal and the radius."""
    x, y, w, h = roi_xywh
    width, height = image_wh
    dx = x + 0.5 * w - 0.5 * width
    dy = y + 0.5 * h - 0.5 * height
    radius = math.hypot(dx, dy)
    half_diag = 0.5 * math.hypot(width, height)
    frac = radius / half_diag if half_diag > 0 else 0.0
    if frac < CENTRE_RADIUS_FRACTION:
        return {"direction": "centre", "radius_fraction": frac, "normal_to_radius_deg": None}
    normal = (1.0, 0.0) if orientation == "vertical" else (0.0, 1.0)  # the e-SFR's frequency direction
    cos = abs(normal[0] * dx + normal[1] * dy) / radius
    angle = math.degrees(math.acos(min(cos, 1.0)))
    return {"direction": "tangential" if angle < 45.0 else "sagittal", "radius_fraction": frac,
            "normal_to_radius_deg": angle}
