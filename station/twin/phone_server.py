"""The twin's phone: the DUT test service on a real TCP port (DESIGN 3.3, JSON lines + payload).

The wire is ``station.twin.jsonlines``. Frames come from the twin's physics,
``station.twin.render.render_raw`` (chart, lens, sensor, seeded), on a ``World.snapshot()``
taken when the frame is made; the phone's firmware is ``station.twin.firmware`` (preview ISP,
zebra, peaking, histogram, RAW output and what it declares), its build fixed at frame time as
``firmware.build_for(world.firmware, world.faults)``, so every format of one frame shows the
same build, settings and stored calibration.

Which data each feature sees (the firmware module's rule): the sensor's own CFA frame feeds the
preview, the raw zebra and the raw histogram; ``raw10`` / ``dng`` carry
``firmware.apply_raw_firmware`` of it with the metadata the build declares (``declared_meta``:
capture metadata, ``info`` and the DNG tags say the same). Capture metadata carries ``truth``,
the render's ground truth (lens, sensor, focus, radiometry) plus the firmware build.

Extensions of the DESIGN table: ``capture`` takes ``"frame": "last"`` to return the last frame
of that sensor in another format (a mask of the very frame a RAW came from); ``histogram`` is
the app's histogram of the last frame of the sensor (a new frame is taken when there is none, or
the settings changed since); ``info`` gives each sensor's ``serial``; ``configure`` takes
``"focus_m": null`` for the main camera's autofocus on the chart (its default).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np

from station.dng import dng_bytes
from station.frame import Frame
from station.raw10 import pack_raw10
from station.twin import firmware, isp
from station.twin.calblob_store import CALBLOB_CAPACITY_BYTES, CalblobStore
from station.twin.jsonlines import (
    MAX_LINE_BYTES,  # noqa: F401 - re-exported: the phone's request bound
    BadRequestError,
    JsonLineServer,
    Reply,
    check_args,
    choice,
    flag,
    number,
    ok_header,
)
from station.twin.lenses import M_LENSES, MAIN_LENS
from station.twin.sensor import SENSORS, sensor_spec
from station.twin.world import World

#: Faults of the phone, read from ``world.faults`` at each capture. Value ``true`` hits every
#: capture; an integer N hits every Nth capture the phone serves (counted from 1).
PHONE_FAULTS: dict[str, str] = {
    "dut_drop_frame": "a capture gets no reply at all (the frame is lost; the client times out)",
    "dut_corrupt_payload": "bytes of a capture's payload are flipped after payload_sha256 is computed",
    "dut_disconnect": "the phone closes the connection after sending half of a capture's payload",
    "dut_flaky": "a flaky link: the phone drops the reply to one command in K (value K >= 1; true: every "
                 "reply), any command; the command still acts",
    "calblob_corrupt_block": "the Nth block (true: the first) of the stored calibration blob reads back with a "
                             "flipped payload byte, as a worn EEPROM cell would",
    "sensor_defects": "the sensors carry their serial-seeded defect pixels (hot, warm, dead, weak, stuck, "
                      "pairs, a column segment: station.twin.sensor.defect_map)",
    "unit_variation": "the unit's own build variation, as a real unit has: its sensors' R and B sensitivities "
                      "against the golden module (station.twin.sensor.channel_gains) and its main camera's pose "
                      "beside the M camera (station.twin.lenses.sensor_pose_truth)",
}
MODEL = "M-Phone twin"
FORMATS = ("raw10", "dng", "preview", "zebra_mask", "peaking_mask")
HISTOGRAM_SOURCES = ("preview", "raw")
MAX_CALIBRATION_BYTES = 1024 * 1024  # a calibration blob, as compact JSON
FOCUS_CODE_RANGE = (0, 1023)
ROW_ALIGN_BYTES = 16  # RAW10 rows are padded to this alignment (stride_bytes)
FRAME_INTERVAL_S = 1.0 / 30.0  # the phone's sensor clock: timestamps are epoch + seq frames
CLOCK_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
EXPOSURE_US_RANGE = (10, 30_000_000)
DEFAULT_EXPOSURE_US = 1000  # a CI pixel fills in about 1 ms at full light: 1 ms is mid-scale at half light
ANALOG_GAIN_RANGE = (1.0, 16.0)
FOCUS_M_RANGE = (0.05, 1000.0)
ZEBRA_DEFAULT_THRESHOLD = {"luma": 250, "raw": 1000}
ZEBRA_THRESHOLD_MAX = {"luma": 255, "raw": 1023}
PEAKING_THRESHOLD_MAX = 4 * 255

Renderer = Callable[[Any, str, dict[str, Any], int], tuple[np.ndarray, dict[str, Any]]]


def fault_period(value: Any) -> int | None:
    """Every how many captures a phone fault hits: None (off) or N >= 1; ValueError if unreadable."""
    if value is None or value is False:
        return None
    if value is True:
        return 1
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("on", "true", "yes"):
            return 1
        if text in ("off", "false", "no", "0"):
            return None
        value = int(text) if text.isdigit() else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= 0:
        return value or None
    raise ValueError(f"fault value {value!r}: expected true/false or a whole number N >= 1 "
                     "(every Nth capture)")


def lens_info(lens_id: str | None) -> dict[str, Any] | None:
    """What the phone reads from the M adapter: the lens's 6-bit code and its id, or None bare."""
    if lens_id is None:
        return None
    lens = M_LENSES.get(lens_id)
    return {"code": lens.code if lens else None, "id": lens_id}


def sensor_meta(resolution: str, sensor: str) -> dict[str, Any]:
    """A sensor's true readout metadata (``station.twin.sensor``): geometry, CFA, levels, pitch."""
    spec = sensor_spec(resolution)
    return {"width": spec.width, "height": spec.height, "cfa": spec.cfa, "bit_depth": spec.bit_depth,
            "black_level": spec.black_level, "white_level": spec.white_level,
            "pixel_pitch_um": spec.pixel_pitch_um}


def dng_lens_tags(sensor: str, lens_id: str | None, truth: Mapping[str, Any]) -> dict[str, Any]:
    """What the phone writes of its lens into a DNG's Exif IFD: make, model, focal length, f-number (the
    main camera's own lens; an M lens by the name its 6-bit code stands for; nothing on the bare sensor)."""
    if sensor == "main":
        return {"lens_make": "M-Phone", "lens_model": MAIN_LENS.name, "focal_length_mm": MAIN_LENS.nominal_focal_mm,
                "f_number": MAIN_LENS.widest_f_number}
    lens = M_LENSES.get(lens_id) if lens_id else None
    if lens is None:
        return {}
    return {"lens_make": "Leica Camera AG", "lens_model": lens.name, "focal_length_mm": lens.nominal_focal_mm,
            "f_number": truth.get("f_number") or lens.widest_f_number}


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an 8-bit grey (H x W) or RGB (H x W x 3) image."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def check_calibration(blob: Mapping[str, Any]) -> None:
    """The ISP parts of a calibration blob (``isp.sensor_calibration`` for every sensor and stored
    lens) are readable; ValueError naming the bad key otherwise."""
    for sensor in SENSORS:
        isp.sensor_calibration(blob, sensor)
        sensors = blob.get("sensors")
        entry = sensors.get(sensor) if isinstance(sensors, Mapping) else None
        lenses = entry.get("lenses") if isinstance(entry, Mapping) else None
        for lens in (lenses if isinstance(lenses, Mapping) else {}):
            isp.sensor_calibration(blob, sensor, str(lens))


def _default_settings(sensor: str) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "exposure_us": DEFAULT_EXPOSURE_US, "analog_gain": 1.0,
        "zebra": {"enabled": False, "mode": "luma", "threshold": ZEBRA_DEFAULT_THRESHOLD["luma"]},
        "peaking": {"enabled": False, "threshold": 60},
    }
    if sensor == "main":
        settings["focus_m"] = None  # autofocus on the chart
        settings["focus_code"] = None  # None: focus_m decides; else the actuator's DAC code
    return settings


class _Frame:
    """One frame the phone took: the sensor's CFA data and everything fixed when it was taken
    (settings, firmware build, stored calibration, the scene's truth); firmware outputs made once."""

    def __init__(self, seq: int, sensor: str, raw: np.ndarray, truth: dict[str, Any], settings: dict[str, Any],
                 meta: dict[str, Any], build: firmware.FirmwareBuild, calibration: dict[str, Any],
                 serial: str, lens: str | None, firmware_name: str) -> None:
        self.seq = seq
        self.sensor = sensor
        self.raw = raw
        self.truth = truth
        self.settings = settings
        self.meta = meta  # the sensor's true metadata (cfa, levels, sensor, lens)
        self.build = build
        self.calibration = calibration
        self.serial = serial
        self.lens = lens
        self.firmware_name = firmware_name  # what info said when the frame was taken
        self.timestamp = (CLOCK_EPOCH + timedelta(seconds=seq * FRAME_INTERVAL_S)).isoformat()
        self.declared = firmware.declared_meta(meta, build)
        self._lock = threading.Lock()
        self._preview: np.ndarray | None = None
        self._luma: np.ndarray | None = None
        self._raw_out: np.ndarray | None = None

    def preview(self) -> np.ndarray:
        with self._lock:
            if self._preview is None:
                self._preview = firmware.preview(self.raw, self.meta, self.calibration, self.build)
            return self._preview

    def luma(self) -> np.ndarray:
        preview = self.preview()
        with self._lock:
            if self._luma is None:
                self._luma = firmware.luma(preview)
            return self._luma

    def raw_out(self) -> np.ndarray:
        """What the phone sends as RAW (``apply_raw_firmware`` of the sensor's frame)."""
        with self._lock:
            if self._raw_out is None:
                self._raw_out, _ = firmware.apply_raw_firmware(self.raw, self.meta, self.build)
            return self._raw_out


class PhoneServer(JsonLineServer):
    """The phone's test service over the twin's ``World`` (DESIGN 3.3).

    ``render`` makes a frame: ``render(scene, sensor, settings, seq) -> (uint16 CFA, truth)`` with
    ``scene`` a ``WorldSnapshot``; by default the twin's physics, ``station.twin.render.render_raw``.
    """

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0,
                 render: Renderer | None = None) -> None:
        super().__init__(host, port)
        self.world = world
        if render is None:
            from station.twin.render import render_raw

            render = render_raw
        self.render = render
        self._lock = threading.RLock()
        self._settings = {sensor: _default_settings(sensor) for sensor in SENSORS}
        self._last: dict[str, _Frame] = {}
        self._seq = 0
        self._captures = 0
        self._replies = 0  # replies produced (the flaky link counts them)
        self.dropped_replies = 0  # truth: replies the flaky link has lost
        self._calibration: dict[str, Any] = {}  # replaced whole on write: frames keep theirs
        self.commands = {
            "info": self._info, "configure": self._configure, "capture": self._capture,
            "histogram": self._histogram, "calibration.read": self._calibration_read,
            "calibration.write": self._calibration_write,
        }
        self.calblob = CalblobStore(world)  # the checksummed blob's storage: calblob.write / calblob.read
        self.commands.update({"calblob.write": self.calblob.write, "calblob.read": self.calblob.read})

    @property
    def serial(self) -> str:
        return self.world.phone_serial()

    def start(self) -> PhoneServer:
        super().start()
        return self

    def handle_request(self, request: dict[str, Any]) -> Reply:
        """Dispatch, then ``dut_flaky`` = K: the reply to every Kth command is lost on the way."""
        reply = super().handle_request(request)
        with self.world.lock:
            value = self.world.faults.get("dut_flaky")
        try:
            period = fault_period(value)
        except ValueError:  # refused before the twin starts (faults.check_fault_value)
            period = None
        with self._lock:
            self._replies += 1
            if period is not None and self._replies % period == 0:
                reply.action = "drop"
                self.dropped_replies += 1
        return reply

    # --- commands ---------------------------------------------------------------------
    def _info(self, args: dict[str, Any]) -> Reply:
        check_args(args, "info", ())
        scene = self.world.snapshot()
        build = firmware.build_for(scene.firmware, scene.faults)
        sensors = {name: firmware.declared_meta(sensor_meta(scene.resolution, name)
                                                | {"serial": scene.sensor_serial_for(name)}, build)
                   for name in SENSORS}
        return Reply(ok_header({"serial": scene.phone_serial(), "model": MODEL, "firmware": scene.firmware,
                                "sensors": sensors, "m_lens": lens_info(scene.m_lens),
                                "calibration_capacity_bytes": CALBLOB_CAPACITY_BYTES}))

    def _configure(self, args: dict[str, Any]) -> Reply:
        check_args(args, "configure", ("sensor",),
                   ("exposure_us", "analog_gain", "focus_m", "focus_code", "zebra", "peaking"))
        sensor = choice(args["sensor"], "sensor", SENSORS)
        with self._lock:
            new = copy.deepcopy(self._settings[sensor])
        if "exposure_us" in args:
            new["exposure_us"] = int(number(args["exposure_us"], "exposure_us", *EXPOSURE_US_RANGE, True))
        if "analog_gain" in args:
            new["analog_gain"] = float(number(args["analog_gain"], "analog_gain", *ANALOG_GAIN_RANGE))
        if "focus_m" in args:
            if sensor != "main":
                raise BadRequestError("focus_m applies to the main sensor only "
                                      "(an M lens focuses by its ring)")
            focus = args["focus_m"]
            new["focus_m"] = None if focus is None else float(number(focus, "focus_m", *FOCUS_M_RANGE))
            new["focus_code"] = None
        if "focus_code" in args:
            if sensor != "main":
                raise BadRequestError("focus_code applies to the main sensor only (its voice-coil actuator)")
            code = args["focus_code"]
            new["focus_code"] = None if code is None else int(number(code, "focus_code", *FOCUS_CODE_RANGE, True))
        if "zebra" in args:
            new["zebra"] = self._zebra(args["zebra"], new["zebra"])
        if "peaking" in args:
            new["peaking"] = self._peaking(args["peaking"], new["peaking"])
        with self._lock:
            self._settings[sensor] = new
            self._last.pop(sensor, None)  # the app's histogram follows the new settings
        return Reply(ok_header({"sensor": sensor, **new}))

    @staticmethod
    def _zebra(zebra: Any, current: dict[str, Any]) -> dict[str, Any]:
        """Merge a zebra update; a new mode without a threshold takes that mode's default."""
        if not isinstance(zebra, dict):
            raise BadRequestError("zebra: expected an object {enabled, mode, threshold}")
        check_args(zebra, "zebra", (), ("enabled", "mode", "threshold"))
        new = dict(current)
        if "enabled" in zebra:
            new["enabled"] = flag(zebra["enabled"], "zebra.enabled")
        if "mode" in zebra:
            mode = choice(zebra["mode"], "zebra.mode", ("luma", "raw"))
            if mode != current["mode"] and "threshold" not in zebra:
                new["threshold"] = ZEBRA_DEFAULT_THRESHOLD[mode]
            new["mode"] = mode
        if "threshold" in zebra:
            new["threshold"] = int(number(zebra["threshold"], f"zebra.threshold ({new['mode']} mode)", 0,
                                          ZEBRA_THRESHOLD_MAX[new["mode"]], True))
        return new

    @staticmethod
    def _peaking(peaking: Any, current: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(peaking, dict):
            raise BadRequestError("peaking: expected an object {enabled, threshold}")
        check_args(peaking, "peaking", (), ("enabled", "threshold"))
        new = dict(current)
        if "enabled" in peaking:
            new["enabled"] = flag(peaking["enabled"], "peaking.enabled")
        if "threshold" in peaking:
            new["threshold"] = int(number(peaking["threshold"], "peaking.threshold", 0,
                                          PEAKING_THRESHOLD_MAX, True))
        return new

    def _take_frame(self, sensor: str) -> _Frame:
        with self._lock:
            self._seq += 1
            seq = self._seq
            settings = copy.deepcopy(self._settings[sensor])
            calibration = self._calibration
        scene = self.world.snapshot()
        build = firmware.build_for(scene.firmware, scene.faults)
        lens = scene.m_lens if sensor == "m" else None
        serial = scene.sensor_serial_for(sensor)
        render_settings = {"exposure_us": settings["exposure_us"], "analog_gain": settings["analog_gain"],
                           "sensor_serial": serial}
        if sensor == "main":
            render_settings["focus_m"] = settings["focus_m"]
            render_settings["focus_code"] = settings.get("focus_code")
        self.world.spend("exposure", settings["exposure_us"] * 1e-6)
        raw, truth = self.render(scene, sensor, render_settings, seq)
        truth = dict(truth, firmware={"build": build.name, "regression": build.regression,
                                      "feature": build.feature})
        meta = sensor_meta(scene.resolution, sensor) | {"sensor": sensor, "lens": lens}
        frame = _Frame(seq, sensor, raw, truth, settings, meta, build, calibration, serial, lens, scene.firmware)
        with self._lock:
            self._last[sensor] = frame
        return frame

    def _capture(self, args: dict[str, Any]) -> Reply:
        check_args(args, "capture", ("sensor", "format"), ("frame",))
        sensor = choice(args["sensor"], "sensor", SENSORS)
        fmt = choice(args["format"], "format", FORMATS)
        which = choice(args.get("frame", "new"), "frame", ("new", "last"))
        with self._lock:
            frame = self._last.get(sensor) if which == "last" else None
        if which == "last" and frame is None:
            raise BadRequestError(f"capture: no frame from sensor {sensor!r} yet; "
                                  'capture with "frame": "new"')
        if frame is None:
            frame = self._take_frame(sensor)
        declared = frame.declared
        meta: dict[str, Any] = {
            "sensor": sensor, "format": fmt, "seq": frame.seq, "timestamp": frame.timestamp,
            "width": int(frame.raw.shape[1]), "height": int(frame.raw.shape[0]), "cfa": declared["cfa"],
            "bit_depth": declared["bit_depth"], "black_level": declared["black_level"],
            "white_level": declared["white_level"], "exposure_us": frame.settings["exposure_us"],
            "analog_gain": frame.settings["analog_gain"], "lens": frame.lens,
        }
        if sensor == "main":
            meta["focus_m"] = frame.settings["focus_m"]
            meta["focus_code"] = frame.settings.get("focus_code")
        meta["truth"] = frame.truth
        payload = self._encode(frame, fmt, meta)
        header = ok_header(meta)
        header["payload_bytes"] = len(payload)
        header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
        return self._inject_faults(Reply(header, payload))

    def _encode(self, frame: _Frame, fmt: str, meta: dict[str, Any]) -> bytes:
        if fmt == "raw10":
            stride = -(-meta["width"] * 10 // 8 // ROW_ALIGN_BYTES) * ROW_ALIGN_BYTES
            meta["stride_bytes"] = stride
            return pack_raw10(frame.raw_out(), stride)
        if fmt == "dng":
            return dng_bytes(self._frame_object(frame, meta))
        if fmt == "preview":
            return encode_png(frame.preview())
        settings = frame.settings
        if fmt == "zebra_mask":
            zebra = settings["zebra"]
            meta["zebra"] = zebra
            luma = frame.luma() if zebra["enabled"] and zebra["mode"] == "luma" else None
            return encode_png(firmware.zebra_mask(luma, frame.raw, zebra, frame.build))
        meta["peaking"] = settings["peaking"]
        return encode_png(firmware.peaking_mask(frame.luma(), settings["peaking"], frame.build))

    def _frame_object(self, frame: _Frame, meta: dict[str, Any]) -> Frame:
        gains = isp.sensor_calibration(frame.calibration, frame.sensor, frame.lens).wb_gains
        return Frame(data=frame.raw_out(), sensor=frame.sensor, cfa=meta["cfa"], black_level=meta["black_level"],
                     white_level=meta["white_level"], bit_depth=meta["bit_depth"],
                     exposure_s=meta["exposure_us"] * 1e-6, analog_gain=meta["analog_gain"],
                     lens=frame.lens, dut_serial=self.serial, firmware=frame.firmware_name,
                     timestamp=frame.timestamp,
                     extra={"make": "M-Phone", "model": f"{MODEL} {frame.sensor} sensor", "seq": frame.seq,
                            "sensor_serial": frame.serial, "as_shot_neutral": [1.0 / g for g in gains],
                            "truth": frame.truth, **dng_lens_tags(frame.sensor, frame.lens, frame.truth)})

    def _inject_faults(self, reply: Reply) -> Reply:
        with self._lock:
            self._captures += 1
            count = self._captures
        with self.world.lock:
            faults = dict(self.world.faults)

        def hit(name: str) -> bool:
            try:
                period = fault_period(faults.get(name))
            except ValueError:
                return False
            return period is not None and count % period == 0

        if hit("dut_drop_frame"):
            return Reply(reply.header, None, "drop")
        if hit("dut_disconnect"):
            reply.action = "disconnect"
        if hit("dut_corrupt_payload") and reply.payload:
            corrupt = bytearray(reply.payload)
            step = max(len(corrupt) // 7, 1)
            corrupt[::step] = bytes(b ^ 0x5A for b in corrupt[::step])
            reply.payload = bytes(corrupt)
        return reply

    def _histogram(self, args: dict[str, Any]) -> Reply:
        check_args(args, "histogram", ("sensor", "source"))
        sensor = choice(args["sensor"], "sensor", SENSORS)
        source = choice(args["source"], "source", HISTOGRAM_SOURCES)
        with self._lock:
            frame = self._last.get(sensor)
        if frame is None:
            frame = self._take_frame(sensor)
        image = frame.luma() if source == "preview" else frame.raw
        counts = firmware.histogram(source, image, frame.build)
        return Reply(ok_header({"sensor": sensor, "source": source, "seq": frame.seq, "bins": len(counts),
                                "counts": counts}))

    def _calibration_read(self, args: dict[str, Any]) -> Reply:
        check_args(args, "calibration.read", ())
        with self._lock:
            blob = copy.deepcopy(self._calibration)
        return Reply(ok_header({"blob": blob}))

    def _calibration_write(self, args: dict[str, Any]) -> Reply:
        check_args(args, "calibration.write", ("blob",))
        blob = args["blob"]
        if not isinstance(blob, dict):
            raise BadRequestError(f"calibration.write: blob must be a JSON object, got {type(blob).__name__}")
        try:
            text = json.dumps(blob, separators=(",", ":"), sort_keys=True, allow_nan=False)
        except ValueError:
            raise BadRequestError("calibration.write: blob holds NaN or infinity; "
                                  "expected finite numbers") from None
        if len(text) > MAX_CALIBRATION_BYTES:
            raise BadRequestError(f"calibration.write: blob of {len(text)} bytes over the phone's "
                                  f"{MAX_CALIBRATION_BYTES} bytes of calibration storage")
        try:
            check_calibration(blob)
        except ValueError as exc:
            raise BadRequestError(f"calibration.write: {exc}") from None
        with self._lock:
            self._calibration = json.loads(text)
        return Reply(ok_header({"bytes": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()}))
