"""``station analyze zebra`` / ``peaking``: JSON shapes, numbers against the synthetic truth, exit 2 with one
line on bad input (strict sweep.json, paths escaping the folder, sweeps that never clip or never focus)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.zebra import raw_threshold
from station.cli import main
from station.dng import write_dng
from station.frame import Frame
from tests.unit.test_peaking import COC_PX, POSITIONS, flat, sweep, true_blur
from tests.unit.test_zebra import BLACK, CLIP, preview_of, sweep_frame, tone


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


# --- zebra ------------------------------------------------------------------------------------------

LEVELS = [100.0, 250.0, 400.0, 550.0, *np.arange(600.0, 741.0, 10.0).tolist(), 800.0, 900.0, 1000.0, 1100.0,
          1250.0, 1400.0, 1500.0]


def write_zebra_sweep(folder: Path, levels: list[float], previews: bool, exposures: bool = True) -> list[str]:
    rng = np.random.default_rng(21)
    files = []
    for i, level in enumerate(levels):
        data = sweep_frame(level, 500 + i, read_dn=0.5, vignetting=0.05)
        frame = Frame(data=data, cfa="RGGB", black_level=BLACK, white_level=1023,
                      exposure_s=level * 1e-5 if exposures else 0.01)
        files.append(str(write_dng(folder / f"f{i:02d}.dng", frame)))
        if previews:
            png = folder / f"f{i:02d}.png"
            cv2.imwrite(str(png), preview_of(data, rng))
            files.append(str(png))
    return files


def test_zebra_json_shape_and_numbers(capsys, tmp_path) -> None:
    files = write_zebra_sweep(tmp_path, LEVELS, previews=True)
    code, out, err = run_cli(capsys, "analyze", "zebra", *files, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc["channels"]) == {"R", "Gr", "Gb", "B"}
    for name, truth in CLIP.items():
        assert doc["channels"][name]["clip_level_dn"] == pytest.approx(truth, abs=1.0), name
    t_raw = raw_threshold(CLIP["R"], BLACK)
    assert doc["raw_threshold_dn"] == t_raw and isinstance(doc["raw_threshold_dn"], int)
    expected_luma = tone(np.array([(t_raw - BLACK) / (CLIP["R"] - BLACK)]))[0]
    assert isinstance(doc["luma_threshold"], int) and abs(doc["luma_threshold"] - expected_luma) <= 1.0
    assert doc["light_axis"] == "exposure_s" and doc["frames"] == len(LEVELS) == doc["previews"]
    code, out, err = run_cli(capsys, "analyze", "zebra", *files, "--margin", "0.05")
    assert code == 0 and "T_raw" in out and str(raw_threshold(CLIP["R"], BLACK, 0.05)) in out


def test_zebra_without_previews_and_with_levels(capsys, tmp_path) -> None:
    files = write_zebra_sweep(tmp_path, LEVELS, previews=False, exposures=False)
    code, out, err = run_cli(capsys, "analyze", "zebra", *files, "--json",
                             "--levels", ",".join(f"{v:g}" for v in LEVELS))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["luma_threshold"] is None and doc["light_axis"] == "levels"
    assert doc["channels"]["Gr"]["clip_level_dn"] == pytest.approx(964.0, abs=1.0)
    code, out, err = run_cli(capsys, "analyze", "zebra", *files, "--json")  # same exposure: file order
    assert code == 0 and json.loads(out)["light_axis"] == "file order"
    code, out, err = run_cli(capsys, "analyze", "zebra", *files, "--levels", "1,2")
    assert_one_line_error(code, out, err, "--levels", f"expected {len(LEVELS)} finite numbers")


def test_zebra_sweep_that_never_clips_exits_2(capsys, tmp_path) -> None:
    files = write_zebra_sweep(tmp_path, [60.0, 150.0, 250.0, 350.0, 450.0], previews=False)
    code, out, err = run_cli(capsys, "analyze", "zebra", *files, "--json")
    assert_one_line_error(code, out, err, "sweep never reaches clipping", "f00.dng")


def test_zebra_bad_inputs_exit_2(capsys, tmp_path) -> None:
    files = write_zebra_sweep(tmp_path, LEVELS[:4], previews=False)
    orphan = tmp_path / "lonely.png"
    cv2.imwrite(str(orphan), np.zeros((8, 8), np.uint8))
    assert_one_line_error(*run_cli(capsys, "analyze", "zebra", *files, str(orphan)), "lonely.png", "no DNG")
    assert_one_line_error(*run_cli(capsys, "analyze", "zebra", str(tmp_path / "nope.dng")), "no such file")
    assert_one_line_error(*run_cli(capsys, "analyze", "zebra", *files, "--margin", "1.5"), "--margin")
    assert_one_line_error(*run_cli(capsys, "analyze", "zebra", str(orphan)), "no DNG among the files")


# --- peaking ------------------------------------------------------------------------------------------

def write_peaking_sweep(folder: Path, positions: np.ndarray = POSITIONS, **overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i, (p, luma) in enumerate(sweep(positions)):
        name = f"focus_{i:02d}.png"
        cv2.imwrite(str(folder / name), luma)
        frames.append({"file": name, "focus": p})
    flats = []
    for i in range(2):
        name = f"flat_{i}.png"
        cv2.imwrite(str(folder / name), flat(0.3, 100 + i))
        flats.append(name)
    doc = {"frames": frames, "flats": flats, "coc_px": COC_PX, **overrides}
    (folder / "sweep.json").write_text(json.dumps(doc))
    return folder


@pytest.fixture(scope="module")
def peaking_dir(tmp_path_factory) -> Path:
    return write_peaking_sweep(tmp_path_factory.mktemp("peaking"))


def test_peaking_json_shape_and_numbers(capsys, peaking_dir) -> None:
    code, out, err = run_cli(capsys, "analyze", "peaking", "--sweep", str(peaking_dir), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert {"threshold", "best_focus", "in_focus", "frames", "flat_rate"} <= set(doc)
    assert isinstance(doc["threshold"], int) and doc["feasible"][0] <= doc["threshold"] <= doc["feasible"][1]
    truth = true_blur(POSITIONS)
    in_focus = POSITIONS[truth <= COC_PX]
    assert doc["in_focus"] == [in_focus.min(), in_focus.max()]
    assert abs(doc["best_focus"] - 0.2) < 0.1
    assert [f["file"] for f in doc["frames"]] == [f"focus_{i:02d}.png" for i in range(len(POSITIONS))]
    for row, blur in zip(doc["frames"], truth, strict=True):
        assert 0.0 <= row["coverage"] <= 1.0 and row["in_focus"] == bool(blur <= COC_PX)
    assert doc["flat_rate"] <= 0.001
    code, out, err = run_cli(capsys, "analyze", "peaking", "--sweep", str(peaking_dir))
    assert code == 0 and "T_peak" in out and "focus_07.png" in out


def _rewrite(folder: Path, doc: dict) -> None:
    (folder / "sweep.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("change, needle", [
    (lambda d: d.update(extra=1), "unknown key 'extra'"),
    (lambda d: d["frames"][0].update(blur=1.0), "frames[0]: unknown key 'blur'"),
    (lambda d: d["frames"][1].pop("focus"), "frames[1]: missing key 'focus'"),
    (lambda d: d["frames"][0].update(file="missing.png"), "'missing.png': no such file"),
    (lambda d: d["frames"][0].update(file="../outside.png"), "relative path inside"),
    (lambda d: d["flats"].__setitem__(0, "/etc/passwd"), "relative path inside"),
    (lambda d: d["frames"][0].update(focus=True), "frames[0].focus: expected a number"),
    (lambda d: d.update(coc_px=-1), "coc_px: expected a positive number"),
    (lambda d: d.pop("flats"), "missing key 'flats'"),
    (lambda d: d.update(frames=[]), "frames: expected a non-empty list"),
])
def test_peaking_sweep_json_is_strict(capsys, tmp_path, peaking_dir, change, needle) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    for png in peaking_dir.glob("*.png"):
        (folder / png.name).write_bytes(png.read_bytes())
    (tmp_path / "outside.png").write_bytes((peaking_dir / "flat_0.png").read_bytes())
    doc = json.loads((peaking_dir / "sweep.json").read_text())
    change(doc)
    _rewrite(folder, doc)
    assert_one_line_error(*run_cli(capsys, "analyze", "peaking", "--sweep", str(folder), "--json"),
                          "sweep.json", needle)


def test_peaking_symlink_out_of_the_folder_is_refused(capsys, tmp_path, peaking_dir) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    for png in peaking_dir.glob("*.png"):
        (folder / png.name).write_bytes(png.read_bytes())
    (folder / "flat_0.png").unlink()
    (folder / "flat_0.png").symlink_to(peaking_dir / "flat_0.png")
    (folder / "sweep.json").write_text((peaking_dir / "sweep.json").read_text())
    assert_one_line_error(*run_cli(capsys, "analyze", "peaking", "--sweep", str(folder)), "flats[0]",
                          "leads outside")


def test_peaking_bad_folder_and_json(capsys, tmp_path) -> None:
    assert_one_line_error(*run_cli(capsys, "analyze", "peaking", "--sweep", str(tmp_path / "none")), "no such folder")
    assert_one_line_error(*run_cli(capsys, "analyze", "peaking", "--sweep", str(tmp_path)), "sweep.json",
                          "no such file")
    (tmp_path / "sweep.json").write_text("{not json")
    assert_one_line_error(*run_cli(capsys, "analyze", "peaking", "--sweep", str(tmp_path)), "not valid JSON")


def test_peaking_sweep_never_in_focus_exits_2(capsys, tmp_path) -> None:
    folder = write_peaking_sweep(tmp_path / "blurry", positions=np.linspace(1.6, 4.0, 5))
    assert_one_line_error(*run_cli(capsys, "analyze", "peaking", "--sweep", str(folder), "--json"),
                          "focus sweep never reaches focus")
