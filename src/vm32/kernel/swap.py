"""The swap device: a real file on disk in 512-byte sectors, 8 sectors (one page) per slot.

Slot s occupies sectors 8s..8s+7, i.e. bytes ``s*4096 .. s*4096+4095`` (one page) of the
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
are allocated and freed under the machine lock.  A temporary swap file has no
name from the start, so no exit leaves it behind; a named one ends with a
trailer sector that marks it as vm32's (`is_swap_file`), and vm32 overwrites no
other existing file.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import tempfile

import numpy as np

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from vm32.errors import InvalidArgument
from vm32.files import temporary_file
from vm32.jit import kernel
from vm32.kernel.layout import BOUNCE_STRIDE, C_WB_SLOT, CPU_STRIDE, KV_SLOTS_FREE, KV_SWAP_FD, WB_BUF
from vm32.memory import PAGE_SIZE
from vm32.atomic import atomic_add, atomic_store
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


MAGIC = b"vm32 swap file\n"
"""The first bytes of a named swap file's trailer: the sector after its slots."""
TRAILER = SECTOR_SIZE


def is_swap_file(path: str | os.PathLike) -> bool:
    """True if `path` is a regular file that vm32 made as a swap file (whole slots, then its trailer)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < TRAILER or size % PAGE_SIZE != TRAILER:
                return False
            f.seek(size - TRAILER)
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def is_foreign_file(path: str | os.PathLike) -> bool:
    """True if `path` is a non-empty regular file that is not a vm32 swap file: a SwapDevice
    leaves it alone unless told to overwrite it."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0 and not is_swap_file(path)


class SwapDevice:
    """A swap device of `size` bytes (rounded down to whole 4 KiB slots; 0: no swap at all).

    With `path` None the file has no name (vm32.files.temporary_file): nothing is left
    behind however the process ends.  A named swap file is the `size` bytes of its slots
    followed by one sector, its trailer, that starts with MAGIC; it stays after `close`.
    An existing file at `path` is used only if it is a vm32 swap file or empty, unless
    `overwrite`; a path that is not a regular file is refused.
    """

    def __init__(self, size: int, path: str | os.PathLike | None = None, *, overwrite: bool = False):
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"swap size must be a non-negative number of bytes, not {size!r}")
        if 0 < size < PAGE_SIZE:
            raise InvalidArgument(f"a swap of {size} bytes holds no 4 KiB page; use 0 (no swap) or at least 4K")
        self.slots = int(size) // PAGE_SIZE
        if self.slots > MAX_SLOTS:
            raise InvalidArgument(f"swap of {size} bytes exceeds the {MAX_SLOTS * PAGE_SIZE >> 30} GiB a PTE can address")
        self.temporary = path is None
        self.path = None if path is None else os.fspath(path)
        fd, created = self._open(overwrite)
        nbytes = self.slots * PAGE_SIZE
        try:
            os.ftruncate(fd, nbytes)
            _preallocate(fd, nbytes)
            if not self.temporary:
                os.pwrite(fd, MAGIC + f"{self.slots} slots of {PAGE_SIZE} bytes\n".encode(), nbytes)
                os.ftruncate(fd, nbytes + TRAILER)
            self._map = mmap.mmap(fd, nbytes) if self.slots else None
        except OSError as e:
            os.close(fd)
            if created:
                os.unlink(self.path)
            where = "a temporary swap file" if self.temporary else f"swap file {self.path}"
            raise InvalidArgument(f"cannot create {where} of {size} bytes: {e.strerror}") from None
        self.bytes = np.frombuffer(self._map, dtype=np.uint8) if self.slots else np.zeros(0, dtype=np.uint8)
        self.words = self.bytes.view(np.uint32)
        if not self.slots:
            os.close(fd)
            fd = -1
        self.fd = fd
        self.free_stack = np.arange(self.slots - 1, -1, -1, dtype=np.int64)  # slot 0 on top

    def _open(self, overwrite: bool) -> tuple[int, bool]:
        """The swap file's descriptor, and whether this call created the named file."""
        if self.temporary:
            try:
                return temporary_file(prefix="vm32-swap-"), False
            except OSError as e:
                raise InvalidArgument(f"cannot create a temporary swap file in {tempfile.gettempdir()}: "
                                      f"{e.strerror}") from None
        path = self.path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise InvalidArgument(f"cannot use swap file {path}: {e.strerror}") from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise InvalidArgument(f"swap file {path} is not a regular file")
        if st is not None and not overwrite and is_foreign_file(path):
            raise InvalidArgument(f"{path} exists and is not a vm32 swap file: it is left alone "
                                  "(swap_overwrite=True lets vm32 overwrite it)")
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644), st is None
        except OSError as e:
            raise InvalidArgument(f"cannot create swap file {path}: {e.strerror}") from None

    @property
    def sectors(self) -> int:
        """Size of the device in 512-byte sectors."""
        return self.slots * SECTORS_PER_SLOT

    def sync(self) -> None:
        """Write every dirty page of the swap file to disk (fsync)."""
        if self.fd >= 0:
            os.fsync(self.fd)

    def close(self) -> None:
        """Close and unmap the file (a temporary one then disappears)."""
        self.bytes = self.words = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass  # a view still exists (the machine state's): the mapping goes with it
            self._map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

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
    """Move the PAGE_SIZE bytes of slot `s` to (`write`) or from word array `buf` at byte
    `start`; True if done, False on a host I/O error.  A short or interrupted transfer
    continues where it stopped, up to 8 tries."""
    fd = ms.kv[KV_SWAP_FD]
    done, tries = 0, 0
    while done < PAGE_SIZE and tries < 8:
        at, n, off = start + done, PAGE_SIZE - done, s * PAGE_SIZE + done
        r = host_pwrite(fd, buf, at, n, off) if write else host_pread(fd, buf, at, n, off)
        if r > 0:
            done += r
        tries += 1
    return done == PAGE_SIZE


@kernel
def swap_pwrite(ms, buf, start, s):
    """Write the PAGE_SIZE bytes of word array `buf` from byte `start` into slot `s`; True if
    done (False: a host I/O error).  No lock needed: the caller owns the slot's writes."""
    return _swap_transfer(ms, buf, start, s, True)


@kernel
def swap_pread(ms, buf, start, s):
    """Read slot `s` into the PAGE_SIZE bytes of word array `buf` from byte `start`; True if done."""
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
    if not swap_pwrite(ms, ms.bounce, 4 * (cpu * BOUNCE_STRIDE + WB_BUF), s):
        return False
    atomic_store(ms.cpus, base + C_WB_SLOT, -1)
    atomic_add(ms.sseq, s, 1)
    return True
