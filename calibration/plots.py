"""Plots of shading maps, lateral CA fields and colour patches (``calibration.figures``): PNG bytes out.

Each function returns the encoded image; the caller writes it (atomically) where it wants.
"""

from __future__ import annotations

import colour
import numpy as np
from matplotlib.patches import Rectangle

from calibration.chromatic import LateralCaResult
from calibration.color import ColorResult
from calibration.figures import figure_png, new_figure
from calibration.shading import ShadingResult, map_sample_positions, radial_model

__all__ = ["figure_png", "shading_png", "lateral_ca_png", "color_png", "srgb_encode"]

_CHANNEL_COLOURS = {"R": "tab:red", "Gr": "tab:green", "Gb": "olivedrab", "G": "tab:green", "B": "tab:blue",
                    "Y": "black"}


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding of linear values, clipped to 0..1."""
    return colour.models.eotf_inverse_sRGB(np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0))


def shading_png(result: ShadingResult, *,
                title: str = "Lens shading gain map (Android LENS_SHADING_MAP)") -> bytes:
    """Heat maps of the four channels' gains over the frame and the radial falloff with its fit."""
    w, h = result.image_size
    xs, ys = map_sample_positions((w, h), result.grid)
    fig, axes = new_figure(2, 3, figsize=(13.0, 6.5), dpi=100)
    vmax = float(result.gain_map.max())
    for k, name in enumerate(result.channels):
        ax = axes[k // 2, k % 2]
        im = ax.imshow(result.gain_map[..., k], extent=(-0.5, w - 0.5, h - 0.5, -0.5), vmin=1.0, vmax=vmax,
                       cmap="viridis", interpolation="bilinear")
        ax.plot(*np.meshgrid(xs, ys), "k.", ms=2)
        android = ("R", "G_even", "G_odd", "B")[k]
        label = android if name == android else f"{android} ({name})"
        ax.set_title(f"{label}: max gain {result.gain_map[..., k].max():.3f}")
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
        fig.colorbar(im, ax=ax, shrink=0.85, label="gain")
    ax = axes[0, 2]
    gx, gy = np.meshgrid(xs, ys)
    for k, name in enumerate(result.channels[:4]):
        fit = result.radial.get(name)
        if fit is None or name in result.channels[:k]:
            continue
        colour = _CHANNEL_COLOURS.get(name)
        r = np.hypot(gx - fit.center_px[0], gy - fit.center_px[1]) / fit.radius_norm_px
        ax.plot(r.ravel(), 1.0 / result.gain_map[..., k].ravel(), ".", ms=3, color=colour,
                label=f"{name} map")
        rr = np.linspace(0.0, float(r.max()), 100)
        ax.plot(rr, radial_model(rr, fit.k) * fit.i0 / result.peak_signal_dn[name], "-", lw=1, color=colour)
    ax.set_xlabel("r (fraction of the half-diagonal, from the fitted centre)")
    ax.set_ylabel("relative illumination")
    ax.set_title("radial falloff: map points and lensfun pa fit")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    axes[1, 2].axis("off")
    lines = [f"{name}: corners {result.corner_falloff(name)['mean_pct']:.1f}% "
             f"({result.corner_falloff(name)['mean_ev']:.2f} EV)" for name in dict.fromkeys(result.channels)]
    axes[1, 2].text(0.0, 1.0, "\n".join(["corner falloff (mean of 4):", *lines,
                                          f"flat residual {result.flat_residual_pct:.2f}% RMS"]),
                    va="top", family="monospace", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return figure_png(fig)


def lateral_ca_png(result: LateralCaResult, *, exaggerate: float | None = None,
                   title: str = "Lateral chromatic aberration (relative to G)") -> bytes:
    """The CA displacement field of each plane on a grid over the frame (arrows exaggerated to be seen)."""
    if result.image_size is None:
        w, h = 2 * result.center_px[0] + 1, 2 * result.center_px[1] + 1
    else:
        w, h = result.image_size
    gx, gy = np.meshgrid(np.linspace(0, w - 1, 13), np.linspace(0, h - 1, 9))
    fig, ax = new_figure(figsize=(8.0, 6.0), dpi=100)
    cx, cy = result.center_px
    longest = max((abs(p.scale - 1.0) * np.hypot(w, h) / 2 for p in result.planes.values()), default=0.0)
    scale = exaggerate if exaggerate else (0.06 * max(w, h) / longest if longest > 0 else 1.0)
    for name, p in result.planes.items():
        dx, dy = (p.scale - 1.0) * (gx - cx), (p.scale - 1.0) * (gy - cy)
        ax.quiver(gx, gy, dx * scale, dy * scale, angles="xy", scale_units="xy", scale=1.0,
                  color=_CHANNEL_COLOURS.get(name, "gray"), width=0.003,
                  label=f"{name}/G: {p.scale_ppm:+.0f} ppm, "
                        f"corner {result.corner_shift_px(name) or 0:.2f} px")
    ax.plot([cx], [cy], "k+", ms=12)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_title(f"{title}; arrows x{scale:.0f}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return figure_png(fig)


def color_png(result: ColorResult, *, title: str = "ColorChecker: reference / before / after") -> bytes:
    """Each patch: reference on top, before (balanced only) bottom-left, after the CCM bottom-right; dE00."""
    fig, ax = new_figure(figsize=(10.0, 7.0), dpi=100)
    ref, before, after = (srgb_encode(v) for v in (result.reference, result.balanced, result.corrected))
    for i in range(len(ref)):
        r, c = divmod(i, 6)
        x0, y0 = c * 1.1, r * 1.1
        ax.add_patch(Rectangle((x0, y0), 1.0, 0.5, color=ref[i]))
        ax.add_patch(Rectangle((x0, y0 + 0.5), 0.5, 0.5, color=before[i]))
        ax.add_patch(Rectangle((x0 + 0.5, y0 + 0.5), 0.5, 0.5, color=after[i]))
        text_colour = "white" if float(np.mean(ref[i])) < 0.5 else "black"
        ax.text(x0 + 0.5, y0 + 0.25, f"{result.delta_e_before[i]:.1f} -> {result.delta_e_after[i]:.1f}",
                ha="center", va="center", fontsize=8, color=text_colour)
        if not result.used[i]:
            ax.text(x0 + 0.5, y0 + 0.75, "clipped", ha="center", va="center", fontsize=8, color="red")
    ax.set_xlim(-0.1, 6.6)
    ax.set_ylim(4.4, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{title}\nmean dE00 {result.delta_e_before.mean():.2f} -> {result.delta_e_after.mean():.2f}"
                 f" (max {result.delta_e_before.max():.2f} -> {result.delta_e_after.max():.2f})")
    fig.tight_layout()
    return figure_png(fig)
