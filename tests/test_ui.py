"""vm32.ui: the lower layers' rows and counters rendered; every table fits 80 columns and has a
legend; the live views; `vm32 demo` and `vm32 paging demo` as shown and as JSON."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from vm32.kernel.machine import Machine
from vm32.ui import frame_table_view, page_table_view
from vm32.ui.live import DemoLiveView, several_status_text, um_status_text
from vm32.ui.tables import WIDTH, console_for, demo_report_view, paging_demo_view, run_stats_view, runs_view
from vm32.um.asm import assemble
from vm32.um.multi import ProcessRun, run_programs

SIEVE_OUT = b"sieve: 78498 primes below 1000000 ok\n"
LISTS_OUT = b"lists: 100000 nodes walked 8 times, sum 1344894336 ok\n"
SCATTER_OUT = b"scatter: 1000000 random updates of 262144 words, checksum 3866168729 ok\n"
HELLO = 'li r1, 72\nout r1\nli r1, 10\nout r1\nhalt'


def rendered(renderable, width: int = WIDTH) -> str:
    console = Console(file=io.StringIO(), width=width, highlight=False)
    console.print(renderable)
    return console.file.getvalue()


def assert_fits(text: str, *words: str) -> None:
    """Every line within 80 columns, nothing cut ("…"), and `words` (headers, the legend's
    phrases) unbroken; the legend may wrap between words."""
    for line in text.splitlines():
        assert len(line) <= WIDTH, line
    assert "…" not in text, text
    flowing = " ".join(text.split())
    for w in words:
        assert w in flowing, (w, text)


# Figures as large as a long run gives: 12-digit counts, GiB of swap, hours of time.
BIG = dict(accesses=123_456_789_012, tlb_hits=123_000_000_000, tlb_misses=456_789_012, page_faults=987_654_321,
           zero_fill=12_345_678, image_in=1_234_567, swap_in=987_654_321, page_outs=876_543_210,
           evictions=999_999_999, swap_bytes_in=3_999_999_999_999, swap_bytes_out=3_888_888_888_888, frames=1 << 20,
           free_frames=12, pinned_frames=345)
BIG_RUN = dict(instructions=5_560_000_000_000, segments_mapped=92_000_000_000, page_faults=987_654_321,
               page_ins_from_swap=987_654_321, page_outs=876_543_210, swap_bytes_in=3_999_999_999_999,
               swap_bytes_out=3_888_888_888_888, tlb_hit_rate=0.99912, wall_seconds=12_345.6)


def test_page_and_frame_tables_render_the_api_rows():
    with Machine(frames=16, swap="1M", policy="fifo", tlb_entries=16) as m:
        p = m.spawn(None, heap_size=40 * 4096)
        for i in range(40):
            p.store_u32(p.heap_base + 4096 * i, i)
        text = rendered(page_table_view(p.page_table(), title=f"page table of process {p.pid}"))
        assert "page table of process 0" in text and "swap slot" in text and f"{p.heap_base:#010x}" in text
        assert_fits(text, "page", "PTE", "frame", "flags", "where", "P present")
        text = rendered(frame_table_view(m.frame_table(), title="frame table"))
        assert_fits(text, "frame", "owner", "kind", "pinned", "slot", "accessed, dirty")
        assert text.count("page directory") == 1 and len(m.frame_table()) == 16


def test_every_table_fits_80_columns_with_a_legend():
    class Result:  # a vm32.kernel.demo.PagingDemoResult's fields
        frames, policy, pages, wrong, wrong_words = 1 << 20, "clock", 64, [0, 123_456], 123_456
        process_stats, machine_stats = [BIG, BIG], BIG

    assert_fits(rendered(paging_demo_view(Result())), "process", "accesses", "TLB hit", "evict", "bad",
                "zero fill")
    runs = [ProcessRun("a-rather-long-program-name.umz", stats=BIG_RUN, halted=True),
            ProcessRun("b.um", stats=BIG_RUN)]
    assert_fits(rendered(runs_view(runs, BIG)), "program", "result", "swap-ins", "TLB hit", "of memory accesses")
    demo_runs = [ProcessRun("scatter", stats=BIG_RUN), ProcessRun("demo", stats=BIG_RUN)]  # its names
    assert_fits(rendered(demo_report_view(demo_runs, BIG, 12_345.6)), "process", "arrays", "swap out", "time",
                "segments mapped")
    text = rendered(run_stats_view(dict(BIG_RUN, instructions_per_second=35_694_000.0), "vm32 um run x"))
    assert_fits(text, "35.7 M instructions/s", "99.9%", "3.6 TiB", "12,346 s")


def test_stats_carry_their_units():
    text = rendered(run_stats_view(dict(instructions=1234, swap_bytes_in=5 << 30, wall_seconds=1.5,
                                        tlb_hit_rate=0.97345, instructions_per_second=35_694_000.0), "t"))
    for fragment in ("1,234", "5 GiB", "1.50 s", "97.3%", "35.7 M instructions/s"):
        assert fragment in text, (fragment, text)


def test_status_lines():
    t = um_status_text("p.um", dict(instructions=33_100_000, frames=64, page_faults=12_345, swap_bytes_in=4 << 20,
                                    swap_bytes_out=0, tlb_hit_rate=0.5), 2.0)
    assert t.plain == ("p.um 33.1M instructions, 16.6 M instructions/s | 64 frames, 12.3K faults, swap 4 MiB in, "
                       "0 B out, TLB hit 50.0% 2.00 s")


def test_live_views_render_plain_text_not_markup():
    seen = []

    def tick(machine, runs) -> None:
        seen.append((rendered(DemoLiveView(machine.frames).render(machine, runs, 1.0), width=WIDTH),
                     several_status_text(machine.stats(), runs, 1.0).plain))

    words = assemble(HELLO, "hello")
    runs, _ = run_programs([words, words], frames=16, on_tick=tick)
    assert all(r.halted for r in runs) and seen
    for view, status in seen:
        assert "[" not in view, view  # styles are rich Text, never markup printed as text
        assert_fits(view, "process", "state", "frames held", "k kernel")
        assert status.startswith("2 processes")


def test_console_for_a_file_is_80_columns():
    assert console_for(io.StringIO()).width == WIDTH


# What a runner's environment may say about its terminal (CI services, pytest-xdist workers):
# output to a buffer, a file or a pipe must not follow it.
TERMINAL_ENVIRONMENT = dict(COLUMNS="37", FORCE_COLOR="1", TTY_COMPATIBLE="1")


def test_console_for_a_file_ignores_the_environment(monkeypatch):
    for name, value in TERMINAL_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    console = console_for(io.StringIO())
    console.print("[red]" + "x" * 70 + " all outputs verified[/]")
    assert not console.is_terminal and console.width == WIDTH
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]
    assert lines == ["x" * 70 + " all", "outputs verified"]  # no colour; wrapped at 80


def test_demo_checks_every_output(monkeypatch):
    from vm32.ui.demo import run_demo

    for name, value in TERMINAL_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    out, err = io.BytesIO(), io.StringIO()
    assert run_demo(frames=24, stdout=out, stderr=err, live=False) == 0
    text = out.getvalue().decode()
    assert "demo    | demo: all checks passed" in text
    for line in (SIEVE_OUT, LISTS_OUT, SCATTER_OUT):
        assert line.decode().strip() in text
    report = err.getvalue()
    assert report.count("identical to its solo run on the flat backend") == 4
    assert "all outputs verified" in report and "\x1b" not in report
    table = report[report.index("vm32 demo: 4 processes"):report.index("\n  demo ")]  # prose lines may be long
    assert_fits(table, "process", "swap out")


def test_paging_demo_json():
    from vm32.ui.paging import show_paging_demo

    out, err = io.StringIO(), io.StringIO()
    code = show_paging_demo(Console(file=out), Console(file=err), as_json=True, frames=16, policy="fifo",
                            processes=2, pages=16, swap=None, swap_path=None, tlb_entries=64, seed=3)
    doc = json.loads(out.getvalue())
    assert code == 0 and doc["wrong_words"] == 0 and doc["processes"] == 2 and doc["policy"] == "fifo"
    assert doc["machine"]["page_faults"] == sum(p["page_faults"] for p in doc["per_process"]) > 0
    assert doc["machine"]["swap_bytes_out"] == 4096 * doc["machine"]["page_outs"]


@pytest.mark.parametrize("as_json", [False, True])
def test_paging_demo_table(as_json):
    from vm32.ui.paging import show_paging_demo

    out = io.StringIO()
    show_paging_demo(Console(file=out, width=WIDTH), Console(file=io.StringIO()), as_json=as_json, frames=12,
                     policy="clock", processes=1, pages=8, swap=None, swap_path=None, tlb_entries=8, seed=1)
    text = out.getvalue()
    if as_json:
        assert json.loads(text)["per_process"][0]["wrong_words"] == 0
    else:
        assert text.startswith("paging demo: 12 frames (48 KiB), policy clock, 1 processes of 8 pages")
        assert "wrong_words=0" in text.splitlines()[-1]
        assert_fits(text.split("summary:")[0].split("\n", 1)[1], "process", "evict")
