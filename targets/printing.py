"""Printable chart files at physical size: SVG (vector, mm), PNG (raster at a DPI), PDF (vector).

Ink values (black-point compensated): a fill is the sRGB encoding (IEC 61966-2-1) of
(reflectance - BLACK) / (WHITE - BLACK), so the paper (0.9) gets no ink, full black ink (0.03) is
code 0, and between them the print's reflectance is linear in the sRGB-linear value on an sRGB
colour-managed printer. Reflectances beyond the paper and ink (the step chart's densest steps)
clip. A chart used for measurement is measured after printing; the file says what was intended.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import colour
import numpy as np

from targets.base import BLACK, WHITE, Chart

FORMATS = ("svg", "png", "pdf")
#: Largest PNG written, pixels (a 1 m x 1 m chart at 600 dpi is 558 Mpx).
MAX_PNG_PIXELS = 600_000_000


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB transfer function, linear [0,1] -> encoded [0,1]."""
    return colour.models.eotf_inverse_sRGB(np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0))


def ink_linear(reflectance: np.ndarray) -> np.ndarray:
    """sRGB-linear ink value [0,1] printing a reflectance: (r - BLACK) / (WHITE - BLACK), clipped."""
    return np.clip((np.asarray(reflectance, dtype=np.float64) - BLACK) / (WHITE - BLACK), 0.0, 1.0)


def ink(reflectance: np.ndarray) -> np.ndarray:
    """8-bit sRGB fill for a linear reflectance."""
    return np.round(srgb_encode(ink_linear(reflectance)) * 255).astype(np.uint8)


def _hex(reflectance: np.ndarray) -> str:
    r, g, b = ink(reflectance)
    return f"#{r:02x}{g:02x}{b:02x}"


def _num(v: float) -> str:
    s = f"{v:.5f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def chart_svg(chart: Chart) -> str:
    """SVG of the chart: width/height in mm, viewBox in chart mm, one element per shape, painter's order."""
    w, h = _num(chart.width_mm), _num(chart.height_mm)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}mm" height="{h}mm" '
        f'viewBox="0 0 {w} {h}">',
        f"<title>M-Station chart {chart.name} ({w} x {h} mm)</title>",
        f"<desc>{chart.title}; fills: sRGB encoding of (reflectance - {BLACK}) / ({WHITE} - {BLACK})</desc>",
        '<g shape-rendering="crispEdges" stroke="none">',
    ]
    for shape in chart.shapes:
        p, fill = shape.polygon, _hex(shape.reflectance)
        axis_aligned = len(p) == 4 and p[0, 1] == p[1, 1] and p[1, 0] == p[2, 0] and p[2, 1] == p[3, 1] \
            and p[3, 0] == p[0, 0]
        if axis_aligned:
            x0, y0 = p.min(axis=0)
            x1, y1 = p.max(axis=0)
            lines.append(f'<rect x="{_num(x0)}" y="{_num(y0)}" width="{_num(x1 - x0)}" '
                         f'height="{_num(y1 - y0)}" fill="{fill}"/>')
        else:
            pts = " ".join(f"{_num(x)},{_num(y)}" for x, y in p)
            lines.append(f'<polygon points="{pts}" fill="{fill}"/>')
    lines += ["</g>", "</svg>", ""]
    return "\n".join(lines)


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` a temporary file beside ``path``, give it the umask's mode, rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or Path("."))
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a chart file is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def png_size_px(chart: Chart, dpi: float) -> tuple[int, int]:
    """Pixels of the chart's PNG at ``dpi``: round(size_mm / 25.4 * dpi)."""
    return int(round(chart.width_mm / 25.4 * dpi)), int(round(chart.height_mm / 25.4 * dpi))


def write_svg(chart: Chart, path: Path) -> None:
    text = chart_svg(chart)
    _atomic(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_png(chart: Chart, path: Path, dpi: float) -> tuple[int, int]:
    """8-bit sRGB PNG at ``dpi`` (exact area-averaged raster), DPI in its pHYs chunk. Returns (W, H) px."""
    from PIL import Image

    w, h = png_size_px(chart, dpi)
    if w < 1 or h < 1 or w * h > MAX_PNG_PIXELS:
        raise ValueError(f"PNG of {w} x {h} px at {dpi:g} dpi is outside 1 px .. {MAX_PNG_PIXELS} px")
    ppm = dpi / 25.4  # the content's scale is exactly the DPI; the last row/column may be part sheet
    img = np.empty((h, w, 3), dtype=np.uint8)
    band = max(1, (1 << 21) // w)
    lut = np.round(srgb_encode(np.linspace(0.0, 1.0, 4097)) * 255).astype(np.uint8)
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)
        part = chart.raster(0.0, r0 / ppm, ppm, w, r1 - r0)
        img[r0:r1] = lut[np.round(ink_linear(part) * 4096).astype(np.int32)]

    def save(tmp: Path) -> None:
        Image.fromarray(img, "RGB").save(tmp, format="PNG", dpi=(dpi, dpi))

    _atomic(Path(path), save)
    return w, h


def write_pdf(chart: Chart, path: Path) -> None:
    """Vector PDF, one page of the chart's physical size (matplotlib)."""
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    fig = Figure(figsize=(chart.width_mm / 25.4, chart.height_mm / 25.4))
    FigureCanvasPdf(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, chart.width_mm)
    ax.set_ylim(chart.height_mm, 0)
    ax.set_axis_off()
    colours = [ink(s.reflectance) / 255.0 for s in chart.shapes]
    ax.add_collection(PolyCollection([s.polygon for s in chart.shapes], facecolors=colours, edgecolors="none",
                                     linewidths=0, antialiaseds=False))
    meta = {"Title": f"M-Station chart {chart.name}", "Subject": chart.title, "Creator": "m-station"}
    _atomic(Path(path), lambda tmp: fig.savefig(tmp, format="pdf", metadata=meta))


def write_chart(chart: Chart, path: str | Path, dpi: float = 300.0) -> dict:
    """Write the chart to ``path`` in the format its extension names; returns what was written.

    Raises ValueError for an unknown extension or an impossible PNG size.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unknown chart file extension {path.suffix!r}; expected .svg, .png or .pdf")
    out = {"chart": chart.name, "file": str(path), "format": fmt, "width_mm": chart.width_mm,
           "height_mm": chart.height_mm}
    if fmt == "svg":
        write_svg(chart, path)
    elif fmt == "png":
        w, h = write_png(chart, path, dpi)
        out.update(dpi=dpi, width_px=w, height_px=h)
    else:
        write_pdf(chart, path)
    return out
