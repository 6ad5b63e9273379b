"""``station analyze sfr`` and ``station bench sfr``: JSON shape, inputs, bad input (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from station.cli import main
from tests.unit.sfr_synth import chart_image, edge_image, true_mtf50

SQUARES = [(80.0, 80.0, 100.0, 5.0), (240.0, 90.0, 100.0, -7.0)]


def _srgb8(linear: np.ndarray) -> np.ndarray:
    v = np.clip(linear, 0.0, 1.0)
    enc = np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)
    return np.round(enc * 255.0).astype(np.uint8)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["analyze", "sfr", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_for_an_8bit_srgb_edge_crop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "edge.png"
    cv2.imwrite(str(path), _srgb8(edge_image((120, 80), 5.0, 1.0)))
    code, out, err = _run(capsys, str(path), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc) == ["files"] and doc["files"][0]["file"] == str(path)
    (edge,) = doc["files"][0]["edges"]  # a file holding one edge gives one
    assert {"mtf50_cy_px", "mtf_nyq2", "angle_deg", "roi", "mtf"} <= set(edge)
    assert edge["roi"] == [0, 0, 80, 120]
    assert edge["angle_deg"] == pytest.approx(-5.0, abs=0.1)
    # sRGB decoding undone (8-bit quantisation costs a little): the analytic edge's MTF50.
    assert edge["mtf50_cy_px"] == pytest.approx(true_mtf50(1.0, 5.0), rel=0.02)
    curve = np.asarray(edge["mtf"])
    assert curve.shape[1] == 2 and curve[0, 0] == 0.0 and curve[0, 1] == pytest.approx(1.0)
    assert np.all(np.diff(curve[:, 0]) > 0) and 0.95 <= curve[-1, 0] <= 1.0
    assert edge["mtf_nyq2"] == pytest.approx(np.interp(0.25, curve[:, 0], curve[:, 1]), abs=1e-3)


def test_without_srgb_decoding_the_edge_reads_differently(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "edge.png"
    cv2.imwrite(str(path), _srgb8(edge_image((120, 80), 5.0, 1.0)))
    lin = json.loads(_run(capsys, str(path), "--json")[1])["files"][0]["edges"][0]["mtf50_cy_px"]
    raw = json.loads(_run(capsys, str(path), "--json", "--linear")[1])["files"][0]["edges"][0]["mtf50_cy_px"]
    assert abs(raw / lin - 1.0) > 0.01


def test_chart_16bit_every_edge_and_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "chart.png"
    img = chart_image((200, 330), SQUARES, blur_px=1.0)
    cv2.imwrite(str(path), np.round(img * 65535).astype(np.uint16))
    code, out, err = _run(capsys, str(path), "--json")
    assert code == 0, err
    edges = json.loads(out)["files"][0]["edges"]
    assert len(edges) == 8
    assert sorted(round(abs(e["angle_deg"])) for e in edges) == [5] * 4 + [7] * 4
    for e in edges:
        assert e["mtf50_cy_px"] == pytest.approx(0.180, rel=0.03)
    code, out, _ = _run(capsys, str(path))
    assert code == 0 and out.count("chart.png") == 8 and "MTF50" in out


def test_roi_option_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "chart.png"
    cv2.imwrite(str(path), np.round(chart_image((200, 330), SQUARES) * 65535).astype(np.uint16))
    plot = tmp_path / "mtf.png"
    # Left side of the first square: centre near (30, 80).
    code, out, err = _run(capsys, str(path), "--roi", "10,40,40,80", "--json", "--plot", str(plot))
    assert code == 0, err
    (edge,) = json.loads(out)["files"][0]["edges"]
    assert edge["roi"] == [10, 40, 40, 80] and edge["angle_deg"] == pytest.approx(5.0, abs=0.2)
    picture = cv2.imread(str(plot))
    assert picture is not None and picture.shape[0] > 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mtf.png")]  # atomic: no temp left


def test_dng_planes_in_sensor_pixels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from station.dng import write_dng
    from station.frame import Frame

    gray = chart_image((200, 330), SQUARES, lo=0.1, hi=0.8, blur_px=1.2)
    mosaic = gray.copy()
    mosaic[0::2, 0::2] *= 0.5  # R
    mosaic[1::2, 1::2] *= 0.7  # B
    dn = np.round(64 + mosaic * (1023 - 64)).astype(np.uint16)
    path = tmp_path / "chart.dng"
    write_dng(path, Frame(data=dn, cfa="RGGB", black_level=64, white_level=1023))
    results = {}
    for plane in ("G", "R", "Y"):
        code, out, err = _run(capsys, str(path), "--plane", plane, "--json")
        assert code == 0, err
        edges = json.loads(out)["files"][0]["edges"]
        assert len(edges) == 8, plane
        assert all(e["roi"][0] % 2 == 0 and e["roi"][1] % 2 == 0 for e in edges)
        results[plane] = np.median([e["mtf50_cy_px"] for e in edges])
        assert all(e["mtf"][-1][0] <= (0.5 if plane != "Y" else 1.0) + 1e-9 for e in edges)
    truth = true_mtf50(1.2, 5.0)
    assert results["G"] == pytest.approx(truth, rel=0.03)  # a plane's own MTF, reported per sensor pixel
    assert results["R"] == pytest.approx(truth, rel=0.03)
    assert 0.7 * truth < results["Y"] < truth  # bilinear demosaic softens a little


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--roi", "1,2,3"], "--roi '1,2,3': expected X,Y,W,H"),
    (["--roi", "0,0,400,50"], "lies outside the 80x120 image"),
    (["--roi", "0,0,80,30"], "--roi 0,0,80,30: "),
    (["--plane", "R"], "needs a colour or raw (DNG) image"),
])
def test_bad_options_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          argv: list[str], fragment: str) -> None:
    path = tmp_path / "edge.png"
    img = edge_image((120, 80), 5.0, 1.0)
    img[:30] = 0.5  # the top rows flat: --roi 0,0,80,30 holds no edge
    cv2.imwrite(str(path), _srgb8(img))
    code, out, err = _run(capsys, str(path), *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("station analyze: error: ") and fragment in err


def test_image_without_an_edge_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flat.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), np.clip(128 + rng.normal(0, 3, (100, 120)), 0, 255).astype(np.uint8))
    code, out, err = _run(capsys, str(path), "--json")
    assert code == 2 and out == ""
    assert err == f"station analyze: error: {path}: no usable slanted edge found\n"


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, str(tmp_path / "nope.png"))
    assert code == 2 and err.count("\n") == 1 and "nope.png" in err


def test_bench_sfr_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "sfr", "--json", "--n", "20", "--repeats", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)["sfr"]
    assert doc["roi_px"] == 128 and doc["n"] == 20
    assert doc["edges_per_s"] > 0 and doc["reference_fft_s"] > 0
    assert doc["edge_s"] == pytest.approx(1.0 / doc["edges_per_s"])
    assert doc["cpu_edges_per_s"] > 0 and doc["numpy_cpu_edges_per_s"] > 0 and doc["numpy_edges_per_s"] > 0
    assert doc["speedup_cpu"] == pytest.approx(doc["cpu_edges_per_s"] / doc["numpy_cpu_edges_per_s"])
    assert doc["kernel"] in ("C", "numpy")
