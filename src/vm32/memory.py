"""Emulated physical memory: one contiguous anonymous host mmap seen as 4 KiB frames.

    32-bit physical address
    +--------------------+------------+
    | frame number (20)  | offset (12)|
    +--------------------+------------+

`PhysicalMemory` is the only owner of the host mapping.  The mapping is made with
MAP_NORESERVE, so the host commits a page only when it is first touched: a 4 GiB
memory that a program uses 10 MiB of costs about 10 MiB of host RAM.

Words are little-endian 32-bit values, as on i386.  Addresses are 32-bit; an
address outside the memory is an `InvalidArgument` error in the Python API.

The word-access seam
--------------------
Code that must run over several kinds of memory (the heap allocator, the UM)
reads and writes words only through `load_word(mem, addr)` and
`store_word(mem, addr, value)`.  Here they are defined for flat memory, a
uint32 numpy array indexed by ``addr >> 2``; the paged kernel adds an overload
for its own memory type, and numba picks the right one at compile time.
"""

from __future__ import annotations

import mmap
import operator

import numpy as np
from numba import types
from numba.extending import overload

from vm32.defaults import parse_size  # noqa: F401 - the size parser, re-exported
from vm32.errors import InvalidArgument, OutOfMemory

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT  # 4096
PAGE_MASK = PAGE_SIZE - 1  # 0xFFF
PAGE_WORDS = PAGE_SIZE // 4  # 1024 32-bit words per page or frame
ADDRESS_LIMIT = 1 << 32  # one past the largest 32-bit address
DEFAULT_SIZE = ADDRESS_LIMIT  # 4 GiB


def load_word(mem, addr):
    """Return the 32-bit word at byte address `addr` (a multiple of 4) of `mem`."""
    return mem[addr >> 2]


def store_word(mem, addr, value):
    """Store the 32-bit `value` at byte address `addr` (a multiple of 4) of `mem`."""
    mem[addr >> 2] = value


@overload(load_word)
def _load_word_flat(mem, addr):
    if isinstance(mem, types.Array):
        return lambda mem, addr: mem[addr >> 2]
    return None


@overload(store_word)
def _store_word_flat(mem, addr, value):
    if isinstance(mem, types.Array):

        def impl(mem, addr, value):
            mem[addr >> 2] = value

        return impl
    return None


def check_size(size: int) -> int:
    """Return `size` if it is a valid physical memory size, else raise InvalidArgument."""
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
        raise InvalidArgument(f"memory size must be an integer number of bytes, not {size!r}")
    if size < PAGE_SIZE or size > ADDRESS_LIMIT or size % PAGE_SIZE:
        raise InvalidArgument(
            f"memory size {size} must be a multiple of {PAGE_SIZE} between {PAGE_SIZE} and 4 GiB"
        )
    return int(size)


def _as_int(value, what: str) -> int:
    """`value` as a Python int; InvalidArgument if it is not an integer (a float, a string...)."""
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidArgument(f"{what} must be an integer, not {value!r}") from None


class PhysicalMemory:
    """Emulated physical memory: `size` bytes (default 4 GiB) of one anonymous mmap.

    `bytes` and `words` are numpy views of the whole memory (uint8 and
    little-endian uint32); kernels take `words` and index it by ``addr >> 2``.
    """

    def __init__(self, size: int | str = DEFAULT_SIZE):
        self.size = check_size(parse_size(size))
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
        try:
            self._map = mmap.mmap(-1, self.size, flags=flags)
        except OSError as e:  # e.g. a `ulimit -v` below the size: the host refuses the range
            raise OutOfMemory(
                f"the host refused {self.size:#x} bytes of address space for emulated memory "
                f"({e.strerror or e}); choose a smaller memory size"
            ) from None
        self.bytes = np.frombuffer(self._map, dtype=np.uint8)
        self.words = self.bytes.view("<u4")

    @property
    def frames(self) -> int:
        """Number of 4 KiB frames."""
        return self.size >> PAGE_SHIFT

    def frame_address(self, pfn: int) -> int:
        """Physical address of the first byte of frame `pfn`."""
        pfn = _as_int(pfn, "frame number")
        if not 0 <= pfn < self.frames:
            raise InvalidArgument(f"frame {pfn} is outside memory of {self.frames} frames")
        return pfn << PAGE_SHIFT

    def _check_range(self, addr: int, n: int) -> tuple[int, int]:
        """Return (addr, n) as Python ints if [addr, addr + n) lies inside memory, else raise."""
        if self.bytes is None:
            raise InvalidArgument("this physical memory has been closed")
        # Python ints: numpy uint32 sums would wrap and slip past the bound check.
        addr, n = _as_int(addr, "address"), _as_int(n, "length")
        if n < 0:
            raise InvalidArgument(f"length {n} is negative")
        if not 0 <= addr < ADDRESS_LIMIT:
            raise InvalidArgument(f"address {addr:#x} is not a 32-bit address")
        if addr + n > self.size:
            raise InvalidArgument(
                f"range {addr:#x}..{addr + n:#x} lies outside physical memory of {self.size:#x} bytes"
            )
        return addr, n

    def read(self, addr: int, n: int) -> bytes:
        """Return `n` bytes starting at physical address `addr`."""
        addr, n = self._check_range(addr, n)
        return self.bytes[addr : addr + n].tobytes()

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Copy `data` to physical memory starting at `addr`."""
        data = bytes(data)
        addr, _ = self._check_range(addr, len(data))
        self.bytes[addr : addr + len(data)] = np.frombuffer(data, dtype=np.uint8)

    def read_word(self, addr: int) -> int:
        """Return the little-endian 32-bit word at `addr` (a multiple of 4)."""
        addr = self._check_word(addr)
        return int(self.words[addr >> 2])

    def write_word(self, addr: int, value: int) -> None:
        """Store `value` (0 <= value < 2**32) as a little-endian word at `addr`."""
        addr = self._check_word(addr)
        value = _as_int(value, "value")
        if not 0 <= value < ADDRESS_LIMIT:
            raise InvalidArgument(f"value {value} does not fit in 32 bits")
        self.words[addr >> 2] = value

    def _check_word(self, addr: int) -> int:
        addr, _ = self._check_range(addr, 4)
        if addr & 3:
            raise InvalidArgument(f"word address {addr:#x} is not a multiple of 4")
        return addr

    def hexdump(self, addr: int, n: int) -> str:
        """Return `n` bytes from `addr` as lines of 16 bytes: address, hex, ASCII."""
        data = self.read(addr, n)
        lines = []
        for off in range(0, len(data), 16):
            chunk = data[off : off + 16]
            hexpart = " ".join(f"{b:02x}" for b in chunk)
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            lines.append(f"{addr + off:08x}  {hexpart:<47}  |{text}|")
        return "\n".join(lines)

    def close(self) -> None:
        """Release the host mapping; the views must not be used afterwards."""
        self.bytes = self.words = None
        try:
            self._map.close()
        except BufferError:
            pass  # a caller still holds a view; the mapping goes when that view does

    def __enter__(self) -> "PhysicalMemory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PhysicalMemory(size={self.size:#x}, frames={self.frames})"
