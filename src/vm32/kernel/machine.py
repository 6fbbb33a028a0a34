"""The Python face of the kernel: `Machine` (frames, swap, policy, CPUs) and `Process`.

    m = Machine(frames=64, swap="4M", policy="clock", tlb_entries=64)
    p = m.spawn(image=b"...code and data...", heap_size=1 << 20)
    p.write(p.heap_base, b"hello"); p.read(p.heap_base, 5); p.store_u32(...); p.load_u32(...)
    a = p.malloc(100); p.write(a, b"..."); a = p.realloc(a, 5000); p.free(a)   # procheap.py
    m.stats(); p.page_table(); m.frame_table(); m.close()     # tables as rows: see vm32.ui

Each host thread that calls the API is one CPU (assigned on first use, up to
`cpus`), with its own TLB; the compiled code does all the work and takes the
machine lock itself (see sync.py), so several threads may use the machine at
once.  The Python layer validates arguments, owns the arrays and the files, and
turns ST_* statuses into vm32.errors exceptions.
"""

from __future__ import annotations

import mmap
import os
import threading

import numpy as np

from vm32.defaults import (
    DEFAULT_HEAP_POLICY, DEFAULT_POLICY, DEFAULT_TLB_ENTRIES, MACHINE_FRAMES, MACHINE_SWAP, MIN_FRAMES,
)
from vm32.errors import InvalidArgument, OutOfMemory, ProtectionFault, SegmentationFault, VM32Error
from vm32.files import temporary_file
from vm32.heap.policies import policy_module
from vm32.kernel import access, fault
from vm32.kernel.layout import (
    BOUNCE_STRIDE,
    CPU_STRIDE,
    DEFAULT_HEAP,
    DEFAULT_STACK,
    FT_COLS,
    IMAGE_BASE,
    KERNEL_BASE,
    KV_FREE,
    KV_ACCESSED_ON_LOAD,
    KV_SEES_EVERY_ACCESS,
    KV_MAXPROC,
    KV_NCPU,
    KV_NFRAMES,
    KV_NSLOTS,
    KV_SIZE,
    KV_SLOTS_FREE,
    KV_SWAP_FD,
    MAX_KERNEL_FRAMES,
    OK,
    P_COLS,
    P_HEAP_HI,
    P_HEAP_LO,
    P_IMAGE,
    P_IMG_HI,
    P_IMG_LEN,
    P_IMG_W,
    P_STACK_HI,
    P_STACK_LO,
    P_STATE,
    PS_EXITING,
    PS_FREE,
    PS_LIVE,
    C_BUSY,
    C_PID,
    C_SPEC_SLOT,
    C_WB_SLOT,
    ST_COLS,
    ST_DEAD,
    ST_NO_FRAME,
    ST_PROT_USER,
    ST_PROT_WRITE,
    ST_SEGV,
    ST_SWAP_FULL,
    STAT_NAMES,
    STACK_TOP,
    STATUS_NAMES,
)
from vm32.kernel.policies import live_policy_id, make_policy_state, policy_by_id
from vm32.kernel.state import MachineState
from vm32.kernel.swap import SwapDevice
from vm32.memory import PAGE_SIZE, PhysicalMemory, parse_size
from vm32.mmu.tlb import make_tlbs

__all__ = ["Machine", "Process"]


def _page_up(n: int) -> int:
    return (n + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE


def _positive_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidArgument(f"{name} must be an integer >= {low}, not {value!r}")
    return int(value)


class Machine:
    """An emulated i386-style machine: `frames` physical frames of 4 KiB, a swap file,
    a replacement `policy`, and `cpus` CPUs each with a TLB of `tlb_entries` entries.

    `swap` is a size (bytes or "16M"); `swap_path` a file to use (default: a
    temporary file without a name, which no exit leaves behind).  An existing file
    at `swap_path` that is not a vm32 swap file is refused unless `swap_overwrite`.  `kernel_frames` frames of kernel memory
    are mapped supervisor-only at KERNEL_BASE in every process.  `seed` seeds
    the random policy, `nru_period` is NRU's Accessed-bit reset period (in victim
    choices).  Use as a context manager or call `close()`.
    """

    def __init__(
        self,
        frames: int = MACHINE_FRAMES,
        swap: int | str = MACHINE_SWAP,
        policy: str = DEFAULT_POLICY,
        tlb_entries: int = DEFAULT_TLB_ENTRIES,
        *,
        cpus: int = 4,
        kernel_frames: int = 1,
        swap_path: str | os.PathLike | None = None,
        swap_overwrite: bool = False,
        seed: int = 1,
        nru_period: int = 16,
        max_processes: int = 64,
    ):
        frames = _positive_int("frames", frames, MIN_FRAMES)
        if frames > 1 << 20:
            raise InvalidArgument(f"frames={frames} exceeds the 4 GiB (1048576 frames) of a 32-bit machine")
        tlb_entries = _positive_int("tlb_entries", tlb_entries)
        if tlb_entries & (tlb_entries - 1):
            raise InvalidArgument(f"tlb_entries must be a power of two (it is direct-mapped), not {tlb_entries}")
        cpus = _positive_int("cpus", cpus)
        kernel_frames = _positive_int("kernel_frames", kernel_frames)
        if kernel_frames > min(MAX_KERNEL_FRAMES, frames - 4):
            raise InvalidArgument(f"kernel_frames={kernel_frames} leaves too few of the {frames} frames")
        max_processes = _positive_int("max_processes", max_processes)
        rule = policy_by_id(live_policy_id(policy))  # InvalidArgument for opt: it needs the future
        kind = int(rule.ID)
        self.policy = rule.NAME
        self.sees_every_access = bool(rule.SEES_EVERY_ACCESS)  # on_access on every access, TLB hits too
        self.mem = PhysicalMemory(frames * PAGE_SIZE)
        self.swap = SwapDevice(parse_size(swap), swap_path, overwrite=swap_overwrite)
        self._image_maps: list = []
        kv = np.zeros(KV_SIZE, dtype=np.int64)
        kv[KV_NFRAMES], kv[KV_NSLOTS], kv[KV_SLOTS_FREE] = frames, self.swap.slots, self.swap.slots
        kv[KV_SEES_EVERY_ACCESS], kv[KV_NCPU], kv[KV_MAXPROC] = int(self.sees_every_access), cpus, max_processes
        kv[KV_SWAP_FD], kv[KV_ACCESSED_ON_LOAD] = self.swap.fd, int(rule.ACCESSED_ON_LOAD)
        cpu_regs = np.zeros(cpus * CPU_STRIDE, dtype=np.int64)
        cpu_regs[C_PID::CPU_STRIDE] = -1
        cpu_regs[C_WB_SLOT::CPU_STRIDE] = -1
        cpu_regs[C_SPEC_SLOT::CPU_STRIDE] = -1
        self.ms = MachineState(
            words=self.mem.words,
            bytes=self.mem.bytes,
            ft=np.zeros((frames, FT_COLS), dtype=np.int64),
            freel=np.zeros(frames, dtype=np.int64),
            pol=make_policy_state(kind, frames, seed, nru_period),
            swapw=self.swap.words,
            slots=self.swap.free_stack,
            procs=np.zeros(max_processes * P_COLS, dtype=np.int64),
            pstats=np.zeros(max_processes * ST_COLS, dtype=np.int64),
            cstats=np.zeros(cpus * ST_COLS, dtype=np.int64),
            tlb=make_tlbs(cpus, tlb_entries),
            cpus=cpu_regs,
            kv=kv,
            bounce=np.zeros(cpus * BOUNCE_STRIDE, dtype=np.uint32),
            sseq=np.zeros(max(self.swap.slots, 1), dtype=np.int64),
        )
        fault.kernel_boot(self.ms, kernel_frames)
        self.frames, self.cpus, self.tlb_entries, self.kernel_frames = frames, cpus, tlb_entries, kernel_frames
        self.processes: dict[int, Process] = {}
        self._exited_stats = np.zeros(ST_COLS, dtype=np.int64)
        self._api_lock = threading.Lock()  # guards the Python-side tables (cpu map, process dict)
        self._cpu_owner: dict[int, threading.Thread] = {}
        self._local = threading.local()
        self.closed = False

    # ---- CPUs -----------------------------------------------------------------------------
    def cpu(self) -> int:
        """The CPU of the calling host thread (assigned on its first call)."""
        c = getattr(self._local, "cpu", None)
        if c is not None:
            return c
        with self._api_lock:
            for cid, th in list(self._cpu_owner.items()):
                if not th.is_alive():
                    del self._cpu_owner[cid]
            free = [c for c in range(self.cpus) if c not in self._cpu_owner]
            if not free:
                raise InvalidArgument(f"more host threads than the machine's {self.cpus} CPUs; use Machine(cpus=...)")
            c = free[0]
            self._cpu_owner[c] = threading.current_thread()
        self._local.cpu = c
        return c

    # ---- processes --------------------------------------------------------------------------
    def spawn(
        self,
        image: str | os.PathLike | bytes | bytearray | None = None,
        *,
        heap_size: int = DEFAULT_HEAP,
        stack_size: int = DEFAULT_STACK,
        writable_image: bool = True,
        heap_policy: str = DEFAULT_HEAP_POLICY,
    ) -> "Process":
        """Create a process whose code/data are paged in on demand from `image`.

        `image` is a file path, or bytes (written to a temporary file without a name
        first, so the image always lives on disk), or None (no image).  The image is
        mapped at IMAGE_BASE, the zero-filled heap of `heap_size` bytes follows
        it, and a zero-filled stack of `stack_size` bytes ends at STACK_TOP.
        `heap_policy` names the allocator of the heap (vm32.heap.policies; `Process.heap`).
        """
        self._check_open()
        policy_module(heap_policy)  # an unknown name: InvalidArgument listing the policies
        path, data = self._image_file(image)
        heap_size = _positive_int("heap_size", heap_size, 0)
        stack_size = _positive_int("stack_size", stack_size, 0)
        img_hi = IMAGE_BASE + _page_up(len(data))
        heap_lo, heap_hi = img_hi, img_hi + _page_up(heap_size)
        stack_lo = STACK_TOP - _page_up(stack_size)
        if heap_hi > stack_lo:
            raise InvalidArgument(
                f"image ({len(data)} bytes) + heap ({heap_size}) + stack ({stack_size}) do not fit below {KERNEL_BASE:#x}"
            )
        cpu = self.cpu()
        with self._api_lock:
            pid = self._free_pid()
            self._image_maps.append(data)  # keeps the mapping alive while the machine lives
            img_addr = data.ctypes.data if len(data) else 0
            row = self.ms.procs[pid * P_COLS : (pid + 1) * P_COLS]
            row[:] = 0
            row[P_IMAGE], row[P_IMG_LEN], row[P_IMG_HI], row[P_IMG_W] = img_addr, len(data), img_hi, int(writable_image)
            row[P_HEAP_LO], row[P_HEAP_HI], row[P_STACK_LO], row[P_STACK_HI] = heap_lo, heap_hi, stack_lo, STACK_TOP
            self.ms.pstats[pid * ST_COLS : (pid + 1) * ST_COLS] = 0
            row[P_STATE] = PS_EXITING  # reserved, not yet runnable
            st = fault.locked_call_setup(self.ms, cpu, pid)
            if st != OK:
                row[P_STATE] = PS_FREE
                self._raise(st, 0, f"spawning a process on a machine of {self.frames} frames")
            row[P_STATE] = PS_LIVE
            proc = Process(self, pid, path, heap_lo, heap_hi, stack_lo, STACK_TOP, len(data), heap_policy)
            self.processes[pid] = proc
        return proc

    def _free_pid(self) -> int:
        states = self.ms.procs[P_STATE::P_COLS]
        free = np.flatnonzero(states == PS_FREE)
        if not len(free):
            raise OutOfMemory(f"the process table is full ({len(states)} processes); use Machine(max_processes=...)")
        return int(free[0])

    def _image_file(self, image) -> tuple[str | None, np.ndarray]:
        """The image's path (None unless a file was given) and its bytes, mapped read-only."""
        if image is None:
            return None, np.zeros(0, dtype=np.uint8)
        if isinstance(image, (bytes, bytearray, memoryview)):
            path, size = None, len(image)
        elif isinstance(image, (str, os.PathLike)):
            path = os.fspath(image)
            if not os.path.isfile(path):
                raise InvalidArgument(f"image file {path} does not exist")
            size = os.path.getsize(path)
        else:
            raise InvalidArgument(f"image must be a path, bytes or None, not {type(image).__name__}")
        if size > STACK_TOP - IMAGE_BASE:
            raise InvalidArgument(f"image {path or 'bytes'} ({size} bytes) does not fit in the address space")
        if size == 0:
            return path, np.zeros(0, dtype=np.uint8)
        if path is None:
            return None, self._image_of_bytes(bytes(image))
        return path, np.asarray(np.memmap(path, dtype=np.uint8, mode="r"))  # read-only mapping of the file

    @staticmethod
    def _image_of_bytes(data: bytes) -> np.ndarray:
        """`data` (not empty) in a temporary file without a name, mapped read-only."""
        fd = temporary_file(prefix="vm32-image-")
        try:
            with os.fdopen(os.dup(fd), "wb") as f:
                f.write(data)
            return np.frombuffer(mmap.mmap(fd, len(data), prot=mmap.PROT_READ), dtype=np.uint8)
        finally:
            os.close(fd)

    def _exit(self, proc: "Process") -> None:
        cpu = self.cpu()
        with self._api_lock:
            if not proc.alive:  # another thread ended it while this one waited for the lock
                return
            base = proc.pid * P_COLS
            self.ms.procs[base + P_STATE] = PS_EXITING
            for c in range(self.cpus):  # nobody may be running it now (cpu_enter re-checks the state)
                if self.ms.cpus[c * CPU_STRIDE + C_PID] == proc.pid and self.ms.cpus[c * CPU_STRIDE + C_BUSY]:
                    self.ms.procs[base + P_STATE] = PS_LIVE
                    raise InvalidArgument(f"process {proc.pid} is running on CPU {c}; wait for it to stop")
            fault.locked_call_teardown(self.ms, cpu, proc.pid)
            proc.final_stats = self._stats_row(proc.pid)
            self._exited_stats += self.ms.pstats[proc.pid * ST_COLS : (proc.pid + 1) * ST_COLS]
            self.ms.procs[base + P_STATE] = PS_FREE
            del self.processes[proc.pid]

    # ---- errors -------------------------------------------------------------------------------
    def _raise(self, status: int, va: int, what: str) -> None:
        reason = STATUS_NAMES.get(status, f"status {status}")
        if status == ST_SEGV:
            raise SegmentationFault(f"segmentation fault at {va:#010x} ({what}): {reason}")
        if status in (ST_PROT_USER, ST_PROT_WRITE):
            raise ProtectionFault(f"protection fault at {va:#010x} ({what}): {reason}")
        if status == ST_NO_FRAME:
            raise OutOfMemory(
                f"out of memory ({what}): {reason}; the machine has {self.frames} frames, "
                f"{self.pinned_frames()} pinned - use more frames or fewer processes"
            )
        if status == ST_SWAP_FULL:
            raise OutOfMemory(f"out of memory ({what}): {reason} ({self.swap.slots} slots); use a larger swap")
        if status == ST_DEAD:
            raise InvalidArgument(f"{what}: {reason}")
        raise VM32Error(f"{what}: {reason}")

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidArgument("the machine is closed")

    # ---- statistics and inspection ------------------------------------------------------------
    def _stats_row(self, pid: int) -> dict[str, int]:
        row = self.ms.pstats[pid * ST_COLS : (pid + 1) * ST_COLS]
        return _stats_dict(row)

    def stats(self) -> dict[str, int]:
        """Machine-wide counters: every process's, exited ones included, plus frame/swap usage."""
        total = self._exited_stats.copy()
        for pid in self.processes:
            total += self.ms.pstats[pid * ST_COLS : (pid + 1) * ST_COLS]
        d = _stats_dict(total)
        d["frames"] = self.frames
        d["free_frames"] = int(self.ms.kv[KV_FREE])
        d["pinned_frames"] = self.pinned_frames()
        d["swap_slots"] = self.swap.slots
        d["swap_slots_used"] = int(self.ms.kv[KV_NSLOTS] - self.ms.kv[KV_SLOTS_FREE])
        return d

    def cpu_stats(self) -> list[dict[str, int]]:
        """Per-CPU counters, by CPU number: accesses, TLB misses and page-table walks."""
        return [_stats_dict(self.ms.cstats[c * ST_COLS : (c + 1) * ST_COLS]) for c in range(self.cpus)]

    def pinned_frames(self) -> int:
        """Number of pinned frames (kernel memory, page directories and tables, pinned pages)."""
        from vm32.kernel.layout import FF_PINNED, FT_FLAGS

        return int(np.count_nonzero(self.ms.ft[:, FT_FLAGS] & FF_PINNED))

    def frame_table(self) -> list[dict]:
        """One dict per frame: frame, owner, kind, va, pinned, accessed, dirty, slot, kernel
        (`vm32.ui.frame_table_view` renders it)."""
        from vm32.kernel.inspect import frame_table_rows

        return frame_table_rows(self)

    def close(self) -> None:
        """Release memory, unmap images, delete the temporary swap and image files."""
        if self.closed:
            return
        self.closed = True
        self.swap.close()
        self._image_maps.clear()
        self.mem.close()

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Machine(frames={self.frames}, swap_slots={self.swap.slots}, policy={self.policy!r}, "
            f"tlb_entries={self.tlb_entries}, cpus={self.cpus})"
        )


def _stats_dict(row: np.ndarray) -> dict[str, int]:
    d = {name: int(row[i]) for i, name in STAT_NAMES.items()}
    d["tlb_hits"] = d["accesses"] - d["tlb_misses"]
    return d


class Process:
    """A process of a `Machine`: its own 32-bit address space (see layout.py).

    All accessors work in user mode unless ``user=False`` (a kernel thread's
    supervisor access through this address space).  Faults are handled
    transparently; an access no mapping allows raises SegmentationFault or
    ProtectionFault naming the address and the reason.
    """

    def __init__(self, machine: Machine, pid: int, image_path, heap_base, heap_end, stack_base, stack_top, image_size,
                 heap_policy: str = DEFAULT_HEAP_POLICY):
        self.machine, self.pid, self.image_path = machine, pid, image_path
        self.image_base, self.image_size = IMAGE_BASE, image_size
        self.heap_base, self.heap_end, self.heap_policy = heap_base, heap_end, heap_policy
        self.stack_base, self.stack_top = stack_base, stack_top
        self.final_stats: dict[str, int] | None = None
        self._heap = None
        self._heap_lock = threading.Lock()

    @property
    def alive(self) -> bool:
        """True until `exit` is called."""
        return self.final_stats is None

    def _check_range(self, va: int, n: int) -> None:
        if isinstance(va, bool) or not isinstance(va, (int, np.integer)) or not 0 <= va < 1 << 32:
            raise InvalidArgument(f"address {va!r} is not a 32-bit address")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidArgument(f"length {n!r} must be a non-negative integer")
        if va + n > 1 << 32:
            raise InvalidArgument(f"range {va:#x}+{n} leaves the 32-bit address space")
        if not self.alive:
            raise InvalidArgument(f"process {self.pid} has exited")

    def _done(self, st: int, va: int, what: str) -> None:
        """Raise the error of kernel status `st` (an access at `va` failed), if it is one."""
        if st != OK:
            self.machine._raise(st, va, f"process {self.pid}, {what}")

    def _ctx(self, user: bool = True) -> np.ndarray:
        return access.new_ctx(self.machine.cpu(), self.pid, int(user))

    def read(self, va: int, n: int, *, user: bool = True) -> bytes:
        """The `n` bytes at virtual address `va`."""
        self._check_range(va, n)
        out = np.empty(n, dtype=np.uint8)
        ctx = self._ctx(user)
        self._done(access.k_copy(self.machine.ms, ctx, va, out, 0), ctx[access.CTX_FAULT_VA], f"read of {n} bytes")
        return out.tobytes()

    def write(self, va: int, data: bytes | bytearray | memoryview, *, user: bool = True) -> None:
        """Copy `data` (bytes-like) to virtual address `va`."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"data must be bytes-like, not {type(data).__name__}"
                                  + (" (encode it first: 'text'.encode())" if isinstance(data, str) else ""))
        buf = np.frombuffer(bytearray(data), dtype=np.uint8)  # writable: k_copy has one buffer type
        self._check_range(va, len(buf))
        ctx = self._ctx(user)
        st = access.k_copy(self.machine.ms, ctx, va, buf, 1)
        self._done(st, ctx[access.CTX_FAULT_VA], f"write of {len(buf)} bytes")

    def _check_word(self, va: int) -> None:
        self._check_range(va, 4)
        if va & 3:
            raise InvalidArgument(f"word address {va:#x} is not a multiple of 4")

    def load_u32(self, va: int, *, user: bool = True) -> int:
        """The little-endian 32-bit word at `va` (a multiple of 4)."""
        self._check_word(va)
        cpu = self.machine.cpu()
        v = access.k_load_u32(self.machine.ms, cpu, self.pid, va, int(user))
        if v < 0:
            self._done(int(v), va, "32-bit load")
        return int(v)

    def store_u32(self, va: int, value: int, *, user: bool = True) -> None:
        """Store the 32-bit `value` at `va` (a multiple of 4)."""
        self._check_word(va)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 1 << 32:
            raise InvalidArgument(f"value {value!r} does not fit in 32 bits")
        cpu = self.machine.cpu()
        self._done(access.k_store_u32(self.machine.ms, cpu, self.pid, va, int(value), int(user)), va, "32-bit store")

    def fill_pattern(self, va: int, nwords: int, seed: int) -> None:
        """Write a pseudo-random pattern (a hash of `seed` and the address) over `nwords` words."""
        self._pattern(va, nwords, seed, 0)

    def check_pattern(self, va: int, nwords: int, seed: int) -> int:
        """Read back `nwords` words written by fill_pattern; return the number that differ."""
        return self._pattern(va, nwords, seed, 1)

    def _pattern(self, va: int, nwords: int, seed: int, check: int) -> int:
        self._check_word(va)
        self._check_range(va, 4 * nwords)
        counts = np.zeros(2, dtype=np.int64)
        ctx = self._ctx()
        st = access.k_pattern(self.machine.ms, ctx, va, nwords, seed, check, counts)
        self._done(st, ctx[access.CTX_FAULT_VA], "pattern " + ("check" if check else "fill"))
        return int(counts[1])

    def pin(self, va: int) -> None:
        """Page in the page holding `va` and pin its frame: it is never evicted until unpinned."""
        self._pin(va, 1)

    def unpin(self, va: int) -> None:
        """Let the page holding `va` be evicted again."""
        self._pin(va, 0)

    def _pin(self, va: int, pin: int) -> None:
        self._check_range(va, 1)
        cpu = self.machine.cpu()
        self._done(fault.locked_call_pin(self.machine.ms, cpu, self.pid, va, pin), va, "pin" if pin else "unpin")

    # ---- the heap: vm32.heap's allocator inside this address space (see procheap.py) ----
    @property
    def heap(self):
        """The allocator of this process's heap region (a `ProcessHeap` of its heap_policy),
        set up on first use."""
        if self._heap is None:
            with self._heap_lock:
                if self._heap is None:
                    from vm32.kernel.procheap import ProcessHeap

                    self._heap = ProcessHeap(self, self.heap_policy)
        return self._heap

    def malloc(self, n: int) -> int:
        """Virtual address of a new heap block of `n` bytes (contents undefined)."""
        return self.heap.malloc(n)

    def calloc(self, n: int) -> int:
        """Virtual address of a new heap block of `n` zeroed bytes."""
        return self.heap.calloc(n)

    def realloc(self, va: int, n: int) -> int:
        """Resize heap block `va` to `n` bytes keeping its contents; the (maybe moved) address."""
        return self.heap.realloc(va, n)

    def free(self, va: int) -> None:
        """Free heap block `va` (InvalidFree / DoubleFree for a bad address)."""
        self.heap.free(va)

    def size_of(self, va: int) -> int:
        """Bytes requested for live heap block `va`."""
        return self.heap.size_of(va)

    def heap_stats(self) -> dict[str, int]:
        """The heap allocator's counters (live/free bytes and blocks, footprint, operations...)."""
        return self.heap.stats()

    def heap_check(self) -> list[str]:
        """Broken heap invariants (walks every block, paging them in); [] when healthy."""
        return self.heap.check()

    def stats(self) -> dict[str, int]:
        """This process's counters (accesses, TLB hits/misses, faults by kind, paging traffic)."""
        if self.final_stats is not None:
            return dict(self.final_stats)
        return self.machine._stats_row(self.pid)

    def page_table(self) -> list[dict]:
        """One dict per page of this process's page table: va, vpn, pte, frame, slot, flags,
        where (`vm32.ui.page_table_view` renders it)."""
        from vm32.kernel.inspect import page_table_rows

        return page_table_rows(self)

    def exit(self) -> None:
        """End the process: free its frames, page tables and swap slots."""
        if self.alive:
            self.machine._exit(self)

    def __repr__(self) -> str:
        return f"Process(pid={self.pid}, image={self.image_path!r}, alive={self.alive})"
