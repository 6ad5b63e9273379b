"""One twin frame (DESIGN 5): the mean photo-electrons of a capture through the optics, then the sensor."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from station.twin import line
from station.twin.render.charts import chart_definition, chart_polygons, uniform_reflectance
from station.twin.render.defocus import (
    BlurLevels,
    apply_psf,
    blur_diameter_px,
    blur_field,
    blur_levels,
    blur_range,
    psf_width_px,
)
from station.twin.render.projection import clip_region, project_chart, rasterize_channel
from station.twin.render.radiometry import electron_rates, relative_illumination
from station.twin.render.state import CHANNELS, MODEL, PSF_UNIFORM_PX, capture_option, optical_state
from station.twin.render.truth import centre_value, optics_truth
from station.twin.sensor import CFA_SITES, defect_map, expose, noise_seed, sensor_params, sensor_spec


def _chart_spec(world: Any, settings: dict[str, Any]) -> tuple[str, tuple[float, float] | None]:
    name = str(getattr(world, "chart", "flat") or "flat")
    size = capture_option(world, settings, "chart_size_mm", None)
    return name, (None if size is None else (float(size[0]), float(size[1])))


def _sensor_serial(world: Any, settings: dict[str, Any], sensor: str) -> str:
    """The serial that seeds the sensor's PRNU/DSNU: the settings' override, else the world's."""
    serial = settings.get("sensor_serial")
    if isinstance(serial, dict):
        serial = serial.get(sensor)
    return str(serial) if serial else world.sensor_serial_for(sensor)


def render_mean_electrons(world: Any, sensor: str, settings: dict[str, Any]) -> tuple[np.ndarray, dict]:
    """The noise-free RGGB mosaic of mean photo-electrons (float32 H x W) and the optics truth."""
    spec = sensor_spec(world.resolution)
    state = optical_state(world, sensor, settings, spec)
    chart_name, chart_size = _chart_spec(world, settings)
    exposure_s = float(settings["exposure_us"]) * 1e-6
    rates, radiometry = electron_rates(world, state, spec, chart_name, chart_size,
                                        _sensor_serial(world, settings, sensor))
    width, height = spec.width, spec.height
    relative, a2, a4 = relative_illumination(state, width, height)
    light = line.light_field(world, width, height)
    if light is not None:  # a line station's light box is not flat
        relative = relative * light  # the cached map is read-only: a new one
    mean_e = np.empty((height, width), dtype=np.float32)
    sigma_px = {c: (state.lens.psf_sigma_um(state.f_number, c) / spec.pixel_pitch_um if state.lens else 0.0)
                for c in CHANNELS}
    blur_info: dict[str, Any] = {}
    chart = chart_definition(chart_name, chart_size)
    uniform = uniform_reflectance(chart) if state.lens is not None else np.ones(3)
    if state.lens is not None:
        centre = float(blur_diameter_px(state, np.array([state.cx]), np.array([state.cy]))[0])
        blur_info = {"blur_circle_px": centre}
    if uniform is not None:
        for k, channel in enumerate(CHANNELS):
            scale = float(uniform[k]) * rates[channel] * exposure_s
            for row, col in CFA_SITES[channel]:
                np.multiply(relative[row::2, col::2], scale, out=mean_e[row::2, col::2])
        if state.lens is not None:
            blur_info["blur_circle_px_range"] = list(blur_range(state, width, height))
    else:
        lo, hi = blur_range(state, width, height)
        blur_info["blur_circle_px_range"] = [lo, hi]
        margin = int(math.ceil(hi / 2.0 + 4.0 * max(sigma_px.values()) + 3.0))
        region = clip_region(state, spec, margin)
        polygons = chart_polygons(chart_name, chart_size)
        projected = project_chart(polygons, state, region)
        blur: float | BlurLevels = centre
        sigma_g = sigma_px["g"]
        if psf_width_px(sigma_g, hi) - psf_width_px(sigma_g, lo) > PSF_UNIFORM_PX:
            step = 16
            blur = blur_levels(blur_field(state, width, height, margin, step), sigma_g, step,
                               width + 2 * margin, height + 2 * margin)
        for channel in CHANNELS:  # mean electrons before the falloff: the PSF is linear
            image = rasterize_channel(polygons, projected, state, channel, width, height, margin,
                                       rates[channel] * exposure_s)
            image = apply_psf(image, sigma_px[channel], blur)
            for row, col in CFA_SITES[channel]:
                site = image[margin + row:margin + height:2, margin + col:margin + width:2]
                np.multiply(site, relative[row::2, col::2], out=mean_e[row::2, col::2])
            del image
    np.maximum(mean_e, 0.0, out=mean_e)
    truth = optics_truth(state, spec, a2, a4, sigma_px, blur_info, chart_name, chart, radiometry)
    truth["exposure_s"] = exposure_s
    return mean_e, truth


def render_raw(world: Any, sensor: str, settings: dict[str, Any], seq: int) -> tuple[np.ndarray, dict]:
    """Render one RGGB CFA frame (uint16, H x W, 10-bit DN) and its ground truth (JSON-able dict).

    ``settings``: ``exposure_us``, ``analog_gain``, ``focus_m`` (main; None autofocuses on the chart),
    and optionally ``aperture`` (M lens f-number), ``adapter_back_focus_mm``, ``adapter_tilt_x_deg``,
    ``adapter_tilt_y_deg``, ``chart_size_mm``, ``sensor_serial`` (else read from ``world.optics`` or
    world attributes of those names). Noise is seeded by ``(world.seed, sensor, seq)``, the PRNU/DSNU
    patterns by the sensor serial: the same arguments give the same frame.
    """
    spec = sensor_spec(world.resolution)
    analog_gain = float(settings.get("analog_gain", 1.0))
    mean_e, truth = render_mean_electrons(world, sensor, settings)
    serial = _sensor_serial(world, settings, sensor)
    g_centre = centre_value(mean_e, truth)
    defects = bool(getattr(world, "faults", {}).get("sensor_defects"))
    raw = expose(mean_e, spec, analog_gain, truth["exposure_s"], serial,
                 noise_seed(line.noise_seed(world), sensor, seq), defects=defects)
    truth["defect_pixels"] = defect_map(serial, spec.resolution).truth() if defects else []
    params = sensor_params(spec, analog_gain)
    gain = params["conversion_gain_dn_per_e"]
    expected = {c: min(spec.black_level + gain * min(e, spec.full_well_e), float(spec.white_level))
                for c, e in g_centre.items()}
    truth.update({k: params[k] for k in ("conversion_gain_dn_per_e", "read_noise_dn", "read_noise_e",
                                         "full_well_e", "black_level", "white_level", "clip_level_dn",
                                         "dark_current_e_per_s", "prnu_pct", "dsnu_e")})
    truth.update({"model": MODEL, "sensor_params": params, "sensor_serial": serial, "seed": int(world.seed),
                  "seq": int(seq), "analog_gain": analog_gain, "mean_signal_e": g_centre["g"],
                  "mean_signal_e_rgb": g_centre, "expected_mean_dn": expected["g"],
                  "expected_mean_dn_rgb": expected})
    return raw, truth
