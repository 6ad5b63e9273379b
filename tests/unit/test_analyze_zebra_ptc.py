"""``station analyze zebra`` on photon-transfer sets: pairs at each step averaged, dark frames left out; a
crafted EMVA-style DNG set always, and the real EMVA 1288 set 001 when the reference data is present."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from station.cli import main
from station.dng import write_dng
from station.frame import Frame
from tests.unit.test_zebra import BLACK, CLIP, sweep_frame

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
EMVA = REFERENCE / "emva1288_ccd12bit_basler_subset" / "EMVA1288_Data_subset.txt"
LEVELS = [100.0, 300.0, 500.0, 650.0, 700.0, 750.0, 800.0, 900.0, 1000.0, 1200.0, 1400.0]


def write_ptc_set(folder: Path) -> list[str]:
    """Two flats at every exposure (the pair differs only by its noise) and four dark frames, EMVA style."""
    files = []
    for i, level in enumerate(LEVELS):
        for k in (1, 2):
            frame = Frame(data=sweep_frame(level, 100 * i + k, read_dn=0.5, vignetting=0.05), cfa="RGGB",
                          black_level=BLACK, white_level=1023, exposure_s=level * 1e-5)
            files.append(str(write_dng(folder / f"flat_{i:02d}_{k}.dng", frame)))
    rng = np.random.default_rng(3)
    for k in range(4):
        dark = np.clip(BLACK + rng.normal(0, 0.5, (64, 80)), 0, 1023).round().astype(np.uint16)
        frame = Frame(data=dark, cfa="RGGB", black_level=BLACK, white_level=1023, exposure_s=LEVELS[k % 2] * 1e-5)
        files.append(str(write_dng(folder / f"dark_{k}.dng", frame)))
    return files


def test_a_photon_transfer_set_gives_the_clip_levels(capsys, tmp_path):
    files = write_ptc_set(tmp_path)
    code = main(["analyze", "zebra", *files, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["steps"] == len(LEVELS) and doc["frames"] == 2 * len(LEVELS) and doc["dark_frames_ignored"] == 4
    for name in ("R", "Gr", "Gb"):  # B (the ADC's top) is not reached by this sweep
        assert doc["channels"][name]["clip_level_dn"] == pytest.approx(CLIP[name], abs=1.0)
    assert doc["channels"]["B"]["clip_level_dn"] is None
    assert doc["clip_level_dn"] == pytest.approx(min(CLIP.values()), abs=1.0)
    # the same set with one frame of each pair only: the averaged pairs agree with it
    code = main(["analyze", "zebra", *[f for f in files if f.endswith("_1.dng")], "--json"])
    single = json.loads(capsys.readouterr()[0])
    assert code == 0 and single["clip_level_dn"] == pytest.approx(doc["clip_level_dn"], abs=1.0)


@pytest.mark.skipif(not EMVA.is_file(), reason=f"EMVA 1288 reference set absent ({EMVA})")
def test_the_real_emva_set_001(capsys):
    code = main(["analyze", "zebra", "--descriptor", str(EMVA), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    images = EMVA.parent / "images"
    # independent: the brightest step's pair mean (centre half), and the darks' mean as the offset
    top = np.mean([cv2.imread(str(images / f"b_048_snap_00{k}.png"), cv2.IMREAD_UNCHANGED)[120:360, 160:480]
                   for k in (1, 2)])
    dark = np.mean([cv2.imread(str(images / f"d_000_snap_00{k}.png"), cv2.IMREAD_UNCHANGED) for k in (1, 2)])
    print(f"\nEMVA set 001: clip {doc['clip_level_dn']} DN (brightest pair {top:.1f} DN), offset {dark:.2f} DN, "
          f"T_raw {doc['raw_threshold_dn']} DN")
    assert doc["steps"] == 13 and doc["dark_frames_ignored"] == 26
    assert doc["clip_level_dn"] == pytest.approx(top, abs=2.0)
    assert doc["black_level"] == pytest.approx(dark, abs=0.01)
    assert doc["raw_threshold_dn"] == round(doc["clip_level_dn"] - 0.02 * (doc["clip_level_dn"] - dark))


def test_descriptor_and_files_together_is_a_usage_error(capsys, tmp_path):
    code = main(["analyze", "zebra", "x.dng", "--descriptor", str(tmp_path / "d.txt")])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "either FILE... or --descriptor" in err
