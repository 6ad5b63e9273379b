"""Shared capture helpers of the procedures: payloads as arrays, one exposure in several formats, the
scene (light, chart, lens, rail), auto-exposure to a target level and a coarse-to-fine focus search.

Several formats of one exposure: the first is captured ``"new"``, the others ``"last"`` (the phone
re-sends the same frame in another format); the frames' ``seq`` must agree, else the phone is at fault.
The twin's capture metadata carry its ``truth``; a ``Shot`` keeps it for reports and tests, and nothing
here decides anything from it.

Charts and lenses are the scene's (``station.scene``): a procedure asks for them with ``require_chart`` and
``require_lens``, and the operator makes the change.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from calibration.focus_fit import pyramid_sharpness
from calibration.zebra import channel_means
from station.errors import DeviceError, InputError
from station.frame import Frame
from station.pipeline import analysis_pool
from station.procedures import ProcedureError, SweepError

if TYPE_CHECKING:
    from station.station import Station

#: Formats the phone renders from the preview pipeline (8-bit PNG payloads).
PNG_FORMATS = ("preview", "zebra_mask", "peaking_mask")
#: The phone's exposure range, us (DESIGN 3.3 configure).
EXPOSURE_US_RANGE = (10, 30_000_000)
#: A level (fraction of white - black) above which a frame may be clipped: auto-exposure backs off.
CLIPPED_FRACTION = 0.90
#: Diopter range of the main camera's focus search (focus_m 0.05 m .. 1000 m).
MAIN_DIOPTER_RANGE = (0.001, 20.0)


# --- payloads ----------------------------------------------------------------------------------

def decode_png(payload: bytes, what: str = "preview") -> np.ndarray:
    """A PNG payload as uint8: (H, W, 3) RGB or (H, W) grey. ``DeviceError`` if it is no PNG."""
    image = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DeviceError("dut", f"capture: the {what} payload ({len(payload)} bytes) is not a PNG image")
    if image.dtype != np.uint8:
        raise DeviceError("dut", f"capture: the {what} PNG is {image.dtype}, expected 8-bit")
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        else:
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: no second 150 MB frame at 50 MP
    return image


def decode_grey_mask(payload: bytes, what: str = "mask") -> np.ndarray:
    """A mask PNG (0 / 255) as uint8 (H, W), nonzero = flagged (a colour PNG's channels maxed)."""
    image = decode_png(payload, what)
    return image.max(axis=2) if image.ndim == 3 else image


def decode_mask(payload: bytes, what: str = "mask") -> np.ndarray:
    """A mask PNG (0 / 255) as bool (H, W): any nonzero is flagged."""
    return decode_grey_mask(payload, what) != 0


def png_bytes(image: np.ndarray, max_side: int | None = 1024) -> bytes:
    """PNG bytes of an 8-bit grey or RGB image, shrunk (area mean) so its longer side is <= ``max_side``."""
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if max_side and max(image.shape[:2]) > max_side:
        scale = max_side / max(image.shape[:2])
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise InputError("PNG encoding failed")
    return buffer.tobytes()


# --- one exposure in several formats ---------------------------------------------------------------

@dataclass
class Shot:
    """One frame of a sensor in the formats asked for.

    PNG formats (``preview``, masks) are kept as the phone sent them and decoded on first use, so an analysis
    on the pool (``station.pipeline``) decodes them there, behind the next capture; a payload that is no PNG
    raises ``DeviceError`` where it is first used.
    """

    sensor: str
    meta: dict[str, Any]  # the first format's capture metadata (seq, exposure, gain, declared levels)
    frame: Frame | None = None  # the RAW (raw10, else dng) as a Frame, declared metadata
    dng: Frame | None = None
    pngs: dict[str, bytes] = field(default_factory=dict, repr=False)  # PNG payloads by format, not yet decoded
    _decoded: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def seq(self) -> int:
        return int(self.meta.get("seq", -1))

    def take_grey_mask(self, fmt: str) -> np.ndarray:
        """Mask ``fmt`` as uint8 (H, W), 0 / 255, decoded off the shot and not kept on it (no second, bool frame:
        50 MB at 50 MP); a mask decoded already comes as it is kept, made 0 / 255."""
        payload = self.pngs.pop(fmt, None)
        if payload is None:
            return self.masks[fmt].astype(np.uint8) * 255
        return decode_grey_mask(payload, fmt)

    @property
    def raw(self) -> np.ndarray:
        if self.frame is None:
            raise ProcedureError(f"{self.sensor}: no RAW format in this shot")
        return self.frame.data

    def _png(self, fmt: str) -> np.ndarray | None:
        if fmt not in self._decoded:
            payload = self.pngs.get(fmt)
            if payload is None:
                return None
            self._decoded[fmt] = decode_png(payload, fmt) if fmt == "preview" else decode_mask(payload, fmt)
            del self.pngs[fmt]  # decoded: the payload let go (a payload that fails stays, and fails again)
        return self._decoded[fmt]

    @property
    def preview(self) -> np.ndarray | None:
        """The preview as RGB8 (None when not captured)."""
        return self._png("preview")

    @property
    def masks(self) -> dict[str, np.ndarray]:
        """zebra_mask / peaking_mask -> bool (H, W), the ones captured."""
        names = [f for f in PNG_FORMATS if f != "preview" and (f in self.pngs or f in self._decoded)]
        return {f: mask for f in names if (mask := self._png(f)) is not None}

    @property
    def truth(self) -> dict[str, Any] | None:
        """The twin's ground truth of the frame (None on a bench): for reports and tests only."""
        truth = self.meta.get("truth")
        return truth if isinstance(truth, dict) else None


def capture_shot(station: Station, sensor: str, formats: Sequence[str] = ("raw10",), *, new: bool = True) -> Shot:
    """One frame in ``formats`` (the first ``new`` unless ``new=False``, the rest ``last``).

    ``raw10`` becomes ``Shot.frame`` (unpacked with the capture's declared metadata), ``dng`` ``Shot.dng``
    (and ``frame`` when no raw10 is asked for), ``preview`` an RGB8 array, masks bool arrays (decoded on
    first use).
    """
    if not formats:
        raise InputError("capture_shot: no format asked for")
    shot: Shot | None = None
    for i, fmt in enumerate(formats):
        which = "new" if (i == 0 and new) else "last"
        if fmt == "raw10":
            frame = station.dut.capture_frame(sensor, which)
            meta = {k: v for k, v in frame.metadata().items() if k != "extra"} | frame.extra
        else:
            meta, payload = station.dut.capture(sensor, fmt, which)
        if shot is None:
            shot = Shot(sensor, dict(meta))
        elif meta.get("seq") != shot.meta.get("seq"):
            raise DeviceError("dut", f"capture {fmt} of the last frame came from frame {meta.get('seq')}, "
                                     f"not {shot.meta.get('seq')}")
        if fmt == "raw10":
            shot.frame = frame
        elif fmt == "dng":
            from station.dng import read_dng

            shot.dng = read_dng(payload)
            if shot.frame is None:
                shot.frame = shot.dng
        elif fmt in PNG_FORMATS:
            shot.pngs[fmt] = payload
        else:
            raise InputError(f"capture_shot: format {fmt!r}; allowed: raw10, dng, {', '.join(PNG_FORMATS)}")
    assert shot is not None
    return shot


# --- the scene ---------------------------------------------------------------------------------

def set_light(station: Station, level_pct: float) -> None:
    """The light on at ``level_pct`` % of full scale, settled."""
    station.light.set_level_pct(round(float(level_pct), 3))
    station.light.set_output(True)
    station.light.wait_settled()


def light_off(station: Station) -> None:
    """The light off, settled (for dark frames)."""
    station.light.set_output(False)
    station.light.wait_settled()


@contextlib.contextmanager
def lit(station: Station, level_pct: float) -> Iterator[None]:
    """The light on at ``level_pct`` inside the block, off after it whatever happened."""
    try:
        set_light(station, level_pct)
        yield
    finally:
        with contextlib.suppress(DeviceError):  # a dead light is already the caller's failure
            station.light.set_output(False)


def move_rail(station: Station, distance_mm: float | None) -> None:
    """The chart ``distance_mm`` from the camera (the mount's rail); None leaves it."""
    if distance_mm is not None:
        station.mount.move_to(distance=float(distance_mm))


# --- exposure ------------------------------------------------------------------------------------

def signal_fraction(frame: Frame, statistic: str = "centre") -> float:
    """The brightest CFA channel's level as a fraction of (white - black).

    ``centre``: the channel's mean over the central region (``calibration.zebra.channel_means``), for
    flat fields; ``p99``: its 99th percentile over the frame, for charts (their white, not their mean).
    """
    span = float(frame.white_level - frame.black_level)
    if statistic == "centre":
        top = max(channel_means(frame.data, frame.cfa).values())
    elif statistic == "p99":
        top = max(float(np.percentile(frame.data[r::2, c::2][::2, ::2], 99.0)) for r in (0, 1) for c in (0, 1))
    else:
        raise InputError(f"signal statistic {statistic!r}; allowed: centre, p99")
    return (top - frame.black_level) / span


def auto_exposure_us(station: Station, sensor: str, *, target_fraction: float = 0.5, statistic: str = "centre",
                  start_us: int | None = None, tolerance: float = 0.05, max_iter: int = 10) -> tuple[int, Shot]:
    """The exposure (us) putting the brightest channel at ``target_fraction`` of (white - black) under the
    light as it is, and the RAW shot taken at it. The response is linear in exposure below clipping: each
    step scales the exposure by target / measured; a clipped frame (>= 90 %) divides it by 4, a dark one
    multiplies it by 16. ``SweepError`` when the phone's exposure range cannot reach the target."""
    if not 0.01 <= target_fraction <= CLIPPED_FRACTION - 0.05:
        raise InputError(f"auto-exposure target {target_fraction!r}: expected 0.01..{CLIPPED_FRACTION - 0.05:g}")
    lo, hi = EXPOSURE_US_RANGE
    exposure = int(start_us or station.dut.configure(sensor).get("exposure_us") or 1000)
    history: list[str] = []
    for _ in range(max_iter):
        exposure = int(min(max(exposure, lo), hi))
        station.dut.configure(sensor, exposure_us=exposure)
        shot = capture_shot(station, sensor, ("raw10",))
        level = signal_fraction(shot.frame, statistic)
        history.append(f"{exposure} us -> {100 * level:.1f} %")
        if level >= CLIPPED_FRACTION:
            proposal = exposure / 4.0
        elif level < 0.005:
            proposal = exposure * 16.0
        else:
            ratio = target_fraction / level
            if abs(ratio - 1.0) <= tolerance:
                return exposure, shot
            proposal = exposure * ratio
        if (proposal <= lo and exposure == lo) or (proposal >= hi and exposure == hi):
            end = "shortest" if proposal <= lo else "longest"
            raise SweepError(f"{sensor}: auto-exposure cannot reach {100 * target_fraction:.0f} % of full scale at "
                             f"the {end} exposure ({'; '.join(history)})")
        exposure = int(round(proposal))
    raise SweepError(f"{sensor}: auto-exposure did not settle at {100 * target_fraction:.0f} % in {max_iter} "
                     f"frames ({'; '.join(history)})")


# --- focus ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FocusAxis:
    """How a sensor focuses: the M lens's ring through the mount (``deg``), or the main camera's own
    focus through ``configure(focus_m=...)`` in diopters (``1/m``, linear in defocus)."""

    sensor: str
    unit: str  # "deg" (ring) or "1/m" (diopters)
    lo: float
    hi: float

    def move(self, station: Station, position_in_unit: float) -> None:
        """Focus at ``position_in_unit``: ring degrees from infinity (``m``) or diopters (``main``), clamped."""
        position = float(min(max(position_in_unit, self.lo), self.hi))
        if self.sensor == "m":
            station.mount.move_to(focus=position)
        else:
            station.dut.configure(self.sensor, focus_m=1.0 / position)

    def clamp(self, position: float) -> float:
        return float(min(max(position, self.lo), self.hi))


def focus_axis(station: Station, sensor: str, focus_range: tuple[float, float] | None = None) -> FocusAxis:
    """The focus axis of ``sensor``: the mount's ``focus`` axis within its soft limits for ``m``, diopters
    0.001..20 for ``main``; ``focus_range`` restricts it (within those)."""
    if sensor == "m":
        spec = station.config.mount.axes.get("focus")
        if spec is None:
            raise ProcedureError("mount: no 'focus' axis configured: the M lens's ring cannot be driven")
        lo, hi, unit = float(spec.min), float(spec.max), "deg"
    else:
        (lo, hi), unit = MAIN_DIOPTER_RANGE, "1/m"
    if focus_range is not None:
        a, b = (float(v) for v in focus_range)
        if not (lo <= a < b <= hi):
            raise InputError(f"{sensor}: focus range {a:g}..{b:g} {unit} must lie within {lo:g}..{hi:g} {unit}")
        lo, hi = a, b
    return FocusAxis(sensor, unit, lo, hi)


@dataclass
class FocusSearch:
    """A coarse-to-fine sharpness search: every (position, sharpness) measured, and the best position."""

    axis: FocusAxis
    positions: list[float]
    sharpness: list[float]
    best: float
    step: float  # half the final bracket around ``best``
    at_end: str | None = None  # "low" / "high": the sharpest coarse frame was at that end of the range

    def to_dict(self) -> dict[str, Any]:
        order = np.argsort(self.positions)
        return {"unit": self.axis.unit, "range": [self.axis.lo, self.axis.hi], "best": self.best, "step": self.step,
                "at_end": self.at_end,
                "points": [{"position": self.positions[i], "sharpness": self.sharpness[i]} for i in order]}


#: A plateau of the sharpness: points within this fraction of the best.
PLATEAU_FRACTION = 0.95
#: The search stops once both ends of its bracket are this sharp relative to the best (a blur of a few
#: pixels there): the caller's finer measurement takes over.
FLAT_TOP_FRACTION = 0.7


def _measure_sharpness(station: Station, axis: FocusAxis, positions: Sequence[float],
                       measured: dict[float, float]) -> None:
    """The sharpness at each of ``positions`` not in ``measured`` yet (clamped, rounded; captured in order),
    each frame's analysed on the pool behind the next one's move."""
    pool = analysis_pool(station)
    pending = {}
    for position in positions:
        position = round(axis.clamp(position), 4)
        if position not in measured and position not in pending:
            axis.move(station, position)
            shot = capture_shot(station, axis.sensor, ("raw10",))
            pending[position] = pool.submit(f"focus search: sharpness at {position:g} {axis.unit}",
                                            _raw_sharpness, shot)
    for position, job in pending.items():
        measured[position] = job.result()


def _raw_sharpness(shot: Shot) -> float:
    """The focus search's sharpness of a RAW shot (``calibration.focus_fit.pyramid_sharpness``)."""
    return pyramid_sharpness(shot.raw)


#: Golden section ratio (Kiefer 1953): the search bracket shrinks by this factor per frame.
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def focus_search(station: Station, axis: FocusAxis, *, coarse_steps: int = 7, bracket: float | None = None
                 ) -> FocusSearch:
    """Best focus by sharpness (RAW frames): ``coarse_steps`` positions over the axis's range, then a golden
    section search (one frame per step, Kiefer 1953) in the coarse bracket around the sharpest, until the
    bracket is ``bracket`` wide (default range / 60) or both its ends are at least 70 % as sharp as its
    best point (a few pixels of blur there). ``FocusSearch.step`` is half the final bracket;
    ``FocusSearch.at_end`` says when the sharpest coarse frame is at an end of the range: the search stops
    there (best focus is at that end or beyond it: the caller's measurement of the blur decides).

    ``SweepError`` when the sweep never comes into focus: the sharpness stays on its plateau (within 5 %
    of the best) up to an end of the range (the ring at its stop: the chart beyond the lens's reach), or
    does not change over the whole range.
    """
    if coarse_steps < 5:
        raise InputError(f"focus search: coarse_steps {coarse_steps}: expected 5 or more")
    span = axis.hi - axis.lo
    bracket = span / 60.0 if bracket is None else float(bracket)
    measured: dict[float, float] = {}

    def measure(position: float) -> float:
        _measure_sharpness(station, axis, [position], measured)
        return measured[round(axis.clamp(position), 4)]

    coarse = [round(float(p), 4) for p in np.linspace(axis.lo, axis.hi, coarse_steps)]
    _measure_sharpness(station, axis, coarse, measured)
    values = np.array([measured[p] for p in coarse])
    best_i = int(np.argmax(values))
    top = float(values[best_i])
    where = f"{axis.lo:g}..{axis.hi:g} {axis.unit}"
    if float(values.min()) >= PLATEAU_FRACTION * top:
        raise SweepError(f"{axis.sensor}: focus sweep never comes into focus: the sharpness does not change over "
                         f"{where} (no chart, or the focus does nothing)")
    high = values >= PLATEAU_FRACTION * top
    first, last = best_i, best_i  # the run of near-best points around the best
    while first > 0 and high[first - 1]:
        first -= 1
    while last < coarse_steps - 1 and high[last + 1]:
        last += 1
    if last > first and (first == 0 or last == coarse_steps - 1):
        start, end = (coarse[last], coarse[0]) if first == 0 else (coarse[first], coarse[-1])
        raise SweepError(f"{axis.sensor}: focus sweep never comes into focus: the sharpness stays at its highest "
                         f"from {start:g} up to the end of the range ({end:g} {axis.unit} of {where}): the focus "
                         "is at its stop, the chart beyond the lens's reach")
    lo, hi = coarse[max(best_i - 1, 0)], coarse[min(best_i + 1, coarse_steps - 1)]
    inner = coarse[best_i]
    at_end = {0: "low", coarse_steps - 1: "high"}.get(best_i)
    if at_end is not None:  # the sharpest at an end of the travel: best focus is there or beyond it
        positions = list(measured)
        return FocusSearch(axis, positions, [measured[p] for p in positions], float(inner), float(hi - lo) / 2.0,
                           at_end)
    while hi - lo > bracket and min(measure(lo), measure(hi)) < FLAT_TOP_FRACTION * measure(inner):
        # keep the best point inside; probe the larger side at the golden section
        if inner - lo > hi - inner:
            probe = inner - (1.0 - _GOLDEN) * (inner - lo)
            if measure(probe) > measure(inner):
                hi, inner = inner, round(axis.clamp(probe), 4)
            else:
                lo = probe
        else:
            probe = inner + (1.0 - _GOLDEN) * (hi - inner)
            if measure(probe) > measure(inner):
                lo, inner = inner, round(axis.clamp(probe), 4)
            else:
                hi = probe
    positions = list(measured)
    return FocusSearch(axis, positions, [measured[p] for p in positions], float(inner), float(hi - lo) / 2.0,
                       at_end)
