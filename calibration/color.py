"""Colour calibration from a ColorChecker 24 capture: white balance gains, a 3x3 colour correction matrix,
and CIEDE2000 colour differences before and after, with colour-science.

The steps, on the 24 patch means of a *linear* capture (camera RGB above black, any scale):

1. white balance (the camera-pipeline convention, as Android's ``COLOR_CORRECTION_GAINS``): per-channel
   gains that make the neutral patches neutral, ``g_c = argmin sum_i (g_c C_i - G_i)^2`` over the greys
   (patches 20-23: neutral 8, 6.5, 5 and 3.5; the white can clip and the black is noisy), G gain = 1;
2. exposure normalisation: one scale ``k`` that best matches the balanced greys to the reference greys
   (least squares over their three channels), so the matrix only has to fix colour, not exposure;
3. the colour correction matrix ``M`` (3x3, reference ~= M @ camera) by least squares in linear RGB over
   the unclipped patches, with white preserved: every row of ``M`` sums to 1 (``M @ [1,1,1] = [1,1,1]``,
   the balanced neutral stays neutral at its level), solved exactly by eliminating one unknown per row;
   ``preserve_white=False`` gives the plain 9-parameter least squares;
4. CIEDE2000 (CIE 142-2001, ``colour.delta_E(..., method="CIE 2000")``) between each patch and its
   reference, both taken as linear sRGB (IEC 61966-2-1), to CIE XYZ and CIE L*a*b* with the D65 reference
   white of sRGB. *Before* is the capture white balanced and exposure normalised with no matrix (the
   camera's own primaries taken as sRGB); *after* adds the matrix.

The reference is the one definition in ``targets.colorchecker`` (colour-science's spectral ColorChecker
data under D65, to linear sRGB), so the twin's chart and this calibration agree by construction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calibration.cfa import CfaError, check_cfa

__all__ = [
    "NEUTRAL_PATCHES", "ColorError", "ColorResult", "reference_patches", "white_balance_gains",
    "exposure_scale", "fit_ccm", "delta_e2000", "calibrate_color", "grid_rois", "patch_means",
    "cfa_to_rgb", "plausibility_problems",
]

#: 0-based indices of the greys used for white balance and exposure: neutral 8, 6.5, 5, 3.5.
NEUTRAL_PATCHES = (19, 20, 21, 22)
#: Patch rows and columns of the ColorChecker 24.
ROWS, COLUMNS = 4, 6


class ColorError(ValueError):
    """The patch values cannot give a colour calibration (wrong shape, clipped greys, ...); one line."""


@dataclass
class ColorResult:
    """White balance gains (R, G, B; G = 1), exposure scale, CCM (reference ~= M @ balanced camera RGB),
    CIEDE2000 per patch before (balance and exposure only) and after the matrix."""

    wb_gains: np.ndarray
    exposure_scale: float
    ccm: np.ndarray
    delta_e_before: np.ndarray
    delta_e_after: np.ndarray
    camera: np.ndarray  # (24, 3) patch means as given
    corrected: np.ndarray  # (24, 3) after balance, exposure and matrix (linear sRGB)
    reference: np.ndarray  # (24, 3) linear sRGB
    names: tuple[str, ...]
    used: np.ndarray  # (24,) bool: patches in the matrix fit
    preserve_white: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def balanced(self) -> np.ndarray:
        """The patches white balanced and exposure normalised, no matrix (the *before* values)."""
        return self.camera * self.wb_gains * self.exposure_scale

    @staticmethod
    def _stats(de: np.ndarray) -> dict[str, Any]:
        return {"mean": float(np.mean(de)), "median": float(np.median(de)), "max": float(np.max(de)),
                "per_patch": [round(float(v), 4) for v in de]}

    def to_dict(self) -> dict[str, Any]:
        out = {
            "wb_gains": [float(v) for v in self.wb_gains],
            "exposure_scale": float(self.exposure_scale),
            "ccm": [[float(v) for v in row] for row in self.ccm],
            "ccm_rows_sum_to_one": bool(self.preserve_white),
            "delta_e2000": {"before": self._stats(self.delta_e_before),
                            "after": self._stats(self.delta_e_after)},
            "patches": [{"index": i, "name": n, "used": bool(u),
                         "camera": [float(v) for v in c], "corrected": [float(v) for v in k],
                         "reference": [float(v) for v in r]}
                        for i, (n, u, c, k, r) in enumerate(zip(self.names, self.used, self.camera,
                                                                 self.corrected, self.reference,
                                                                 strict=True))],
        }
        out.update(self.extra)
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def reference_patches() -> tuple[tuple[str, ...], np.ndarray]:
    """Patch names and linear-sRGB reference values (24, 3): ``targets.colorchecker``'s single definition."""
    import warnings

    from targets.colorchecker import colorchecker_reference

    with warnings.catch_warnings():  # colour-science notes it aligns the spectral data's shape: harmless
        warnings.filterwarnings("ignore", message="Aligning", category=Warning)
        names, rgb = colorchecker_reference()
    return tuple(names), np.asarray(rgb, dtype=np.float64)


def _check_patches(patches: Any, n: int = ROWS * COLUMNS) -> np.ndarray:
    p = np.asarray(patches, dtype=np.float64)
    if p.shape != (n, 3):
        raise ColorError(f"expected {n} patch values of 3 channels, got an array of shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ColorError("patch values contain NaN or infinity")
    return p


def white_balance_gains(patches: np.ndarray, neutral: Sequence[int] = NEUTRAL_PATCHES) -> np.ndarray:
    """Gains (R, G, B), G = 1, that make the neutral patches neutral (least squares through the origin)."""
    p = np.asarray(patches, dtype=np.float64)[list(neutral)]
    if np.any(p <= 0):
        raise ColorError("a neutral patch has a channel at or below black: no white balance")
    g = p[:, 1]
    r, b = p[:, 0], p[:, 2]
    return np.array([np.dot(r, g) / np.dot(r, r), 1.0, np.dot(b, g) / np.dot(b, b)])


def exposure_scale(balanced: np.ndarray, reference: np.ndarray,
                   neutral: Sequence[int] = NEUTRAL_PATCHES) -> float:
    """The scale ``k`` minimising ``sum (k balanced - reference)^2`` over the neutral patches' channels."""
    b = np.asarray(balanced, dtype=np.float64)[list(neutral)].ravel()
    r = np.asarray(reference, dtype=np.float64)[list(neutral)].ravel()
    return float(np.dot(b, r) / np.dot(b, b))


def fit_ccm(camera: np.ndarray, reference: np.ndarray, *, preserve_white: bool = True,
            weights: np.ndarray | None = None) -> np.ndarray:
    """3x3 ``M``, ``reference ~= camera @ M.T``, by (weighted) least squares; rows sum to 1 if preserve_white.

    With the constraint, each row ``m`` is solved as ``m3 = 1 - m1 - m2`` and ordinary least squares on
    ``(C1 - C3) m1 + (C2 - C3) m2 = y - C3`` (exact elimination of the equality constraint).
    """
    a = np.asarray(camera, dtype=np.float64).reshape(-1, 3)
    y = np.asarray(reference, dtype=np.float64).reshape(-1, 3)
    if len(a) != len(y):
        raise ColorError(f"{len(a)} camera patches for {len(y)} reference patches")
    if len(a) < (2 if preserve_white else 3) + 1:
        raise ColorError(f"{len(a)} patches are too few for a colour matrix")
    w = np.ones(len(a)) if weights is None else np.sqrt(np.asarray(weights, dtype=np.float64).ravel())
    m = np.empty((3, 3))
    if preserve_white:
        design = (a[:, :2] - a[:, 2:3]) * w[:, None]
        for row in range(3):
            sol, *_ = np.linalg.lstsq(design, (y[:, row] - a[:, 2]) * w, rcond=None)
            m[row] = [sol[0], sol[1], 1.0 - sol[0] - sol[1]]
    else:
        sol, *_ = np.linalg.lstsq(a * w[:, None], y * w[:, None], rcond=None)
        m = sol.T
    return m


def _lab(linear_srgb: np.ndarray) -> np.ndarray:
    import colour

    space = colour.RGB_COLOURSPACES["sRGB"]
    rgb = np.asarray(linear_srgb, dtype=np.float64)
    xyz = colour.RGB_to_XYZ(rgb, space, chromatic_adaptation_transform=None)
    return colour.XYZ_to_Lab(xyz, space.whitepoint)


def delta_e2000(test_linear_srgb: np.ndarray, reference_linear_srgb: np.ndarray) -> np.ndarray:
    """CIEDE2000 between linear-sRGB colours (N, 3), via XYZ and L*a*b* under D65 (colour-science)."""
    import colour

    return np.asarray(colour.delta_E(_lab(test_linear_srgb), _lab(reference_linear_srgb), method="CIE 2000"))


def calibrate_color(patches: np.ndarray, *, reference: np.ndarray | None = None,
                    clipped: np.ndarray | None = None, neutral: Sequence[int] = NEUTRAL_PATCHES,
                    preserve_white: bool = True) -> ColorResult:
    """White balance, exposure, CCM and CIEDE2000 from 24 linear patch means (see the module doc).

    ``patches`` (24, 3) camera RGB above black, chart order; ``reference`` (24, 3) linear sRGB (default
    ``targets.colorchecker``'s); ``clipped`` (24,) bool marks patches with a saturated channel: left out
    of the fit (an error if a neutral used for the white balance is clipped).
    """
    cam = _check_patches(patches)
    names, ref_default = reference_patches()
    ref = ref_default if reference is None else _check_patches(reference)
    bad = np.zeros(len(cam), bool) if clipped is None else np.asarray(clipped, bool).ravel()
    if bad.shape != (len(cam),):
        raise ColorError(f"clipped mask must have {len(cam)} entries, got {bad.shape}")
    hit = [names[i] for i in neutral if bad[i]]
    if hit:
        raise ColorError(f"neutral patch(es) {', '.join(hit)} clipped: lower the exposure")
    gains = white_balance_gains(cam, neutral)
    k = exposure_scale(cam * gains, ref, neutral)
    balanced = cam * gains * k
    used = ~bad
    ccm = fit_ccm(balanced[used], ref[used], preserve_white=preserve_white)
    corrected = balanced @ ccm.T
    return ColorResult(wb_gains=gains, exposure_scale=k, ccm=ccm,
                       delta_e_before=delta_e2000(balanced, ref), delta_e_after=delta_e2000(corrected, ref),
                       camera=cam, corrected=corrected, reference=ref, names=names, used=used,
                       preserve_white=preserve_white)


# --------------------------------------------------------------------------------------------- measuring

def grid_rois(box: Sequence[float], *, rows: int = ROWS, cols: int = COLUMNS,
              fraction: float = 0.5) -> list[tuple[int, int, int, int]]:
    """ROIs (x, y, w, h) of a patch grid spanning ``box`` (x, y, w, h; the outer edges of the corner patches).

    The box is cut into rows x cols equal cells; each ROI is the central ``fraction`` of its cell (clear
    of the gaps between patches whatever their width), in row-major (chart) order.
    """
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ColorError(f"patch grid box must have a positive size, got {w:g}x{h:g}")
    cw, ch = w / cols, h / rows
    out = []
    for r in range(rows):
        for c in range(cols):
            cx, cy = x + (c + 0.5) * cw, y + (r + 0.5) * ch
            hw, hh = fraction * cw / 2, fraction * ch / 2
            x0, y0 = int(np.ceil(cx - hw)), int(np.ceil(cy - hh))
            x1, y1 = int(np.floor(cx + hw)), int(np.floor(cy + hh))
            if x1 <= x0 or y1 <= y0:
                raise ColorError(f"patch grid box {w:g}x{h:g} px is too small for {rows}x{cols} patches")
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def patch_means(image: np.ndarray, rois: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per ROI (x, y, w, h): the 3-sigma-clipped mean (N, 3) of an (H, W, 3) image, and each ROI's max (N, 3).

    An ROI outside the image raises ``ColorError``.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ColorError(f"expected an (H, W, 3) image, got shape {img.shape}")
    h, w = img.shape[:2]
    means, maxima = [], []
    for x, y, rw, rh in rois:
        if x < 0 or y < 0 or rw <= 0 or rh <= 0 or x + rw > w or y + rh > h:
            raise ColorError(f"patch ROI {x},{y},{rw},{rh} is not inside the {w}x{h} image")
        px = img[y:y + rh, x:x + rw].reshape(-1, 3).astype(np.float64)
        mu, sd = px.mean(axis=0), px.std(axis=0)
        keep = np.all(np.abs(px - mu) <= 3.0 * sd + 1e-9, axis=1)
        means.append(px[keep].mean(axis=0) if keep.any() else mu)
        maxima.append(px.max(axis=0))
    return np.array(means), np.array(maxima)


def cfa_to_rgb(cfa_data: np.ndarray, cfa: str) -> np.ndarray:
    """A half-resolution RGB image of a Bayer mosaic: each 2x2 quad -> (R, mean of the two G, B), float32.

    No interpolation: every output value is the quad's own samples (what patch statistics want).
    """
    try:
        p = check_cfa(cfa)
    except CfaError as exc:
        raise ColorError(str(exc)) from None
    a = np.asarray(cfa_data, dtype=np.float32)
    h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    quads = [a[r:h:2, c:w:2] for r, c in ((0, 0), (0, 1), (1, 0), (1, 1))]
    greens = [q for q, colour in zip(quads, p, strict=True) if colour == "G"]
    out = np.empty((h // 2, w // 2, 3), np.float32)
    out[..., 0] = quads[p.index("R")]
    out[..., 1] = (greens[0] + greens[1]) * np.float32(0.5)
    out[..., 2] = quads[p.index("B")]
    return out


# --------------------------------------------------------------------------------------------- plausibility

#: 0-based indices of the bottom row, white to black (X-Rite ColorChecker 24 layout).
GREY_ROW = (18, 19, 20, 21, 22, 23)
#: Row 3, the saturated patches, and the camera channel each must have highest (+) or lowest (-) after
#: white balance: blue, green, red have their own channel highest; yellow, magenta, cyan the opposite lowest.
PRIMARY_ORDER = ((12, 2, +1), (13, 1, +1), (14, 0, +1), (15, 2, -1), (16, 1, -1), (17, 0, -1))
#: Largest |entry| of a plausible 3x3 colour correction matrix (camera matrices stay within about +-3).
MAX_CCM_ENTRY = 5.0
#: Each grey from neutral 8 down must be at most this fraction of the one above it (reference: ~0.5-0.6).
GREY_STEP_RATIO = 0.85
#: Largest chroma of a balanced grey, max/min channel - 1.
MAX_GREY_CHROMA = 0.25


def plausibility_problems(result: ColorResult) -> list[str]:
    """Why the measured patches are not a ColorChecker 24 (empty when plausible): the grey row's luminance
    order, its neutrality after white balance, the hue order of the primaries row, and the CCM's entries."""
    problems: list[str] = []
    balanced = result.camera * result.wb_gains
    luma = balanced.sum(axis=1)
    greys = [luma[i] for i in GREY_ROW]
    steps = [greys[k + 1] / greys[k] if greys[k] > 0 else np.inf for k in range(1, len(greys) - 1)]
    if not (greys[0] >= 0.95 * greys[1] and all(s <= GREY_STEP_RATIO for s in steps)):
        problems.append("the bottom row is not a grey ramp white to black (luminance "
                        + ", ".join(f"{v:.3g}" for v in greys) + ")")
    chroma = [float(balanced[i].max() / balanced[i].min() - 1) if balanced[i].min() > 0 else np.inf
              for i in NEUTRAL_PATCHES]
    if max(chroma) > MAX_GREY_CHROMA:
        problems.append(f"the grey patches are not neutral after white balance (chroma up to {max(chroma):.2f}, "
                        f"allowed {MAX_GREY_CHROMA})")
    wrong = [result.names[i] for i, channel, sign in PRIMARY_ORDER
             if int(np.argmax(sign * balanced[i])) != channel]
    if len(wrong) > 1:
        problems.append(f"the primaries' hues are out of order ({', '.join(wrong)})")
    worst = float(np.max(np.abs(result.ccm)))
    if not worst <= MAX_CCM_ENTRY:
        problems.append(f"the colour matrix has an entry of {worst:.3g} (allowed |m| <= {MAX_CCM_ENTRY:g})")
    return problems
