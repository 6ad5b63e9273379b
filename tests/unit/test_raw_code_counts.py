"""RAW integrity's missing-code report from code counts taken frame by frame as they arrive (issue 13: the ramp's
50 MP frames are not kept) equals the report over the frames themselves."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.raw_integrity import RawIntegrityError, code_counts, code_report, code_report_from_counts


@pytest.mark.parametrize("truncate", [False, True])
def test_the_report_from_per_frame_counts_is_the_report_over_the_frames(truncate: bool) -> None:
    rng = np.random.default_rng(3)
    frames = [np.clip(rng.normal(mean, 60.0, (64, 96)), 0, 1023).astype(np.uint16) for mean in (900, 400, 80)]
    if truncate:  # 8-bit data in 10 bits: the pattern the report names
        frames = [f & ~np.uint16(3) for f in frames]
    counts = np.sum([code_counts(f) for f in frames], axis=0)
    assert code_report_from_counts(counts, 64.0, 1000.0) == code_report(frames, 64.0, 1000.0)
    with pytest.raises(RawIntegrityError, match="1024 values"):
        code_report_from_counts(counts[:-1], 64.0, 1000.0)


def _raw10_equals_dng_int32(a: np.ndarray, b: np.ndarray) -> dict:
    """The comparison as it was before issue 13 (whole int32 frames), the reference."""
    diff = np.abs(a.astype(np.int32) - b.astype(np.int32))
    n = int(np.count_nonzero(diff))
    return {"equal": n == 0, "shape_raw10": list(a.shape), "shape_dng": list(b.shape),
            "differing_pixels": n, "max_abs_diff_dn": int(diff.max()) if diff.size else 0}


def test_raw10_equals_dng_without_int32_frames_reports_as_before() -> None:
    from calibration.raw_integrity import raw10_equals_dng

    a = np.random.default_rng(4).integers(0, 1024, (48, 64), dtype=np.uint16)
    for b in (a.copy(), a ^ np.uint16(1), np.where(a > 1000, 0, a).astype(np.uint16), np.zeros_like(a)):
        assert raw10_equals_dng(a, b) == _raw10_equals_dng_int32(a, b)
    assert raw10_equals_dng(a[:0], a[:0]) == _raw10_equals_dng_int32(a[:0], a[:0])
