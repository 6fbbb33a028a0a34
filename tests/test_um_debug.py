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


def test_the_debugger_is_for_flat_and_classic():
    with UniversalMachine(assemble("halt"), backend="paged", frames=16, swap=0) as um:
        with pytest.raises(InvalidArgument, match="flat and classic"):
            debug_run(um, trace=1)


def test_trace_lines(um):
    out = io.StringIO()
    with pytest.raises(UMFault):
        shown_debug_run(um, out, trace=3)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ["pc", "word", "instruction"]
    assert lines[1] == "0x00000000  d2000003  loadimm r1, 3             r1=0x00000003"
    assert lines[3].startswith("0x00000002  d6000001  loadimm r3, 1")


def test_cli_break_and_trace(capsys, tmp_path):
    prog = program_file(tmp_path, "p", PROGRAM)
    code, out, err = call_main(capsys, "um", "run", prog, "--break", "0xa", "--trace-instructions", "2")
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
