"""The paging demo's work: K processes write distinct patterns over M pages each on a machine
of N frames, then re-read and verify every word.

`run_paging_demo` returns the figures as data (`PagingDemoResult`); `vm32 paging
demo` (vm32.cli.paging) shows them with vm32.ui.paging.  Each process runs on its
own host thread (its own CPU and TLB), so the processes fault concurrently and
share the frames.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from vm32.defaults import DEFAULT_POLICY, DEFAULT_TLB_ENTRIES, PAGING_DEMO_FRAMES, PAGING_DEMO_PAGES
from vm32.defaults import PAGING_DEMO_PROCESSES
from vm32.errors import InvalidArgument
from vm32.kernel.machine import Machine
from vm32.memory import PAGE_SIZE, PAGE_WORDS
from vm32.mmu.entry import NPTENTRIES
from vm32.workers import Worker, join_all, start_all

CHUNK_PAGES = 8  # pages per step between progress reports and stop checks
MAX_PROCESSES = 64


def frames_needed(processes: int, pages: int, kernel_frames: int = 1) -> int:
    """Smallest frame count on which the demo can make progress.

    Kernel memory + kernel page table, per process a page directory and the
    page tables its heap needs (pinned), and one frame per process for data.
    """
    tables = -(-pages // NPTENTRIES)  # no image: the heap starts at IMAGE_BASE, on a 4 MiB boundary
    return kernel_frames + 1 + processes * (1 + tables + 1)


def swap_needed(processes: int, pages: int) -> int:
    """The demo's default swap size in bytes: every page of every process, and some room."""
    return (processes * pages + 64) * PAGE_SIZE


@dataclass
class PagingDemoResult:
    """The figures of one paging demo: per process its counters and words read back wrong,
    the machine's counters, and the wall time of the write and verify passes."""

    frames: int
    policy: str
    pages: int
    process_stats: list[dict] = field(default_factory=list)
    wrong: list[int] = field(default_factory=list)
    machine_stats: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def wrong_words(self) -> int:
        """Words read back wrong, over every process (0 when the kernel lost nothing)."""
        return sum(self.wrong)

    def to_dict(self) -> dict:
        """The result as plain data for JSON (counts, bytes and seconds)."""
        return dict(frames=self.frames, policy=self.policy, processes=len(self.process_stats),
                    pages=self.pages, seconds=self.seconds, wrong_words=self.wrong_words,
                    machine=self.machine_stats,
                    per_process=[dict(s, pid=i, wrong_words=w)
                                 for i, (s, w) in enumerate(zip(self.process_stats, self.wrong))])


def run_paging_demo(
    frames: int = PAGING_DEMO_FRAMES,
    policy: str = DEFAULT_POLICY,
    processes: int = PAGING_DEMO_PROCESSES,
    pages: int = PAGING_DEMO_PAGES,
    *,
    swap: int | str | None = None,
    swap_path=None,
    swap_overwrite: bool = False,
    tlb_entries: int = DEFAULT_TLB_ENTRIES,
    seed: int = 1,
    on_start: Callable[[Machine], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PagingDemoResult:
    """Run the demo: `processes` processes of `pages` heap pages on a machine of `frames` frames.

    `swap` defaults to `swap_needed(processes, pages)`; `swap_path` and `swap_overwrite` are
    Machine's.  `on_start(machine)` is called
    once the machine and its processes exist; `on_progress(pages_done)` from the worker
    threads after each step (of the 2 * processes * pages page passes).  On an exception
    in the calling thread (Ctrl-C) the workers stop before the machine closes.
    """
    _check(frames, processes, pages)
    with Machine(frames=frames, swap=swap_needed(processes, pages) if swap is None else swap, policy=policy,
                 tlb_entries=tlb_entries, cpus=processes + 1, swap_path=swap_path,
                 swap_overwrite=swap_overwrite, seed=seed,
                 max_processes=processes) as m:
        procs = [m.spawn(None, heap_size=pages * PAGE_SIZE) for _ in range(processes)]
        if on_start is not None:
            on_start(m)
        result = PagingDemoResult(frames=m.frames, policy=m.policy, pages=pages, wrong=[0] * processes)
        start = time.perf_counter()
        _run_workers(procs, pages, seed, result.wrong, on_progress)
        result.seconds = time.perf_counter() - start
        result.process_stats = [p.stats() for p in procs]
        result.machine_stats = m.stats()
    return result


def _check(frames: int, processes: int, pages: int) -> None:
    """InvalidArgument unless the demo's parameters can run."""
    if not 1 <= processes <= MAX_PROCESSES:
        raise InvalidArgument(f"processes must be between 1 and {MAX_PROCESSES}, not {processes}")
    if pages < 1:
        raise InvalidArgument(f"pages must be at least 1, not {pages}")
    need = frames_needed(processes, pages)
    if frames < need:
        raise InvalidArgument(
            f"{frames} frames are too few for {processes} processes of {pages} pages: page directories "
            f"and tables are pinned, so at least {need} frames are needed")


def _run_workers(procs, pages: int, seed: int, wrong: list[int], on_progress) -> None:
    """Each process on a thread of its own: fill its pages, then check them; the first
    error of a worker is raised here, and any exception here stops every worker first."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        p, pattern = procs[i], seed * 1000 + i
        try:
            for check in (0, 1):
                for first in range(0, pages, CHUNK_PAGES):
                    if stop.is_set():
                        return
                    n = min(CHUNK_PAGES, pages - first)
                    va = p.heap_base + first * PAGE_SIZE
                    if check:
                        wrong[i] += p.check_pattern(va, n * PAGE_WORDS, pattern)
                    else:
                        p.fill_pattern(va, n * PAGE_WORDS, pattern)
                    if on_progress is not None:
                        on_progress(n)
        except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
            errors.append(e)
            stop.set()

    threads = [Worker(work, (i,), name=f"vm32-paging-{i}") for i in range(len(procs))]
    try:
        start_all(threads)
        for t in threads:
            t.done.wait()
    finally:
        stop.set()
        join_all(threads)  # no worker may touch the machine once it closes
    if errors:
        raise errors[0]

