"""EMVA 1288 (Release 4.0 Linear) result types: one channel's figures and the photon transfer data behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class SensorAnalysisError(ValueError):
    """The frames cannot give an EMVA 1288 result (one exposure only, no darks, mismatched sizes...)."""


@dataclass
class PhotonTransferCurve:
    """The per-exposure data behind a channel's result (all above dark)."""

    exposure_s: np.ndarray
    mean_dn: np.ndarray  # mu_y - mu_y.dark
    variance_dn2: np.ndarray  # sigma2_y - sigma2_y.dark
    dark_mean_dn: np.ndarray  # mu_y.dark at each exposure (absolute DN)
    raw_mean_dn: np.ndarray  # mu_y (absolute DN, black included)
    photons: np.ndarray | None = None  # mean photons per pixel, when known (EMVA descriptor)
    gain_fit: tuple[int, int] = (0, 0)  # index range [first, last] of the K fit
    linearity_fit: tuple[int, int] = (0, 0)
    saturation_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "exposure_s": self.exposure_s.tolist(), "mean_dn": self.mean_dn.tolist(),
            "variance_dn2": self.variance_dn2.tolist(), "dark_mean_dn": self.dark_mean_dn.tolist(),
            "gain_fit": list(self.gain_fit), "linearity_fit": list(self.linearity_fit),
            "saturation_index": self.saturation_index,
        }
        if self.photons is not None:
            out["photons"] = self.photons.tolist()
        return out


@dataclass
class SensorChannelResult:
    """EMVA 1288 figures of one channel. DN are digital numbers of the input frames."""

    channel: str
    system_gain_dn_per_e: float
    read_noise_dn: float
    read_noise_e: float
    clip_level_dn: float | None
    mu_y_sat_dn: float
    linearity_error_pct: float
    dsnu_e: float
    prnu_pct: float
    dsnu_highpass_e: float = float("nan")
    prnu_highpass_pct: float = float("nan")
    linearity_error_min_pct: float = float("nan")
    linearity_error_max_pct: float = float("nan")
    saturation_capacity_e: float = float("nan")
    excluded_px: int = 0  # pixels of the channel left out of every statistic (``exclude_mask``: defect pixels)
    curve: PhotonTransferCurve | None = field(default=None, repr=False)

    #: Keys of ``to_dict`` (the CLI's JSON per channel).
    KEYS = ("system_gain_dn_per_e", "read_noise_dn", "read_noise_e", "clip_level_dn", "mu_y_sat_dn",
            "linearity_error_pct", "dsnu_e", "prnu_pct")

    def to_dict(self, *, curve: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {k: _json_number(getattr(self, k)) for k in self.KEYS}
        out["linearity_error_min_pct"] = _json_number(self.linearity_error_min_pct)
        out["linearity_error_max_pct"] = _json_number(self.linearity_error_max_pct)
        out["saturation_capacity_e"] = _json_number(self.saturation_capacity_e)
        out["dsnu_highpass_e"] = _json_number(self.dsnu_highpass_e)
        out["prnu_highpass_pct"] = _json_number(self.prnu_highpass_pct)
        out["excluded_px"] = int(self.excluded_px)
        if curve and self.curve is not None:
            out["curve"] = self.curve.to_dict()
        return out


def _json_number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
