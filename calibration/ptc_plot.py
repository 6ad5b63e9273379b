"""Photon transfer curve plot (EMVA 1288 4.0, the sigma2_y vs mu_y graph): log-log, per channel, with the fit."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calibration.emva1288 import SensorChannelResult  # noqa: E402
from calibration.figures import figure_bytes, new_figure  # noqa: E402

_COLOURS = {"R": "tab:red", "Gr": "tab:green", "Gb": "olivedrab", "B": "tab:blue", "Y": "black"}


def plot_ptc(results: Mapping[str, SensorChannelResult], fmt: str = "png", *,
             title: str = "Photon transfer curve (EMVA 1288)") -> bytes:
    """The photon transfer curve of every channel, as image bytes (``fmt``: png, svg or pdf).

    Temporal variance above dark against mean above dark (DN, log-log); a line for each channel's fit
    sigma2 = K mu over its fit range, extended to saturation; saturation marked with a ring.
    """
    fig, ax = new_figure(figsize=(7.0, 5.0), dpi=110)
    for name, res in results.items():
        curve = res.curve
        if curve is None:
            continue
        colour = _COLOURS.get(name)
        x, y = np.asarray(curve.mean_dn), np.asarray(curve.variance_dn2)
        ok = (x > 0) & (y > 0)
        ax.loglog(x[ok], y[ok], "o", ms=4, color=colour, label=f"{name}: K = {res.system_gain_dn_per_e:.4g} DN/e-")
        x_sat = float(x[curve.saturation_index])
        if ok.any() and x_sat > 0:
            xs = np.geomspace(float(x[ok].min()), x_sat, 50)
            ax.loglog(xs, res.system_gain_dn_per_e * xs, "-", lw=1, color=colour, alpha=0.7)
        s = curve.saturation_index
        if x[s] > 0 and y[s] > 0:
            ax.loglog([x[s]], [y[s]], "o", ms=11, mfc="none", mec=colour or "black", mew=1.5)
    ax.set_xlabel("mean above dark, mu_y - mu_y.dark (DN)")
    ax.set_ylabel("temporal variance above dark, sigma2_y - sigma2_y.dark (DN^2)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    handles, _labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", fontsize=8, title="ring: saturation (variance peak)", title_fontsize=8)
    return figure_bytes(fig, fmt, tight=True)
