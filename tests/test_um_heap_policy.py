"""The flat, paged and jit UM backends on every heap policy (--heap-policy / heap_policy=): the same
programs give the same output, and a segment's bounds are its requested size whatever
block the policy gives it."""

from pathlib import Path

import pytest

from vm32.errors import InvalidArgument, UMFault
from vm32.um.asm import assemble
from vm32.um.machine import run_program

PROGRAMS = Path(__file__).parents[1] / "src" / "vm32" / "um" / "programs"
MEMORY = 16 << 20
POLICIES = ("first", "buddy")  # one list policy and one power-of-two policy (each a compile of the UM)


@pytest.mark.parametrize("policy", POLICIES)
def test_demo_program_passes_its_checks(policy):
    words = assemble((PROGRAMS / "demo.uma").read_text())
    out = run_program(words, backend="flat", heap_policy=policy, memory_size=MEMORY)
    assert b"demo: all checks passed" in out.output
    assert out.stats["segments_mapped"] > 200


@pytest.mark.parametrize("policy", POLICIES)
def test_bounds_are_the_requested_size(policy):
    source = """
        li r1, 3
        map r2, r1
        li r3, 2
        load r4, r2, r3      ; the last word: fine
        li r3, 3
bad:    load r4, r2, r3      ; one past: out of bounds, though the block is larger
        halt
    """
    with pytest.raises(UMFault) as info:
        run_program(assemble(source), backend="flat", heap_policy=policy, memory_size=MEMORY)
    assert info.value.kind == "index-out-of-bounds" and info.value.pc == 5


def test_heap_policy_errors():
    words = assemble("halt\n")
    with pytest.raises(InvalidArgument, match="unknown heap policy 'fits'"):
        run_program(words, heap_policy="fits")
    with pytest.raises(InvalidArgument, match="classic backend runs the tlsf allocator only"):
        run_program(words, backend="classic", heap_policy="buddy")


LEAKY = """
        li r1, 3
        li r2, 10
        map r3, r1          ; pc 2: never unmapped
        map r4, r2          ; pc 3: unmapped
        unmap r4
        li r5, 3
loop:   map r6, r1          ; pc 6: three segments never unmapped
        li r7, 0
        not r7, r7
        add r5, r5, r7
        li r6, done
        li r7, loop
        cmov r6, r7, r5
        loadprog r0, r6
done:   halt
"""


def test_check_heap_reports_leaks_by_map_pc(tmp_path, capsys):
    from vm32.cli import main
    from vm32.um.machine import UniversalMachine

    with UniversalMachine(assemble(LEAKY), check_heap=True, memory_size=MEMORY) as um:
        um.run()
        leaks = um.heap_leaks()
        assert sorted((r["site"], r["nbytes"]) for r in leaks) == [(2, 12), (6, 12), (6, 12), (6, 12)]
        assert um.heap.check() == []
    program = tmp_path / "leaky.um"
    program.write_bytes(assemble(LEAKY).astype(">u4").tobytes())
    assert main(["um", "run", str(program), "--check-heap", "--heap-policy", "buddy"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "leaky.um: heap check: 4 segments never unmapped (48 B), mapped at 2 pcs:",
        "  pc=0x6 (map r6, r1): 3 segments, 36 B",
        "  pc=0x2 (map r3, r1): 1 segment, 12 B",
    ]
    assert main(["um", "run", str(program), "--check-heap", "--backend", "classic"]) == 1
    assert "--check-heap runs one program on --backend flat" in capsys.readouterr().err


def test_check_heap_keeps_the_program_correct():
    words = assemble((PROGRAMS / "demo.uma").read_text())
    out = run_program(words, backend="flat", check_heap=True, memory_size=MEMORY)
    assert b"demo: all checks passed" in out.output


def test_paged_processes_on_another_policy_agree_with_flat():
    # Segments are blocks of each process's heap: on buddy (power-of-two blocks, its own
    # header) the paged interpreter runs buddy's kernels, and bounds stay the requested size.
    from vm32.um.multi import run_programs

    demo = assemble((PROGRAMS / "demo.uma").read_text())
    runs, _ = run_programs([demo, demo], frames=32, memory_size="4M", heap_policy="buddy")
    expected = run_program(demo, backend="flat", memory_size=MEMORY).output
    for run in runs:
        assert run.error is None and run.um._stdout.getvalue() == expected
        heap = run.um.paged.heap.counters()
        assert heap["policy"] == "buddy" and heap["mallocs"] == heap["frees"] + 1  # segment 0 stays


def test_cli_heap_policy_on_paged(tmp_path, capsys):
    from vm32.cli import main

    program = tmp_path / "demo.um"
    program.write_bytes(assemble((PROGRAMS / "demo.uma").read_text()).astype(">u4").tobytes())
    assert main(["um", "run", str(program), "--backend", "paged", "--heap-policy", "buddy"]) == 0
    assert b"demo: all checks passed" in capsys.readouterr().out.encode()
    assert main(["um", "run", str(program), "--backend", "classic", "--heap-policy", "first"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("vm32: error: --heap-policy first: the classic backend")


def test_jit_runs_another_policy_in_its_interpreter_tier():
    # The jit's compiled regions map and unmap through tlsf's helpers: another policy keeps
    # the run in the interpreter tier (the flat space on that policy), with the same output.
    demo = assemble((PROGRAMS / "demo.uma").read_text())
    out = run_program(demo, backend="jit", heap_policy="buddy", memory_size=MEMORY)
    assert out.output == run_program(demo, backend="flat", memory_size=MEMORY).output
    assert out.stats["jit_regions"] == 0 and out.stats["interp_instructions"] == out.stats["instructions"]
