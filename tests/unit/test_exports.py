"""Profile exports: lensfun XML that lensfunpy loads and corrects with, Android metadata, DNG opcodes, the CLI."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import cv2
import lensfunpy
import numpy as np
import pytest
import rawpy
import tifffile

from calibration.distortion_models import DngWarpRectilinear, dng_to_opencv
from calibration.export_android import android_metadata
from calibration.export_dng import (
    DngOpcodeError,
    GainMap,
    WarpRectilinear,
    dng_export,
    dng_opcode_list,
    embed_opcode_lists,
    parse_opcode_list,
)
from calibration.export_lensfun import lensfun_export
from calibration.profile import ProfileError, dumps_profile
from station.cli import main
from station.dng import dng_bytes
from station.frame import Frame
from tests.unit.test_distortion_models import android_equations, dng_sdk_source, opencv_source
from tests.unit.test_profile import CAMERA_MATRIX, SIZE, sample_profile

W, H = SIZE
K = np.array(CAMERA_MATRIX)
DIST = np.array([-0.21, 0.09, 0.0, 0.0, 0.0])


# ---------------------------------------------------------------------------------------------- lensfun

def dot_image(centres: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    """Gaussian dots at sub-pixel ``centres`` (N, 2) on a W x H float32 image."""
    img = np.zeros((H, W), np.float32)
    r = 6
    for x, y in centres:
        x0, y0 = int(round(x)), int(round(y))
        ys, xs = np.mgrid[y0 - r: y0 + r + 1, x0 - r: x0 + r + 1]
        keep = (xs >= 0) & (xs < W) & (ys >= 0) & (ys < H)
        img[ys[keep], xs[keep]] += np.exp(-((xs[keep] - x) ** 2 + (ys[keep] - y) ** 2) / (2 * sigma**2))
    return img


def dot_centroids(img: np.ndarray) -> np.ndarray:
    mask = (img > 0.2 * img.max()).astype(np.uint8)
    n, labels = cv2.connectedComponents(mask)
    ys, xs = np.indices(img.shape)
    out = []
    for i in range(1, n):
        sel = labels == i
        w = img[sel]
        out.append((np.sum(xs[sel] * w) / w.sum(), np.sum(ys[sel] * w) / w.sum()))
    return np.array(out)


def lensfun_modifier(path: Path | None = None):
    export = lensfun_export(sample_profile())
    if path is not None:
        db = lensfunpy.Database(paths=[str(path)], load_common=False, load_bundled=False)
    else:
        db = lensfunpy.Database(xml=export.xml, load_common=False, load_bundled=False)
    cameras = db.find_cameras(export.camera_maker, export.camera_model)
    assert len(cameras) == 1
    lenses = db.find_lenses(cameras[0], export.lens_maker, export.lens_model)
    assert lenses and lenses[0].model == "summilux-m-35-f1.4"
    modifier = lensfunpy.Modifier(lenses[0], cameras[0].crop_factor, W, H)
    return export, modifier


def test_lensfun_xml_corrects_a_distorted_image(tmp_path):
    export = lensfun_export(sample_profile())
    assert export.distortion.exact
    path = tmp_path / "m.lensfun.xml"
    path.write_text(export.xml)
    _, modifier = lensfun_modifier(path=path)
    modifier.initialize(export.focal_mm, 1.4, 1000.0, scale=1.0, flags=lensfunpy.ModifyFlags.DISTORTION)
    undistort = modifier.apply_geometry_distortion()
    # a grid of dots where a pinhole camera would image them, distorted with the known OpenCV model
    gx, gy = np.meshgrid(np.linspace(30, W - 31, 15), np.linspace(30, H - 31, 11))
    ideal = np.stack([gx.ravel(), gy.ravel()], axis=1)
    captured = dot_image(opencv_source(K, DIST, ideal[:, 0], ideal[:, 1]))
    corrected = cv2.remap(captured, undistort[..., 0], undistort[..., 1], cv2.INTER_CUBIC)
    found = dot_centroids(corrected)
    assert len(found) == len(ideal)
    err = np.min(np.hypot(found[:, None, 0] - ideal[None, :, 0], found[:, None, 1] - ideal[None, :, 1]), axis=1)
    # the distorted capture is really off (barrel, tens of px at the corners), the correction puts it back
    before = dot_centroids(captured)
    err_before = np.min(np.hypot(before[:, None, 0] - ideal[None, :, 0], before[:, None, 1] - ideal[None, :, 1]),
                        axis=1)
    print(f"\nlensfun correction: dots within {err.max():.3f} px (mean {err.mean():.3f}); "
          f"uncorrected up to {err_before.max():.1f} px")
    assert err_before.max() > 10.0
    assert err.max() < 0.5


def test_lensfun_map_matches_the_opencv_model_everywhere():
    export, modifier = lensfun_modifier()
    modifier.initialize(export.focal_mm, 1.4, 1000.0, scale=1.0, flags=lensfunpy.ModifyFlags.DISTORTION)
    undistort = modifier.apply_geometry_distortion().reshape(-1, 2).astype(np.float64)
    v, u = np.indices((H, W)).reshape(2, -1).astype(np.float64)
    truth = opencv_source(K, DIST, u, v)
    assert np.max(np.hypot(*(undistort - truth).T)) < 0.02  # lensfun works in float32


def test_lensfun_vignetting_and_tca_entries_apply():
    export, modifier = lensfun_modifier()
    assert export.f_number == 1.4 and export.vignetting_residual_pct < 1.0
    modifier.initialize(export.focal_mm, 1.4, 1000.0, scale=1.0, pixel_format=np.float32,
                        flags=lensfunpy.ModifyFlags.VIGNETTING)
    yy, xx = np.indices((H, W), dtype=np.float64)
    r2 = ((xx - 320.0) ** 2 + (yy - 240.0) ** 2) / 400.0**2  # the profile's radial fit, as a flat would show it
    falloff = 1.0 - 0.3 * r2 + 0.05 * r2**2
    flat = np.repeat((0.5 * falloff)[..., None], 3, axis=2).astype(np.float32)
    assert modifier.apply_color_modification(flat)
    assert np.max(np.abs(flat / 0.5 - 1.0)) < 0.01  # flat again to 1 %
    modifier = lensfunpy.Modifier(modifier.lens, export.crop_factor, W, H)
    modifier.initialize(export.focal_mm, 1.4, 1000.0, scale=1.0, flags=lensfunpy.ModifyFlags.TCA)
    sub = modifier.apply_subpixel_distortion()  # (H, W, 3, 2): where R, G, B are sampled
    corner = sub[H - 1, W - 1]
    centre = K[:2, 2]  # lensfun's lens centre is the principal point
    scale_r = np.linalg.norm(corner[0] - centre) / np.linalg.norm(corner[1] - centre)
    scale_b = np.linalg.norm(corner[2] - centre) / np.linalg.norm(corner[1] - centre)
    assert scale_r == pytest.approx(1.0003, abs=2e-5) and scale_b == pytest.approx(0.9996, abs=2e-5)


def test_lensfun_needs_geometry():
    with pytest.raises(ProfileError, match="geometry"):
        lensfun_export(sample_profile(lens=None, geometry=None, chromatic=None))


# ---------------------------------------------------------------------------------------------- Android

def test_android_keys_and_values():
    doc = sample_profile(geometry={"camera_matrix": CAMERA_MATRIX, "dist_coeffs": [-0.21, 0.09, 0.0012, -0.0007, -0.02],
                                   "rms_px": 0.04, "views_used": 12})
    meta = android_metadata(doc)
    assert meta["android.lens.intrinsicCalibration"] == [560.0, 560.0, 321.8, 239.4, 0.0]
    assert meta["android.lens.distortion"] == [-0.21, 0.09, -0.02, 0.0012, -0.0007]
    assert meta["android.sensor.info.preCorrectionActiveArraySize"] == {"left": 0, "top": 0, "right": W, "bottom": H}
    # the Android equations with these values put every corrected pixel where OpenCV does
    u, v = np.meshgrid(np.linspace(0, W - 1, 30), np.linspace(0, H - 1, 20))
    got = android_equations(meta["android.lens.intrinsicCalibration"], meta["android.lens.distortion"],
                            u.ravel(), v.ravel())
    want = opencv_source(K, np.array([-0.21, 0.09, 0.0012, -0.0007, -0.02]), u.ravel(), v.ravel())
    assert np.max(np.abs(got - want)) < 1e-9
    # LENS_SHADING_MAP: N columns x M rows, 4 per point [R, G_even, G_odd, B], row after row
    gains = np.asarray(doc["shading"]["map"])
    n, m = meta["android.lens.info.shadingMapSize"]["width"], meta["android.lens.info.shadingMapSize"]["height"]
    assert (n, m) == (7, 5)
    flat = meta["android.statistics.lensShadingMap"]
    assert len(flat) == n * m * 4 and min(flat) >= 1.0
    for x, y, ch in [(0, 0, 0), (6, 0, 3), (2, 4, 1), (5, 3, 2)]:
        assert flat[(y * n + x) * 4 + ch] == gains[y, x, ch]
    assert meta["android.colorCorrection.gains"] == [2.0, 1.0, 1.0, 1.6]
    assert meta["m-station.profile"]["digest"] == doc["digest"]
    json.dumps(meta, allow_nan=False)


def test_android_intrinsics_scale_to_the_full_active_array():
    meta = android_metadata(sample_profile(), active_array_size=(4 * W, 4 * H))
    fx, fy, cx, cy, s = meta["android.lens.intrinsicCalibration"]
    assert (fx, fy) == (4 * 560.0, 4 * 560.0)
    assert (cx, cy) == pytest.approx((4 * (321.3 + 0.5), 4 * (238.9 + 0.5)), abs=1e-9)
    assert meta["android.lens.distortion"][:2] == [-0.21, 0.09]


# ---------------------------------------------------------------------------------------------- DNG

def test_warp_rectilinear_bytes_follow_the_spec_layout():
    warp = WarpRectilinear(((1.0, -0.1, 0.02, 0.0, 0.001, -0.002),), (0.5, 0.25))
    data = dng_opcode_list([warp])
    assert len(data) == 4 + 16 + 68  # count + header + (LONG + 6 DOUBLE + 2 DOUBLE)
    assert data[:4] == b"\x00\x00\x00\x01"  # one opcode
    assert data[4:8] == b"\x00\x00\x00\x01"  # WarpRectilinear
    assert data[8:12] == bytes([1, 3, 0, 0])  # DNG 1.3.0.0
    assert data[12:16] == b"\x00\x00\x00\x01"  # optional
    assert data[16:20] == b"\x00\x00\x00\x44"  # 68 parameter bytes
    assert data[20:24] == b"\x00\x00\x00\x01"  # one plane
    assert data[24:32] == bytes.fromhex("3ff0000000000000")  # kr0 = 1.0, big-endian IEEE double
    assert data[-16:-8] == bytes.fromhex("3fe0000000000000")  # cx = 0.5
    assert data[-8:] == bytes.fromhex("3fd0000000000000")  # cy = 0.25
    assert parse_opcode_list(data) == [warp]


def test_gain_map_bytes_follow_the_spec_layout():
    gains = np.arange(1, 7, dtype=np.float32).reshape(2, 3, 1)
    op = GainMap(0, 1, 48, 64, 0, 1, 2, 2, (0.5, 0.25), (0.0, 0.125), gains)
    data = dng_opcode_list([op])
    params = data[20:]
    assert struct.unpack(">I", data[4:8])[0] == 9 and struct.unpack(">I", data[16:20])[0] == 76 + 4 * 6 == len(params)
    assert struct.unpack(">10I", params[:40]) == (0, 1, 48, 64, 0, 1, 2, 2, 2, 3)
    assert struct.unpack(">4d", params[40:72]) == (0.5, 0.25, 0.0, 0.125)
    assert struct.unpack(">I", params[72:76]) == (1,)
    assert struct.unpack(">6f", params[76:]) == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    assert parse_opcode_list(data) == [op]


def test_profile_opcodes_parse_back_and_sample_like_android():
    doc = sample_profile()
    export = dng_export(doc)
    warp, = parse_opcode_list(export.opcode_list3)
    assert len(warp.planes) == 3  # R, G, B with lateral CA
    assert warp.planes[0] == pytest.approx(tuple(1.0003 * c for c in warp.planes[1]), rel=1e-15)
    assert warp.planes[2] == pytest.approx(tuple(0.9996 * c for c in warp.planes[1]), rel=1e-15)
    u, v = np.meshgrid(np.linspace(0, W - 1, 20), np.linspace(0, H - 1, 15))
    src = dng_sdk_source(warp.planes[1:2], warp.center, SIZE, u.ravel(), v.ravel())
    assert np.max(np.abs(src - opencv_source(K, DIST, u.ravel(), v.ravel()))) < 1e-9
    back = dng_to_opencv(DngWarpRectilinear(warp.planes[1:2], warp.center, (W, H)), K[0, 0])  # through the bytes
    assert back.exact and np.max(np.abs(back.model.dist_coeffs - DIST)) <= 1e-6
    assert np.max(np.abs(back.model.camera_matrix - K)) <= 1e-6
    maps = parse_opcode_list(export.opcode_list2)
    assert [(g.top, g.left) for g in maps] == [(0, 0), (0, 1), (1, 0), (1, 1)]  # R, G_even, G_odd, B in RGGB
    gains = np.asarray(doc["shading"]["map"], np.float32)
    for channel, g in enumerate(maps):
        assert (g.bottom, g.right, g.row_pitch, g.col_pitch, g.plane, g.planes) == (H, W, 2, 2, 0, 1)
        assert np.array_equal(g.gains[..., 0], gains[..., channel])
        # the DNG SDK samples map column (x + 0.5) / W - originH) / spacingH: Android's node j sits on
        # pixel j (W-1)/(N-1), so pixel centres of the nodes land on integer map indices
        for j in range(gains.shape[1]):
            x = j * (W - 1) / (gains.shape[1] - 1)
            assert ((x + 0.5) / W - g.origin[1]) / g.spacing[1] == pytest.approx(j, abs=1e-9)
        for i in range(gains.shape[0]):
            y = i * (H - 1) / (gains.shape[0] - 1)
            assert ((y + 0.5) / H - g.origin[0]) / g.spacing[0] == pytest.approx(i, abs=1e-9)


def test_bad_opcode_bytes_are_refused():
    data = dng_opcode_list([WarpRectilinear(((1.0, 0, 0, 0, 0, 0),), (0.5, 0.5))])
    with pytest.raises(DngOpcodeError, match="truncated"):
        parse_opcode_list(data[:-3])
    with pytest.raises(DngOpcodeError, match="after the last"):
        parse_opcode_list(data + b"\x00")
    with pytest.raises(ProfileError, match="shading.cfa"):
        dng_export(sample_profile(shading={"grid": [2, 2], "map": np.ones((2, 2, 4))}))


def test_opcode_lists_embed_into_a_dng_that_still_opens():
    frame = Frame(data=(np.arange(W * H, dtype=np.uint32).reshape(H, W) % 1000 + 64).astype(np.uint16))
    export = dng_export(sample_profile())
    out = embed_opcode_lists(dng_bytes(frame), opcode_list2=export.opcode_list2, opcode_list3=export.opcode_list3)
    with tifffile.TiffFile(io.BytesIO(out)) as tif:
        page = tif.pages[0]
        assert bytes(page.tags[51009].value) == export.opcode_list2
        assert bytes(page.tags[51022].value) == export.opcode_list3
        assert np.array_equal(page.asarray(), frame.data)
    with rawpy.imread(io.BytesIO(out)) as raw:
        assert np.array_equal(raw.raw_image_visible, frame.data)


# ---------------------------------------------------------------------------------------------- CLI

@pytest.fixture()
def profile_file(tmp_path: Path) -> Path:
    path = tmp_path / "m-summilux-m-35-f1.4.profile.json"
    path.write_text(dumps_profile(sample_profile()))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exports_each_target(capsys, tmp_path, monkeypatch, profile_file):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "profile", "export", str(profile_file), "--to", "lensfun")
    assert code == 0 and "m-summilux-m-35-f1.4.lensfun.xml" in out
    db = lensfunpy.Database(paths=[str(tmp_path / "m-summilux-m-35-f1.4.lensfun.xml")], load_common=False,
                            load_bundled=False)
    assert db.find_cameras("M-Station", "m sensor")
    code, out, _ = run_cli(capsys, "profile", "export", str(profile_file), "--to", "android", "-o", "a.json", "--json")
    assert code == 0 and json.loads(out)["written"] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text())["android.lens.distortion"] == [-0.21, 0.09, 0.0, 0.0, 0.0]
    code, out, _ = run_cli(capsys, "profile", "export", str(profile_file), "--to", "dng")
    assert code == 0
    assert len(parse_opcode_list((tmp_path / "m-summilux-m-35-f1.4.OpcodeList2.bin").read_bytes())) == 4
    assert len(parse_opcode_list((tmp_path / "m-summilux-m-35-f1.4.OpcodeList3.bin").read_bytes())) == 1
    frame = tmp_path / "f.dng"
    frame.write_bytes(dng_bytes(Frame(data=np.full((H, W), 100, np.uint16))))
    code, out, _ = run_cli(capsys, "profile", "export", str(profile_file), "--to", "dng", "--frame", str(frame),
                           "-o", "out.dng")
    assert code == 0 and "out.dng" in out
    with tifffile.TiffFile(tmp_path / "out.dng") as tif:
        assert 51022 in tif.pages[0].tags


def test_cli_show_and_verify(capsys, profile_file):
    code, out, _ = run_cli(capsys, "profile", "show", str(profile_file))
    assert code == 0 and "summilux-m-35-f1.4" in out and "fx 560.00" in out and "(ok)" in out
    code, out, _ = run_cli(capsys, "profile", "verify", str(profile_file), "--json")
    assert code == 0 and json.loads(out)["digest_ok"] is True
    code, out, _ = run_cli(capsys, "profile", "show", str(profile_file), "--json")
    assert json.loads(out)["geometry"]["rms_px"] == 0.042


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON"),
    (json.dumps({"schema": "other", "version": 1}), "schema"),
    (None, "digest mismatch"),
    ("missing", "no such file"),
])
def test_cli_bad_profiles_are_one_line_exit_2(capsys, tmp_path, profile_file, content, message):
    path = tmp_path / "bad.json"
    if content is None:
        path.write_text(profile_file.read_text().replace('"rms_px": 0.042', '"rms_px": 0.041'))
    elif content != "missing":
        path.write_text(content)
    for argv in (("verify", str(path)), ("export", str(path), "--to", "lensfun")):
        code, out, err = run_cli(capsys, "profile", *argv)
        assert code == 2 and out == ""
        assert str(path) in err and message in err and err.count("\n") == 1


def test_cli_export_errors(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bare = tmp_path / "m.profile.json"
    bare.write_text(dumps_profile(sample_profile(lens=None, geometry=None, chromatic=None)))
    code, _, err = run_cli(capsys, "profile", "export", str(bare), "--to", "lensfun")
    assert code == 2 and "geometry" in err and str(bare) in err
    small = tmp_path / "small.dng"
    small.write_bytes(dng_bytes(Frame(data=np.full((32, 48), 100, np.uint16))))
    good = tmp_path / "p.json"
    good.write_text(dumps_profile(sample_profile()))
    code, _, err = run_cli(capsys, "profile", "export", str(good), "--to", "dng", "--frame", str(small))
    assert code == 2 and "48x32" in err and str(small) in err
    not_dng = tmp_path / "x.dng"
    not_dng.write_bytes(b"hello")
    code, _, err = run_cli(capsys, "profile", "export", str(good), "--to", "dng", "--frame", str(not_dng))
    assert code == 2 and str(not_dng) in err
    code, _, err = run_cli(capsys, "profile", "export", str(good), "--to", "android", "--active-array", "big")
    assert code == 2 and "--active-array" in err
