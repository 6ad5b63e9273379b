"""RAW10 packing as Android ``ImageFormat.RAW10`` / MIPI CSI-2 RAW10 (DESIGN 4).

Four pixels in five bytes: bytes 0-3 hold the high 8 bits of P0..P3, byte 4 holds the
low 2 bits, ``P3[1:0]<<6 | P2[1:0]<<4 | P1[1:0]<<2 | P0[1:0]``. Each row takes
``width * 5 / 4`` bytes and may be followed by padding up to ``stride_bytes``; the last
row's padding may be missing from a buffer (Android's plane buffers end at the last pixel).

Unpacking works on 64-bit words: each 5-byte group is read as one (unaligned) little-endian
word into the output's own memory, its four high bytes are spread into the four 16-bit
lanes with shift-or-mask steps, and the low bits are spread with one multiply
(``b4 * (1 + 2^14 + 2^28 + 2^42)`` puts bits ``2k..2k+1`` of ``b4`` at lane ``k``). Row blocks
stay in the CPU cache, so the whole frame is read once and written once.

When the C kernel ``station._raw10`` is built (``pip install -e .`` compiles ``station/_raw10.c``; it is
optional) unpack and pack run there instead, on ``THREADS`` threads: unpack two groups per SSSE3 shuffle
where the CPU has it (else the same 64-bit word steps as here), at memory bandwidth. The numpy path stays
as the fallback and as the reference in the tests (``use_kernel=False``).
"""

from __future__ import annotations

import numpy as np

from station.errors import InputError

try:  # the optional compiled kernel (setup.py); numpy below does the same bits without it
    from station import _raw10 as _kernel
except ImportError:  # pragma: no cover - a machine without a C compiler
    _kernel = None

#: Threads the C kernel splits a frame's rows over (the machine's memory bandwidth is reached with 2).
THREADS = 2
#: Frames smaller than this (bytes) are unpacked on one thread: starting a thread costs more.
_THREAD_MIN_BYTES = 1 << 20

MAX_CODE = 1023
#: Rows per block in ``unpack_raw10``: three (rows, width/4) uint64 blocks stay in L2.
_BLOCK_ROWS = 16
#: ``b4 * _LOW_SPREAD`` puts bit pair k of the fifth byte at the bottom of 16-bit lane k.
_LOW_SPREAD = np.uint64(1 + (1 << 14) + (1 << 28) + (1 << 42))
_LOW_MASK = np.uint64(0x0003_0003_0003_0003)
_MASK_32 = np.uint64(0xFFFF_FFFF)
_MASK_SPREAD_16 = np.uint64(0x0000_FFFF_0000_FFFF)
_MASK_SPREAD_8 = np.uint64(0x00FF_00FF_00FF_00FF)


def raw10_stride(width: int) -> int:
    """Minimal RAW10 row length in bytes (``width * 5 / 4``); ``width`` must be a multiple of 4."""
    _check_width(width)
    return width * 5 // 4


def has_kernel() -> bool:
    """True when the compiled kernel is built and in use."""
    return _kernel is not None


def kernel_simd() -> str:
    """The kernel's vector path: "ssse3" (x86-64 CPUs that have it), "none" (64-bit words), or "numpy"."""
    return str(getattr(_kernel, "SIMD", "none")) if _kernel is not None else "numpy"


def _threads(nbytes: int) -> int:
    return THREADS if nbytes >= _THREAD_MIN_BYTES else 1


def pack_raw10(cfa: np.ndarray, stride_bytes: int | None = None, *, use_kernel: bool = True) -> bytes:
    """Pack a (H, W) array of 10-bit codes into RAW10 bytes, rows padded with zeros to ``stride_bytes``.

    The result is ``H * stride_bytes`` long (the last row padded too). ``use_kernel=False`` forces
    the numpy path (the reference).
    """
    cfa = np.asarray(cfa)
    if cfa.ndim != 2:
        raise InputError(f"RAW10 pack: expected a 2-D CFA array, got shape {cfa.shape}")
    if not np.issubdtype(cfa.dtype, np.integer):
        raise InputError(f"RAW10 pack: expected integer codes, got dtype {cfa.dtype}")
    height, width = cfa.shape
    stride = _stride(width, stride_bytes)
    if use_kernel and _kernel is not None and cfa.dtype == np.uint16 and height:
        packed = _kernel.pack(np.ascontiguousarray(cfa), width, height, stride, _threads(height * stride))
        if packed is not None:  # None: a code above 1023, refused below with the numbers
            return packed
    if cfa.size:
        low, high = int(cfa.min()), int(cfa.max())
        if low < 0 or high > MAX_CODE:
            raise InputError(f"RAW10 pack: codes must be 0..{MAX_CODE}, got {low}..{high}")
    out = np.zeros((height, stride), dtype=np.uint8)
    groups = out[:, : width * 5 // 4].reshape(height, width // 4, 5)
    pix = cfa.reshape(height, width // 4, 4)
    low_bits = np.zeros((height, width // 4), dtype=np.uint8)
    for k in range(4):
        np.right_shift(pix[:, :, k], 2, out=groups[:, :, k], casting="unsafe")
        low_bits |= ((pix[:, :, k] & 3) << (2 * k)).astype(np.uint8)
    groups[:, :, 4] = low_bits
    return out.tobytes()


def unpack_raw10(
    buf: bytes | bytearray | memoryview | np.ndarray,
    width: int,
    height: int,
    stride_bytes: int | None = None,
    out: np.ndarray | None = None,
    *,
    use_kernel: bool = True,
) -> np.ndarray:
    """Unpack RAW10 bytes into a (height, width) uint16 array (into ``out`` when given).

    ``buf`` may end right after the last row's pixels (no padding on the last row) or
    carry the full ``height * stride_bytes``; anything else is an ``InputError``.
    ``use_kernel=False`` forces the numpy path (the reference).
    """
    stride = _stride(width, stride_bytes)
    if height < 1:
        raise InputError(f"RAW10: height must be at least 1, got {height}")
    data = _as_bytes(buf)
    row_bytes = width * 5 // 4
    needed = (height - 1) * stride + row_bytes
    full = height * stride
    if not needed <= data.size <= full:
        want = f"{needed}" if needed == full else f"{needed}..{full}"
        raise InputError(
            f"RAW10 {width}x{height} stride {stride}: expected {want} bytes, got {data.size}"
            + (" (truncated)" if data.size < needed else "")
        )
    if out is None:
        out = np.empty((height, width), dtype=np.uint16)
    elif out.shape != (height, width) or out.dtype != np.uint16 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous ({height}, {width}) uint16 array")
    if use_kernel and _kernel is not None:
        _kernel.unpack(data, out, width, height, stride, _threads(out.nbytes))
        return out
    groups = width // 4
    # Rows whose last group can be read as a whole 8-byte word without running off the buffer.
    fast_rows = max(0, min(height, (data.size - (groups - 1) * 5 - 8) // stride + 1))
    if fast_rows and np.little_endian:
        _unpack_words(data, stride, groups, fast_rows, out.view(np.uint64).reshape(height, groups))
    else:
        fast_rows = 0
    for row in range(fast_rows, height):
        _unpack_row_slow(data[row * stride : row * stride + row_bytes], out[row])
    return out


def _unpack_words(data: np.ndarray, stride: int, groups: int, rows: int, out64: np.ndarray) -> None:
    """Unpack ``rows`` rows, block by block, into ``out64`` (the output viewed as one word a group)."""
    words = np.ndarray((rows, groups), dtype="<u8", buffer=data, offset=0, strides=(stride, 5))
    block = min(_BLOCK_ROWS, rows)
    tmp = np.empty((block, groups), dtype=np.uint64)
    low = np.empty((block, groups), dtype=np.uint64)
    for r0 in range(0, rows, block):
        r1 = min(rows, r0 + block)
        x = out64[r0:r1]
        t = tmp[: r1 - r0]
        lo = low[: r1 - r0]
        np.copyto(x, words[r0:r1])  # x = b0 | b1<<8 | b2<<16 | b3<<24 | b4<<32 | (next bytes)
        np.right_shift(x, 32, out=lo)
        np.bitwise_and(lo, 0xFF, out=lo)
        np.multiply(lo, _LOW_SPREAD, out=lo)
        np.bitwise_and(lo, _LOW_MASK, out=lo)  # lane k: (b4 >> 2k) & 3
        np.bitwise_and(x, _MASK_32, out=x)
        np.left_shift(x, 16, out=t)
        np.bitwise_or(x, t, out=x)
        np.bitwise_and(x, _MASK_SPREAD_16, out=x)  # b0 b1 at bits 0-15, b2 b3 at 32-47
        np.left_shift(x, 8, out=t)
        np.bitwise_or(x, t, out=x)
        np.bitwise_and(x, _MASK_SPREAD_8, out=x)  # lane k: b_k
        np.left_shift(x, 2, out=x)
        np.bitwise_or(x, lo, out=x)


def _unpack_row_slow(row: np.ndarray, out_row: np.ndarray) -> None:
    """Unpack one row straight from the spec (used for rows whose last word would overrun)."""
    g = row.reshape(-1, 5).astype(np.uint16)
    for k in range(4):
        out_row[k::4] = (g[:, k] << 2) | ((g[:, 4] >> (2 * k)) & 3)


def _as_bytes(buf: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(buf, np.ndarray):
        if not buf.flags.c_contiguous:
            buf = np.ascontiguousarray(buf)
        return buf.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(buf, dtype=np.uint8)
    except TypeError as exc:
        raise InputError(f"RAW10: expected a bytes-like buffer, got {type(buf).__name__}") from exc


def _check_width(width: int) -> None:
    if width < 4 or width % 4:
        raise InputError(f"RAW10: width must be a positive multiple of 4, got {width}")


def _stride(width: int, stride_bytes: int | None) -> int:
    minimal = raw10_stride(width)
    if stride_bytes is None:
        return minimal
    if stride_bytes < minimal:
        raise InputError(f"RAW10: stride {stride_bytes} bytes is below the minimal {minimal} "
                         f"for width {width}")
    return stride_bytes
