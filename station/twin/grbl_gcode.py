"""G-code blocks as the twin's GRBL reads them: words, modal groups, work offsets (grbl/gcode.c).

A block is parsed into a dict (modal state after the block, non-modal ``G10``/``G53``, axis
words, ``L``/``P``/``F``); errors carry GRBL 1.1's status codes (github.com/gnea/grbl/wiki,
"Grbl v1.1 Error Codes"). Targets are machine coordinates: ``G53`` words as they are, ``G90``
words plus the active work offset (``G54``..``G59``), ``G91`` words added to the position.
"""

from __future__ import annotations

import re
from typing import Any

#: GRBL 1.1 status codes the twin answers (error:N).
ERROR = {"letter": 1, "number": 2, "system": 3, "negative": 4, "not_idle": 8, "locked": 9,
         "unsupported": 20, "modal": 21, "feed": 22, "repeated": 25, "missing": 28, "coord": 29,
         "g53": 30}
_WORD_RE = re.compile(r"([A-Z])([^A-Z]*)")
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")


class ReplyError(Exception):
    """A line's answer is ``error:code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _g_word(block: dict[str, Any], value: float) -> int:
    """Apply one G word to the block; return 1 for a motion-mode word (G0/G1), else 0."""
    if value in (0, 1):
        block["mode"] = int(value)
        return 1
    if value in (90, 91):
        block["absolute"] = value == 90
    elif value in (54, 55, 56, 57, 58, 59):
        block["coord"] = int(value) - 54
    elif value in (10, 53):
        if block["non_modal"] is not None:
            raise ReplyError(ERROR["modal"])
        block["non_modal"] = int(value)
    elif value != 21:
        raise ReplyError(ERROR["unsupported"])
    return 0


def parse_block(line: str, letters: tuple[str, ...], absolute: bool, mode: int, feed: float | None,
                coord: int) -> dict[str, Any]:
    """Parse a cleaned, upper-case line given the modal state before it; ReplyError if GRBL refuses it."""
    if not line[0].isalpha():
        raise ReplyError(ERROR["letter"])
    block: dict[str, Any] = {"absolute": absolute, "mode": mode, "feed": feed, "coord": coord,
                             "aux": None, "non_modal": None, "words": {}}
    motion_words = 0
    for letter, number in _WORD_RE.findall(line):
        if not _NUMBER_RE.match(number):
            raise ReplyError(ERROR["number"])
        value = float(number)
        if letter == "G":
            motion_words += _g_word(block, value)
        elif letter == "M" and value in (8, 9):
            block["aux"] = value == 8  # flood coolant output
        elif letter in ("F", "L", "P"):
            if letter == "F" and value <= 0:
                raise ReplyError(ERROR["negative"])
            block[letter] = value
            if letter == "F":
                block["feed"] = value
        elif letter in letters:
            if letter in block["words"]:
                raise ReplyError(ERROR["repeated"])
            block["words"][letter] = value
        else:
            raise ReplyError(ERROR["unsupported"])
    if motion_words > 1:
        raise ReplyError(ERROR["modal"])
    return block


def set_offset(block: dict[str, Any], offsets: list[list[float]], pos: list[float],
               letters: tuple[str, ...]) -> None:
    """G10 L2 Pn: offset = the words; G10 L20 Pn: offset such that the position reads the words.

    P0 is the active system, P1..P6 are G54..G59 (grbl/gcode.c, "[13. Non-modal actions]").
    """
    if "L" not in block or "P" not in block:
        raise ReplyError(ERROR["missing"])
    if block["L"] not in (2, 20):
        raise ReplyError(ERROR["unsupported"])
    if block["P"] not in range(7):
        raise ReplyError(ERROR["coord"])
    index = int(block["P"]) - 1 if block["P"] else block["coord"]
    for i, letter in enumerate(letters):
        if letter in block["words"]:
            value = block["words"][letter]
            offsets[index][i] = value if block["L"] == 2 else pos[i] - value


def target_of(block: dict[str, Any], offsets: list[list[float]], pos: list[float],
              letters: tuple[str, ...]) -> list[float]:
    """Machine target of a motion block; G53 needs G0 or G1 (error:30)."""
    words, offset = block["words"], offsets[block["coord"]]
    if block["non_modal"] == 53:
        if block["mode"] not in (0, 1):
            raise ReplyError(ERROR["g53"])
        return [words.get(a, p) for a, p in zip(letters, pos, strict=True)]
    if block["absolute"]:
        return [words[a] + o if a in words else p for a, p, o in zip(letters, pos, offset, strict=True)]
    return [p + words.get(a, 0.0) for a, p in zip(letters, pos, strict=True)]
