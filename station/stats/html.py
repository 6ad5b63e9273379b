"""``station stats --html``: one self-contained page (inline PNG plots, no external resource)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

MAX_CHARTS = 24


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _yield_plot(yields: dict[str, dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(yields)
    fig, ax = plt.subplots(figsize=(6, 3))
    x = range(len(groups))
    ax.bar([i - 0.2 for i in x], [100 * yields[g]["first_pass"] for g in groups], 0.4, label="first pass")
    ax.bar([i + 0.2 for i in x], [100 * yields[g]["final"] for g in groups], 0.4, label="final")
    ax.set_xticks(list(x), groups)
    ax.set_ylabel("yield, %")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower right")
    return _png(fig)


def _control_chart(key: str, m: dict[str, Any], points: list[float]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.plot(range(len(points)), points, marker="o", markersize=3, linewidth=0.8)
    control = m["control"]
    for level, style in ((control["centre"], "-"), (control["ucl"], "--"), (control["lcl"], "--")):
        if level is not None:
            ax.axhline(level, color="grey", linestyle=style, linewidth=0.8)
    for limit in (m["low"], m["high"]):
        if limit is not None:
            ax.axhline(limit, color="red", linewidth=1.0)
    flagged = sorted({v["index"] for v in control["violations"]})
    ax.plot(flagged, [points[i] for i in flagged], "rx", markersize=7)
    ax.set_title(f"{key} (individuals; red: limits, x: Western Electric)", fontsize=9)
    ax.set_xlabel("run")
    ax.set_ylabel(m["unit"] or "")
    return _png(fig)


def _offsets_plot(correlation: dict[str, dict[str, Any]]) -> str | None:
    import matplotlib.pyplot as plt

    spread = {k: max(abs(o["offset_pct"]) for o in v.values()) for k, v in correlation.items() if v}
    keys = sorted(spread, key=lambda k: -spread[k])[:8]  # the measurements the stations disagree on most
    if not keys:
        return None
    stations = sorted({s for k in keys for s in correlation[k]})
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / max(1, len(stations))
    for j, station in enumerate(stations):
        ax.bar([i + j * width for i in range(len(keys))],
               [correlation[k].get(station, {}).get("offset_pct", 0.0) for k in keys], width, label=station)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(keys))], keys, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("offset from all stations, %")
    ax.legend(fontsize=7)
    return _png(fig)


def render_html(stats: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """The page: yields, per-measurement table and control charts, golden-unit offsets."""
    from station.stats.report import series

    esc = html.escape
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>M-Station line statistics</title>",
             "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}.bad{color:#b00}</style></head><body>",
             f"<h1>M-Station line statistics</h1><p>{stats['runs']} runs, {stats['judged_runs']} judged.</p>",
             "<h2>Yield by station</h2>",
             f"<img alt='yield by station' src='{_yield_plot(stats['yields']['station'])}'>"]
    for key in ("day", "firmware", "plan"):
        rows = "".join(f"<tr><td>{esc(g)}</td><td>{100 * y['first_pass']:.1f} %</td><td>{100 * y['final']:.1f} %"
                       f"</td><td>{y['duts']}</td></tr>" for g, y in stats["yields"][key].items())
        parts.append(f"<h3>Yield by {key}</h3><table><tr><th>{key}</th><th>first pass</th><th>final</th>"
                     f"<th>DUTs</th></tr>{rows}</table>")
    parts.append("<h2>Capability</h2><table><tr><th>measurement</th><th>n</th><th>mean</th><th>sigma</th>"
                 "<th>Cp</th><th>Cpk</th><th>Pp</th><th>Ppk</th><th>drift</th></tr>")

    def fmt(v: Any) -> str:
        return "" if v is None else f"{v:.4g}"

    for key, m in stats["measurements"].items():
        bad = " class='bad'" if m["cpk"] is not None and m["cpk"] < 1.33 else ""
        parts.append(f"<tr{bad}><td>{esc(key)}</td><td>{m['n']}</td><td>{fmt(m['mean'])}</td>"
                     f"<td>{fmt(m['sigma_within'])}</td><td>{fmt(m['cp'])}</td><td>{fmt(m['cpk'])}</td>"
                     f"<td>{fmt(m['pp'])}</td><td>{fmt(m['ppk'])}</td><td>{'yes' if m['drift'] else ''}</td></tr>")
    parts.append("</table><h2>Control charts</h2>")
    data = series(runs)
    limited = [k for k, m in stats["measurements"].items() if m["low"] is not None or m["high"] is not None]
    for key in limited[:MAX_CHARTS]:
        points = [p[4] for p in data[key]["points"]]
        parts.append(f"<div><img alt='{esc(key)}' src='{_control_chart(key, stats['measurements'][key], points)}'>"
                     "</div>")
    offsets = _offsets_plot(stats["golden"]["correlation"])
    parts.append("<h2>Golden units: station offsets</h2>")
    parts.append(f"<img alt='golden offsets' src='{offsets}'>" if offsets else "<p>No golden units given.</p>")
    parts.append("<script>window.addEventListener('load',function(){var n=0;document.querySelectorAll('img')"
                 ".forEach(function(i){if(i.complete&&i.naturalWidth>0){n++;}});"
                 "document.body.setAttribute('data-plots-rendered',String(n));});</script></body></html>")
    return "\n".join(parts)
