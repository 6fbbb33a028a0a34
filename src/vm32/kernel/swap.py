"""The swap device: a real file on disk in 512-byte sectors, 8 sectors (one page) per slot.

Slot s occupies sectors 8s..8s+7, i.e. bytes ``s*4096 .. s*4096+4095`` of the
file.  The file is mapped into the host address space (``np.memmap``), so a
page-out or page-in is a 4 KiB copy inside compiled code; the host kernel
writes the dirty file pages back to disk on its own schedule, or when
`SwapDevice.sync` (msync) is called.  Free slots are a stack ``slots`` with its
depth in ``kv[KV_SLOTS_FREE]``; slots are allocated and freed under the machine
lock.  A temporary swap file is deleted when the device closes.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from vm32.errors import InvalidArgument
from vm32.jit import kernel
from vm32.kernel.layout import KV_SLOTS_FREE
from vm32.memory import PAGE_SIZE
from vm32.mmu.entry import MAX_SLOTS

SECTOR_SIZE = 512
SECTORS_PER_SLOT = PAGE_SIZE // SECTOR_SIZE  # 8


class SwapDevice:
    """A swap file of `size` bytes at `path` (a temporary file when `path` is None).

    `size` is rounded down to whole slots (4096 bytes); 0 means no swap at all.
    An existing file at `path` is overwritten (its size set to `size`).
    """

    def __init__(self, size: int, path: str | os.PathLike | None = None):
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"swap size must be a non-negative number of bytes, not {size!r}")
        self.slots = int(size) // PAGE_SIZE
        if self.slots > MAX_SLOTS:
            raise InvalidArgument(f"swap of {size} bytes exceeds the {MAX_SLOTS * PAGE_SIZE >> 30} GiB a PTE can address")
        self.temporary = path is None
        if path is None:
            fd, path = tempfile.mkstemp(prefix="vm32-swap-", suffix=".swap")
            os.close(fd)
        self.path = os.fspath(path)
        try:
            with open(self.path, "wb") as f:
                f.truncate(self.slots * PAGE_SIZE)  # sparse: disk blocks appear when written
        except OSError as e:
            raise InvalidArgument(f"cannot create swap file {self.path}: {e.strerror}") from None
        if self.slots:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r+", shape=(self.slots * PAGE_SIZE,))
            self.bytes = np.asarray(self._map)
        else:
            self._map = None
            self.bytes = np.zeros(0, dtype=np.uint8)
        self.words = self.bytes.view(np.uint32)
        self.free_stack = np.arange(self.slots - 1, -1, -1, dtype=np.int64)  # slot 0 on top

    @property
    def sectors(self) -> int:
        """Size of the device in 512-byte sectors."""
        return self.slots * SECTORS_PER_SLOT

    def sync(self) -> None:
        """Write every dirty page of the swap file to disk (msync)."""
        if self._map is not None:
            self._map.flush()

    def close(self) -> None:
        """Unmap the file and delete it if it is temporary."""
        self.bytes = self.words = None
        self._map = None
        if self.temporary and os.path.exists(self.path):
            os.unlink(self.path)

    def __repr__(self) -> str:
        return f"SwapDevice(path={self.path!r}, slots={self.slots})"


@kernel
def slot_alloc(ms):
    """Take a free swap slot; -1 if the swap is full.  Requires the machine lock."""
    n = ms.kv[KV_SLOTS_FREE]
    if n == 0:
        return -1
    ms.kv[KV_SLOTS_FREE] = n - 1
    return ms.slots[n - 1]


@kernel
def slot_free(ms, s):
    """Return slot s to the free stack.  Requires the machine lock."""
    n = ms.kv[KV_SLOTS_FREE]
    ms.slots[n] = s
    ms.kv[KV_SLOTS_FREE] = n + 1


@kernel
def swap_write(ms, pfn, s):
    """Copy frame `pfn` into swap slot `s`."""
    src, dst = pfn * 1024, s * 1024
    for i in range(1024):  # a loop, not a slice: no array view, so no reference counting
        ms.swapw[dst + i] = ms.words[src + i]


@kernel
def swap_read(ms, pfn, s):
    """Copy swap slot `s` into frame `pfn`."""
    src, dst = s * 1024, pfn * 1024
    for i in range(1024):
        ms.words[dst + i] = ms.swapw[src + i]
