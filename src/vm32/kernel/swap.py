"""The swap device: a real file on disk in 512-byte sectors, 8 sectors (one page) per slot.

Slot s occupies sectors 8s..8s+7, i.e. bytes ``s*4096 .. s*4096+4095`` of the
file.  The file is created with all its disk blocks (posix_fallocate, like a
swap file made by mkswap: no holes).  A page-out is one ``pwrite`` of the frame
and a page-in one ``pread``, called from compiled code (libc, no Python) on the
descriptor in ``kv[KV_SWAP_FD]``; the host kernel writes its page cache back to
disk on its own schedule, or when `SwapDevice.sync` (fsync) is called.

Why system calls and not a shared mapping of the file (the first version): at
scale (2 x 3 GiB through 1 GiB, benchmarks/paging.py) the mapping spent 53 s of
host kernel time against 3.6 s of our own: every first store to a file page is a
host page fault that reads the page first (read-around zeroes the neighbours
too), and writeback must unmap and write-protect dirty pages again.  A whole-page
pwrite needs none of that.  The file is still mapped read-write (``words``,
``bytes``) for inspection and for single-word patches (procheap's undo); Linux
keeps a mapping and read/write coherent through the one page cache.

Free slots are a stack ``slots`` with its depth in ``kv[KV_SLOTS_FREE]``; slots
are allocated and freed under the machine lock.  A temporary swap file is
deleted when the device closes.
"""

from __future__ import annotations

import errno
import os
import tempfile

import numpy as np

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from vm32.errors import InvalidArgument
from vm32.jit import kernel
from vm32.kernel.layout import C_WB_SLOT, CPU_STRIDE, KV_SLOTS_FREE, KV_SWAP_FD
from vm32.memory import PAGE_SIZE
from vm32.mmu.atomic import atomic_add, atomic_store
from vm32.mmu.entry import MAX_SLOTS

SECTOR_SIZE = 512
SECTORS_PER_SLOT = PAGE_SIZE // SECTOR_SIZE  # 8


def _preallocate(fd: int, size: int) -> None:
    """Give the file its disk blocks now, as mkswap requires of a swap file (no holes).

    Measured on this machine (ext4): a page-out through the mapping into a hole costs
    ~12 us (the filesystem allocates a block and zeroes the page cache page on every
    first touch), into preallocated blocks ~1 us.  Filesystems without fallocate keep
    the sparse file.
    """
    if size == 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise


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
                f.truncate(self.slots * PAGE_SIZE)
                _preallocate(f.fileno(), self.slots * PAGE_SIZE)
        except OSError as e:
            if self.temporary:
                os.unlink(self.path)
            raise InvalidArgument(f"cannot create swap file {self.path} of {size} bytes: {e.strerror}") from None
        if self.slots:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r+", shape=(self.slots * PAGE_SIZE,))
            self.bytes = np.asarray(self._map)
        else:
            self._map = None
            self.bytes = np.zeros(0, dtype=np.uint8)
        self.words = self.bytes.view(np.uint32)
        self.fd = os.open(self.path, os.O_RDWR) if self.slots else -1
        self.free_stack = np.arange(self.slots - 1, -1, -1, dtype=np.int64)  # slot 0 on top

    @property
    def sectors(self) -> int:
        """Size of the device in 512-byte sectors."""
        return self.slots * SECTORS_PER_SLOT

    def sync(self) -> None:
        """Write every dirty page of the swap file to disk (fsync)."""
        if self.fd >= 0:
            os.fsync(self.fd)

    def close(self) -> None:
        """Close and unmap the file, and delete it if it is temporary."""
        self.bytes = self.words = None
        self._map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
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


def _libc_io(name: str):
    """An intrinsic ``f(fd, arr, start, nbytes, offset) -> int64`` calling libc's `name`
    (pread or pwrite) on the bytes of `arr` from byte `start`: the result or -1."""

    def typer(typingctx, fd, arr, start, nbytes, offset):
        if not isinstance(arr, types.Array) or not all(isinstance(t, types.Integer) for t in (fd, start, nbytes, offset)):
            return None

        def codegen(context, builder, sig, args):
            i64, i8p = ir.IntType(64), ir.IntType(8).as_pointer()
            fd, arr, start, nbytes, offset = (
                context.cast(builder, v, t, types.int64) if isinstance(t, types.Integer) else v
                for v, t in zip(args, sig.args)
            )
            data = builder.bitcast(context.make_array(sig.args[1])(context, builder, arr).data, i8p)
            fnty = ir.FunctionType(i64, [ir.IntType(32), i8p, i64, i64])
            fn = cgutils.get_or_insert_function(builder.module, fnty, name)
            return builder.call(fn, [builder.trunc(fd, ir.IntType(32)), builder.gep(data, [start]), nbytes, offset])

        return types.int64(fd, arr, start, nbytes, offset), codegen

    typer.__name__ = f"host_{name}"
    return intrinsic(typer)


host_pwrite = _libc_io("pwrite")
host_pread = _libc_io("pread")


@kernel
def _swap_transfer(ms, buf, start, s, write):
    """Move the 4096 bytes of slot `s` to (`write`) or from word array `buf` at byte
    `start`; True if done, False on a host I/O error.  A short or interrupted transfer
    continues where it stopped, up to 8 tries."""
    fd = ms.kv[KV_SWAP_FD]
    done, tries = 0, 0
    while done < 4096 and tries < 8:
        at, n, off = start + done, 4096 - done, s * 4096 + done
        r = host_pwrite(fd, buf, at, n, off) if write else host_pread(fd, buf, at, n, off)
        if r > 0:
            done += r
        tries += 1
    return done == 4096


@kernel
def swap_pwrite(ms, buf, start, s):
    """Write the 4096 bytes of word array `buf` from byte `start` into slot `s`; True if
    done (False: a host I/O error).  No lock needed: the caller owns the slot's writes."""
    return _swap_transfer(ms, buf, start, s, True)


@kernel
def swap_pread(ms, buf, start, s):
    """Read slot `s` into the 4096 bytes of word array `buf` from byte `start`; True if done."""
    return _swap_transfer(ms, buf, start, s, False)


@kernel
def wb_flush(ms, cpu):
    """Write CPU `cpu`'s write-back buffer to its slot, if one is pending; True unless the
    write failed (then the buffer stays pending: it is still the page's one copy).

    Needs no lock: only this CPU writes its buffer, and no other write to that slot
    starts while it is pending (fault.wb_wait).  Ends the slot's write sequence (even).
    """
    base = cpu * CPU_STRIDE
    s = ms.cpus[base + C_WB_SLOT]
    if s < 0:
        return True
    if not swap_pwrite(ms, ms.bounce, cpu * 8192, s):
        return False
    atomic_store(ms.cpus, base + C_WB_SLOT, -1)
    atomic_add(ms.sseq, s, 1)
    return True
