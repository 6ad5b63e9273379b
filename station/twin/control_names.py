"""Names the twin's control interface accepts, checked on both ends of its wire (``station.twin.control`` and
``station.twin.control_client``)."""

from __future__ import annotations

import re

#: A lens id or firmware build: a lower-case slug.
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,63}$")
#: A chart name of ``targets.registry``.
CHART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_\-]{0,99}$")
#: A fault name.
FAULT_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
