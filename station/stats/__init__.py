"""Production statistics of a line from its runs: yields, capability, control charts, golden units.

``yields``: first-pass and final yield by station, day, firmware and plan; ``capability``: Cp/Cpk,
Pp/Ppk and the individuals chart with the Western Electric rules; ``golden``: the golden units per
station over time and the stations' correlation offsets; ``report``: all of it as one JSON-able dict
(``station stats --json``) and ``html``: one self-contained page with plots.
"""
