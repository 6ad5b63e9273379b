"""10-bit RAW integrity (DESIGN 7): every code present, the declared black level, the declared CFA order,
and the RAW10 and DNG of one capture identical.

- Missing codes: on a smooth ramp (a gradient, a defocused step chart, or the frames of a light sweep
  taken together) every 10-bit code between black and clip occurs; a code that never occurs is lost by
  the pipeline. The pattern of the codes that do occur names the fault: all multiples of 4 is 8-bit data
  in a 10-bit container (the 2 least significant bits dropped); codes missing only just above black is
  data sitting above the declared black level.
- Black level: the mean of dark frames per CFA channel (EMVA 1288's mu_y.dark), against the declared one.
- CFA order: from a capture of coloured patches. The two greens of a Bayer quad sit on one diagonal and
  read alike on every colour; of the other diagonal, the site brighter on a red patch (and darker on a
  blue one) is R.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from calibration.emva1288 import channel_slices

BIT_DEPTH = 10
CODES = 1 << BIT_DEPTH
#: Tolerance on the black level (DN) by default.
BLACK_TOLERANCE_DN = 1.5
#: The two diagonals of a 2x2 quad: (0,0)-(1,1) and (0,1)-(1,0).
_DIAGONALS = (((0, 0), (1, 1)), ((0, 1), (1, 0)))
#: Least log-ratio evidence (about 5 %) for a CFA decision.
_MIN_EVIDENCE = 0.05


class RawIntegrityError(ValueError):
    """The data cannot answer the question (no coloured patch, a neutral target, mismatched frames)."""


# --- codes --------------------------------------------------------------------------------------------

def _frames(data: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(data, np.ndarray):
        return [data]
    return [np.asarray(d) for d in data]


#: Pixels counted at a time by ``code_counts`` (its intp temporary: 8 MB).
_COUNT_CHUNK = 1 << 20


def code_counts(data: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Occurrences of every 10-bit code (1024 counts) over one frame or several."""
    counts = np.zeros(CODES, dtype=np.int64)
    for frame in _frames(data):
        if frame.size and int(frame.max()) >= CODES:
            raise RawIntegrityError(f"RAW sample {int(frame.max())} exceeds the 10-bit range 0..{CODES - 1}")
        rows = frame.reshape(-1, frame.shape[-1]) if frame.ndim >= 2 else frame.reshape(1, -1)
        band = max(1, _COUNT_CHUNK // max(1, rows.shape[1]))
        for r in range(0, rows.shape[0], band):  # bincount converts to intp: 400 MB for a whole 50 MP frame
            counts += np.bincount(rows[r:r + band].ravel(), minlength=CODES)
    return counts


def _range(black: float, clip: float) -> tuple[int, int]:
    lo, hi = int(math.ceil(black)), int(math.floor(clip))
    if not 0 <= lo < hi < CODES:
        raise RawIntegrityError(f"code range black {black} .. clip {clip} must lie within 0..{CODES - 1}")
    return lo, hi


def missing_codes(cfa_data: np.ndarray | Sequence[np.ndarray], black: float, clip: float) -> list[int]:
    """Codes between ``black`` and ``clip`` (inclusive) that never occur in the ramp frame(s)."""
    lo, hi = _range(black, clip)
    counts = code_counts(cfa_data)[lo:hi + 1]
    return (np.flatnonzero(counts == 0) + lo).tolist()


def code_report(cfa_data: np.ndarray | Sequence[np.ndarray], black: float, clip: float) -> dict[str, Any]:
    """Missing codes between black and clip and what their pattern says.

    ``constant_lsbs``: how many least significant bits never change among the codes present (2 for
    8-bit data in 10 bits); ``bottom_gap_dn``: codes missing right above ``black`` before the first
    present one (data above the declared black); ``pattern``: the finding in words, or None.
    """
    return code_report_from_counts(code_counts(cfa_data), black, clip)


def code_report_from_counts(counts: np.ndarray, black: float, clip: float) -> dict[str, Any]:
    """``code_report`` from the frames' ``code_counts`` (counted as the frames arrive, none of them kept)."""
    lo, hi = _range(black, clip)
    counts = np.asarray(counts)
    if counts.shape != (CODES,):
        raise RawIntegrityError(f"code counts must be {CODES} values, got shape {counts.shape}")
    present = np.flatnonzero(counts[lo:hi + 1]) + lo
    missing = (np.flatnonzero(counts[lo:hi + 1] == 0) + lo).tolist()
    constant_bits, residue = 0, 0
    if len(present) >= 2:
        for bits in range(BIT_DEPTH - 1, 0, -1):
            mods = present % (1 << bits)
            if np.all(mods == mods[0]):
                constant_bits, residue = bits, int(mods[0])
                break
    bottom_gap = int(present[0] - lo) if len(present) else hi - lo + 1
    pattern = None
    if not len(present):
        pattern = f"no code between {lo} and {hi} occurs"
    elif constant_bits:
        step = 1 << constant_bits
        what = f"multiples of {step}" if residue == 0 else f"{residue} modulo {step}"
        pattern = (f"codes are all {what}: the {constant_bits} least significant bits never change "
                   f"({BIT_DEPTH - constant_bits}-bit data in {BIT_DEPTH}-bit RAW"
                   f"{', 8-bit truncation' if constant_bits == 2 else ''})")
    elif bottom_gap > 0 and bottom_gap == len(missing):
        pattern = (f"codes {lo}..{lo + bottom_gap - 1} missing just above the black level: the data sit "
                   f"above the declared black level {black:g} DN")
    elif missing:
        pattern = f"{len(missing)} codes missing between {lo} and {hi}"
    return {"missing": missing, "missing_count": len(missing), "checked": [lo, hi],
            "constant_lsbs": constant_bits, "bottom_gap_dn": bottom_gap, "pattern": pattern,
            "pass": not missing}


# --- black level ----------------------------------------------------------------------------------------

def black_level_from_darks(darks: np.ndarray | Sequence[np.ndarray], cfa: str | None) -> dict[str, float]:
    """Mean DN per CFA channel (R, Gr, Gb, B; or Y without a CFA) over dark frames (EMVA 1288 mu_y.dark)."""
    frames = _frames(darks)
    if not frames:
        raise RawIntegrityError("no dark frames")
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        raise RawIntegrityError(f"dark frames differ in size; expected {shape} for all")
    out = {}
    for name, sl in channel_slices(cfa).items():
        out[name] = float(np.mean([f[sl].mean(dtype=np.float64) for f in frames]))
    return out


def check_black_level(measured: Mapping[str, float] | float, declared: float,
                      tol_dn: float = BLACK_TOLERANCE_DN) -> dict[str, Any]:
    """Measured black level(s) against the declared one: per-channel offset (DN), the largest, ``pass``."""
    values = dict(measured) if isinstance(measured, Mapping) else {"all": float(measured)}
    offsets = {name: float(v) - float(declared) for name, v in values.items()}
    worst = max(offsets.values(), key=abs)
    return {"declared_dn": float(declared), "measured_dn": values, "offset_dn": offsets,
            "max_offset_dn": worst, "tolerance_dn": float(tol_dn), "pass": bool(abs(worst) <= tol_dn)}


# --- CFA order --------------------------------------------------------------------------------------------

Region = tuple[int, int, int, int] | np.ndarray


def _site_means(cfa_data: np.ndarray, region: Region) -> dict[tuple[int, int], float]:
    """Mean of each quad site (row % 2, col % 2) inside a region: a box (y0, y1, x0, x1) or a bool mask."""
    if isinstance(region, np.ndarray) and region.dtype == bool:
        if region.shape != cfa_data.shape:
            raise RawIntegrityError(f"patch mask is {region.shape}, the frame {cfa_data.shape}")
        out = {}
        for dy in (0, 1):
            for dx in (0, 1):
                sel = region[dy::2, dx::2]
                if not sel.any():
                    raise RawIntegrityError("a patch mask covers no sample of some CFA site")
                out[(dy, dx)] = float(cfa_data[dy::2, dx::2][sel].mean(dtype=np.float64))
        return out
    y0, y1, x0, x1 = (int(v) for v in region)
    sub = cfa_data[y0:y1, x0:x1]
    if sub.shape[0] < 2 or sub.shape[1] < 2:
        raise RawIntegrityError(f"patch box {(y0, y1, x0, x1)} holds no full CFA quad")
    return {(dy, dx): float(sub[(dy - y0) % 2::2, (dx - x0) % 2::2].mean(dtype=np.float64))
            for dy in (0, 1) for dx in (0, 1)}


def _log_ratio(a: float, b: float) -> float:
    return math.log(max(a, 1e-6) / max(b, 1e-6))


def cfa_order_from_target(cfa_data: np.ndarray, declared_order: str, patches: Mapping[str, Region],
                          black: float = 0.0) -> dict[str, Any]:
    """The true CFA order from coloured patches, against the declared one.

    ``patches``: colour (``red``, ``green``, ``blue``) -> region of the frame (box ``(y0, y1, x0, x1)``
    or bool mask) showing a patch of that colour; at least a red or a blue one. ``black`` is taken off
    the site means first. Returns ``measured``, ``declared``, ``match`` and the site means per patch;
    raises ``RawIntegrityError`` when the patches cannot tell (no red/blue patch, a neutral target).
    """
    unknown = set(patches) - {"red", "green", "blue"}
    if unknown:
        raise RawIntegrityError(f"patch colours {sorted(unknown)} unknown; allowed: red, green, blue")
    if not ({"red", "blue"} & set(patches)):
        raise RawIntegrityError("the CFA order needs a red or a blue patch")
    data = np.asarray(cfa_data)
    means = {colour: {site: v - black for site, v in _site_means(data, region).items()}
             for colour, region in patches.items()}
    diag_score = [sum(abs(_log_ratio(m[a], m[b])) for m in means.values()) for a, b in _DIAGONALS]
    green = int(np.argmin(diag_score))
    other = _DIAGONALS[1 - green]
    if diag_score[1 - green] - diag_score[green] < _MIN_EVIDENCE:
        raise RawIntegrityError("the patches do not tell the green diagonal from the red/blue one "
                                f"(log-ratio scores {diag_score[0]:.3f}, {diag_score[1]:.3f}): use saturated colours")
    a, b = other
    evidence = 0.0
    if "red" in means:
        evidence += _log_ratio(means["red"][a], means["red"][b])
    if "blue" in means:
        evidence -= _log_ratio(means["blue"][a], means["blue"][b])
    if abs(evidence) < _MIN_EVIDENCE:
        raise RawIntegrityError(f"red and blue sites differ by only {abs(evidence):.3f} in log ratio on the "
                                "patches: use saturated red or blue")
    red_site, blue_site = (a, b) if evidence > 0 else (b, a)
    order = ["G"] * 4
    order[2 * red_site[0] + red_site[1]] = "R"
    order[2 * blue_site[0] + blue_site[1]] = "B"
    measured = "".join(order)
    return {"measured": measured, "declared": declared_order, "match": measured == declared_order,
            "site_means": {colour: {f"{dy}{dx}": v for (dy, dx), v in m.items()} for colour, m in means.items()}}


# --- RAW10 against DNG --------------------------------------------------------------------------------------

def raw10_equals_dng(raw10_array: np.ndarray, dng_array: np.ndarray) -> dict[str, Any]:
    """The unpacked RAW10 and the DNG's CFA data of one capture, sample for sample."""
    a, b = np.asarray(raw10_array), np.asarray(dng_array)
    if a.shape != b.shape:
        return {"equal": False, "shape_raw10": list(a.shape), "shape_dng": list(b.shape),
                "differing_pixels": None, "max_abs_diff_dn": None}
    differ = a != b  # a bool frame; the differences only where they are (no int32 frames: 600 MB at 50 MP)
    n = int(np.count_nonzero(differ))
    worst = int(np.abs(a[differ].astype(np.int64) - b[differ].astype(np.int64)).max()) if n else 0
    return {"equal": n == 0, "shape_raw10": list(a.shape), "shape_dng": list(b.shape),
            "differing_pixels": n, "max_abs_diff_dn": worst}
