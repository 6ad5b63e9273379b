"""``station chart``: files at physical size (SVG mm, PNG pixels and DPI, PDF points), geometry, errors."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from station.cli import main


def test_svg_is_in_mm(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "sfr.svg"
    assert main(["chart", "sfr", "--size-mm", "420", "297", "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("420mm", "297mm", "0 0 420 297")
    polygons = root.findall(".//{http://www.w3.org/2000/svg}polygon")
    assert len(polygons) == 13  # the slanted squares
    assert "wrote" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))


def test_png_pixels_and_dpi(tmp_path: Path) -> None:
    out = tmp_path / "steps.png"
    assert main(["chart", "steps", "--size-mm", "200", "150", "--dpi", "72", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (round(200 / 25.4 * 72), round(150 / 25.4 * 72))
        assert im.info["dpi"][0] == pytest.approx(72, abs=0.01)
        px = im.convert("RGB").load()
        lin = (0.18 - 0.03) / (0.9 - 0.03)  # the 0.18 sheet, black-point compensated ink
        code = round((1.055 * lin ** (1 / 2.4) - 0.055) * 255)
        assert px[im.size[0] // 2, 2] == (code, code, code)


def test_pdf_page_is_the_chart_size(tmp_path: Path) -> None:
    out = tmp_path / "star.pdf"
    assert main(["chart", "siemens", "--size-mm", "300", "200", "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    box = [float(v) for v in re.search(rb"MediaBox\s*\[\s*([^\]]+)\]", data).group(1).split()]
    assert box[2:] == [pytest.approx(300 / 25.4 * 72, abs=0.01), pytest.approx(200 / 25.4 * 72, abs=0.01)]


def test_charuco_info_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["chart", "charuco:5x7:40:20:DICT_6X6_250", "--info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    keys = ("squares_x", "squares_y", "square_mm", "marker_mm", "dictionary")
    assert tuple(info[k] for k in keys) == (5, 7, 40.0, 20.0, "DICT_6X6_250")
    assert main(["chart", "charuco", "--info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["width_mm"] == 400.0 and info["squares_x"] * info["square_mm"] <= 400.0


def test_list(capsys: pytest.CaptureFixture) -> None:
    assert main(["chart", "list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["charuco", "sfr", "steps", "colorchecker", "siemens", "flat"]
    assert main(["chart", "--list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["charts"]) == 6


@pytest.mark.parametrize("argv", [
    ["chart", "nosuch", "-o", "{tmp}/a.svg"],
    ["chart", "sfr", "-o", "{tmp}/a.bmp"],
    ["chart", "sfr", "--size-mm", "400", "x", "-o", "{tmp}/a.svg"],
    ["chart", "sfr", "--size-mm", "-4", "30", "-o", "{tmp}/a.svg"],
    ["chart", "sfr", "--dpi", "0", "-o", "{tmp}/a.png"],
    ["chart", "charuco:5x7:40", "-o", "{tmp}/a.svg"],
    ["chart", "charuco:5x7:40:20:DICT_6X6_250", "--size-mm", "100", "100", "-o", "{tmp}/a.svg"],
    ["chart", "sfr", "-o", "{tmp}/missing/a.svg"],
])
def test_bad_input_exit_2_one_line(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("station chart: error:") and "\n" not in err
    assert not list(tmp_path.iterdir())
