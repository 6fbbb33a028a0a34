"""The paged UM backend (vm32.um.paged): a UM program as a process of the paging kernel.

Every UM test that takes the `backend` fixture already runs on paged (conftest);
here: programs much larger than physical memory, every policy, random programs
against flat, several processes at once, a fault in one process leaving the
others intact, kernel failures as clear errors, swap files removed, the CLI and
the demo, and sandmark with a fraction of its working set (marker `sandmark`).
"""

from __future__ import annotations

import io
import os
import re
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vm32.cli import main
from vm32.errors import InvalidArgument, OutOfMemory, UMFault, VM32Error
from vm32.kernel.machine import Machine
from vm32.kernel.policies import LIVE_POLICIES
from vm32.kernel.swap import TRAILER, is_swap_file
from vm32.um import isa
from vm32.um.asm import assemble, to_bytes
from vm32.um.machine import UniversalMachine, run_program
from vm32.um.multi import run_programs
from vm32.um.paged import M_CODE, M_POISON, POISON
from vm32.um.showcase import assemble_builtin

SIEVE_OUT = b"sieve: 78498 primes below 1000000 ok\n"
LISTS_OUT = b"lists: 100000 nodes walked 8 times, sum 1344894336 ok\n"
SCATTER_OUT = b"scatter: 1000000 random updates of 262144 words, checksum 3866168729 ok\n"

# Touches PAGES pages of one array twice (write i*i, then sum), then prints the low byte of
# the sum: a small program that needs far more memory than the smallest machines have.
PAGES = 48
SWEEP = f"""
        li      r1, {PAGES * 1024}
        map     r2, r1
        li      r4, {PAGES * 1024}  ; i + 1
fill:   not     r6, r0
        add     r4, r4, r6
        mul     r3, r4, r4
        store   r2, r4, r3          ; a[i] = i*i
        li      r7, sum
        li      r6, fill
        cmov    r7, r6, r4
        loadprog r0, r7
sum:    li      r4, {PAGES * 1024}
        li      r5, 0
sum_loop:
        not     r6, r0
        add     r4, r4, r6
        load    r3, r2, r4
        add     r5, r5, r3
        li      r7, done
        li      r6, sum_loop
        cmov    r7, r6, r4
        loadprog r0, r7
done:   li      r6, 256
        div     r7, r5, r6
        mul     r7, r7, r6
        not     r7, r7
        add     r5, r5, r7
        li      r6, 1
        add     r5, r5, r6          ; the sum modulo 256
        out     r5
        halt
"""
SWEEP_OUT = bytes([sum(i * i for i in range(PAGES * 1024)) & 0xFF])

DIVIDE_BY_ZERO = "li r1, 1\nli r2, 0\ndiv r3, r1, r2\nhalt"


@pytest.fixture(scope="module")
def sweep():
    return assemble(SWEEP, "sweep")


def paged(program, **kw):
    """run_program on the paged backend."""
    return run_program(program, backend="paged", **kw)


# ---------------------------------------------------------------- one process, little memory


def test_program_larger_than_memory(sweep):
    result = paged(sweep, frames=16)
    assert result.output == SWEEP_OUT
    s = result.stats
    assert s["page_faults"] > PAGES and s["page_outs"] > 0 and s["page_ins_from_swap"] > 0
    assert s["swap_bytes_out"] == 4096 * s["page_outs"]
    assert 0.9 < s["tlb_hit_rate"] < 1.0
    assert s["instructions"] == run_program(sweep).stats["instructions"]


@pytest.mark.parametrize("policy", sorted(LIVE_POLICIES))
def test_every_policy(sweep, policy):
    result = paged(sweep, frames=12, policy=policy)
    assert result.output == SWEEP_OUT
    assert result.stats["policy"] == policy
    assert result.stats["page_outs"] > 0


@pytest.mark.parametrize("name, out", [("sieve.uma", SIEVE_OUT), ("lists.uma", LISTS_OUT)])
def test_shipped_programs_on_few_frames(name, out):
    result = paged(assemble_builtin(name), frames=24, memory_size="16M")
    assert result.output == out
    assert result.stats["page_outs"] > 0


def test_many_small_segments_are_heap_blocks_in_the_address_space():
    # The process has one heap: the segments are blocks of proc.heap (its direct mode, no
    # journal), which the Python API's stats() and check() see.
    words = assemble_builtin("lists.uma")
    with UniversalMachine(words, backend="paged", frames=32, memory_size="16M", stdout=io.BytesIO()) as um:
        um.run()
        s = um.stats()
        heap = um.paged.heap
        assert heap is um.paged.proc.heap
        assert um.paged.heap_base >= 0x00400000  # the process's heap region, above the null guard
        assert um.paged.heap_check() == []
        h = heap.counters()
        assert h["callocs"] == s["segments_mapped"] and h["live_blocks"] == 1 + s["live_segments"]
        assert h["rolled_back"] == 0
    assert s["segments_mapped"] == 100_000 == s["segments_unmapped"]
    assert s["allocator_peak_live_bytes"] >= 100_000 * 8
    assert s["allocator_footprint_bytes"] < 2 * s["allocator_peak_live_bytes"]


def test_small_tlb_and_load_program(sweep):
    # loadprog copies segments page by page through the TLB: a 1-entry-per-slot TLB still works
    result = paged(assemble_builtin("demo.uma"), frames=8, tlb_entries=2)
    assert result.output.endswith(b"demo: all checks passed\n")


def test_machine_steps_and_counts_like_flat(sweep):
    with UniversalMachine(sweep, backend="paged", frames=16) as um:
        um.run(max_instructions=10_000)
        assert not um.halted
        um.run(max_instructions=100_000, slice_instructions=777)
        um.run()
        assert um.halted
        assert um.stats()["instructions"] == run_program(sweep).stats["instructions"]


ACCESSES = """
        li      r1, 4
        map     r2, r1
        li      r3, data
        li      r5, 2
        {extra}
        halt
data:   .word   7
"""


@pytest.mark.parametrize("access", ["load r4, r0, r3", "store r0, r3, r4", "load r4, r2, r5", "store r2, r5, r4"])
def test_each_load_and_store_is_one_memory_access(access):
    # One more instruction of any kind adds its fetch (and a word of program to load); a load
    # or store adds one access more, whether of segment 0 or of another segment.
    def accesses(extra):
        words = assemble(ACCESSES.format(extra=extra), "accesses")
        return paged(words, frames=16).stats["memory_accesses"]

    assert accesses(access) - accesses("add r4, r4, r4") == 1


instruction = st.one_of(
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from([isa.encode(isa.LOAD, 1, 2, 3), isa.encode(isa.STORE, 1, 2, 3), isa.encode(isa.MAP, 0, 2, 3),
                     isa.encode(isa.UNMAP, 0, 0, 2), isa.encode(isa.LOADPROG, 0, 2, 3),
                     isa.encode(isa.ADD, 2, 2, 3), isa.encode(isa.OUT, 0, 0, 1)]),
    st.builds(isa.encode_imm, st.integers(0, 7), st.integers(0, isa.IMM_MASK)),
)


def _outcome(words, backend, **kw):
    out = io.BytesIO()
    with UniversalMachine(words, backend=backend, stdout=out, memory_size=1 << 22, **kw) as um:
        try:
            um.run(max_instructions=5_000)
            fault = None
        except UMFault as e:
            fault = (e.kind, e.pc, e.instruction)
        return out.getvalue(), fault, um.stats()["instructions"], um.halted


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=st.lists(instruction, min_size=1, max_size=30))
def test_random_programs_agree_with_flat(program):
    words = np.array(program, dtype=np.uint32)
    assert _outcome(words, "paged", frames=8) == _outcome(words, "flat")


# ---------------------------------------------------------------- kernel failures, swap file


def test_swap_full_is_a_clear_error_and_ends_only_that_process(sweep):
    with Machine(frames=12, swap=8 * 4096, policy="fifo") as m:
        with UniversalMachine(sweep, backend="paged", machine=m, memory_size="1M") as um:
            with pytest.raises(OutOfMemory, match=r"program: page fault at 0x[0-9a-f]{8} at UM pc=0x[0-9a-f]+ "
                                                  r"could not be served: swap is full.*--swap-size"):
                um.run()
            assert not um.paged.proc.alive  # its frames and slots went back to the machine
        assert m.stats()["swap_slots_used"] == 0
        ok = UniversalMachine(assemble("li r1, 'k'\nout r1\nhalt"), backend="paged", machine=m,
                              memory_size="64K", stdout=io.BytesIO())
        with ok:
            ok.run()
            assert ok._stdout.getvalue() == b"k"


@pytest.mark.parametrize("policy", LIVE_POLICIES)
def test_code_page_that_cannot_come_in_is_a_clear_error(policy):
    # Each map dirties a page; once the frames and the swap are full, the code page evicted
    # meanwhile cannot come back for the next fetch.  That fetch must end the process with a
    # clear error naming it (it once read a window built from an empty fetch-buffer way: a
    # host crash; then, under LRU, it ran on through holes in the POISON page to the end).
    outcomes = []
    for n in range(12):
        maps = "\n".join("        map     r3, r1" for _ in range(n))
        words = assemble(f"        li      r1, 1000\n{maps}\n        li      r7, far\n        loadprog r0, r7\n"
                         "        .space  9000\nfar:    li      r4, 'k'\n        out     r4\n        halt\n", "maps")
        with Machine(frames=12, swap=8 * 4096, policy=policy) as m:
            with UniversalMachine(words, backend="paged", machine=m, memory_size="1M", stdout=io.BytesIO()) as um:
                try:
                    um.run()
                    outcomes.append(um._stdout.getvalue())
                except OutOfMemory as e:
                    found = re.search(r"page fault at (0x[0-9a-f]+) at UM pc=(0x[0-9a-f]+) could not be served: "
                                      r"swap is full", str(e))
                    assert found, str(e)
                    va, pc = (int(x, 16) for x in found.groups())
                    # the fetch of that pc faulted, or (a policy that keeps the code page in use,
                    # as sieve and arc do: the swap fills first) the new page of one of the maps
                    assert va == um.paged.space.meta[M_CODE] + 4 * pc or 1 <= pc <= n, (hex(va), pc)
                    outcomes.append("full")
    assert outcomes[0] == b"k" and outcomes[-1] == "full"
    assert outcomes == sorted(outcomes, key=lambda o: o == "full")  # prints until the swap fills


def test_poison_page_is_poison_only(sweep):
    # A code page that cannot come in reads as this page: every word must stop the interpreter.
    # (Emptying the fetch buffer once wrote NO_PAGE into every third word up to the end.)
    assert isa.op_of(POISON) >= 14  # no operator: an invalid instruction
    with UniversalMachine(sweep, backend="paged", frames=16, stdout=io.BytesIO()) as um:
        words = um.paged.space.meta[M_POISON:].view(np.uint32)
        assert words.shape[0] == 4096 // 4 and np.all(words == POISON)
        um.run()  # faults, refills and drops of the fetch buffer leave it alone too
        assert np.all(words == POISON)


def test_no_frame_left_is_a_clear_error(sweep):
    with Machine(frames=10, swap="1M") as m:
        hog = m.spawn(None, heap_size=64 * 4096)
        for k in range(64):  # pin user pages until every frame is taken
            try:
                hog.pin(hog.heap_base + 4096 * k)
            except OutOfMemory:
                break
        with pytest.raises(OutOfMemory, match="frame"):
            with UniversalMachine(sweep, backend="paged", machine=m, memory_size="1M") as um:
                um.run()


def test_temporary_swap_file_is_removed(sweep, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with UniversalMachine(sweep, backend="paged", frames=16, stdout=io.BytesIO()) as um:
        assert um.paged.machine.swap.path is None  # no name from the start: nothing to leave behind
        um.run()
        assert um.stats()["page_outs"] > 0 and os.listdir(tmp_path) == []
    runs, _ = run_programs([sweep, sweep], frames=16, memory_size="1M")
    assert all(r.halted for r in runs)
    assert os.listdir(tmp_path) == []


def test_swap_file_of_ones_own(sweep, tmp_path):
    swap = tmp_path / "my.swap"
    result = paged(sweep, frames=16, swap_path=swap, swap="1M")
    assert result.output == SWEEP_OUT
    assert swap.stat().st_size == (1 << 20) + TRAILER and is_swap_file(swap)  # the slots, then vm32's mark
    assert paged(sweep, frames=16, swap_path=swap, swap="2M").output == SWEEP_OUT  # a vm32 swap file: reused
    assert swap.stat().st_size == (2 << 20) + TRAILER


def test_a_file_that_is_not_a_swap_file_is_never_overwritten(sweep, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"my notes\n" * 1000)
    with pytest.raises(InvalidArgument, match="precious.txt exists and is not a vm32 swap file") as refused:
        paged(sweep, frames=16, swap_path=precious)
    assert "swap_overwrite=True" in str(refused.value) and "--force" not in str(refused.value)
    with pytest.raises(InvalidArgument, match="not a regular file"):
        paged(sweep, frames=16, swap_path=tmp_path)
    with pytest.raises(InvalidArgument, match="holds no 4 KiB page"):
        paged(sweep, frames=16, swap="1")
    assert precious.read_bytes() == b"my notes\n" * 1000
    assert paged(sweep, frames=16, swap_path=precious, swap="1M", swap_overwrite=True).output == SWEEP_OUT
    assert is_swap_file(precious)


def test_paged_options_are_checked(sweep):
    with pytest.raises(InvalidArgument, match="paged"):
        UniversalMachine(sweep, backend="flat", frames=16)
    with pytest.raises(InvalidArgument, match="frames"):
        UniversalMachine(sweep, backend="paged", frames=3)
    with pytest.raises(InvalidArgument, match="power of two"):
        UniversalMachine(sweep, backend="paged", tlb_entries=1000)
    with pytest.raises(VM32Error, match="policy"):
        UniversalMachine(sweep, backend="paged", policy="belady")
    with pytest.raises(InvalidArgument, match="8K"):
        UniversalMachine(sweep, backend="paged", memory_size="4K")
    with pytest.raises(OutOfMemory, match="does not fit"):
        UniversalMachine(np.zeros(5000, dtype=np.uint32), backend="paged", memory_size="16K")


def test_ended_process_cannot_run_again():
    with UniversalMachine(assemble(DIVIDE_BY_ZERO), backend="paged", frames=8) as um:
        with pytest.raises(UMFault, match="divide-by-zero"):
            um.run()
        with pytest.raises(InvalidArgument, match="ended"):
            um.run()


# ---------------------------------------------------------------- several processes


def test_several_processes_share_the_frames(sweep):
    programs = [assemble_builtin("lists.uma"), sweep, assemble_builtin("demo.uma"), sweep]
    runs, mstats = run_programs(programs, names=["lists", "sweep1", "demo", "sweep2"], frames=24,
                                memory_size="16M")
    for run, program in zip(runs, programs):
        assert run.error is None and run.halted, run
        assert run.um._stdout.getvalue() == run_program(program).output, run.name
    assert runs[1].stats["page_faults"] > PAGES
    assert mstats["page_outs"] > 0 and mstats["frames"] == 24
    assert sum(r.stats["page_faults"] for r in runs) == mstats["page_faults"]


def test_a_fault_in_one_process_leaves_the_others_intact(sweep):
    bad = assemble(SWEEP.replace("done:   li      r6, 256", "done:   div r5, r5, r0\n        li r6, 256"))
    runs, _ = run_programs([sweep, bad, sweep, b"", assemble_builtin("demo.uma")], frames=16,
                           memory_size="1M")
    ok, failed, ok2, empty, demo = runs
    assert isinstance(failed.error, UMFault) and failed.error.kind == "divide-by-zero"
    assert not failed.um.paged.proc.alive
    assert "empty" in str(empty.error) and empty.um is None
    for run in (ok, ok2):
        assert run.error is None and run.um._stdout.getvalue() == SWEEP_OUT
    assert demo.um._stdout.getvalue().endswith(b"demo: all checks passed\n")


def test_each_process_has_its_own_input():
    echo = assemble_builtin("echo.uma")
    runs, _ = run_programs([echo, echo, echo], inputs=[b"first\n", io.BytesIO(b"second"), None], frames=16,
                           memory_size="1M")
    assert [r.um._stdout.getvalue() for r in runs] == [b"FIRST\n", b"SECOND", b""]


def test_run_programs_checks_its_arguments(sweep):
    with pytest.raises(InvalidArgument):
        run_programs([])
    with pytest.raises(InvalidArgument):
        run_programs([sweep], names=["a", "b"])


# ---------------------------------------------------------------- command line


def call_main(capsys, *args):
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path, sweep):
    paths = {}
    for name, words in [("sweep", sweep), ("demo", assemble_builtin("demo.uma")),
                        ("bad", assemble(DIVIDE_BY_ZERO))]:
        paths[name] = tmp_path / f"{name}.um"
        paths[name].write_bytes(to_bytes(words))
    return paths


def test_cli_paged_stats(capsys, files):
    code, out, err = call_main(capsys, "um", "run", files["sweep"], "--backend", "paged", "--frames", "16",
                               "--policy", "nru", "--stats")
    assert code == 0 and out.encode("latin-1") == SWEEP_OUT
    for row in ("page faults", "page outs", "swap bytes in", "swap bytes out", "tlb hit rate", "nru"):
        assert row in err, row


def test_cli_several_programs_to_files(capsys, files, tmp_path):
    outdir = tmp_path / "out"
    code, out, err = call_main(capsys, "um", "run", files["sweep"], files["demo"], files["sweep"],
                               "--frames", "16", "--output-dir", outdir, "--stats")
    assert code == 0, err
    assert out == ""
    assert (outdir / "sweep.um.out").read_bytes() == SWEEP_OUT == (outdir / "sweep.um.2.out").read_bytes()
    assert (outdir / "demo.um.out").read_bytes() == run_program(assemble_builtin("demo.uma")).output
    assert "3 processes on 16 frames" in err and "machine" in err


def test_cli_several_programs_tag_their_lines(capsys, files):
    code, out, err = call_main(capsys, "um", "run", files["demo"], files["bad"], "--frames", "16")
    assert code == 1
    demo_lines = [line for line in out.splitlines() if line.startswith("demo.um| ")]
    assert demo_lines[-1] == "demo.um| demo: all checks passed"
    errors = [line for line in err.splitlines() if line.startswith("vm32: error:")]
    assert len(errors) == 1 and "divide-by-zero" in errors[0]


@pytest.mark.parametrize("args, fragment", [
    (["--frames", "16"], "only for --backend paged"),
    (["--backend", "classic", "--swap-file", "x"], "only for --backend paged"),
    (["--backend", "paged", "--frames", "2"], "frames"),
    (["--backend", "paged", "--policy", "belady"], "belady"),
    (["--backend", "paged", "--tlb", "100"], "power of two"),
    (["--backend", "paged", "--swap-file", "/nonexistent/dir/swap"], "swap"),
    (["--backend", "paged", "--output-dir", "x"], "several programs"),
])
def test_cli_paged_errors(capsys, files, args, fragment):
    code, out, err = call_main(capsys, "um", "run", files["sweep"], *args)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vm32: error:") and fragment in lines[0], err


def test_cli_swap_full_is_one_error_line(capsys, files):
    code, out, err = call_main(capsys, "um", "run", files["sweep"], "--backend", "paged", "--frames", "12",
                               "--swap-size", "32K")
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vm32: error: sweep.um: page fault at 0x"), err
    assert "swap is full" in lines[0] and "--swap-size" in lines[0]


def test_cli_several_programs_need_paged(capsys, files):
    code, _, err = call_main(capsys, "um", "run", files["sweep"], files["demo"], "--backend", "flat")
    assert code == 1 and "several programs" in err


# ---------------------------------------------------------------- sandmark


@pytest.mark.sandmark
def test_sandmark_with_a_fraction_of_its_working_set(um_corpus):
    # sandmark's heap peaks near 410 pages: 128 frames hold under a third of it.  Its first
    # 4e8 instructions (of 5.5e9) already swap ~260,000 pages out and back in, in ~3 s; the
    # whole run takes 6 minutes at 128 frames (`benchmarks/um_paged.py --fraction 0.3` runs it), and
    # test_sandmark_output_is_exact runs all of it on paged with room to spare.
    program = (um_corpus / "sandmark.umz").read_bytes()
    expected = (um_corpus / "sandmark.expected").read_bytes()
    out = io.BytesIO()
    with UniversalMachine(program, backend="paged", frames=128, stdout=out) as um:
        stats = um.run(max_instructions=400_000_000)
    output = out.getvalue()
    assert output.count(b"\n") >= 25 and output == expected[:len(output)]
    assert stats["page_outs"] > 200_000 and stats["page_ins_from_swap"] > 200_000



# Code and data of segment 0 on several pages: the interpreter's fetch window follows the
# running page, its data window the page last loaded or stored, and a store into code that
# already ran must be what the next fetch sees, whatever the few frames and the tiny TLB
# evict in between.  Prints A (the code as loaded), then B twice (the data, the patched code).
WINDOWS = """
        li      r1, data
        li      r7, far
        loadprog r0, r7             ; to another page
back:   load    r4, r0, r1          ; the data stored from the far page
        out     r4
        li      r6, patched
        load    r5, r0, r6          ; the word "li r4, 65", which already ran
        li      r4, 1
        add     r5, r5, r4
        store   r0, r6, r5          ; now "li r4, 66"
        li      r7, patched
        loadprog r0, r7
        .space  2000
far:    li      r5, 66
        store   r0, r1, r5          ; data = 'B'
        li      r6, 1024
        map     r6, r6              ; a segment operation between the accesses
        unmap   r6
        li      r7, patched
        loadprog r0, r7
        .space  3000
data:   .word   0
        .space  1500
patched: li     r4, 65
        out     r4
        li      r7, back
        li      r6, done
        cmov    r7, r6, r3          ; the second time (r3 = 1): done
        li      r3, 1
        loadprog r0, r7
done:   halt
"""


@pytest.mark.parametrize("frames, tlb, policy", [(64, 64, "clock"), (8, 2, "clock"), (8, 2, "fifo"), (8, 2, "lru")])
def test_code_and_data_windows_see_every_store(frames, tlb, policy):
    words = assemble(WINDOWS, "windows")
    assert run_program(words).output == b"ABB"
    assert paged(words, frames=frames, tlb_entries=tlb, policy=policy).output == b"ABB"
