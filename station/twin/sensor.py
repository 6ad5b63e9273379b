"""The twin's image sensor: spectral response, photon to DN conversion and fixed-pattern noise.

The model is EMVA 1288's linear camera model (EMVA Standard 1288, Release 4.0, sections 2-3):
photo-electrons ``mu_e`` (Poisson), plus dark current (Poisson too), scaled by the pixel's PRNU,
clipped at the full well, offset by the pixel's DSNU, converted with the conversion gain
``K = K_1 * analog_gain`` DN/e-, plus read noise (input-referred electrons, times K) and the ADC's
own noise (DN), then the 10-bit ADC (round, clip to 0..1023) above a black level of 64 DN.
With ``K_1 * full_well`` below ``1023 - 64`` the raw clip level sits below the white level at
analog gain 1 and reaches it at higher gains.

Two readout modes of the same 1-inch sensor (13.1 x 9.8 mm): ``full`` 8192 x 6144 native
1.6 um pixels, and ``ci`` 2048 x 1536 pixels binned 4 x 4 (6.4 um), read as one large pixel
with its own full well, conversion gain and noise (the binned pixel collects 16x the light).

Spectral response: channel c's electrons per second per pixel from a sensor-plane illuminance E
(lux) of a blackbody at CCT T are ``E * A_pixel * eta_c(T)``, with
``eta_c = int S_T(l) l/(h c) QE_c(l) dl / (683 lm/W * int S_T(l) V(l) dl)`` (Planck's S_T from
colour-science, CIE 1924 photopic V), ``QE_c`` a Gaussian colour-filter x silicon QE per channel
times an IR-cut filter (representative curves, not a measured sensor).
"""

from __future__ import annotations

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from station.errors import ConfigError

CFA = "RGGB"
BIT_DEPTH = 10
BLACK_LEVEL_DN = 64
WHITE_LEVEL_DN = 1023
SENSORS = ("main", "m")
#: CFA site (row, col) offsets of each channel in the RGGB quad.
CFA_SITES: dict[str, tuple[tuple[int, int], ...]] = {"r": ((0, 0),), "g": ((0, 1), (1, 0)), "b": ((1, 1),)}
#: Rows per noise chunk: each chunk has its own random stream, so results do not depend on threads.
_NOISE_CHUNK_ROWS = 256

#: Per-channel quantum efficiency: (peak QE, centre nm, Gaussian sigma nm) of filter x silicon.
QE_CURVES: dict[str, tuple[float, float, float]] = {
    "r": (0.42, 602.0, 30.0), "g": (0.62, 535.0, 38.0), "b": (0.62, 460.0, 30.0)}
#: IR-cut filter: logistic edge at this wavelength (nm) with this width (nm).
IR_CUT_NM = (650.0, 8.0)
_PLANCK_H = 6.62607015e-34
_LIGHT_C = 2.99792458e8
_KM_LM_PER_W = 683.0


@dataclass(frozen=True)
class SensorSpec:
    """One readout mode of the 1-inch sensor (all electrons at the pixel, K at analog gain 1)."""

    resolution: str
    width: int
    height: int
    pixel_pitch_um: float
    binning: int
    full_well_e: float
    conversion_gain_dn_per_e: float  # K at analog gain 1
    read_noise_e: float  # input-referred (pixel and source follower), scales with K
    adc_noise_dn: float  # after the gain stage, does not scale with K
    dark_current_e_per_s: float
    prnu_pct: float  # photo-response non-uniformity, std over pixels, % of signal
    dsnu_e: float  # dark-signal non-uniformity, std over pixels, electrons
    black_level: int = BLACK_LEVEL_DN
    white_level: int = WHITE_LEVEL_DN
    bit_depth: int = BIT_DEPTH
    cfa: str = CFA

    @property
    def pixel_area_m2(self) -> float:
        return (self.pixel_pitch_um * 1e-6) ** 2

    @property
    def pixel_pitch_mm(self) -> float:
        return self.pixel_pitch_um * 1e-3

    @property
    def size_mm(self) -> tuple[float, float]:
        return (self.width * self.pixel_pitch_mm, self.height * self.pixel_pitch_mm)


SPECS: dict[str, SensorSpec] = {
    "full": SensorSpec("full", 8192, 6144, 1.6, 1, full_well_e=6000.0, conversion_gain_dn_per_e=0.15,
                       read_noise_e=1.8, adc_noise_dn=0.5, dark_current_e_per_s=1.0, prnu_pct=0.7,
                       dsnu_e=0.6),
    "ci": SensorSpec("ci", 2048, 1536, 6.4, 4, full_well_e=12000.0, conversion_gain_dn_per_e=0.075,
                     read_noise_e=3.0, adc_noise_dn=0.5, dark_current_e_per_s=16.0, prnu_pct=0.5,
                     dsnu_e=2.0),
}


def sensor_spec(resolution: str) -> SensorSpec:
    """The readout mode ``resolution`` (``"ci"`` or ``"full"``); ConfigError naming the allowed ones."""
    try:
        return SPECS[resolution]
    except (KeyError, TypeError):
        raise ConfigError(f"twin resolution {resolution!r} unknown; allowed: {', '.join(SPECS)}") from None


def sensor_params(spec: SensorSpec, analog_gain: float) -> dict[str, Any]:
    """The sensor's true EMVA 1288 parameters at ``analog_gain`` (what a photon transfer should find)."""
    gain = spec.conversion_gain_dn_per_e * float(analog_gain)
    read_dn = math.hypot(gain * spec.read_noise_e, spec.adc_noise_dn)
    clip = min(spec.black_level + gain * spec.full_well_e, float(spec.white_level))
    return {
        "resolution": spec.resolution, "width": spec.width, "height": spec.height,
        "pixel_pitch_um": spec.pixel_pitch_um, "binning": spec.binning, "cfa": spec.cfa,
        "bit_depth": spec.bit_depth, "black_level": spec.black_level, "white_level": spec.white_level,
        "analog_gain": float(analog_gain), "conversion_gain_dn_per_e": gain,
        "read_noise_dn": read_dn, "read_noise_e": read_dn / gain,
        "full_well_e": spec.full_well_e, "clip_level_dn": clip,
        "saturation_e": min(spec.full_well_e, (spec.white_level - spec.black_level) / gain),
        "dark_current_e_per_s": spec.dark_current_e_per_s, "prnu_pct": spec.prnu_pct, "dsnu_e": spec.dsnu_e,
        "dsnu_dn": spec.dsnu_e * gain,
    }


# --- spectral response ------------------------------------------------------------------------

def quantum_efficiency(wavelength_nm: np.ndarray) -> dict[str, np.ndarray]:
    """QE per channel (colour filter x silicon x IR cut) at ``wavelength_nm``."""
    wl = np.asarray(wavelength_nm, dtype=np.float64)
    ir_cut = 1.0 / (1.0 + np.exp((wl - IR_CUT_NM[0]) / IR_CUT_NM[1]))
    return {c: peak * np.exp(-0.5 * ((wl - centre) / sigma) ** 2) * ir_cut
            for c, (peak, centre, sigma) in QE_CURVES.items()}


@lru_cache(maxsize=64)
def electrons_per_lux_s_m2(cct_k: float) -> dict[str, float]:
    """Electrons per (lux x second x m^2) of sensor-plane illuminance, per channel, blackbody at ``cct_k``."""
    import colour  # colour-science: Planck's law and the CIE photopic luminous efficiency

    shape = colour.SpectralShape(360, 830, 1)
    spd = colour.sd_blackbody(float(cct_k), shape).values  # W / (sr m^2 m): relative scale suffices
    wl = np.asarray(shape.wavelengths, dtype=np.float64)
    lef = colour.colorimetry.SDS_LEFS_PHOTOPIC["CIE 1924 Photopic Standard Observer"].copy()
    lef = lef.align(shape).values
    lux_per_unit = _KM_LM_PER_W * np.trapezoid(spd * lef, wl)
    photons = spd * (wl * 1e-9) / (_PLANCK_H * _LIGHT_C)
    return {c: float(np.trapezoid(photons * qe, wl) / lux_per_unit)
            for c, qe in quantum_efficiency(wl).items()}


# --- fixed patterns and noise -----------------------------------------------------------------

def _serial_seed(serial: str, resolution: str) -> list[int]:
    digest = hashlib.sha256(f"{serial}|{resolution}".encode()).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


@lru_cache(maxsize=2)
def fixed_patterns(serial: str, resolution: str) -> tuple[np.ndarray, np.ndarray]:
    """PRNU (relative, std 1) and DSNU (std 1) patterns of a sensor, seeded by its serial only.

    Read-only float32 arrays (H, W): the same serial gives the same patterns, another serial others.
    """
    spec = sensor_spec(resolution)
    rng = np.random.default_rng(_serial_seed(serial, resolution))
    prnu = rng.standard_normal((spec.height, spec.width), dtype=np.float32)
    dsnu = rng.standard_normal((spec.height, spec.width), dtype=np.float32)
    prnu.setflags(write=False)
    dsnu.setflags(write=False)
    return prnu, dsnu


def noise_seed(world_seed: int, sensor: str, seq: int) -> np.random.SeedSequence:
    """The seed of a frame's temporal noise: (world seed, sensor, frame seq)."""
    sensor_index = SENSORS.index(sensor) if sensor in SENSORS else 1000 + len(sensor)
    return np.random.SeedSequence([int(world_seed) & 0xFFFFFFFF, sensor_index, int(seq) & 0xFFFFFFFF])


def expose(mean_e: np.ndarray, spec: SensorSpec, analog_gain: float, exposure_s: float, serial: str,
           seed: np.random.SeedSequence, defects: bool = False) -> np.ndarray:
    """Mean photo-electrons per pixel (H, W) float32 -> the raw CFA frame (H, W) uint16 DN.

    ``mean_e`` is consumed (overwritten). EMVA 1288 linear model, see the module docstring:
    ``DN = round(black + K (min(Poisson(mu_e (1 + PRNU) + dark t), FW) + DSNU) + N(0, read_dn))``;
    with ``defects`` the serial's defect pixels (``defect_map``) scale ``mu_e``, add dark charge, or read
    a stuck DN.
    """
    if mean_e.shape != (spec.height, spec.width) or mean_e.dtype != np.float32:
        raise ValueError(f"mean_e must be float32 {spec.height}x{spec.width}, got {mean_e.dtype} {mean_e.shape}")
    prnu, dsnu = fixed_patterns(serial, spec.resolution)
    gain = spec.conversion_gain_dn_per_e * float(analog_gain)
    read_e_equiv = math.hypot(spec.read_noise_e, spec.adc_noise_dn / gain)  # read noise in e- at this K
    dark_e = spec.dark_current_e_per_s * max(float(exposure_s), 0.0)
    defect_pixels = defect_map(serial, spec.resolution) if defects else None
    if defect_pixels is not None:
        apply_defects_to_electrons(mean_e, defect_pixels, exposure_s)
    out = np.empty(mean_e.shape, dtype=np.uint16)
    chunks = [slice(r, min(r + _NOISE_CHUNK_ROWS, spec.height)) for r in range(0, spec.height, _NOISE_CHUNK_ROWS)]
    streams = seed.spawn(len(chunks))

    def work(i: int) -> None:
        rows = chunks[i]
        rng = np.random.Generator(np.random.PCG64(streams[i]))
        e = mean_e[rows]
        np.maximum(e, 0.0, out=e)
        e *= 1.0 + (spec.prnu_pct / 100.0) * prnu[rows]
        e += dark_e
        np.maximum(e, 0.0, out=e)
        counts = rng.poisson(e).astype(np.float32)
        np.minimum(counts, spec.full_well_e, out=counts)
        counts += spec.dsnu_e * dsnu[rows]
        counts += read_e_equiv * rng.standard_normal(counts.shape, dtype=np.float32)
        counts *= gain
        counts += spec.black_level
        np.rint(counts, out=counts)
        np.clip(counts, 0, spec.white_level, out=counts)
        out[rows] = counts

    if len(chunks) > 4:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(work, range(len(chunks))))
    else:
        for i in range(len(chunks)):
            work(i)
    if defect_pixels is not None:
        apply_stuck(out, defect_pixels)
    return out


def cfa_channel_map(height: int, width: int) -> np.ndarray:
    """(H, W) uint8 channel index per pixel of the RGGB mosaic: 0 R, 1 G, 2 B."""
    index = np.empty((height, width), dtype=np.uint8)
    for k, channel in enumerate(("r", "g", "b")):
        for row, col in CFA_SITES[channel]:
            index[row::2, col::2] = k
    return index


def sensor_catalog() -> dict[str, dict[str, Any]]:
    """Sensor name -> its truth: readout modes with their EMVA 1288 parameters at analog gain 1, the
    spectral model (``station twin sensors --json``). Both sensors are the same 1-inch type."""
    modes = {}
    for name, spec in SPECS.items():
        modes[name] = sensor_params(spec, 1.0)
        modes[name].update(read_noise_e_at_pixel=spec.read_noise_e, adc_noise_dn=spec.adc_noise_dn,
                           size_mm=list(spec.size_mm))
    entry = {"cfa": CFA, "bit_depth": BIT_DEPTH, "black_level": BLACK_LEVEL_DN, "white_level": WHITE_LEVEL_DN,
             "conversion_gain": "K = K_1 * analog_gain; read_noise_dn = hypot(K * read_noise_e_at_pixel, adc_noise_dn)",
             "modes": modes, "spectral": {"qe_peak_centre_sigma_nm": {c: list(v) for c, v in QE_CURVES.items()},
                                          "ir_cut_nm": list(IR_CUT_NM)}}
    return {sensor: dict(entry, sensor=sensor) for sensor in SENSORS}


# --- per-unit imperfections: defect pixels and channel sensitivities ---------------------------

#: Defect pixels the twin seeds per sensor (EMVA 1288 4.0 defect-pixel kinds): kind -> how many single
#: pixels. Besides these: ``DEFECT_PAIRS`` pairs of adjacent pixels and one column segment.
DEFECT_SINGLES: dict[str, int] = {"hot": 4, "warm": 4, "dead": 3, "weak": 3, "stuck": 2}
DEFECT_PAIRS = 3
#: The column segment: this many pixels down one column, all of one kind.
DEFECT_COLUMN_PX = 12
#: Per kind: extra dark current (e-/s at the pixel), response factor (x the photo-electrons), stuck DN.
DEFECT_HOT_E_PER_S = (2.0e4, 6.0e4)
DEFECT_WARM_E_PER_S = (2.5e3, 6.0e3)
DEFECT_WEAK_RESPONSE = (0.3, 0.6)
DEFECT_STUCK_DN = (300, 700)
#: Per-unit channel sensitivity (QE scale) relative to the golden module: std and bound, per channel.
CHANNEL_GAIN_STD = 0.015
CHANNEL_GAIN_BOUND = 0.03


@dataclass(frozen=True)
class DefectMap:
    """A sensor's seeded defects: pixel coordinates and what each does (the truth a defect test uses)."""

    x: np.ndarray  # int64 column
    y: np.ndarray  # int64 row
    kind: tuple[str, ...]
    dark_e_per_s: np.ndarray  # float extra dark current (hot, warm)
    response: np.ndarray  # float response factor (1 normal, 0 dead, <1 weak, 0 stuck)
    stuck_dn: np.ndarray  # int DN the pixel always reads (stuck), -1 otherwise

    def truth(self) -> list[dict[str, Any]]:
        """JSON-able list: one entry per defective pixel, sorted by (y, x)."""
        order = np.lexsort((self.x, self.y))
        return [{"x": int(self.x[i]), "y": int(self.y[i]), "kind": self.kind[i]} for i in order]


def _kind_params(kind: str, rng: np.random.Generator) -> tuple[float, float, int]:
    if kind == "hot":
        return float(rng.uniform(*DEFECT_HOT_E_PER_S)), 1.0, -1
    if kind == "warm":
        return float(rng.uniform(*DEFECT_WARM_E_PER_S)), 1.0, -1
    if kind == "dead":
        return 0.0, 0.0, -1
    if kind == "weak":
        return 0.0, float(rng.uniform(*DEFECT_WEAK_RESPONSE)), -1
    return 0.0, 0.0, int(rng.integers(*DEFECT_STUCK_DN))


@lru_cache(maxsize=8)
def defect_map(serial: str, resolution: str) -> DefectMap:
    """The sensor's defect pixels, seeded by its serial: single pixels of each kind, adjacent pairs and
    one column segment, at least 16 px from the border and from each other (clusters stay apart)."""
    spec = sensor_spec(resolution)
    rng = np.random.default_rng(_serial_seed(serial, resolution + "|defects"))
    kinds = [k for k, n in DEFECT_SINGLES.items() for _ in range(n)]
    groups: list[list[tuple[int, int]]] = []
    group_kinds: list[str] = []
    taken: list[tuple[int, int]] = []

    def place(extent_y: int) -> tuple[int, int]:
        while True:
            x = int(rng.integers(16, spec.width - 16))
            y = int(rng.integers(16, spec.height - 16 - extent_y))
            if all(abs(x - tx) > 16 or abs(y - ty) > 16 + extent_y for tx, ty in taken):
                taken.append((x, y))
                return x, y

    for kind in kinds:
        groups.append([place(1)])
        group_kinds.append(kind)
    pair_kinds = ("hot", "dead", "weak")
    for i in range(DEFECT_PAIRS):
        x, y = place(1)
        groups.append([(x, y), (x + 1, y)] if i % 2 == 0 else [(x, y), (x, y + 1)])
        group_kinds.append(pair_kinds[i % len(pair_kinds)])
    x, y = place(DEFECT_COLUMN_PX)
    groups.append([(x, y + k) for k in range(DEFECT_COLUMN_PX)])
    group_kinds.append("dead")
    xs, ys, names, dark, response, stuck = [], [], [], [], [], []
    for pixels, kind in zip(groups, group_kinds, strict=True):
        for px, py in pixels:
            d, r, s = _kind_params(kind, rng)
            xs.append(px), ys.append(py), names.append(kind), dark.append(d), response.append(r), stuck.append(s)
    return DefectMap(np.array(xs, np.int64), np.array(ys, np.int64), tuple(names), np.array(dark),
                     np.array(response), np.array(stuck, np.int64))


def apply_defects_to_electrons(mean_e: np.ndarray, defects: DefectMap, exposure_s: float) -> None:
    """Scale the defect pixels' photo-electrons by their response, add their extra dark charge (in place)."""
    sites = (defects.y, defects.x)
    mean_e[sites] = mean_e[sites] * defects.response + defects.dark_e_per_s * max(float(exposure_s), 0.0)


def apply_stuck(raw: np.ndarray, defects: DefectMap) -> None:
    """Stuck pixels read their fixed DN whatever the light (in place)."""
    stuck = defects.stuck_dn >= 0
    raw[defects.y[stuck], defects.x[stuck]] = defects.stuck_dn[stuck]


@lru_cache(maxsize=16)
def channel_gains(serial: str) -> dict[str, float]:
    """The unit's channel sensitivities relative to the golden module (QE scale of R and B; G is the
    reference, 1), seeded by the sensor serial: what an AWB-against-golden calibration finds."""
    rng = np.random.default_rng(_serial_seed(serial, "channel-gains"))
    r, b = np.clip(rng.normal(0.0, CHANNEL_GAIN_STD, 2), -CHANNEL_GAIN_BOUND, CHANNEL_GAIN_BOUND)
    return {"r": float(1.0 + r), "g": 1.0, "b": float(1.0 + b)}
