"""Issue 13's bounded-memory zebra paths equal the whole-frame ones bit for bit: the sweep kept as channel means
(``clip_levels_from_means``, ``luma_threshold_from_means``), the check counted band by band (``verify_zebra``),
and the overlay drawn band by band (``station.procedures.zebra.zebra_overlay``). The references here are the
whole-frame formulae as they stood before the change."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import calibration.zebra as zebra
import station.procedures.zebra as zebra_procedure
from calibration.zebra import (
    ZebraCalibrationError,
    centre_luma_mean,
    channel_means,
    clip_levels_from_means,
    clip_levels_from_sweep,
    luma_threshold,
    luma_threshold_from_means,
    quad_max,
    quads_on_preview,
    raw_threshold,
)
from station.procedures.captures import png_bytes
from tests.unit.test_zebra import BLACK, CLIP, preview_of, ramp_frame, sweep_frame


def test_clip_levels_from_means_equal_the_frames() -> None:
    levels = [float(v) for v in np.concatenate([np.linspace(60, 700, 6), np.linspace(760, 1500, 8)])]
    frames = [(lv, sweep_frame(lv, i)) for i, lv in enumerate(levels)]
    frames.reverse()
    means = [channel_means(f, "RGGB", 1.0) for _, f in frames]
    assert clip_levels_from_means([lv for lv, _ in frames], means, BLACK) == \
        clip_levels_from_sweep(frames, "RGGB", BLACK, roi_fraction=1.0)
    with pytest.raises(ZebraCalibrationError, match="must all differ"):
        clip_levels_from_means([1.0, 1.0, 2.0], means[:3], BLACK)


def test_luma_threshold_from_means_equals_the_frames() -> None:
    rng = np.random.default_rng(8)
    t_raw = raw_threshold(CLIP["R"], BLACK)
    levels = np.linspace(560, 740, 10)
    raws = [sweep_frame(lv, 100 + i, read_dn=0.5, vignetting=0.0) for i, lv in enumerate(levels)]
    previews = [np.repeat(preview_of(r, rng)[..., None], 3, axis=2) for r in raws]
    tops = [max(channel_means(r, "RGGB", 1.0).values()) for r in raws]
    lumas = [centre_luma_mean(p, 1.0) for p in previews]
    got = luma_threshold_from_means(tops, lumas, t_raw, BLACK)
    assert got == luma_threshold(previews, raws, t_raw, "RGGB", BLACK, roi_fraction=1.0)
    with pytest.raises(ZebraCalibrationError, match="two or more"):
        luma_threshold_from_means(tops[:1], lumas[:1], t_raw, BLACK)


def _verify_whole_frame(mask: np.ndarray, cfa: np.ndarray, clip_dn: float, black_dn: float) -> tuple[int, ...]:
    """The counts of ``verify_zebra`` as the whole-frame code made them."""
    flagged = mask != 0
    top = quad_max(cfa)
    h, w = top.shape
    if mask.shape == (2 * h, 2 * w):
        on_mask = quads_on_preview
    elif mask.shape == (h, w):
        def on_mask(q: np.ndarray) -> np.ndarray:
            return q
    else:
        def on_mask(q: np.ndarray) -> np.ndarray:
            return cv2.resize(q.astype(np.uint8), (mask.shape[1], mask.shape[0]),
                              interpolation=cv2.INTER_NEAREST).astype(bool)
    clipped = on_mask(top >= clip_dn)
    below = on_mask(top < black_dn + 0.95 * (clip_dn - black_dn))
    return (int(clipped.sum()), int(below.sum()), int(np.count_nonzero(clipped & ~flagged)),
            int(np.count_nonzero(below & flagged)))


@pytest.mark.parametrize("geometry", ["full", "quads", "other"])
def test_verify_zebra_in_bands_counts_as_the_whole_frame(geometry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zebra, "VERIFY_BAND_QUAD_ROWS", 5)  # 32 quad rows: bands of 5, the last one short
    cfa = ramp_frame(3)
    rng = np.random.default_rng(4)
    shape = {"full": cfa.shape, "quads": (32, 128), "other": (48, 100)}[geometry]
    mask = (rng.random(shape) < 0.5).astype(np.uint8) * 255
    report = zebra.verify_zebra(mask, cfa, 964.0, BLACK)
    counts = (report["clipped_pixels"], report["below_pixels"], report["missed_pixels"], report["false_flag_pixels"])
    assert counts == _verify_whole_frame(mask, cfa, 964.0, BLACK)
    assert counts[0] > 0 and counts[1] > 0 and counts[2] > 0 and counts[3] > 0


def _overlay_whole_frame(mask: np.ndarray, cfa: np.ndarray, clip_dn: float, black_dn: float) -> bytes:
    """``zebra_overlay`` as the whole-frame code drew it."""
    top = quad_max(cfa).astype(np.float32)
    grey = np.clip((top - black_dn) / max(clip_dn - black_dn, 1.0), 0.0, 1.0)
    flagged = mask[::2, ::2] != 0 if mask.shape == cfa.shape else np.zeros(top.shape, bool)
    clipped = top >= clip_dn
    below = top < black_dn + 0.95 * (clip_dn - black_dn)
    rgb = np.repeat((grey * 200.0)[..., None], 3, axis=2)
    rgb[flagged] = 0.5 * rgb[flagged] + np.array([127.0, 0.0, 127.0])
    rgb[clipped & ~flagged] = (255.0, 0.0, 0.0)
    rgb[below & flagged] = (0.0, 64.0, 255.0)
    return png_bytes(rgb.astype(np.uint8), 1024)


@pytest.mark.parametrize("full_mask", [True, False])
def test_zebra_overlay_in_bands_is_the_whole_frame_picture(full_mask: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zebra_procedure, "OVERLAY_BAND_QUAD_ROWS", 7)
    cfa = ramp_frame(5)
    rng = np.random.default_rng(6)
    mask = (rng.random(cfa.shape if full_mask else (10, 10)) < 0.3).astype(np.uint8) * 255  # as the phone sends
    got = zebra_procedure.zebra_overlay(mask, cfa, 964.0, BLACK)
    assert got == _overlay_whole_frame(mask, cfa, 964.0, BLACK)
    picture = cv2.imdecode(np.frombuffer(got, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (32, 128, 3) and len(np.unique(picture.reshape(-1, 3), axis=0)) > 10
