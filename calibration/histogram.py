"""Histograms: the reference of DESIGN 7's table, the phone's compared bin by bin, and an overlay plot.

Reference: every pixel counted, 256 bins of the preview luma Y' (``calibration.zebra.preview_luma``)
or 1024 bins of raw DN (10-bit codes), with ``np.bincount``.

Comparison (phone against reference, counts per bin):

- ``l1``: sum over bins of |phone - reference| (counts);
- ``l1_normalised``: half the L1 distance between the two histograms each normalised to sum 1 -- the
  total variation distance, the fraction of counts that sit in the wrong bin (0 equal, 1 disjoint);
- ``max_bin_diff``: the largest |phone - reference| of one bin (counts);
- ``shift_bins``: the integer shift s (|s| <= ``max_shift``) maximising the cross-correlation
  sum_k phone[k] reference[k - s]: +1 when the phone counts every value one bin too high.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from calibration.zebra import preview_luma

LUMA_BINS = 256
RAW_BINS = 1024
#: Largest shift tried when looking for the best alignment of two histograms.
MAX_SHIFT_BINS = 16


def _bincount(values: np.ndarray, bins: int, what: str) -> np.ndarray:
    flat = np.asarray(values).ravel()
    if flat.size and int(flat.max()) >= bins:
        raise ValueError(f"{what} histogram: value {int(flat.max())} above the top bin {bins - 1}")
    return np.bincount(flat, minlength=bins).astype(np.int64)


def luma_histogram(preview: np.ndarray) -> np.ndarray:
    """256 bins of Y' of the 8-bit preview (RGB, or its luma): counts of all pixels (int64)."""
    return _bincount(preview_luma(np.asarray(preview)), LUMA_BINS, "preview")


def raw_histogram(cfa_data: np.ndarray) -> np.ndarray:
    """1024 bins of raw DN (10-bit codes) of a CFA frame: counts of all samples (int64)."""
    data = np.asarray(cfa_data)
    if not np.issubdtype(data.dtype, np.unsignedinteger):
        raise ValueError(f"raw histogram needs unsigned integer DN, got {data.dtype}")
    return _bincount(data, RAW_BINS, "raw")


def best_shift(phone: np.ndarray, reference: np.ndarray, max_shift: int = MAX_SHIFT_BINS) -> int:
    """The integer shift s maximising sum_k phone[k] reference[k - s] over |s| <= max_shift (ties: smallest |s|)."""
    p = np.asarray(phone, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    n = len(r)
    corr = np.correlate(p, r, mode="full")  # index n - 1 + s holds sum_k p[k] r[k - s]
    shifts = np.arange(-(n - 1), n)
    keep = np.abs(shifts) <= max_shift
    shifts, corr = shifts[keep], corr[keep]
    best = corr.max()
    candidates = shifts[corr >= best - 1e-9 * max(abs(best), 1.0)]
    return int(candidates[np.argmin(np.abs(candidates))])


def compare_histograms(phone: Sequence[int] | np.ndarray, reference: Sequence[int] | np.ndarray, *,
                       max_shift: int = MAX_SHIFT_BINS) -> dict[str, Any]:
    """The phone's histogram against the reference, bin by bin (see the module docstring)."""
    p = np.asarray(phone, dtype=np.int64)
    r = np.asarray(reference, dtype=np.int64)
    if p.shape != r.shape or p.ndim != 1:
        raise ValueError(f"histograms differ in bins: phone {p.shape}, reference {r.shape}")
    diff = np.abs(p - r)
    sp, sr = int(p.sum()), int(r.sum())
    tv = 0.5 * float(np.abs(p / sp - r / sr).sum()) if sp and sr else (0.0 if sp == sr else 1.0)
    return {"l1": int(diff.sum()), "l1_normalised": tv, "max_bin_diff": int(diff.max()),
            "shift_bins": best_shift(p, r, max_shift), "bins": int(len(r)),
            "phone_total": sp, "reference_total": sr}


def plot_histograms(phone: Sequence[int] | np.ndarray, reference: Sequence[int] | np.ndarray,
                    *, title: str = "Histogram: phone vs reference",
                    log: bool = False) -> bytes:
    """The two histograms overlaid (reference filled, phone as a line), as PNG bytes.
    """
    from calibration.figures import figure_png, new_figure

    p = np.asarray(phone, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    bins = np.arange(len(r))
    fig, ax = new_figure(figsize=(7.0, 3.6), dpi=110)
    ax.fill_between(bins, r, step="mid", color="0.75", label="reference (same frame)")
    ax.step(bins, p, where="mid", color="tab:red", lw=1.0, label="phone")
    stats = compare_histograms(p.astype(np.int64), r.astype(np.int64))
    ax.set_title(f"{title}\nL1 {stats['l1']} counts, {100 * stats['l1_normalised']:.3f} % misplaced, "
                 f"best shift {stats['shift_bins']:+d} bins", fontsize=9)
    ax.set_xlabel("Y' (8-bit)" if len(r) == 256 else "raw DN" if len(r) == 1024 else "bin")
    ax.set_ylabel("pixels")
    if log:
        ax.set_yscale("log")
    ax.set_xlim(-0.5, len(r) - 0.5)
    ax.legend(fontsize=8)
    return figure_png(fig, tight=True)
