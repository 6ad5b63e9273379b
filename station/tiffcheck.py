"""TIFF structure checks done before tifffile sees a file (TIFF 6.0 section 2; BigTIFF; Adobe DNG 1.4 SubIFDs).

tifffile follows a next-IFD offset that points back into the chain for ever (a self-pointing IFD0
hangs ``TiffFile.pages``), so every IFD chain, SubIFDs included, is walked here first: bounded in
number, each offset inside the file, and never visited twice.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Iterator

from station.errors import InputError

#: Most IFDs (main chain plus SubIFDs) a file may hold; a DNG has a handful.
MAX_IFDS = 256
_SUBIFDS = 330
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}


def check_tiff_structure(buf: bytes, name: str, max_ifds: int = MAX_IFDS, what: str = "a TIFF file") -> None:
    """``InputError`` naming ``name`` unless every IFD chain of the TIFF in ``buf`` is bounded and acyclic."""
    if len(buf) < 8 or buf[:2] not in (b"II", b"MM"):
        raise InputError(f"{name}: not {what} (no TIFF header)")
    end = "<" if buf[:2] == b"II" else ">"
    (magic,) = struct.unpack_from(end + "H", buf, 2)
    if magic == 42:
        layout = (end, "H", "I", 2, 12, 4)
        first = struct.unpack_from(end + "I", buf, 4)[0]
    elif magic == 43 and len(buf) >= 16:
        layout = (end, "Q", "Q", 8, 20, 8)
        first = struct.unpack_from(end + "Q", buf, 8)[0]
    else:
        raise InputError(f"{name}: not {what} (TIFF version {magic}, expected 42 or BigTIFF 43)")
    seen: set[int] = set()
    pending = [first]
    while pending:
        offset = pending.pop()
        while offset:
            if offset in seen:
                raise InputError(f"{name}: IFD chain loops back to offset {offset} (a corrupt TIFF)")
            if len(seen) >= max_ifds:
                raise InputError(f"{name}: more than {max_ifds} IFDs (a corrupt TIFF)")
            seen.add(offset)
            offset, subifds = _read_ifd(buf, offset, layout, name)
            pending.extend(subifds)


def _read_ifd(buf: bytes, offset: int, layout: tuple, name: str) -> tuple[int, list[int]]:
    """The next-IFD offset and the SubIFD offsets of the IFD at ``offset``."""
    end, count_fmt, off_fmt, count_size, entry_size, off_size = layout
    if offset + count_size > len(buf):
        raise InputError(f"{name}: IFD offset {offset} beyond the end of the file ({len(buf)} bytes)")
    (count,) = struct.unpack_from(end + count_fmt, buf, offset)
    table_end = offset + count_size + count * entry_size
    if count == 0 or table_end + off_size > len(buf):
        raise InputError(f"{name}: IFD at offset {offset} with {count} entries does not fit in the file")
    subifds: list[int] = []
    for i in range(count):
        at = offset + count_size + i * entry_size
        tag, kind = struct.unpack_from(end + "HH", buf, at)
        if tag != _SUBIFDS:
            continue
        (n,) = struct.unpack_from(end + off_fmt, buf, at + 4)
        size = _TYPE_SIZES.get(kind, 0)
        if size not in (4, 8) or n > MAX_IFDS:
            raise InputError(f"{name}: SubIFDs tag with type {kind} and count {n} (a corrupt TIFF)")
        where = at + 4 + off_size
        if n * size > off_size:
            (where,) = struct.unpack_from(end + off_fmt, buf, where)
        if where + n * size > len(buf):
            raise InputError(f"{name}: SubIFDs offsets beyond the end of the file")
        fmt = end + ("I" if size == 4 else "Q") * n
        subifds.extend(struct.unpack_from(fmt, buf, where))
    (next_offset,) = struct.unpack_from(end + off_fmt, buf, table_end)
    return next_offset, subifds


@contextlib.contextmanager
def quiet_tifffile() -> Iterator[None]:
    """tifffile logs what it repairs or skips in a broken file as warnings on stderr; while the station reads a
    file its own one-line error replaces them (as OpenCV's log is silenced in ``station.imageio``)."""
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)
