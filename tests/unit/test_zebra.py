"""calibration.zebra: DESIGN 7's zebra masks against independent formulae and the twin's golden firmware;
clip levels, T_raw and T_luma from synthetic light sweeps with known truth; verification; errors."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from calibration.zebra import (
    ZebraCalibrationError,
    clip_levels_from_sweep,
    lowest_clip,
    luma_threshold,
    luma_zebra,
    preview_luma,
    raw_threshold,
    raw_zebra,
    verify_zebra,
)

BLACK, WHITE = 64, 1023


# --- independent references ---------------------------------------------------------------------

def luma_float(rgb: np.ndarray) -> np.ndarray:
    """0.2126 R + 0.7152 G + 0.0722 B rounded half up, in float64 (sums are multiples of 1e-4, so an
    offset of 1e-7 settles float error without moving any non-tie)."""
    rgb = rgb.astype(np.float64)
    y = 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]
    return np.floor(y + 0.5 + 1e-7).astype(np.int64)


def raw_zebra_loop(cfa: np.ndarray, t: int) -> np.ndarray:
    """Per-quad loop: a quad with any sample >= t marks its four pixels."""
    h, w = cfa.shape
    out = np.zeros((h, w), dtype=bool)
    for i in range(h // 2):
        for j in range(w // 2):
            if (cfa[2 * i:2 * i + 2, 2 * j:2 * j + 2] >= t).any():
                out[2 * i:2 * i + 2, 2 * j:2 * j + 2] = True
    return out


# --- reference masks ------------------------------------------------------------------------------

def test_preview_luma_every_rgb_value_against_float_formula() -> None:
    codes = np.arange(256, dtype=np.uint8)
    for r in range(0, 256, 32):  # all 2^24 colours, in 8 bands of R
        rr, gg, bb = np.meshgrid(np.arange(r, r + 32, dtype=np.uint8), codes, codes, indexing="ij")
        rgb = np.stack([rr, gg, bb], axis=-1).reshape(-1, 256, 3)
        assert np.array_equal(preview_luma(rgb).astype(np.int64), luma_float(rgb))


def test_preview_luma_rounds_exact_ties_up() -> None:
    # every exact tie (2126 R + 7152 G + 722 B ending in 5000, 3368 colours) rounds up, as Decimal does
    codes = np.arange(256, dtype=np.int32)
    acc = 2126 * codes[:, None, None] + 7152 * codes[None, :, None] + 722 * codes[None, None, :]
    ties = np.argwhere(acc % 10000 == 5000)
    assert len(ties) > 1000
    rgb = ties[None].astype(np.uint8)
    expected = [int((Decimal(int(a)) / 10000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
                for a in acc[acc % 10000 == 5000]]
    assert preview_luma(rgb)[0].tolist() == expected


def test_luma_zebra_and_raw_zebra_against_loops() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)
    assert np.array_equal(luma_zebra(rgb, 200), luma_float(rgb) >= 200)
    cfa = rng.integers(BLACK, WHITE + 1, (18, 22), dtype=np.uint16)
    for t in (BLACK, 700, 1000, WHITE + 1):
        assert np.array_equal(raw_zebra(cfa, t), raw_zebra_loop(cfa, t))


def test_masks_match_the_twin_golden_firmware_on_random_frames() -> None:
    from station.twin import firmware as fw

    rng = np.random.default_rng(11)
    for _ in range(3):
        rgb = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)
        cfa = rng.integers(0, WHITE + 1, (40, 64), dtype=np.uint16)
        assert np.array_equal(preview_luma(rgb), fw.luma(rgb))
        t_luma, t_raw = int(rng.integers(1, 256)), int(rng.integers(900, 1000))
        twin_luma = fw.zebra_mask(rgb, cfa, {"enabled": True, "mode": "luma", "threshold": t_luma}, "golden")
        twin_raw = fw.zebra_mask(rgb, cfa, {"enabled": True, "mode": "raw", "threshold": t_raw}, "golden")
        assert np.array_equal(twin_luma != 0, luma_zebra(rgb, t_luma))
        assert np.array_equal(twin_raw != 0, raw_zebra(cfa, t_raw))
        # the zebra-shift build differs from the reference: the named regression is visible
        shifted = fw.zebra_mask(rgb, cfa, {"enabled": True, "mode": "raw", "threshold": t_raw}, "zebra-shift")
        assert not np.array_equal(shifted != 0, raw_zebra(cfa, t_raw))


# --- a synthetic light sweep (independent of the twin) ---------------------------------------------

RESPONSE = {"R": 1.25, "Gr": 1.0, "Gb": 1.0, "B": 0.8}  # DN above black per unit of light
CLIP = {"R": 901.0, "Gr": 964.0, "Gb": 964.0, "B": 1023.0}  # full well (R, G) or the ADC's top code (B)
SITES = {"R": (0, 0), "Gr": (0, 1), "Gb": (1, 0), "B": (1, 1)}  # RGGB


def sweep_frame(level: float, seed: int, shape: tuple[int, int] = (64, 80), read_dn: float = 2.0,
                vignetting: float = 0.15) -> np.ndarray:
    """One RGGB flat: black + response x level (with a radial falloff), shot noise, the channel's clip
    (full well) plus read noise, the 10-bit ADC."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2
    falloff = 1.0 - vignetting * r2 / 2.0
    out = np.empty(shape)
    for name, (dy, dx) in SITES.items():
        mean = RESPONSE[name] * level * falloff[dy::2, dx::2]
        sig = mean + rng.standard_normal(mean.shape) * np.sqrt(0.25 * np.maximum(mean, 0.0))
        sig = np.minimum(BLACK + sig, CLIP[name]) + rng.standard_normal(mean.shape) * read_dn
        out[dy::2, dx::2] = sig
    return np.clip(np.rint(out), 0, WHITE).astype(np.uint16)


def test_clip_levels_from_a_synthetic_sweep_within_1_dn() -> None:
    levels = np.concatenate([np.linspace(60, 700, 9), np.linspace(760, 1500, 12)])
    frames = [(float(lv), sweep_frame(lv, i)) for i, lv in enumerate(levels)]
    frames.reverse()  # any order
    clips = clip_levels_from_sweep(frames, "RGGB", BLACK)
    for name, truth in CLIP.items():
        assert clips[name] == pytest.approx(truth, abs=1.0), name
    assert lowest_clip(clips) == pytest.approx(901.0, abs=1.0)


def test_a_channel_that_never_clips_is_none_and_t_raw_uses_the_lowest_clip() -> None:
    levels = np.linspace(60, 1000, 16)  # B reaches 64 + 800 < 1023: never clips; R and G do
    clips = clip_levels_from_sweep([(float(lv), sweep_frame(lv, i)) for i, lv in enumerate(levels)], "RGGB", BLACK)
    assert clips["B"] is None
    assert clips["R"] == pytest.approx(CLIP["R"], abs=1.0)
    assert raw_threshold(lowest_clip(clips), BLACK) == round(CLIP["R"] - 0.02 * (CLIP["R"] - BLACK))


def test_sweep_that_never_reaches_clipping_says_so() -> None:
    levels = np.linspace(40, 600, 8)
    with pytest.raises(ZebraCalibrationError, match=r"sweep never reaches clipping: brightest channel mean R .* "
                                                     r"rose \d+\.\d% over the last 2 steps"):
        clip_levels_from_sweep([(float(lv), sweep_frame(lv, i)) for i, lv in enumerate(levels)], "RGGB", BLACK)


def test_raw_threshold_formula() -> None:
    assert raw_threshold(964.0, 64.0) == 946  # 964 - 0.02 * 900 = 946
    rng = np.random.default_rng(5)
    for _ in range(50):
        black = float(rng.uniform(0, 200))
        clip = float(rng.uniform(black + 100, 1023))
        margin = float(rng.uniform(0, 0.2))
        assert raw_threshold(clip, black, margin) == pytest.approx(clip - margin * (clip - black), abs=0.5)
    with pytest.raises(ValueError, match="margin"):
        raw_threshold(964, 64, 1.5)
    with pytest.raises(ValueError, match="exceed the black"):
        raw_threshold(60, 64)


def tone(v: np.ndarray) -> np.ndarray:
    """A made-up phone tone curve (not sRGB, not the twin's): a shoulder then a power law, 0..255."""
    v = np.clip(v, 0.0, 1.0)
    return 255.0 * (1.6 * v / (1.0 + 0.6 * v)) ** (1 / 2.6)


def preview_of(cfa: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The synthetic phone's preview: R-led luma per quad (R the brightest channel), its own tone curve,
    at full resolution, 8-bit (the phone rounds with a tiny dither)."""
    r = cfa[0::2, 0::2].astype(np.float64)
    y = tone((r - BLACK) / (CLIP["R"] - BLACK)) + rng.uniform(-0.3, 0.3, r.shape)
    y = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(y, 2, 0), 2, 1)


def test_luma_threshold_through_a_known_tone_curve() -> None:
    rng = np.random.default_rng(8)
    t_raw = raw_threshold(CLIP["R"], BLACK)
    levels = np.linspace(500, 740, 25)  # dense around T_raw (R reaches 882 DN at level ~654)
    raws = [sweep_frame(lv, 100 + i, read_dn=0.5, vignetting=0.0) for i, lv in enumerate(levels)]
    previews = [preview_of(r, rng) for r in raws]
    expected = tone(np.array([(t_raw - BLACK) / (CLIP["R"] - BLACK)]))[0]
    got = luma_threshold(previews, raws, t_raw, "RGGB", BLACK)
    assert abs(got - expected) <= 1.0, (got, expected)
    # RGB previews give the same (grey RGB: Y' = the code)
    rgb = [np.repeat(p[..., None], 3, axis=2) for p in previews]
    assert luma_threshold(rgb, raws, t_raw, "RGGB", BLACK) == got
    with pytest.raises(ZebraCalibrationError, match="do not span T_raw"):
        luma_threshold(previews[:5], raws[:5], t_raw, "RGGB", BLACK)


# --- verification ----------------------------------------------------------------------------------

def ramp_frame(seed: int = 0) -> np.ndarray:
    """A horizontal ramp from black to well past clip (964) with noise, RGGB (all channels alike)."""
    rng = np.random.default_rng(seed)
    level = np.linspace(0, 1100, 256)[None, :] * np.ones((64, 1))
    sig = level + rng.standard_normal(level.shape) * np.sqrt(0.25 * level)
    sig = np.minimum(BLACK + sig, 964.0) + rng.standard_normal(level.shape) * 2.0
    return np.clip(np.rint(sig), 0, WHITE).astype(np.uint16)


def test_verify_zebra_passes_the_reference_and_catches_a_shifted_threshold() -> None:
    cfa = ramp_frame()
    t_raw = raw_threshold(964.0, BLACK)
    good = verify_zebra(raw_zebra(cfa, t_raw).astype(np.uint8) * 255, cfa, 964.0, BLACK)
    assert good["pass"] and good["missed_fraction"] == 0.0 and good["clipped_pixels"] > 1000
    assert good["false_flag_fraction"] <= 0.005 and good["below_pixels"] > 1000
    shifted = verify_zebra(raw_zebra(cfa, t_raw + 32), cfa, 964.0, BLACK)  # the zebra-shift build's raw offset
    assert not shifted["pass"] and shifted["missed_fraction"] > 0.5
    everything = verify_zebra(np.ones_like(cfa), cfa, 964.0, BLACK)
    assert not everything["pass"] and everything["false_flag_fraction"] == 1.0
    # quad-resolution masks are accepted too
    quads = raw_zebra(cfa, t_raw)[::2, ::2]
    assert verify_zebra(quads, cfa, 964.0, BLACK)["missed_fraction"] == 0.0
