"""Recording a UM program's allocations (`vm32 um run --record-allocs`, vm32.um.recording):
the log grows as needed and is a valid allocation trace."""

from pathlib import Path

import numpy as np
import pytest

from vm32.errors import InvalidArgument
from vm32.heap import alloctrace
from vm32.um.asm import assemble
from vm32.um.machine import UniversalMachine
from vm32.um.recording import record_allocations

PROGRAMS = Path(__file__).parents[1] / "src" / "vm32" / "um" / "programs"


def test_a_long_recording_grows_its_log_and_is_a_valid_trace():
    events = record_allocations(assemble((PROGRAMS / "lists.uma").read_text()))
    assert events.shape[0] == 200_000  # 100,000 two-word nodes mapped, then all unmapped (> 2 x 65,536)
    assert (events[:100_000] == 2).all() and (events[100_000:] < 0).all()
    alloctrace.check_events(events, "lists")


def test_recording_keeps_the_program_output_and_needs_a_recording_backend():
    words = assemble((PROGRAMS / "hello.uma").read_text())
    with UniversalMachine(words, backend="classic", record_allocs=True) as um:
        um.run()
        assert um.recorded_events().shape == (0,)
        assert um._stdout.getvalue() == b"Hello, world!\n"
    with pytest.raises(InvalidArgument, match="runs on the flat, classic, jit backends, not paged"):
        UniversalMachine(words, backend="paged", record_allocs=True)
    with UniversalMachine(words) as um, pytest.raises(InvalidArgument, match="does not record"):
        um.recorded_events()
    assert np.int32 == record_allocations(words).dtype


# Maps of two sizes, unmapped out of order, ids reused, in a loop that the jit would compile
# on its second pass were it not recording; load programs (flat's copy of the code is a block
# of its heap, not a map of the program's).
RECORDED = """
        li r7, 30
    loop:
        li r1, 3
        map r2, r1
        li r1, 5
        map r3, r1
        map r4, r1
        unmap r3
        unmap r2
        nand r5, r6, r6         ; r5 = -1
        add r7, r7, r5
        li r1, done
        li r5, loop
        cmov r1, r5, r7
        loadprog r6, r1
    done:
        li r1, 1
        map r2, r1
        li r3, stop
        load r5, r6, r3
        store r2, r6, r5        ; r2 = [halt]
        loadprog r2, r6         ; a copy of it becomes segment 0
    stop:
        halt
"""


def test_flat_and_jit_record_the_trace_classic_records(monkeypatch, tmp_path):
    # (one test, the CLI's run included: the recording interpreter on flat compiles once,
    # ~13 s on a cold cache)
    from vm32.cli import main
    from vm32.um.jit import runtime

    monkeypatch.setattr(runtime, "THRESHOLD", 2)
    monkeypatch.setattr(runtime, "BACKGROUND", False)
    monkeypatch.setattr(runtime, "PAYOFF", 0)
    words = assemble(RECORDED)
    traces = {}
    for backend in ("classic", "flat", "jit"):
        with UniversalMachine(words, backend=backend, record_allocs=True, memory_size=1 << 22) as um:
            stats = um.run()
            traces[backend] = um.recorded_events()
            assert um.code_words().tolist() == [words[-1]]  # the halt, seen through the recording space
            assert len(um.space.handles) == 30 + 1  # one per live segment: each round's r4, the last map
    one_loop = [3, 5, 5, -2, -1]
    expected = [n if n > 0 else n - 5 * k for k in range(30) for n in one_loop] + [1]  # handle = event index
    assert traces["classic"].tolist() == expected
    assert traces["flat"].tolist() == traces["jit"].tolist() == expected
    alloctrace.check_events(traces["jit"], "recorded")
    assert stats["jit_regions"] == stats["jit_instructions"] == 0
    assert stats["interp_instructions"] == stats["instructions"] > 0
    program, trace = tmp_path / "recorded.um", tmp_path / "recorded.npz"
    program.write_bytes(words.astype(">u4").tobytes())
    assert main(["um", "run", str(program), "--backend", "jit", "--record-allocs", str(trace)]) == 0
    events, name = alloctrace.load(trace)
    assert name == "recorded.um" and events.tolist() == expected

