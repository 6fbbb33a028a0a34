"""vm32's defaults and units: one numba-free module that the CLI and the Python API both read.

Every default a user can see (the replacement policy, the TLB size, the frame
counts, the swap sizes) is stated here once, so `vm32 --help`, the commands and
`Machine()` / `UniversalMachine()` agree.  The kernel states the smallest
machine it can run (`MIN_FRAMES`) here too, so `--help` needs no compiled code.

Units, one style everywhere a figure is shown to a person:

* sizes in B, KiB, MiB, GiB or TiB with the unit (`format_size`): "256 KiB", "3.7 GiB";
* rates with their unit (`format_rate`): "35.7 M instructions/s";
* fractions as percentages with one decimal (`format_percent`): "97.3%";
* counts with thousands separators, or short (`format_count`): "1,234", "117.9K", "33.1M", "999M";
* seconds with the unit (`format_seconds`): "1.23 s".

Machine-readable output (`--json`) carries the raw values instead: bytes,
seconds, counts and fractions.

Sizes a user types are parsed by `parse_size` ("4096", "0x1000", "64K", "16M",
"4G", "4GiB").

This module imports nothing but `vm32.errors`: it is part of the base layer.
"""

from __future__ import annotations

import operator
import re

from vm32.errors import InvalidArgument

# ---- the machine -------------------------------------------------------------------------------

FRAME_SIZE = 4096
"""Bytes in a frame (and a page): vm32.memory.PAGE_SIZE, stated here for --help (a test keeps them equal)."""

MIN_FRAMES = 8
"""The smallest machine the kernel runs: kernel memory, its page table, a page directory,
page tables and room for a few pages of data."""

DEFAULT_POLICY = "clock"
"""The page-replacement policy of every machine unless one is chosen (second chance)."""

LIVE_PAGE_POLICIES = ("fifo", "clock", "nru", "lru", "random", "clock-clear", "sieve", "arc")
"""The page-replacement policies a live machine runs, for help texts (vm32.kernel.policies'
LIVE_POLICIES; a test keeps them equal): the parser then imports no kernel, so a command
that needs none, such as `vm32 heap sim`, starts without it."""

DEFAULT_TLB_ENTRIES = 1024
"""TLB entries per CPU (direct-mapped, a power of two)."""

MACHINE_FRAMES = 256
"""Frames of a `vm32.kernel.machine.Machine()` made without `frames` (1 MiB)."""

MACHINE_SWAP = 16 << 20
"""Swap of a `Machine()` made without `swap` (16 MiB)."""

# ---- the Universal Machine ---------------------------------------------------------------------

FLAT_MEMORY = 1 << 32
"""Emulated memory of the flat and classic UM backends (4 GiB, committed only where touched)."""

UM_DEBUG_BACKENDS = ("flat", "classic", "jit")
"""The UM backends the debugger (--trace-instructions, --break) runs on; jit steps in its
interpreter tier."""

UM_RECORD_BACKENDS = ("flat", "classic", "jit")
"""The UM backends that record allocations (--record-allocs); jit records in its interpreter
tier."""

UM_FRAMES = 4096
"""Frames of the machine a paged UM program makes for itself (16 MiB)."""

UM_SWAP_LIMIT = 256 << 20
"""The swap of a paged UM program's own machine: room for its heap, at most this
(the kernel allocates every block of a swap file up front)."""

PAGED_MAX_HEAP = 0xEFC00000
"""The largest heap region of a paged UM process (3836 MiB): from the image base to the
kernel (vm32.um.paged_process.PAGED_MAX_HEAP; a test keeps them equal)."""

MULTI_MEMORY = 1 << 30
"""Each process's heap region when several UM programs run at once (1 GiB)."""

MULTI_SWAP_LIMIT = 512 << 20
"""The swap of a several-program machine: room for every heap, at most this."""

# ---- the demos ---------------------------------------------------------------------------------

DEMO_FRAMES = 64
"""Frames of `vm32 demo`'s machine (256 KiB for about 7 MB of data)."""

PAGING_DEMO_FRAMES = 64
"""Frames of `vm32 paging demo`'s machine."""

PAGING_DEMO_PROCESSES = 4
PAGING_DEMO_PAGES = 64
"""Processes of `vm32 paging demo`, and the heap pages each writes and verifies."""

# ---- the heap ----------------------------------------------------------------------------------

HEAP_POLICIES = ("tlsf", "first", "best", "worst", "next", "recycler", "buddy", "sharded")
"""The allocator policies, in table order (vm32.heap.policies.POLICIES; a test keeps them equal)."""

DEFAULT_HEAP_POLICY = "tlsf"
"""The allocator of every heap and UM backend unless one is chosen."""

# ---- units -------------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"(0X_?[0-9A-F](?:_?[0-9A-F])*|[0-9](?:_?[0-9])*)\s*(?:([KMG])(?:I?B)?|B)?")
# (an underscore only between digits, as Python's int() takes them)
_SIZE_SCALE = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_SIZE_UNITS = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def parse_size(text: str | int) -> int:
    """Parse a size such as ``4096``, ``0x1000``, ``64K``, ``16M``, ``4G`` or ``4GiB`` into bytes.

    An int is returned unchanged (the caller judges its range); text that is not a
    number with an optional K/M/G (KiB, MB...) suffix is an InvalidArgument.
    """
    if not isinstance(text, (str, bytes, bool)):
        try:
            return operator.index(text)
        except TypeError:
            pass
    # A regular expression, not suffix stripping: "0x1000B" is a hex number, not 0x1000 bytes.
    match = _SIZE_RE.fullmatch(str(text).strip().upper())
    if match is None:
        raise InvalidArgument(f"cannot read {text!r} as a size (examples: 4096, 64K, 16M, 4G)")
    number, unit = match.groups()
    value = int(number, 16) if number.startswith("0X") else int(number, 10)
    return value * _SIZE_SCALE.get(unit, 1)


def format_size(n: int) -> str:
    """`n` bytes for a person: "512 B", "256 KiB", "3.7 GiB" (one decimal unless whole)."""
    for scale, unit in _SIZE_UNITS:
        if abs(n) >= scale:
            value = n / scale
            text = f"{value:,.0f}" if value == int(value) or value >= 100 else f"{value:.1f}"
            return f"{text} {unit}"
    return f"{n} B"


def size_arg(n: int) -> str:
    """`n` bytes as text `parse_size` reads back exactly, the largest whole unit: "3836M", "4G"."""
    for unit in "GMK":
        scale = _SIZE_SCALE[unit]
        if n and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def format_count(n: int) -> str:
    """A count in at most 5 characters: "1,234", "12.3K", "123K", "33.1M", "5.6G", "5.6T"."""
    if abs(n) < 10_000:
        return f"{n:,}"
    for scale, unit in ((1e3, "K"), (1e6, "M"), (1e9, "G"), (1e12, "T")):
        value = n / scale
        text = f"{value:.1f}" if abs(value) < 99.95 else f"{value:.0f}"
        if abs(float(text)) < 1000:  # else the next unit: 999,999 is "1.0M", not "1000K"
            return text + unit
    return f"{n / 1e12:,.0f}T"


def format_rate(per_second: float, unit: str) -> str:
    """A rate with its unit: "35.7 M instructions/s", "812 page faults/s", "1.2 K pages/s"."""
    for scale, prefix in ((1e9, "G "), (1e6, "M "), (1e3, "K ")):
        if abs(per_second) >= scale:
            return f"{per_second / scale:.1f} {prefix}{unit}/s"
    return f"{per_second:.0f} {unit}/s"


def format_percent(fraction: float) -> str:
    """A fraction (0.973) as a percentage with one decimal: "97.3%"."""
    return f"{100 * fraction:.1f}%"


def format_seconds(seconds: float) -> str:
    """A duration: "0.42 s", "12.3 s", "2,345 s"."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 1000:
        return f"{seconds:.1f} s"
    return f"{seconds:,.0f} s"
