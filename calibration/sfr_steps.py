"""The array steps of the e-SFR (ISO 12233:2023, as in P. D. Burns' sfrmat): orientation, levels and noise, the
windowed row centroids, the projection into the super-sampled ESF, the coarse rise, the tails' reach, the LSF
window and the MTF's divisors -- in numpy (the reference) and, where ``calibration._sfrk`` is built, through its
C kernels. ``calibration.sfr`` puts them together (its module notes describe every step).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

try:  # the optional compiled kernels (setup.py); the numpy below computes the same without them
    from calibration import _sfrk as _kernel
except ImportError:  # pragma: no cover - a machine without a C compiler
    _kernel = None
if _kernel is not None and not hasattr(_kernel, "measure"):  # pragma: no cover - built from older sources
    _kernel = None  # (rebuild: pip install -e .) the numpy path, not a missing function halfway through an edge

#: sfrmat's ``fir2fix`` limit on the derivative correction.
MAX_CORRECTION = 10.0
#: The tails' reach (``_tail_extent_bins``): the ESF's ``TAIL_SMOOTH_PX`` moving average leaving its plateau by
#: more than ``LSF_TAIL_FRACTION`` of the contrast (and 5 sigma of its noise).
LSF_TAIL_FRACTION = 0.0025
TAIL_SMOOTH_PX = 4
#: Window names as the C kernel numbers them.
_WINDOW_KIND = {"tukey": 0, "hamming": 1, "none": 2}


class SfrError(ValueError):
    """The ROI cannot be measured: too small, no edge, edge too flat or too steep, not straight."""


def _window(u: np.ndarray, kind: str, alpha: float) -> np.ndarray:
    """Window of normalised offset ``u`` (0 at the centre, +-1 at the ends, 0 beyond)."""
    au = np.abs(u)
    if kind == "tukey":
        flat = 1.0 - alpha
        t = au - flat
        t *= 1.0 / max(alpha, 1e-12)
        np.clip(t, 0.0, 1.0, out=t)
        t *= np.pi
        w = np.cos(t, out=t)
        w += 1.0
        w *= 0.5
    elif kind == "hamming":
        w = 0.54 + 0.46 * np.cos(np.pi * np.minimum(au, 1.0))
    elif kind == "none":
        w = np.ones_like(au)
    else:
        raise ValueError(f"window must be 'hamming', 'tukey' or 'none', got {kind!r}")
    w[au > 1.0] = 0.0
    return w


def _median(x: np.ndarray) -> float:
    """Median (upper, for even sizes) through one ``np.partition``: less overhead than ``np.median``."""
    flat = np.ravel(x)
    k = flat.size // 2
    return float(np.partition(flat, k)[k])


def _orient(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """Transpose a horizontal edge to vertical (True when transposed): the larger end-to-end step wins."""
    h, w = a.shape
    kx = max(1, w // 8)
    ky = max(1, h // 8)
    step_x = abs(float(a[:, -kx:].mean() - a[:, :kx].mean()))
    step_y = abs(float(a[-ky:, :].mean() - a[:ky, :].mean()))
    if step_y > step_x:
        return a.T, True
    return a, False


def _noise_sigma(a: np.ndarray) -> float:
    """Pixel noise from the median absolute difference along the edge direction (rows)."""
    d = a[1::2, ::4] - a[:-1:2, ::4]
    return 1.4826 * _median(np.abs(d)) / math.sqrt(2.0)


def _prep_numpy(a: np.ndarray) -> tuple[np.ndarray, bool, bool, float, float, float, float, np.ndarray]:
    """The ROI turned so the edge runs down the rows and made dark-to-light (C order), whether it was
    transposed and negated, the plateau levels after that, the pixel noise, the largest |value| and the
    sums of the turned ROI's rows."""
    if not np.isfinite(a).all():
        raise SfrError("ROI holds non-finite values")
    a, transposed = _orient(a)
    a = np.ascontiguousarray(a)  # one copy for a transposed edge, none otherwise; ravel() below is free
    k = max(1, a.shape[1] // 8)
    left = _median(a[:, :k].mean(axis=1))
    right = _median(a[:, -k:].mean(axis=1))
    negated = left > right
    if negated:
        a = -a
        left, right = -left, -right
    return a, transposed, negated, left, right, _noise_sigma(a), float(np.abs(a).max()), a.sum(axis=1)


def _prep_kernel(a: np.ndarray) -> tuple[np.ndarray, bool, bool, float, float, float, float, np.ndarray]:
    """``_prep_numpy`` in one C pass (``calibration._sfrk.prep``); a transposed (Fortran-order) view is read
    as its C-order base, not copied first."""
    swapped = not a.flags.c_contiguous and a.T.flags.c_contiguous
    src = a.T if swapped else np.ascontiguousarray(a)
    h, w = src.shape
    out = np.empty(h * w)
    row_sums = np.empty(max(h, w))
    got = _kernel.prep(src, h, w, out, row_sums)
    if got is None:
        raise SfrError("ROI holds non-finite values")
    turned, negated, left, right, noise, scale = got
    nlin, npix = (w, h) if turned else (h, w)
    return (out.reshape(nlin, npix), bool(turned) != swapped, bool(negated), left, right, noise, scale,
            row_sums[:nlin])


def _project_rows(a: np.ndarray, edge_x: np.ndarray, row0: int, row_step: int, rows: int, oversample: int,
                  nbin: int, phases: bool, use_kernel: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``_project`` of rows ``row0, row0 + row_step, ...`` (``rows`` of them); ``edge_x`` has every row's."""
    if not use_kernel:
        sel = slice(row0, row0 + (rows - 1) * row_step + 1, row_step)
        return _project(a[sel], edge_x[sel], oversample, nbin, phases)
    counts = np.empty(nbin, dtype=np.int64)
    sums = np.empty(nbin)
    where = np.empty(nbin) if phases else None
    _kernel.project(a, a.shape[0], a.shape[1], row0, row_step, rows, edge_x, oversample, nbin, counts, sums,
                    where)
    return counts, sums, where


def _esf_numpy(counts: np.ndarray, sums: np.ndarray,
               phase_sums: np.ndarray | None) -> tuple[np.ndarray, int]:
    """The ESF from the bins' counts and sums: empty bins on the line between their filled neighbours (sfrmat
    ``project2``), the ends at the nearest level; and the number of empty bins inside (-1: none filled)."""
    nbin = counts.size
    filled = counts > 0
    where = np.nonzero(filled)[0]
    if where.size == 0:
        return np.zeros(nbin), -1
    inner_empty = int(np.count_nonzero(~filled[where[0]:where[-1] + 1]))
    values = sums[where] / counts[where]
    if phase_sums is not None and where.size > 2:
        # each bin's mean sits at its samples' mean distance, off the bin centre by delta (bin units):
        # moved back to the centre along the local slope (first order, no interpolation blur)
        position = where + phase_sums[where] / counts[where] - 0.5
        values = values - np.gradient(values, position) * (position - where)
    return np.interp(np.arange(nbin), where, values), inner_empty


@lru_cache(maxsize=16)
def _spectrum_axis(nbin: int, correct_binning: bool) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (cycles per bin) of an ``nbin`` rfft and what the MTF is divided by there: the derivative
    filter's response ``sinc(k/N)`` (sfrmat ``fir2fix``) and with ``correct_binning`` the bin's own, limited
    to ``MAX_CORRECTION``."""
    kk = np.arange(nbin // 2 + 1) / nbin
    response = np.sinc(kk) ** (2 if correct_binning else 1)
    divisor = np.maximum(response, 1.0 / MAX_CORRECTION)
    kk.flags.writeable = False
    divisor.flags.writeable = False
    return kk, divisor


def _project(a: np.ndarray, edge_x: np.ndarray, oversample: int, nbin: int,
             phases: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Counts and sums of ``a``'s pixels in bins of 1/``oversample`` px of x-distance to the edge, and with
    ``phases`` the sum of each sample's position within its bin (0..1, bin units).

    Bin ``j`` of the ``nbin`` returned holds distances ``[(j - nbin/2), (j + 1 - nbin/2)) / oversample``:
    the edge sits on the boundary ``nbin/2``. Because pixel centres are integers, the bin of (r, c) is
    ``c * oversample + floor(-edge_x[r] * oversample)``: one floor per row, not per pixel (and one
    position within the bin per row).
    """
    nlin, npix = a.shape
    scaled = -edge_x * oversample
    off = np.floor(scaled).astype(np.int64)
    base = int(off.min())
    idx = (np.arange(npix, dtype=np.int64) * oversample)[None, :] + (off - base)[:, None]
    total = int((npix - 1) * oversample + off.max() - base + 1)
    flat_idx = idx.ravel()
    # every row puts one sample in each of its bins (shift, shift + oversample, ...): the counts are the rows'
    # shift histogram spread along a comb, not a second pass over the pixels
    comb = np.zeros((npix - 1) * oversample + 1, dtype=np.int64)
    comb[::oversample] = 1
    counts_all = np.convolve(np.bincount(off - base), comb)
    sums_all = np.bincount(flat_idx, weights=a.ravel(), minlength=total)
    first = -(nbin // 2) - base  # array index of bin 0
    counts = np.zeros(nbin, dtype=np.int64)
    sums = np.zeros(nbin)
    where = np.zeros(nbin) if phases else None
    lo, hi = max(first, 0), min(first + nbin, total)
    if hi > lo:
        counts[lo - first:hi - first] = counts_all[lo:hi]
        sums[lo - first:hi - first] = sums_all[lo:hi]
        if where is not None:
            frac = np.broadcast_to((scaled - off)[:, None], idx.shape).ravel()
            where[lo - first:hi - first] = np.bincount(flat_idx, weights=frac, minlength=total)[lo:hi]
    return counts, sums, where


def _tail_extent_bins(esf: np.ndarray, counts: np.ndarray, oversample: int, noise: float,
                      contrast: float) -> int:
    """Farthest distance (bins) from the centre where the 4 px moving average of ``esf`` still differs
    from its plateau (median of the outer eighth on that side) by more than the tail threshold; the
    noise part of the threshold follows the number of pixels actually averaged at each place."""
    n = esf.size
    k = min(TAIL_SMOOTH_PX * oversample, max(n // 8, 1))
    csum = np.concatenate(([0.0], np.cumsum(esf * (counts > 0))))
    nsum = np.concatenate(([0], np.cumsum(counts > 0)))
    psum = np.concatenate(([0], np.cumsum(counts)))
    filled = nsum[k:] - nsum[:-k]
    with np.errstate(invalid="ignore", divide="ignore"):
        smooth = (csum[k:] - csum[:-k]) / filled  # mean of the filled bins among esf[j:j + k]
        sigma = noise / np.sqrt(psum[k:] - psum[:-k])  # ~ the mean of that many pixels
    thresh = np.maximum(LSF_TAIL_FRACTION * contrast, 5.0 * sigma)
    thresh[filled < k // 2] = np.inf  # too little data there to call a tail
    centre = n // 2 - k // 2
    m = max(k, n // 8)
    lo, hi = _median(esf[:m]), _median(esf[-m:])
    left = np.nonzero(np.abs(smooth[:centre] - lo) > thresh[:centre])[0]
    right = np.nonzero(np.abs(smooth[centre:] - hi) > thresh[centre:])[0]
    d_left = centre - int(left[0]) if left.size else 0
    d_right = int(right[-1]) if right.size else 0
    return max(d_left, d_right)


def _rise_10_90_px(a: np.ndarray, edge_x: np.ndarray, use_kernel: bool = False) -> float:
    """10-90% rise distance (px, along x) of a coarse ESF (1 px bins, every 2nd row) about ``edge_x``."""
    nlin, npix = a.shape
    if use_kernel:
        return _kernel.rise(a, nlin, npix, edge_x)
    counts, sums, _ = _project(a[::2], edge_x[::2], 1, 2 * npix)
    ok = counts > 0
    esf = sums[ok] / counts[ok]
    pos = np.nonzero(ok)[0].astype(np.float64)
    k = max(1, esf.size // 8)
    lo, hi = esf[:k].mean(), esf[-k:].mean()
    e = (esf - lo) / (hi - lo)
    centre = int(np.argmin(np.abs(e - 0.5)))
    below = np.nonzero(e[:centre + 1] < 0.1)[0]
    above = np.nonzero(e[centre:] > 0.9)[0]
    i, j = (int(below[-1]), centre + int(above[0])) if below.size and above.size else (-1, 0)
    if i < 0 or j < 1 or i + 1 >= e.size:
        return float(npix) / 2.0
    x10 = pos[i] + (0.1 - e[i]) * (pos[i + 1] - pos[i]) / (e[i + 1] - e[i])
    x90 = pos[j - 1] + (0.9 - e[j - 1]) * (pos[j] - pos[j - 1]) / (e[j] - e[j - 1])
    return max(float(x90 - x10), 0.5)


def _row_centroids(a: np.ndarray, centre_x: np.ndarray, half_width_px: float, kind: str,
                   alpha: float, use_kernel: bool = False) -> np.ndarray:
    """Per-row centroid (px) of the derivative ``[-0.5, 0.5]`` of ``a`` (difference j sits at x = j + 0.5)
    under a window of half-width ``half_width_px`` centred on ``centre_x``; only that band is read."""
    nlin, npix = a.shape
    if use_kernel:
        loc = np.empty(nlin)
        _kernel.centroids(a, nlin, npix, centre_x, half_width_px, _WINDOW_KIND[kind], alpha, loc)
        return loc
    width = min(2 * int(math.ceil(half_width_px)) + 3, npix)
    start = np.clip(np.round(centre_x).astype(np.int64) - width // 2, 0, npix - width)
    flat = (start + np.arange(nlin) * npix)[:, None] + np.arange(width)[None, :]
    band = a.ravel()[flat]
    d = band[:, 1:] - band[:, :-1]
    x = (start[:, None] + 0.5) + np.arange(width - 1)[None, :]
    u = x - centre_x[:, None]
    u *= 1.0 / half_width_px
    w = _window(u, kind, alpha)
    if kind == "tukey":
        outside = w <= 0
        w *= 0.95
        w += 0.05  # sfrmat5: keeps the location stable
        w[outside] = 0.0
    dw = d * w
    total = dw.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        loc = np.einsum("ij,ij->i", dw, x) / total
    loc[~(total > 0)] = np.nan
    return loc


def _plateau_shading(a: np.ndarray, edge_x: np.ndarray, clear_px: float) -> np.ndarray | None:
    """A smooth illumination over the ROI, ``1 + p (x - xc) + q (y - yc)``, from both ESF plateaus.

    The pixels more than ``clear_px`` from the edge on either side are modelled as ``c_side (1 + p x' + q y')``
    (one multiplicative shading for both sides, as vignetting or an uneven light is): a linear least-squares
    fit with the side levels free, iterated twice for the products. None when a side has too few pixels."""
    nlin, npix = a.shape
    x = np.arange(npix, dtype=np.float64)[None, :] - (npix - 1) / 2.0
    y = np.arange(nlin, dtype=np.float64)[:, None] - (nlin - 1) / 2.0
    d = np.arange(npix, dtype=np.float64)[None, :] - edge_x[:, None]
    left, right = d < -clear_px, d > clear_px
    if min(np.count_nonzero(left), np.count_nonzero(right)) < 2 * nlin:
        return None
    xx = np.broadcast_to(x, a.shape)
    yy = np.broadcast_to(y, a.shape)
    vals = np.concatenate([a[left], a[right]])
    side = np.concatenate([np.zeros(np.count_nonzero(left)), np.ones(np.count_nonzero(right))])
    xs = np.concatenate([xx[left], xx[right]])
    ys = np.concatenate([yy[left], yy[right]])
    level = np.where(side > 0, float(a[right].mean()), float(a[left].mean()))
    p = q = 0.0
    for _ in range(2):
        design = np.column_stack([1.0 - side, side, level * xs, level * ys])
        (c_left, c_right, p, q), *_ = np.linalg.lstsq(design, vals, rcond=None)
        level = np.where(side > 0, c_right, c_left)
    return 1.0 + p * x + q * y


@lru_cache(maxsize=64)
def measure_options(max_order: int, select: bool, kind: str, alpha: float, passes: int, oversample: int,
                    span_auto: bool, rises: float, min_half_px: float, integer_cycles: bool, min_roi_px: int,
                    min_contrast_to_noise: float, max_rms_px: float, max_freq: float, at_freq: float) -> np.ndarray:
    """The options of ``_kernel.measure`` as it reads them (17 float64, module.c's order), built once per set."""
    opts = np.array([max_order, select, _WINDOW_KIND[kind], alpha, passes, oversample, span_auto, rises, min_half_px,
                     LSF_TAIL_FRACTION, TAIL_SMOOTH_PX, integer_cycles, min_roi_px, min_contrast_to_noise,
                     max_rms_px, max_freq, at_freq], dtype=np.float64)
    opts.flags.writeable = False
    return opts


def measure_kernel(a: np.ndarray, opts: np.ndarray, oversample: int, table: np.ndarray,
                   correct_binning: bool) -> tuple | None:
    """The default e-SFR path from the ROI ``a`` to its MTF in one C call (``_kernel.measure``: prep, the edge's
    location and fit, the checks, whole phase cycles, ESF, LSF, and for a power-of-two LSF length its rfft and the
    MTF); a transposed (Fortran-order) view is read as its C-order base. None when any check refuses the edge (the
    step path then names the reason), else ``(transposed, negated, left, right, noise, scale, order, coef_t, centre,
    scale_t, slope_t, bend, rms, rise_px, rows_kept, inner_empty, half, esf, lsf, mtf)`` where ``mtf`` is ``(freq,
    mtf, mtf50, mtf_at, reported)`` (as ``mtf_kernel``) or None when the caller computes it."""
    swapped = not a.flags.c_contiguous and a.T.flags.c_contiguous
    src = a.T if swapped else np.ascontiguousarray(a)
    h, w = src.shape
    big = max(h, w)
    nbig = oversample * big
    coef = np.empty(6)
    bins = np.empty(2 * nbig)  # the ESF and the LSF
    spectrum = np.empty(2 * (nbig // 2 + 1))  # the frequencies and the MTF
    nf = nbig // 2 + 1
    got = _kernel.measure(src, h, w, opts, table, table.shape[1], np.empty(h * w), np.empty(big), coef,
                          np.empty(big, dtype=np.uint8), np.empty(big), np.empty(nbig, dtype=np.int64), bins[:nbig],
                          bins[nbig:], _mtf_tables(oversample * w, correct_binning),
                          _mtf_tables(oversample * h, correct_binning), spectrum[:nf], spectrum[nf:])
    if got is None:
        return None
    (turned, negated, left, right, noise, scale, order, centre, scale_t, slope_t, bend, rms, rise, nkeep, inner, half,
     mtf50, mtf_at, reported) = got
    nbin = oversample * (h if turned else w)
    mtf = (spectrum[:reported], spectrum[nf:nf + reported], mtf50, mtf_at, reported) if reported >= 0 else None
    return (bool(turned) != swapped, bool(negated), left, right, noise, scale, order, coef[:order + 1], centre,
            scale_t, slope_t, bend, rms, rise, nkeep, inner, half, bins[:nbin], bins[nbig:nbig + nbin], mtf)


@lru_cache(maxsize=32)
def _mtf_tables(nbin: int, correct_binning: bool) -> np.ndarray | None:
    """What ``_kernel.measure`` computes the MTF of an ``nbin`` LSF with: its rfft's twiddles (``_twiddles``),
    frequencies and divisors (``_spectrum_axis``) in one array; None unless ``nbin`` is a power of two >= 4."""
    if nbin < 4 or nbin & (nbin - 1):
        return None
    kk, divisor = _spectrum_axis(nbin, correct_binning)
    table = np.concatenate([_twiddles(nbin), kk, divisor])
    table.flags.writeable = False
    return table


def mtf_kernel(lsf: np.ndarray, correct_binning: bool, pitch_px: float, max_freq: float,
               at_freq: float) -> tuple[np.ndarray, np.ndarray, float, float, int] | None:
    """Steps 7-8 in one C call: the LSF's rfft (in C for a power-of-two length, else ``np.fft.rfft``),
    frequencies (cycles/px), MTF, MTF50, the MTF at ``at_freq`` and how many frequencies are <= ``max_freq``; None
    when the LSF integrates to zero."""
    nbin = lsf.size
    n = nbin // 2 + 1
    kk, divisor = _spectrum_axis(nbin, correct_binning)
    freq, mtf = np.empty(n), np.empty(n)
    if nbin >= 4 and nbin & (nbin - 1) == 0:
        got = _kernel.mtf_lsf(lsf, nbin, _twiddles(nbin), kk, divisor, pitch_px, max_freq, at_freq, freq, mtf)
    else:
        got = _kernel.mtf(np.fft.rfft(lsf), n, kk, divisor, pitch_px, max_freq, at_freq, freq, mtf)
    if got is None:
        return None
    return freq, mtf, got[0], got[1], got[2]


@lru_cache(maxsize=16)
def _twiddles(nbin: int) -> np.ndarray:
    """``cos(2 pi k / nbin)`` then ``sin(2 pi k / nbin)`` for ``k < nbin / 2``: the C rfft's twiddle factors."""
    angle = 2.0 * np.pi * np.arange(nbin // 2) / nbin
    table = np.concatenate([np.cos(angle), np.sin(angle)])
    table.flags.writeable = False
    return table
