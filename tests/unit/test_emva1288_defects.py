"""EMVA 1288 DSNU / PRNU with the defect pixels left out (``analyze_pairs(exclude_mask=...)``), against the twin's
truth: the bare M sensor with its serial-seeded defects on (hot, warm, dead, weak and stuck pixels, pairs, a
column segment), the whole CI frame, frames as the sensor characterisation takes them (flat pairs over an
exposure sweep, dark pairs at the shortest and a few-ms longest exposure). The truth's DSNU and PRNU are the
defect-free sensor's (``station.twin.sensor``: white patterns, 2 e- and 0.5 %); the defects are its
``defect_map``. With the defects in, the EMVA DSNU reads many times the truth; with them out, within 5 %.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pytest

from calibration.defects import dark_outliers, flat_outliers
from calibration.emva1288 import analyze_pairs
from station.procedures.sensor import defect_exclusion
from station.twin.render import render_raw
from station.twin.sensor import defect_map
from tests.unit.twin_scenes import fill_exposure_us, scene

#: Flat pairs at these fractions of the G saturation exposure (four under 70 % for the gain fit); darks at the
#: first and at ``DARK_LONG_FRACTION`` (about 2.4 ms: the characterisation's longest exposure at the plan's light).
FRACTIONS = (0.05, 0.2, 0.45, 0.6, 1.2)
DARK_LONG_FRACTION = 4.0
CHANNELS = ("R", "Gr", "Gb", "B")
Pair = tuple[float, np.ndarray, np.ndarray]


@lru_cache(maxsize=1)
def frames() -> tuple[tuple[Pair, ...], tuple[Pair, ...], dict[str, Any], list[dict[str, Any]]]:
    """Flat and dark pairs of the bare M sensor with its seeded defects; the truth; the seeded defect list."""
    world = scene("flat", None, 500.0)
    world.faults["sensor_defects"] = True
    saturate_us = fill_exposure_us(world, "m", 1.0, {"analog_gain": 1.0})
    flats, darks, seq, truth = [], [], 1, {}
    for fraction in FRACTIONS:
        shot = {"analog_gain": 1.0, "exposure_us": fraction * saturate_us}
        a, truth = render_raw(world, "m", shot, seq)
        b, _ = render_raw(world, "m", shot, seq + 1)
        flats.append((shot["exposure_us"] * 1e-6, a, b))
        seq += 2
    world.set_light(output=False)
    for fraction in (FRACTIONS[0], DARK_LONG_FRACTION):
        shot = {"analog_gain": 1.0, "exposure_us": fraction * saturate_us}
        a, _ = render_raw(world, "m", shot, seq)
        b, _ = render_raw(world, "m", shot, seq + 1)
        darks.append((shot["exposure_us"] * 1e-6, a, b))
        seq += 2
    seeded = defect_map(world.sensor_serial_for("m"), "ci").truth()
    return tuple(flats), tuple(darks), truth, seeded


@pytest.fixture(scope="module")
def measured() -> dict[str, Any]:
    flats, darks, truth, seeded = frames()
    mask, counts = defect_exclusion(list(flats), list(darks), "RGGB", truth["black_level"], truth["white_level"])
    return {"with": analyze_pairs(list(flats), list(darks), cfa="RGGB"),
            "without": analyze_pairs(list(flats), list(darks), cfa="RGGB", exclude_mask=mask),
            "mask": mask, "counts": counts, "truth": truth, "seeded": seeded}


def test_the_excluded_pixels_are_seeded_defects_and_only_warm_ones_stay_hidden(measured) -> None:
    """0 false; every hot, dead, weak and stuck pixel out (warm ones sit in the noise of a few-ms dark)."""
    ys, xs = np.nonzero(measured["mask"])
    excluded = set(zip(xs.tolist(), ys.tolist(), strict=True))
    seeded = {(d["x"], d["y"]): d["kind"] for d in measured["seeded"]}
    false = excluded - set(seeded)
    missed = {p: k for p, k in seeded.items() if p not in excluded}
    print(f"\nbare M, defects on: {len(seeded)} seeded, {len(excluded)} excluded ({measured['counts']}), false "
          f"{len(false)}, missed {len(missed)} (kinds {sorted(missed.values())})")
    assert false == set()
    assert set(missed.values()) <= {"warm"}
    assert measured["counts"]["total"] == len(excluded)
    assert sum(r.excluded_px for r in measured["without"].values()) == len(excluded)


@pytest.mark.parametrize("channel", CHANNELS)
def test_dsnu_and_prnu_without_the_defects_are_the_sensors_own(measured, channel) -> None:
    truth = measured["truth"]
    with_defects, without = measured["with"][channel], measured["without"][channel]
    print(f"\n{channel}: DSNU {with_defects.dsnu_e:.3f} e- with the defects, {without.dsnu_e:.3f} e- without "
          f"(truth {truth['dsnu_e']:.3f}); PRNU highpass {with_defects.prnu_highpass_pct:.3f} % / "
          f"{without.prnu_highpass_pct:.3f} % (truth {truth['prnu_pct']:.3f})")
    assert without.dsnu_e == pytest.approx(truth["dsnu_e"], rel=0.05)
    assert without.dsnu_highpass_e == pytest.approx(truth["dsnu_e"], rel=0.05)
    assert without.prnu_highpass_pct == pytest.approx(truth["prnu_pct"], rel=0.05)
    assert without.system_gain_dn_per_e == pytest.approx(truth["conversion_gain_dn_per_e"], rel=0.01)


def test_with_the_defects_in_the_dsnu_and_prnu_are_far_off(measured) -> None:
    """The seeded defects are what made the DSNU fail its limit: the comparison above has something to show."""
    truth = measured["truth"]
    assert max(r.dsnu_e for r in measured["with"].values()) > 3.0 * truth["dsnu_e"]
    assert max(r.prnu_highpass_pct for r in measured["with"].values()) > 1.1 * truth["prnu_pct"]


def test_the_outlier_masks_flag_nothing_on_a_defect_free_sensor() -> None:
    """Frames of the ROI's size with white noise only (no defect): neither mask flags a pixel."""
    rng = np.random.default_rng(4)
    dark = [np.round(64 + rng.normal(0, 0.6, (768, 1024))) for _ in range(2)]
    flat = [np.round(564 + rng.normal(0, 4.0, (768, 1024))) for _ in range(2)]
    assert not dark_outliers(dark, 0.0024, "RGGB").any()
    assert not flat_outliers(flat, np.mean(dark, axis=0), "RGGB").any()


def test_no_pixel_excluded_is_exactly_the_whole_roi_and_a_wrong_mask_is_refused(measured) -> None:
    """An empty mask takes the unmasked arithmetic (the record snapshot's ideal unit compares to 1e-9)."""
    from calibration.emva1288 import SensorAnalysisError

    crop = (slice(600, 856), slice(900, 1156))  # a corner of the frame is enough, and cheaper
    flats, darks = ([(t, a[crop], b[crop]) for t, a, b in pairs] for pairs in frames()[:2])
    plain = analyze_pairs(flats, darks, cfa="RGGB")
    empty = analyze_pairs(flats, darks, cfa="RGGB", exclude_mask=np.zeros((256, 256), dtype=bool))
    for name, result in plain.items():
        assert empty[name].to_dict(curve=True) == result.to_dict(curve=True) and empty[name].excluded_px == 0
    with pytest.raises(SensorAnalysisError, match="exclude mask"):
        analyze_pairs(flats, darks, cfa="RGGB", exclude_mask=np.zeros((4, 4), dtype=bool))


def test_the_characterisation_keeps_the_count_in_its_profile_section(measured) -> None:
    from station.procedures.sensor import SensorCharacterization

    result = SensorCharacterization(sensor="m", analog_gain=1.0, cfa="RGGB", black_level=64, white_level=1023,
                                    exposures_us=[100, 200], roi=(0, 0, 2048, 1536), channels=measured["without"],
                                    excluded_pixels=measured["counts"])
    section = result.profile_section()
    assert section["excluded_pixels"] == measured["counts"] and measured["counts"]["total"] > 0
    assert sum(ch["excluded_px"] for ch in section["channels"].values()) == measured["counts"]["total"]
    assert result.summary()["dsnu_e"] == pytest.approx(measured["truth"]["dsnu_e"], rel=0.05)
