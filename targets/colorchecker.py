"""ColorChecker 24 (X-Rite / Macbeth): 4 rows of 6 patches, reference data from colour-science.

Reflectance of each patch: ``colour.SDS_COLOURCHECKERS["ColorChecker N Ohta"]`` spectral
reflectance under CIE D65 (``colour.SDS_ILLUMINANTS["D65"]``) with the CIE 1931 2 degree observer,
XYZ normalised so the perfect reflector has Y = 1, to linear sRGB (IEC 61966-2-1, D65 white, no
chromatic adaptation), clipped to [0, 1] (only the cyan patch leaves the sRGB gamut: R -0.033 -> 0).
Patch order is the chart's: row-major from "dark skin" top-left to "black 2 (1.5 D)" bottom-right,
on a black (0.03) sheet as the real chart's frame.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from targets.base import BLACK, Detection, roi_from_quad
from targets.patches import PatchChart

SPECTRAL_SET = "ColorChecker N Ohta"
ROWS, COLUMNS = 4, 6


@lru_cache(maxsize=1)
def colorchecker_reference() -> tuple[tuple[str, ...], np.ndarray]:
    """Patch names (24) in chart order and their linear-sRGB reflectance (24, 3) under D65."""
    import colour  # colour-science: imported here, it is slow to import

    sds = colour.SDS_COLOURCHECKERS[SPECTRAL_SET]
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    illuminant = colour.SDS_ILLUMINANTS["D65"]
    names = tuple(sds.keys())[: ROWS * COLUMNS]
    with warnings.catch_warnings():  # colour-science notes when it aligns the spectra's shapes: harmless
        warnings.filterwarnings("ignore", message=".*[Aa]lign.*")
        xyz = np.array([colour.sd_to_XYZ(sds[n], cmfs, illuminant) for n in names]) / 100.0
    rgb = colour.XYZ_to_RGB(xyz, colour.RGB_COLOURSPACES["sRGB"], apply_cctf_encoding=False)
    return names, np.clip(rgb, 0.0, 1.0)


class ColorCheckerChart(PatchChart):
    name = "colorchecker"
    title = "ColorChecker 24, 4 x 6 patches (colour-science reference, linear sRGB under D65)"
    sheet_reflectance_value = BLACK

    def patch_rects_mm(self) -> np.ndarray:
        """Patch rectangles (24, 4) as x, y, w, h mm in chart order (row-major)."""
        keep = self.fiducial_keepout_mm()
        avail_w = self.width_mm - 2 * self.fiducial_margin_mm
        avail_h = self.height_mm - 2 * keep
        pitch = min(avail_w / (COLUMNS - 0.15), avail_h / (ROWS - 0.15))  # gaps of 15 % of the pitch
        side, gap = 0.85 * pitch, 0.15 * pitch
        if side <= 0:
            raise ValueError(f"colorchecker {self.width_mm} x {self.height_mm} mm: too small for 24 patches")
        x0 = (self.width_mm - COLUMNS * side - (COLUMNS - 1) * gap) / 2
        y0 = (self.height_mm - ROWS * side - (ROWS - 1) * gap) / 2
        i = np.arange(ROWS * COLUMNS)
        return np.stack([x0 + (i % COLUMNS) * pitch, y0 + (i // COLUMNS) * pitch,
                         np.full(i.size, side), np.full(i.size, side)], axis=1)

    def patch_reflectances(self) -> np.ndarray:
        """Linear sRGB (24, 3) of the patches (``colorchecker_reference``)."""
        return colorchecker_reference()[1]

    def features_mm(self) -> dict[str, Any]:
        d = super().features_mm()
        d["names"] = colorchecker_reference()[0]
        return d

    def info(self) -> dict[str, Any]:
        d = super().info()
        names, rgb = colorchecker_reference()
        d["reference"] = f"colour-science {SPECTRAL_SET} spectral data, CIE D65, CIE 1931 2 deg, linear sRGB"
        d["patches"] = [{"index": i, "name": n, "reflectance": [round(float(v), 6) for v in c],
                         "rect_mm": [round(float(v), 4) for v in r]}
                        for i, (n, c, r) in enumerate(zip(names, rgb, self.patch_rects_mm(), strict=True))]
        return d

    def locate_rois(self, detection: Detection, image_shape: tuple[int, ...]) -> None:
        names, rgb = colorchecker_reference()
        for i, (quad, name, refl) in enumerate(zip(self.roi_quads_mm(), names, rgb, strict=True)):
            roi = roi_from_quad(name, quad, detection.homography, image_shape,
                                reflectance=tuple(float(v) for v in refl), extra={"index": i})
            if roi is not None:
                detection.rois.append(roi)
