"""The UM debugger's basics (vm32.um.debug, shown by vm32.ui.debug and `vm32 um run --debug`,
`--trace-instructions N`, `--break PC`)."""

import io

import numpy as np
import pytest

from test_cli import assert_one_error, call_main, program_file

from vm32.errors import InvalidArgument, UMFault
from vm32.ui.debug import debug_run as shown_debug_run
from vm32.um.asm import assemble
from vm32.um.debug import debug_run
from vm32.um.kernel import ST_ICOUNT, ST_PC
from vm32.um.machine import UniversalMachine

# prints 'a' three times (r1 counts down), then divides by zero at `boom` (offset 10, 0xa)
PROGRAM = """
        li  r1, 3
        li  r2, 'a'
        li  r3, 1
        not r4, r0          ; r4 = -1
loop:   out r2
        add r1, r1, r4      ; r1 -= 1
        li  r6, boom
        li  r7, loop
        cmov r6, r7, r1     ; while r1 != 0: round again
        loadprog r0, r6
boom:   li  r5, 0
        div r5, r3, r5      ; pc 0xb: division by zero
"""


@pytest.fixture
def um():
    """The program on the flat backend (the classic one runs the same um_debug_run; compiling it
    for a second backend would cost the test run another 15 s)."""
    with UniversalMachine(assemble(PROGRAM), backend="flat", stdout=io.BytesIO()) as machine:
        yield machine


def test_trace_records_pc_word_and_registers(um):
    words = assemble(PROGRAM)
    seen = []
    with pytest.raises(UMFault, match="division by zero"):
        debug_run(um, trace=5, on_trace=seen.append)
    rows = np.concatenate(seen)
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3, 4]
    assert [int(r[1]) for r in rows] == [int(w) for w in words[:5]]
    assert int(rows[0][2 + 1]) == 3 and int(rows[1][2 + 2]) == ord("a")
    assert um._stdout.getvalue() == b"aaa"  # after the trace, the rest ran at full speed


def test_break_stops_before_the_instruction(um):
    boom = 10
    assert debug_run(um, break_pc=boom) is True
    assert int(um.st[0]) == boom and um._stdout.getvalue() == b"aaa"
    assert [int(r) for r in um.regs[:5]] == [0, 0, ord("a"), 1, 0xFFFFFFFF]


def test_a_break_never_reached_runs_to_the_end():
    with UniversalMachine(assemble("li r1, 66\nout r1\nhalt"), stdout=io.BytesIO()) as um:
        assert debug_run(um, break_pc=1000) is False
        assert um.halted and um._stdout.getvalue() == b"B"


def test_the_debugger_is_for_flat_classic_and_jit():
    with UniversalMachine(assemble("halt"), backend="paged", frames=16, swap=0) as um:
        with pytest.raises(InvalidArgument, match="flat, classic and jit"):
            debug_run(um, trace=1)


def test_trace_lines(um):
    out = io.StringIO()
    with pytest.raises(UMFault):
        shown_debug_run(um, out, trace=3)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ["pc", "word", "instruction"]
    assert lines[1] == "0x00000000  d2000003  loadimm r1, 3             r1=0x00000003"
    assert lines[3].startswith("0x00000002  d6000001  loadimm r3, 1")


@pytest.mark.parametrize("backend", ["flat", "jit"])
def test_cli_break_and_trace(capsys, tmp_path, backend):
    prog = program_file(tmp_path, "p", PROGRAM)
    code, out, err = call_main(capsys, "um", "run", prog, "--backend", backend, "--break", "0xa",
                               "--trace-instructions", "2")
    assert (code, out) == (0, "aaa")
    assert "stopped at the break point pc=0xa:" in err and "r2=0x00000061" in err and "loadimm r5, 0" in err
    assert len([line for line in err.splitlines() if line.startswith("0x")]) == 2


def test_cli_debug_prints_registers_at_a_fault(capsys, tmp_path):
    prog = program_file(tmp_path, "p", PROGRAM)
    code, out, err = call_main(capsys, "um", "run", prog)
    assert_one_error(code, err, "p.um: UM fault at pc=0xb")  # without --debug: one line
    with pytest.raises(UMFault):
        call_main(capsys, "--debug", "um", "run", prog)
    err = capsys.readouterr().err
    assert "UM state at the fault:" in err and "r3=0x00000001" in err and "div r5, r3, r5" in err


# ---------------------------------------------------------------- on the jit backend: its interpreter tier

# Copies itself into a longer segment whose tail (past the program's own end) is a loop
# printing 'j' 300 times, and runs the copy from there: a load program of a segment longer
# than segment 0, then code at pcs the old segment 0 did not have.
LONGER = """
        li  r1, end + tmpl_end - tmpl
        map r2, r1
        li  r3, 0
copying:                        ; copy[r3] = self[r3] for r3 < end
        load  r4, r0, r3
        store r2, r3, r4
        li  r4, 1
        add r3, r3, r4
        nand r4, r3, r3
        li  r5, end + 1
        add r4, r4, r5          ; end - r3
        li  r5, copying
        li  r1, tail
        cmov r1, r5, r4
        loadprog r0, r1
tail:   li  r3, 0               ; copy[end + r3] = tmpl[r3]
tcopy:  li  r5, tmpl
        add r5, r5, r3
        load  r4, r0, r5
        li  r5, end
        add r5, r5, r3
        store r2, r5, r4
        li  r4, 1
        add r3, r3, r4
        nand r4, r3, r3
        li  r5, tmpl_end - tmpl + 1
        add r4, r4, r5
        li  r5, tcopy
        li  r1, go
        cmov r1, r5, r4
        loadprog r0, r1
go:     li  r7, 300
        li  r4, end
        loadprog r2, r4         ; the copy, at its tail
tmpl:   li  r3, 'j'             ; runs at pc end + (label - tmpl) of the copy
        out r3
        nand r5, r6, r6
        add r7, r7, r5
        li  r4, end + t_done - tmpl
        li  r5, end
        cmov r4, r5, r7
        loadprog r6, r4
t_done: halt
tmpl_end:
end:
"""

# Two loops print 'a' and 'b' 20 times each; then the program patches both loops' letters
# (to 'c' and 'd') and runs them again: two stores into compiled code in a row.
PATCHED = """
        li  r7, 20
loopa:  li  r3, 'a'
        out r3
        nand r5, r6, r6
        add r7, r7, r5
        li  r4, aftera
        li  r5, loopa
        cmov r4, r5, r7
        loadprog r6, r4
aftera: li  r7, 20
loopb:  li  r3, 'b'
        out r3
        nand r5, r6, r6
        add r7, r7, r5
        li  r4, afterb
        li  r5, loopb
        cmov r4, r5, r7
        loadprog r6, r4
afterb: li  r1, patched
        load r2, r0, r1
        li  r4, patch
        li  r5, finish
        cmov r4, r5, r2         ; patched already: finish
        loadprog r0, r4
patch:  li  r2, 1
        store r0, r1, r2
        li32 r4, 0xD6000000 + 'c', r5
        li  r1, loopa
        store r0, r1, r4
        li32 r4, 0xD6000000 + 'd', r5
        li  r1, loopb
        store r0, r1, r4
        li  r7, 20
        li  r4, loopa
        loadprog r0, r4
finish: halt
patched: .word 0
"""
AFTERB = 18  # PATCHED's afterb: two one-word li and two loops of 8 words before it


@pytest.fixture
def compile_at_once(monkeypatch):
    """jit: compile a loop after its first pass, in the foreground, whatever the payoff."""
    from vm32.um.jit import runtime

    monkeypatch.setattr(runtime, "THRESHOLD", 2)
    monkeypatch.setattr(runtime, "BACKGROUND", False)
    monkeypatch.setattr(runtime, "PAYOFF", 0)


def _stepped(backend: str, source: str, *, run_first: int = 0, **debug) -> dict:
    """Run `source` on `backend`: `run_first` instructions at full speed, then debug_run
    with `debug` (its traced rows kept); what it printed and the state it ended in."""
    rows = []
    with UniversalMachine(assemble(source), backend=backend, stdout=io.BytesIO(), memory_size=1 << 22) as um:
        if run_first:
            um.run(max_instructions=run_first)
        before = int(um.st[ST_ICOUNT])
        stopped = debug_run(um, on_trace=rows.append, **debug)
        return dict(output=um._stdout.getvalue(), regs=um.regs.tolist(), pc=int(um.st[ST_PC]),
                    icount=int(um.st[ST_ICOUNT]), stopped=stopped, trace=np.concatenate(rows).tolist() if rows else [],
                    before=before, stats=um.stats(), tables=None if um.jit is None else len(um.jit.space.entries))


def test_jit_steps_in_its_interpreter_tier_through_a_longer_segment_0(compile_at_once):
    # The trace covers the load program of the longer copy and code past the old end;
    # the run then goes on compiled, over tables the driver resized for the copy.
    end = len(assemble(LONGER))
    flat, jit = (_stepped(b, LONGER, trace=1000) for b in ("flat", "jit"))
    assert jit["output"] == flat["output"] == b"j" * 300
    assert jit["trace"] == flat["trace"] and max(row[0] for row in jit["trace"]) >= end
    assert (jit["regs"], jit["icount"]) == (flat["regs"], flat["icount"])
    assert jit["tables"] >= end + 9 and jit["stats"]["jit_instructions"] > 0
    flat, jit = (_stepped(b, LONGER, break_pc=end + 1) for b in ("flat", "jit"))  # the tail's `out`
    assert jit["stopped"] and flat["stopped"]
    assert (jit["output"], jit["regs"], jit["pc"], jit["icount"]) == (b"", flat["regs"], end + 1, flat["icount"])


def test_jit_steps_through_stores_into_compiled_code(compile_at_once):
    # Both loops are compiled before the stepping starts; the stepped patch changes both:
    # each store must drop its region (the second must not hide the first).
    with UniversalMachine(assemble(PATCHED), backend="flat", stdout=io.BytesIO()) as um:
        assert int(assemble(PATCHED)[AFTERB]) >> 25 == 0xD0 >> 4 << 3 | 1  # li r1, (afterb's first word)
        assert debug_run(um, break_pc=AFTERB)
        at_afterb = int(um.st[ST_ICOUNT])
    jit = _stepped("jit", PATCHED, run_first=at_afterb - 30, trace=200)
    assert jit["before"] < at_afterb and jit["stats"]["jit_regions"] >= 2
    assert jit["output"] == b"a" * 20 + b"b" * 20 + b"c" * 20 + b"d" * 20
    assert jit["icount"] == _stepped("flat", PATCHED)["icount"]
