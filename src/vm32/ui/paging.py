"""`vm32 paging demo` on a terminal: the banner, a progress bar, the table and the summary of
vm32.kernel.demo's run (or one JSON document)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vm32.defaults import FRAME_SIZE, format_size
from vm32.errors import VM32Error
from vm32.ui.tables import paging_demo_view


def show_paging_demo(out: Console, err: Console, *, as_json: bool = False, **params) -> int:
    """Run vm32.kernel.demo.run_paging_demo(**params), showing progress on `err` and the banner,
    the table and a summary line of key=value pairs on `out` (with `as_json`: one JSON document of the figures
    instead).  Returns 0 when every word read back as written; VM32Error otherwise."""
    from vm32.kernel.demo import run_paging_demo

    processes, pages = params["processes"], params["pages"]

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        task = progress.add_task("write+verify pages", total=2 * processes * pages)

        def on_start(machine) -> None:
            if not as_json:
                swap = machine.swap.slots * FRAME_SIZE
                out.print(f"paging demo: {machine.frames} frames ({format_size(machine.frames * FRAME_SIZE)}), "
                          f"policy {machine.policy}, {processes} processes of {pages} pages "
                          f"({format_size(processes * pages * FRAME_SIZE)} in all), swap {format_size(swap)}, "
                          f"TLB {machine.tlb_entries} entries, seed {params.get('seed', 1)}", soft_wrap=True)

        result = run_paging_demo(**params, on_start=on_start, on_progress=lambda n: progress.advance(task, n))
    if as_json:
        out.file.write(json.dumps(result.to_dict(), indent=1) + "\n")
        out.file.flush()
    else:
        out.print(paging_demo_view(result))
        s = result.machine_stats
        out.print(f"summary: policy={result.policy} frames={result.frames} processes={processes} pages={pages} "
                  f"faults={s['page_faults']} page_outs={s['page_outs']} swap_in={s['swap_in']} "
                  f"evictions={s['evictions']} wrong_words={result.wrong_words} time={result.seconds:.2f}s",
                  soft_wrap=True)
    if result.wrong_words:
        raise VM32Error(f"{result.wrong_words} words read back wrong: the paging kernel lost data")
    return 0
