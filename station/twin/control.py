"""The twin's control interface: the operator stand-in and the ground truth, over JSON lines.

The same wire as the phone (``station.twin.jsonlines``; one JSON object per line each way, no
payload). Commands:

| cmd | args | what it does |
| --- | --- | --- |
| ``chart.set`` | chart, size_mm [w, h] (optional) | put a chart on the holder (``targets.registry`` name) |
| ``lens.mount`` | lens (M catalog id or null), aperture (optional f-number) | the operator's lens change |
| ``lens.aperture`` | aperture | the operator turns the mounted lens's aperture ring |
| ``adapter.set`` | back_focus_mm, tilt_x_deg, tilt_y_deg (each optional) | the M adapter's errors |
| ``fault.set`` | name, value (default true) | switch a device fault on |
| ``fault.clear`` | name | switch it off (no error when it was off) |
| ``fault.list`` | | active faults and every known one with its description |
| ``firmware.set`` | build | the phone's firmware build |
| ``truth`` | | the world's state: light, pose, chart, lens, optics, serials, hw_time_s, seed, firmware, faults |

Names and values are checked (known charts, lenses, apertures the ring reaches, faults, bounded
adapter errors) before they reach the world; a refusal is ``bad_request`` naming what is allowed.
The client is ``station.twin.control_client.TwinControl``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from station.errors import ConfigError
from station.twin.control_names import CHART_RE as _CHART_RE
from station.twin.control_names import FAULT_RE as _FAULT_RE
from station.twin.control_names import SLUG_RE as _SLUG_RE
from station.twin.faults import all_faults
from station.twin.jsonlines import BadRequestError, JsonLineServer, Reply, check_args, number, ok_header
from station.twin.lenses import M_LENSES
from station.twin.phone_server import PHONE_FAULTS, fault_period
from station.twin.world import World

#: A chart name as ``targets.registry`` takes it: a name, an alias or a ChArUco spec (``charuco:5x7:40:20:DICT``).
MAX_FAULT_TEXT = 200
#: Chart sizes the holder takes, mm (each side).
CHART_SIZE_MM = (10.0, 5000.0)
#: The M adapter's errors the twin accepts: flange back-focus error (mm) and tilt (deg).
BACK_FOCUS_MM = (-1.0, 1.0)
ADAPTER_TILT_DEG = (-3.0, 3.0)
_ADAPTER_KEYS = {"back_focus_mm": ("adapter_back_focus_mm", BACK_FOCUS_MM),
                 "tilt_x_deg": ("adapter_tilt_x_deg", ADAPTER_TILT_DEG),
                 "tilt_y_deg": ("adapter_tilt_y_deg", ADAPTER_TILT_DEG)}


def _slug(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _SLUG_RE.match(value):
        raise BadRequestError(f"{what} {value!r}: expected a lower-case slug (letters, digits, '.', '-')")
    return value


def _chart(value: Any, size_mm: Any) -> tuple[str, list[float] | None]:
    """A chart name ``targets.registry`` knows and an optional [w, h] size in mm."""
    if not isinstance(value, str) or not _CHART_RE.match(value):
        raise BadRequestError(f"chart {value!r}: expected a chart name (letters, digits, '.', ':', '_', '-')")
    size = None
    if size_mm is not None:
        if not isinstance(size_mm, list) or len(size_mm) != 2:
            raise BadRequestError(f"chart.set: size_mm {size_mm!r}; expected [width_mm, height_mm]")
        size = [float(number(v, f"chart.set: size_mm[{i}]", *CHART_SIZE_MM)) for i, v in enumerate(size_mm)]
    from targets.registry import get_chart

    try:
        get_chart(value, *(size or (None, None)))
    except ValueError as exc:
        raise BadRequestError(f"chart.set: {exc}") from None
    return value, size


def _m_lens(value: Any) -> str:
    if not isinstance(value, str) or value not in M_LENSES:
        raise BadRequestError(f"lens {value!r} is not in the M lens catalog; known: {', '.join(sorted(M_LENSES))}")
    return value


def _aperture(lens_id: str, value: Any) -> float:
    lens = M_LENSES[lens_id]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequestError(f"aperture {value!r}; expected an f-number of {lens_id}: "
                              f"{', '.join(f'{n:g}' for n in lens.apertures)}")
    try:
        return lens.check_f_number(float(value))
    except ConfigError as exc:  # its text names the ring's range
        raise BadRequestError(str(exc)) from None


def _fault_name(value: Any) -> str:
    if not isinstance(value, str) or not _FAULT_RE.match(value):
        raise BadRequestError(f"fault name {value!r}: expected a lower-case word (letters, digits, '_')")
    known = all_faults()
    if value not in known:
        raise BadRequestError(f"unknown fault {value!r}; known: {', '.join(known) or '(none)'}")
    return value


def _fault_value(name: str, value: Any) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_FAULT_TEXT or not value.isprintable():
            raise BadRequestError(f"fault {name}: value must be printable text "
                                  f"of at most {MAX_FAULT_TEXT} chars")
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise BadRequestError(f"fault {name}: value {value!r}; expected true/false, a number or text")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequestError(f"fault {name}: value {value}; expected a finite number")
    value = True if value is None else value
    if name in PHONE_FAULTS:
        try:
            fault_period(value)
        except ValueError as exc:
            raise BadRequestError(f"fault {name}: {exc}") from None
    from station.twin.firmware import FIRMWARE_FAULTS, build_for

    if name in FIRMWARE_FAULTS:
        try:
            build_for("golden", {name: value})
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None
    return value


class ControlServer(JsonLineServer):
    """The twin's control interface over its ``World`` (operator stand-in, faults, truth)."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.world = world
        handlers = {"chart.set": self._chart_set, "lens.mount": self._lens_mount,
                    "lens.aperture": self._lens_aperture, "adapter.set": self._adapter_set,
                    "fault.set": self._fault_set, "fault.clear": self._fault_clear,
                    "fault.list": self._fault_list, "firmware.set": self._firmware_set,
                    "truth": self._truth}
        self.commands = {cmd: self._replying(handler) for cmd, handler in handlers.items()}

    @staticmethod
    def _replying(handler: Any) -> Any:
        return lambda args: Reply(ok_header(handler(args)))

    def start(self) -> ControlServer:
        super().start()
        return self

    def _chart_set(self, args: dict[str, Any]) -> dict[str, Any]:
        check_args(args, "chart.set", ("chart",), ("size_mm",))
        chart, size = _chart(args["chart"], args.get("size_mm"))
        with self.world.lock:
            self.world.chart = chart
            self.world.optics["chart_size_mm"] = size  # a new chart is its own size unless told
        return {"chart": chart, "size_mm": size}

    def _lens_mount(self, args: dict[str, Any]) -> dict[str, Any]:
        check_args(args, "lens.mount", ("lens",), ("aperture",))
        lens, aperture = args["lens"], args.get("aperture")
        if lens is None:
            if aperture is not None:
                raise BadRequestError("lens.mount: the bare sensor has no aperture; mount a lens")
        else:
            lens = _m_lens(lens)
            if aperture is not None:
                aperture = _aperture(lens, aperture)
        with self.world.lock:
            self.world.m_lens = lens
            self.world.optics["aperture"] = aperture  # None: the ring wide open
        return {"lens": lens, "aperture": aperture}

    def _lens_aperture(self, args: dict[str, Any]) -> dict[str, Any]:
        check_args(args, "lens.aperture", ("aperture",))
        with self.world.lock:
            lens = self.world.m_lens
            if lens is None:
                raise BadRequestError("lens.aperture: no M lens mounted (the bare sensor has no aperture)")
            aperture = _aperture(lens, args["aperture"])
            self.world.optics["aperture"] = aperture
        return {"lens": lens, "aperture": aperture}

    def _adapter_set(self, args: dict[str, Any]) -> dict[str, Any]:
        check_args(args, "adapter.set", (), tuple(_ADAPTER_KEYS))
        values = {}
        for key, (_, bounds) in _ADAPTER_KEYS.items():
            if key in args:
                values[key] = float(number(args[key], f"adapter.set: {key}", *bounds))
        with self.world.lock:
            for key, value in values.items():
                self.world.optics[_ADAPTER_KEYS[key][0]] = value
            return {key: float(self.world.optics.get(name) or 0.0) for key, (name, _) in _ADAPTER_KEYS.items()}

    def _fault_set(self, args: dict[str, Any]) -> dict[str, Any]:
        check_args(args, "fault.set", ("name",), ("value",))
        name = _fault_name(args["name"])
        value = _fault_value(name, args.get("value"))
        with self.world.lock:
            self.world.faults[name] = value
            return {"faults": dict(self.world.faults)}

    def _fault_clear(self, args: dict[str, Any]) -> dict[str, Any]:
        check_args(args, "fault.clear", ("name",))
        name = args["name"]
        if not isinstance(name, str) or not _FAULT_RE.match(name):
            raise BadRequestError(f"fault name {name!r}: expected a lower-case word (letters, digits, '_')")
        with self.world.lock:
            self.world.faults.pop(name, None)
            return {"faults": dict(self.world.faults)}

    def _fault_list(self, args: dict[str, Any]) -> dict[str, Any]:
        check_args(args, "fault.list", ())
        with self.world.lock:
            active = dict(self.world.faults)
        return {"active": active, "known": all_faults()}

    def _firmware_set(self, args: dict[str, Any]) -> dict[str, Any]:
        check_args(args, "firmware.set", ("build",))
        build = _slug(args["build"], "firmware build")
        from station.twin.firmware import FIRMWARE_BUILDS

        if build not in FIRMWARE_BUILDS:
            raise BadRequestError(f"unknown firmware build {build!r}; allowed: {', '.join(FIRMWARE_BUILDS)}")
        with self.world.lock:
            self.world.firmware = build
        return {"firmware": build}

    def _truth(self, args: dict[str, Any]) -> dict[str, Any]:
        check_args(args, "truth", ())
        world = self.world
        with world.lock:
            light = world.light
            return {
                "light": {"output": light.output, "level_pct": light.level_pct, "cct_k": light.cct_k,
                          "fraction": world.light_fraction(), "illuminance_lux": world.illuminance_lux(),
                          "settled": world.light_settled()},
                "pose": world.pose(),
                "chart": world.chart,
                "lens": world.m_lens,
                "optics": json.loads(json.dumps(world.optics)),
                "serial": world.phone_serial(),
                "sensor_serials": {s: world.sensor_serial_for(s) for s in ("main", "m")},
                "hw_time_s": dict(world.hw_time_s),
                "seed": world.seed,
                "firmware": world.firmware,
                "resolution": world.resolution,
                "faults": dict(world.faults),
            }


def __getattr__(name: str) -> Any:
    """``TwinControl`` from its old place, for importers not yet moved to ``station.twin.control_client``."""
    if name == "TwinControl":
        from station.twin.control_client import TwinControl

        return TwinControl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
