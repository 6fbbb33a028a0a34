"""A UM program as a process of the paging kernel: the Python face of the paged backend.

`PagedProcess` spawns the process (no image, no stack: its heap region holds every
segment), loads the program into segment 0 through the process's one allocator
(vm32.kernel.procheap) and the kernel's copy-in, makes the space the interpreter runs
on (vm32.um.paged) for the CPU of whichever host thread runs it, and turns a page
fault the kernel could not serve into one clear error.
"""

from __future__ import annotations

import numpy as np

from vm32.defaults import DEFAULT_HEAP_POLICY, DEFAULT_POLICY, DEFAULT_TLB_ENTRIES, UM_FRAMES, UM_SWAP_LIMIT
from vm32.errors import InvalidArgument, OutOfMemory, VM32Error
from vm32.kernel.layout import IMAGE_BASE, STACK_TOP, STATUS_NAMES, ST_NO_FRAME, ST_SWAP_FULL
from vm32.kernel.trampoline import machine_ref
from vm32.memory import PAGE_SIZE
from vm32.um.paged import M_CODE, M_CODE_LEN, M_CPU, M_FAIL, M_FAIL_VA, M_REFILLS, make_space, new_meta, paged_um_run

PAGED_MAX_HEAP = STACK_TOP - IMAGE_BASE
"""The largest heap region (UM segments) of a process: from IMAGE_BASE (no image) to the kernel."""


class PagedProcess:
    """A UM program as a process of a `vm32.kernel.Machine`: owns its PagedSpace.

    The process has no image and no stack; its heap region of `heap_size` bytes
    (rounded down to pages, at most PAGED_MAX_HEAP) holds every segment.  With
    `machine` None a machine of its own is made (closed with the process) from
    `frames`, `policy`, `swap` (bytes; default the heap size, at most UM_SWAP_LIMIT),
    `swap_path` (with `swap_overwrite`, see Machine) and `tlb_entries`; otherwise those must
    be None.  `heap_policy` is the allocator of the segments (the process heap's policy,
    vm32.heap.policies).  Used by `vm32.um.machine.UniversalMachine`; any host thread may
    run it, one at a time.
    """

    def __init__(self, words: np.ndarray, heap_size: int, *, name: str = "program", frames=None, policy=None,
                 swap=None, swap_path=None, swap_overwrite=False, tlb_entries=None, machine=None,
                 heap_policy: str = DEFAULT_HEAP_POLICY):
        from vm32.kernel.machine import Machine

        heap_size = min(int(heap_size), PAGED_MAX_HEAP) // PAGE_SIZE * PAGE_SIZE
        if heap_size < 2 * PAGE_SIZE:
            raise InvalidArgument("the paged backend needs a heap of at least 8K (--memory)")
        self.name = name
        self.own_machine = machine is None
        if machine is None:
            machine = Machine(
                frames=UM_FRAMES if frames is None else frames,
                swap=min(heap_size, UM_SWAP_LIMIT) if swap is None else swap,
                policy=DEFAULT_POLICY if policy is None else policy,
                tlb_entries=DEFAULT_TLB_ENTRIES if tlb_entries is None else tlb_entries,
                swap_path=swap_path,
                swap_overwrite=swap_overwrite,
            )
        elif any(v is not None for v in (frames, policy, swap, swap_path, tlb_entries)):
            raise InvalidArgument("frames, policy, swap, swap_path and tlb_entries belong to the shared machine")
        self.machine = machine
        self.proc = self.heap = self.space = None
        try:
            self._start(np.ascontiguousarray(words, dtype=np.uint32), heap_size, heap_policy)
        except BaseException:
            self.close()
            raise

    def _start(self, words: np.ndarray, heap_size: int, heap_policy: str) -> None:
        """Spawn the process and load `words` into segment 0, a block of its heap."""
        m = self.machine
        self.proc = m.spawn(image=None, heap_size=heap_size, stack_size=0, heap_policy=heap_policy)
        self.heap_base, self.heap_limit = self.proc.heap_base, self.proc.heap_end
        self.heap = self.proc.heap  # the process's one allocator; the UM runs it in direct mode
        nbytes = 4 * len(words)
        if not self.heap.fits(nbytes):
            raise OutOfMemory(f"{self.name}: the program ({nbytes} bytes) does not fit in a heap of "
                              f"{heap_size} bytes; use a larger --memory")
        code = self.heap.malloc(nbytes)
        self.proc.write(code, words.astype("<u4").tobytes())
        self.ref = machine_ref(m.ms)
        meta = new_meta(self.proc.pid)
        meta[M_CODE], meta[M_CODE_LEN] = code, len(words)
        self.space = make_space(m.ms, self.ref, self.heap.handle, meta, m.cpu(), m.sees_every_access)

    # ---- running ----
    def run_slice(self, regs, st, inbuf, outbuf, budget: int) -> int:
        """One call of the interpreter on the calling thread's CPU; um_run's status."""
        meta = self.space.meta
        cpu = self.machine.cpu()
        if cpu != meta[M_CPU]:
            self.space = make_space(self.machine.ms, self.ref, self.heap.handle, meta, cpu,
                                    self.machine.sees_every_access)
        r = int(paged_um_run(self.machine.ms, self.space, regs, st, inbuf, outbuf, budget))
        if r < 0:
            raise InvalidArgument(f"{self.name}: the process has ended; load the program again")
        return r

    def failure(self, pc: int) -> VM32Error | None:
        """The kernel's error if the last slice stopped on a page fault it could not serve."""
        status = int(self.space.meta[M_FAIL])
        if status == 0:
            return None
        return self._kernel_error(status, int(self.space.meta[M_FAIL_VA]), f"at UM pc={pc:#x}")

    def _kernel_error(self, status: int, va: int, where: str) -> VM32Error:
        reason = STATUS_NAMES.get(status, f"kernel status {status}")
        text = f"{self.name}: page fault at {va:#010x} {where} could not be served: {reason}"
        if status == ST_SWAP_FULL:
            return OutOfMemory(f"{text} ({self.machine.swap.slots} slots of 4K); use a larger --swap-size or more --frames")
        if status == ST_NO_FRAME:
            return OutOfMemory(f"{text}; the machine has {self.machine.frames} frames - use more --frames")
        return VM32Error(text)

    def finish(self) -> None:
        """End the process (frames and swap slots go back to the machine); keep its statistics."""
        if self.proc is not None and self.proc.alive:
            self.proc.exit()

    def close(self) -> None:
        """End the process and close the machine if it is this process's own."""
        try:
            self.finish()
        finally:
            if self.own_machine and not self.machine.closed:
                self.machine.close()

    # ---- inspection ----
    def code_words(self) -> np.ndarray:
        """A copy of segment 0's words (empty if they cannot be read any more)."""
        meta = self.space.meta
        n = int(meta[M_CODE_LEN])
        if self.proc is None or not self.proc.alive or n == 0:
            return np.zeros(0, dtype=np.uint32)
        try:
            return np.frombuffer(self.proc.read(int(meta[M_CODE]), 4 * n), dtype=np.uint32).copy()
        except VM32Error:
            return np.zeros(0, dtype=np.uint32)

    def heap_check(self) -> list[str]:
        """The broken invariants of the process heap (pages it in); [] when healthy.  Only
        between slices: the interpreter owns the heap while it runs."""
        return self.heap.check()

    def stats(self) -> dict:
        """Kernel counters of the process (faults, paging, TLB) and of its heap."""
        k = self.proc.stats() if self.proc is not None else {}
        h = self.heap.counters() if self.heap is not None else {}
        acc = k.get("accesses", 0)
        return {
            "frames": self.machine.frames,
            "policy": self.machine.policy,
            "page_faults": k.get("page_faults", 0),
            "zero_fill": k.get("zero_fill", 0),
            "page_ins_from_swap": k.get("swap_in", 0),
            "page_outs": k.get("page_outs", 0),
            "evictions": k.get("evictions", 0),
            "swap_bytes_in": k.get("swap_bytes_in", 0),
            "swap_bytes_out": k.get("swap_bytes_out", 0),
            "page_tables": k.get("page_tables", 0),
            "memory_accesses": acc,
            "tlb_misses": k.get("tlb_misses", 0),
            "tlb_hit_rate": (1.0 - k.get("tlb_misses", 0) / acc) if acc else 0.0,
            "fetch_buffer_refills": int(self.space.meta[M_REFILLS]) if self.space is not None else 0,
            "allocator_footprint_bytes": h.get("footprint", 0),
            "allocator_peak_live_bytes": h.get("peak_live_bytes", 0),
        }
