"""The operator: whoever makes the physical changes the station cannot make itself (DESIGN 3.4).

``protocol`` the interface and its request; ``prompt`` a person at the terminal; ``tcp`` a line's automation
over JSON lines; ``twin`` the twin's stand-in. ``open_operator`` picks one from ``--operator``.
"""

from __future__ import annotations

from station.operator.protocol import Operator, OperatorRequest, open_operator, parse_operator

__all__ = ["Operator", "OperatorRequest", "open_operator", "parse_operator"]
