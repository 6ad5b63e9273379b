"""The twin's image formation (DESIGN 5): chart -> lens -> sensor, one RAW CFA frame and its ground truth.

Per capture, per colour channel:

1. radiance: the chart's linear reflectance (``targets``) lit by the light's illuminance; the
   channel's response to the light's blackbody spectrum comes from ``station.twin.sensor``;
2. geometry: every polygon of the chart (its exact definition in mm) is carried into the sensor's
   pixel coordinates by the pose (rail distance, pan, tilt), the pinhole at the lens-to-sensor
   distance, OpenCV's Brown-Conrady distortion (and tilted-sensor term), and the channel's lateral
   CA magnification: straight chart edges are straight lines in the undistorted image plane, so
   polygons are clipped there exactly, their edges subdivided finely (<= 1/8 px sagitta), then
   distorted. The projected polygons are rasterized with exact area coverage
   (``targets.polygons``): each pixel is the mean of the irradiance over its area, no holes, no
   point-sampling aliasing, no resampling of a raster;
3. lens: the PSF, a defocus pillbox whose diameter is the thin-lens blur circle for the chart depth
   each pixel sees (uniform, or blended between a few levels when pan/tilt or the adapter's tilt
   make it vary across the field), convolved with the lens's Gaussian base PSF (Lindeberg's discrete
   Gaussian on the area-sampled image: ``optics.PSF_MODEL``, its MTF ``optics.system_mtf``); the relative
   illumination ``cos^4 * (1 + a2 r^2 + a4 r^4)``; the irradiance ``E = rho E_chart T / (4 N_w^2)``
   with the working f-number ``N_w = N v / f``;
4. sensor: the RGGB mosaic of mean electrons goes through ``station.twin.sensor.expose``.

Per unit (seeded by the phone's or sensor's serial): the main lens's voice-coil actuator (``configure``
``focus_code``: ``lenses.actuator_truth``); switched on as twin faults (so that other tests keep their
frames): ``unit_variation``, the channels' sensitivities against the golden module (``sensor.channel_gains``)
and the main camera's pose beside the M camera (``chart_pose``: ``lenses.sensor_pose_truth``; without it both
cameras sit on the rail's axis), and ``sensor_defects``, the sensor's defect pixels (``sensor.defect_map``).

The M sensor without a lens is lit by the whole light box through its sapphire cover glass: a
uniform irradiance ``T rho E_chart sin^2(alpha)`` (alpha: half-angle the chart subtends) with a small
cos^4 falloff of the microlenses' acceptance. The twin never imports ``calibration``.

Modules, one idea each: ``state`` (the optics of a capture), ``charts`` (chart polygons and reflectance),
``projection`` (chart -> sensor pixels), ``defocus`` (blur circle, PSF), ``radiometry`` (falloff, electron
rates), ``frame`` (the frame itself) and ``truth`` (the ground truth as JSON).
"""

from station.twin.render.charts import ChartPolygons, chart_polygons
from station.twin.render.defocus import BlurLevels, blur_levels
from station.twin.render.frame import render_mean_electrons, render_raw
from station.twin.render.projection import chart_pose
from station.twin.render.state import CHANNELS, COC_PX, MODEL, OpticalState, optical_state
from station.twin.render.truth import lens_truth, sensor_truth

__all__ = ["CHANNELS", "COC_PX", "MODEL", "BlurLevels", "ChartPolygons", "OpticalState", "blur_levels",
           "chart_polygons", "chart_pose", "lens_truth", "optical_state", "render_mean_electrons", "render_raw",
           "sensor_truth"]
