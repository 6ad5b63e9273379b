"""The one CFA layout table (``calibration.cfa``) against the layouts the standards spell out."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.cfa import (
    CfaError,
    android_offsets,
    android_to_station,
    cfa_at,
    channel_offsets,
    channel_slices,
    check_cfa,
)

#: EMVA 1288 channel positions as the emva1288 tables wrote them out before (row, col).
EMVA = {
    "RGGB": {"R": (0, 0), "Gr": (0, 1), "Gb": (1, 0), "B": (1, 1)},
    "BGGR": {"B": (0, 0), "Gb": (0, 1), "Gr": (1, 0), "R": (1, 1)},
    "GRBG": {"Gr": (0, 0), "R": (0, 1), "B": (1, 0), "Gb": (1, 1)},
    "GBRG": {"Gb": (0, 0), "B": (0, 1), "R": (1, 0), "Gr": (1, 1)},
}
#: Android DngCreator's table (G_even on tile row 0).
ANDROID = {
    "RGGB": {"R": (0, 0), "G_even": (0, 1), "G_odd": (1, 0), "B": (1, 1)},
    "GRBG": {"R": (0, 1), "G_even": (0, 0), "G_odd": (1, 1), "B": (1, 0)},
    "GBRG": {"R": (1, 0), "G_even": (0, 0), "G_odd": (1, 1), "B": (0, 1)},
    "BGGR": {"R": (1, 1), "G_even": (0, 1), "G_odd": (1, 0), "B": (0, 0)},
}


@pytest.mark.parametrize("cfa", sorted(EMVA))
def test_offsets_match_emva_and_android_tables(cfa: str) -> None:
    assert channel_offsets(cfa.lower()) == EMVA[cfa]
    assert android_offsets(cfa) == ANDROID[cfa]
    names = android_to_station(cfa)
    assert all(EMVA[cfa][names[a]] == ANDROID[cfa][a] for a in ANDROID[cfa])


@pytest.mark.parametrize("cfa", sorted(EMVA))
def test_slices_pick_the_colour_the_pattern_names(cfa: str) -> None:
    mosaic = np.tile(np.array([[ord(cfa[0]), ord(cfa[1])], [ord(cfa[2]), ord(cfa[3])]]), (3, 4))
    for name, (rows, cols) in channel_slices(cfa).items():
        assert set(np.unique(mosaic[rows, cols])) == {ord(name[0])}


def test_crop_pattern_and_bad_names() -> None:
    assert cfa_at("RGGB", 1, 0) == "GRBG" and cfa_at("RGGB", 0, 1) == "GBRG" and cfa_at("RGGB", 1, 1) == "BGGR"
    assert check_cfa("rggb") == "RGGB"
    with pytest.raises(CfaError, match="RGGB"):
        check_cfa("RGBG")
