"""``station profile``: lens profiles (DESIGN 7) -- show one, verify its digest, export it.

    station profile show PROFILE [--json]
    station profile verify PROFILE [--json]
    station profile export PROFILE --to lensfun|android|dng [-o FILE] [--frame FRAME.dng]
                                   [--f-number N] [--active-array W,H] [--json]

A profile that is not JSON, not schema ``m-station/lens-profile`` version 1, or whose digest does not match
its content is refused with one line naming the file (exit 2). Exports are written atomically; default
names come from the profile (``<sensor>[-<lens>][-<adapter>]`` + ``.lensfun.xml`` / ``.android.json`` /
``.OpcodeList2.bin`` and ``.OpcodeList3.bin``); with ``--frame`` the DNG opcode lists go into a copy of
that DNG (``-o``, default ``<frame>.<profile>.dng``).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from calibration.export_android import android_metadata
from calibration.export_dng import DngOpcodeError, dng_export, embed_opcode_lists
from calibration.export_lensfun import lensfun_export
from calibration.profile import ProfileError, loads_profile, profile_digest, profile_stem, verify_digest
from station.atomic import atomic_write_bytes, atomic_write_text
from station.errors import InputError

TARGETS = ("lensfun", "android", "dng")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("profile", help="lens profiles: show, verify, export (lensfun, Android, DNG)",
                            description="Show a lens profile, verify its digest, or export it.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    show = actions.add_parser("show", help="summary of a profile")
    show.add_argument("profile", metavar="PROFILE", help="a profile JSON file")
    show.add_argument("--json", action="store_true", help="one JSON object on stdout")
    show.set_defaults(func=run_show)

    verify = actions.add_parser("verify", help="check a profile's digest against its content")
    verify.add_argument("profile", metavar="PROFILE", help="a profile JSON file")
    verify.add_argument("--json", action="store_true", help="one JSON object on stdout")
    verify.set_defaults(func=run_verify)

    export = actions.add_parser("export", help="a profile as lensfun XML, Android metadata or DNG opcodes")
    export.add_argument("profile", metavar="PROFILE", help="a profile JSON file")
    export.add_argument("--to", required=True, choices=TARGETS, help="target format")
    export.add_argument("-o", "--output", metavar="FILE",
                        help="file to write (dng without --frame: the stem of the two .bin files)")
    export.add_argument("--frame", metavar="FRAME.dng", help="dng: write the opcode lists into a copy of this DNG")
    export.add_argument("--f-number", type=float, metavar="N",
                        help="lensfun: aperture of the vignetting entry (default: the profile's shading.f_number)")
    export.add_argument("--active-array", metavar="W,H",
                        help="android: full active array size when the profile was measured on a scaled frame")
    export.add_argument("--json", action="store_true", help="one JSON object on stdout")
    export.set_defaults(func=run_export)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


# ---------------------------------------------------------------------------------------------- reading

def read_profile(path: str | Path) -> dict[str, Any]:
    """A profile file, parsed, schema-checked and digest-verified; else ``InputError`` naming the file."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a profile JSON file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        doc = loads_profile(text)
    except ProfileError as exc:
        raise InputError(f"{path}: {exc}") from None
    if "digest" not in doc:
        raise InputError(f"{path}: digest: missing; a profile carries the sha256 of its content")
    if not verify_digest(doc):
        raise InputError(f"{path}: digest mismatch: the file says {doc['digest']}, its content gives "
                         f"{profile_digest(doc)} (edited after it was made?)")
    return doc


# ---------------------------------------------------------------------------------------------- show / verify

def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The profile in a few numbers (what ``show`` prints)."""
    out: dict[str, Any] = {key: doc[key] for key in ("sensor", "lens", "adapter", "image_size", "pixel_pitch_um")}
    out["sections"] = [s for s in ("geometry", "shading", "chromatic", "sensor_response", "color", "sfr", "focus")
                       if s in doc]
    if "geometry" in doc:
        g = doc["geometry"]
        k = g["camera_matrix"]
        out["geometry"] = {"fx": k[0][0], "fy": k[1][1], "cx": k[0][2], "cy": k[1][2],
                           "dist_coeffs": g["dist_coeffs"], "rms_px": g["rms_px"], "views_used": g["views_used"]}
    if "shading" in doc:
        gains = [v for row in doc["shading"]["map"] for cell in row for v in cell]
        out["shading"] = {"grid": doc["shading"]["grid"], "max_gain": max(gains), "cfa": doc["shading"].get("cfa")}
    if "chromatic" in doc:
        c = doc["chromatic"]
        out["chromatic"] = {"r_scale_ppm": (c["r_scale"] - 1.0) * 1e6, "b_scale_ppm": (c["b_scale"] - 1.0) * 1e6}
    if "color" in doc:
        out["color"] = {"wb_gains": doc["color"]["wb_gains"]}
    out["provenance"] = doc["provenance"]
    out["digest"] = doc["digest"]
    return out


def run_show(args: argparse.Namespace) -> int:
    info = summary(read_profile(args.profile))
    if args.json:
        print(json.dumps({"file": args.profile, "digest_ok": True, **info}))
        return 0
    print(f"{args.profile}: {info['sensor']} sensor, lens {info['lens'] or '-'}, adapter {info['adapter'] or '-'}, "
          f"{info['image_size'][0]}x{info['image_size'][1]} px at {info['pixel_pitch_um']} um")
    print(f"  sections: {', '.join(info['sections']) or 'none'}")
    if "geometry" in info:
        g = info["geometry"]
        coeffs = ", ".join(f"{v:.6g}" for v in g["dist_coeffs"])
        print(f"  geometry: fx {g['fx']:.2f} fy {g['fy']:.2f} cx {g['cx']:.2f} cy {g['cy']:.2f} px; "
              f"k1 k2 p1 p2 k3 [{coeffs}]; RMS {g['rms_px']:.3f} px over {g['views_used']} views")
    if "shading" in info:
        s = info["shading"]
        print(f"  shading: {s['grid'][0]}x{s['grid'][1]} map, CFA {s['cfa'] or '-'}, largest gain {s['max_gain']:.3f}")
    if "chromatic" in info:
        c = info["chromatic"]
        print(f"  lateral CA: R/G {c['r_scale_ppm']:+.0f} ppm, B/G {c['b_scale_ppm']:+.0f} ppm")
    if "color" in info:
        print(f"  white balance gains: {', '.join(f'{v:.4f}' for v in info['color']['wb_gains'])}")
    p = info["provenance"]
    print(f"  made {p['time']} by {p['tool']} {p['code_version']} on station {p['station']}, "
          f"DUT {p['dut_serial']}, firmware {p['firmware']}")
    print(f"  digest {info['digest']} (ok)")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    doc = read_profile(args.profile)
    if args.json:
        print(json.dumps({"file": args.profile, "digest": doc["digest"], "digest_ok": True}))
    else:
        print(f"{args.profile}: digest ok ({doc['digest']})")
    return 0


# ---------------------------------------------------------------------------------------------- export

def _active_array(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise InputError(f"--active-array {text!r}: expected W,H in pixels") from None
    if w < 2 or h < 2:
        raise InputError(f"--active-array {text!r}: expected W,H of at least 2 px each")
    return w, h


def _frame_size(path: Path, data: bytes) -> tuple[int, int]:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad input file
        raise InputError(f"{path}: not a DNG/TIFF ({type(exc).__name__})") from None


def _export_dng(args: argparse.Namespace, doc: dict[str, Any], stem: str) -> tuple[list[str], dict[str, Any]]:
    try:
        result = dng_export(doc)
    except ProfileError as exc:
        raise InputError(f"{args.profile}: {exc}") from None
    extra: dict[str, Any] = {}
    if result.warp is not None:
        extra["warp_rectilinear"] = {"exact": result.warp.exact, "residual_px": result.warp.residual_px}
    if args.frame:
        frame = Path(args.frame)
        try:
            data = frame.read_bytes()
        except OSError as exc:
            raise InputError(f"{frame}: cannot read ({exc.strerror})") from None
        size = _frame_size(frame, data)
        if list(size) != list(doc["image_size"]):
            raise InputError(f"{frame}: image is {size[0]}x{size[1]} px, the profile was made for "
                             f"{doc['image_size'][0]}x{doc['image_size'][1]}")
        try:
            out_bytes = embed_opcode_lists(data, opcode_list2=result.opcode_list2, opcode_list3=result.opcode_list3)
        except DngOpcodeError as exc:
            raise InputError(f"{frame}: {exc}") from None
        output = Path(args.output) if args.output else Path(f"{frame.stem}.{stem}.dng")
        atomic_write_bytes(output, out_bytes)
        return [str(output)], extra
    base = args.output[:-4] if args.output and args.output.endswith(".bin") else (args.output or stem)
    written = []
    for name, payload in (("OpcodeList2", result.opcode_list2), ("OpcodeList3", result.opcode_list3)):
        if payload is not None:
            path = Path(f"{base}.{name}.bin")
            atomic_write_bytes(path, payload)
            written.append(str(path))
    return written, extra


def run_export(args: argparse.Namespace) -> int:
    doc = read_profile(args.profile)
    stem = profile_stem(doc["sensor"], doc["lens"], doc["adapter"])
    if args.frame and args.to != "dng":
        raise InputError("--frame applies to --to dng only")
    extra: dict[str, Any] = {}
    try:
        if args.to == "lensfun":
            result = lensfun_export(doc, f_number=args.f_number)
            output = Path(args.output or f"{stem}.lensfun.xml")
            atomic_write_text(output, result.xml)
            written = [str(output)]
            extra = {"camera": [result.camera_maker, result.camera_model],
                     "lens": [result.lens_maker, result.lens_model],
                     "focal_mm": result.focal_mm, "crop_factor": result.crop_factor,
                     "distortion": {"exact": result.distortion.exact, "residual_px": result.distortion.residual_px},
                     "vignetting": result.f_number is not None}
        elif args.to == "android":
            meta = android_metadata(doc, active_array_size=_active_array(args.active_array))
            output = Path(args.output or f"{stem}.android.json")
            atomic_write_text(output, json.dumps(meta, indent=2) + "\n")
            written = [str(output)]
        else:
            written, extra = _export_dng(args, doc, stem)
    except ProfileError as exc:
        raise InputError(f"{args.profile}: {exc}") from None
    if args.json:
        print(json.dumps({"profile": args.profile, "to": args.to, "written": written, **extra}))
    else:
        for path in written:
            print(f"wrote {path}")
        conversion = extra.get("distortion") or extra.get("warp_rectilinear")
        if conversion and not conversion["exact"]:
            print(f"  distortion fitted (the target model cannot hold it exactly): largest gap "
                  f"{conversion['residual_px']:.3f} px")
    return 0
