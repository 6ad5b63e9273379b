"""The EMVA 1288 descriptor file as the emva1288 package's ParseEmvaDescriptorFile reads it (``v``,
``n bits width height``, ``b exposure photons``, ``d exposure``, ``i path``): parsed from its text; the
station reads the file (``station.emva_files``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from calibration.emva1288_results import SensorAnalysisError


@dataclass
class EmvaDescriptor:
    """A parsed descriptor. Exposures are in the file's unit (ns for the emva1288 package).

    ``bright[kind][exposure][photons] -> [paths]``, ``dark[kind][exposure] -> [paths]``, ``kind`` is
    ``temporal`` (two images) or ``spatial`` (more), as the emva1288 package classifies them.
    """

    path: Path
    version: str | None
    bits: int | None
    width: int | None
    height: int | None
    bright: dict[str, dict[float, dict[float, list[Path]]]]
    dark: dict[str, dict[float, list[Path]]]


def parse_descriptor(text: str, path: str | os.PathLike[str]) -> EmvaDescriptor:
    """Parse the ``text`` of the EMVA 1288 descriptor file ``path``; image paths are resolved against its folder
    ('\\' or '/'). No file is read here. Raises SensorAnalysisError naming the line on a malformed file.
    """
    path = Path(path)
    base = path.parent
    lines = [(n, s.strip()) for n, s in enumerate(text.splitlines(), 1)]
    lines = [(n, s) for n, s in lines if s and not s.startswith("#")]
    version = None
    fmt: tuple[int, int, int] | None = None
    bright: dict[str, dict[float, dict[float, list[Path]]]] = {"temporal": {}, "spatial": {}}
    dark: dict[str, dict[float, list[Path]]] = {"temporal": {}, "spatial": {}}

    def bad(n: int, msg: str) -> SensorAnalysisError:
        return SensorAnalysisError(f"{path}:{n}: {msg}")

    def number(n: int, text: str) -> float:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            raise bad(n, f"{text!r} is not a number") from None

    i = 0
    while i < len(lines):
        n, line = lines[i]
        parts = line.split()
        i += 1
        if len(parts) < 2:
            raise bad(n, f"malformed line {line!r}")
        tag = parts[0]
        if tag == "v":
            version = parts[1]
        elif tag == "n":
            if len(parts) != 4:
                raise bad(n, f"{line!r} should be 'n bits width height'")
            if fmt is not None:
                raise bad(n, "only one 'n bits width height' line is allowed")
            fmt = (int(number(n, parts[1])), int(number(n, parts[2])), int(number(n, parts[3])))
        elif tag in ("b", "d"):
            if tag == "b" and len(parts) != 3:
                raise bad(n, f"{line!r} should be 'b exposure photons'")
            if tag == "d" and len(parts) != 2:
                raise bad(n, f"{line!r} should be 'd exposure'")
            exposure = number(n, parts[1])
            names: list[Path] = []
            while i < len(lines) and lines[i][1].split()[0] == "i":
                m, img_line = lines[i]
                img_parts = img_line.split(maxsplit=1)
                if len(img_parts) != 2:
                    raise bad(m, f"{img_line!r} should be 'i filename'")
                names.append(base.joinpath(*img_parts[1].strip().replace("\\", "/").split("/")))
                i += 1
            if len(names) < 2:
                raise bad(n, "each image series needs at least two images")
            kind = "temporal" if len(names) == 2 else "spatial"
            if tag == "b":
                photons = number(n, parts[2])
                step = bright[kind].setdefault(exposure, {})
                if photons in step:
                    raise bad(n, f"a second bright series at photon count {photons:g}")
                step[photons] = names
            else:
                if exposure in dark[kind]:
                    raise bad(n, f"a second dark series at exposure {exposure:g}")
                dark[kind][exposure] = names
        elif tag == "i":
            raise bad(n, "an 'i' line outside a 'b' or 'd' series")
        else:
            raise bad(n, f"unknown line {line!r}")
    bits, width, height = fmt if fmt is not None else (None, None, None)
    return EmvaDescriptor(path, version, bits, width, height, bright, dark)
