"""Captures in the report: white-balanced, ROIs drawn; the MTF50 map's labels never overlap."""

from __future__ import annotations

import numpy as np

from station.capture_preview import ROI_RGB, neutral_gains, preview_rgb
from station.frame import Frame


def _cast_grey(height: int = 96, width: int = 128) -> Frame:
    """A neutral grey chart seen through a green-heavy sensor: R at half, B at 0.7 of G (RGGB, above black 64)."""
    data = np.empty((height, width), dtype=np.uint16)
    data[0::2, 0::2] = 64 + 200  # R
    data[0::2, 1::2] = 64 + 400  # Gr
    data[1::2, 0::2] = 64 + 400  # Gb
    data[1::2, 1::2] = 64 + 280  # B
    return Frame(data=data, cfa="RGGB", black_level=64, white_level=1023)


def test_a_grey_chart_previews_grey_whatever_the_sensor_cast() -> None:
    frame = _cast_grey()
    assert np.allclose(neutral_gains(frame), (2.0, 1.0, 400 / 280), rtol=1e-3)
    rgb = preview_rgb(frame, max_side=64).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 1 and np.abs(rgb[..., 2] - rgb[..., 1]).max() <= 1
    assert rgb[..., 1].min() >= 250  # exposed to the chart's white


def test_the_frame_s_own_neutral_wins_and_rois_are_drawn_where_they_are() -> None:
    frame = _cast_grey()
    frame.extra["as_shot_neutral"] = [0.5, 1.0, 0.7]
    assert np.allclose(neutral_gains(frame), (2.0, 1.0, 1 / 0.7))
    rgb = preview_rgb(frame, rois=[(32, 16, 40, 24)], max_side=64)  # preview is 64 x 48: half scale
    assert tuple(rgb[8, 20]) == ROI_RGB and tuple(rgb[8 + 5, 16]) == ROI_RGB  # top edge, left edge
    assert tuple(rgb[14, 26]) != ROI_RGB  # inside stays the chart


def test_mtf50_map_labels_do_not_overlap() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from station.procedures.sfr import _label_without_overlap

    rng = np.random.default_rng(3)
    xs = list(rng.uniform(0, 400, 60))
    ys = list(rng.uniform(0, 300, 60))  # 60 edges crowded on a small frame
    fig, ax = plt.subplots(figsize=(7.0, 5.4), dpi=100)
    ax.scatter(xs, ys)
    ax.set_xlim(0, 400)
    ax.set_ylim(300, 0)
    ax.set_aspect("equal")
    _label_without_overlap(fig, ax, xs, ys, list(rng.uniform(0.1, 0.4, 60)))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    plt.close(fig)
    assert len(boxes) >= 20  # most values still written
    overlaps = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    assert not overlaps
