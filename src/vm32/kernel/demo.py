"""`vm32 paging demo`: K processes write distinct patterns over M pages each on a machine
of N frames, re-read and verify every word, then print the statistics.

vm32.cli.paging calls `paging_demo_main(args)` with its argparse Namespace.  Errors
are vm32.errors exceptions (the CLI prints ``vm32: error: ...``).

Each process runs on its own host thread (its own CPU and TLB), so the
processes fault concurrently and share the frames.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vm32.defaults import MIN_FRAMES
from vm32.errors import InvalidArgument, VM32Error
from vm32.kernel.machine import Machine
from vm32.memory import PAGE_SIZE, parse_size

CHUNK_PAGES = 8  # progress granularity


def frames_needed(processes: int, pages: int, kernel_frames: int = 1) -> int:
    """Smallest frame count on which the demo can make progress.

    Kernel memory + kernel page table, per process a page directory and the
    page tables its heap needs (pinned), and one frame per process for data.
    """
    tables = (pages + 1023) // 1024  # no image: the heap starts at IMAGE_BASE, on a 4 MiB boundary
    return kernel_frames + 1 + processes * (1 + tables + 1)


def _check_args(args) -> None:
    for name, low in (("frames", MIN_FRAMES), ("processes", 1), ("pages", 1), ("tlb", 1)):
        v = getattr(args, name)
        if v < low:
            raise InvalidArgument(f"--{name} must be at least {low}, not {v}")
    if args.processes > 64:
        raise InvalidArgument(f"--processes {args.processes} exceeds the demo's 64 processes")
    need = frames_needed(args.processes, args.pages)
    if args.frames < need:
        raise InvalidArgument(
            f"--frames {args.frames} is too few for {args.processes} processes of {args.pages} pages: "
            f"page directories and tables are pinned, so at least {need} frames are needed"
        )


def paging_demo_main(args, console: Console | None = None) -> int:
    """Run the demo described by `args` (see add_paging_commands); returns 0 when every word verified."""
    _check_args(args)
    out = console or Console()
    err = Console(stderr=True) if console is None else console
    k, pages = args.processes, args.pages
    swap = parse_size(args.swap) if args.swap is not None else (k * pages + 64) * PAGE_SIZE
    out.print(
        f"paging demo: frames={args.frames} ({args.frames * PAGE_SIZE >> 10} KiB) policy={args.policy} "
        f"processes={k} pages={pages} ({k * pages * PAGE_SIZE >> 10} KiB in all) swap={swap >> 10} KiB "
        f"tlb={args.tlb} seed={args.seed}"
    )
    with Machine(
        frames=args.frames, swap=swap, policy=args.policy, tlb_entries=args.tlb, cpus=k + 1,
        swap_path=args.swap_file, seed=args.seed, max_processes=k,
    ) as m:
        procs = [m.spawn(None, heap_size=pages * PAGE_SIZE) for _ in range(k)]
        wrong = [0] * k
        errors: list[BaseException] = []
        t0 = time.perf_counter()
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=False,
        ) as progress:
            task = progress.add_task("write+verify pages", total=2 * k * pages)

            def run(i: int) -> None:
                p, seed = procs[i], args.seed * 1000 + i
                try:
                    for check in (0, 1):
                        for first in range(0, pages, CHUNK_PAGES):
                            n = min(CHUNK_PAGES, pages - first)
                            va = p.heap_base + first * PAGE_SIZE
                            if check:
                                wrong[i] += p.check_pattern(va, n * 1024, seed)
                            else:
                                p.fill_pattern(va, n * 1024, seed)
                            progress.advance(task, n)
                except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
                    errors.append(e)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(k)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elapsed = time.perf_counter() - t0
        if errors:
            raise errors[0]
        out.print(stats_table(m, procs, wrong))
        total_wrong = sum(wrong)
        s = m.stats()
        out.print(
            f"summary: policy={m.policy} frames={m.frames} processes={k} pages={pages} "
            f"faults={s['page_faults']} page_outs={s['page_outs']} swap_in={s['swap_in']} "
            f"evictions={s['evictions']} wrong_words={total_wrong} time={elapsed:.2f}s"
        )
        if total_wrong:
            raise VM32Error(f"{total_wrong} words read back wrong: the paging kernel lost data")
    return 0


def stats_table(machine: Machine, procs, wrong=None) -> Table:
    """Per-process and machine totals as a rich Table."""
    t = Table(title=f"paging statistics ({machine.frames} frames, policy {machine.policy})")
    cols = ["process", "accesses", "TLB hit %", "faults", "zero-fill", "image-in", "swap-in",
            "page-outs", "evictions", "swap KiB out", "swap KiB in", "wrong"]
    for c in cols:
        t.add_column(c, justify="right")

    def row(name, s, bad):
        hit = 100.0 * s["tlb_hits"] / s["accesses"] if s["accesses"] else 0.0
        t.add_row(name, str(s["accesses"]), f"{hit:.2f}", str(s["page_faults"]), str(s["zero_fill"]),
                  str(s["image_in"]), str(s["swap_in"]), str(s["page_outs"]), str(s["evictions"]),
                  str(s["swap_bytes_out"] >> 10), str(s["swap_bytes_in"] >> 10), str(bad))

    for i, p in enumerate(procs):
        row(str(p.pid), p.stats(), wrong[i] if wrong else "-")
    row("all", machine.stats(), sum(wrong) if wrong else "-")
    return t
