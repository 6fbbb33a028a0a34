"""Every UM fault kind, through small assembled programs, on every backend.

A fault is a `UMFault` whose `kind` names it, whose `pc` is the offset of the
failing instruction in array 0 and whose `instruction` is that word.  The
host process never crashes, whatever addresses a program makes up, and keeps
running other machines afterwards.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vm32.errors import UMFault
from vm32.um import isa
from vm32.um.asm import assemble
from vm32.um.machine import UniversalMachine, run_program
from vm32.um.status import FAULTS

KINDS = {kind for kind, _ in FAULTS.values()}


def fault_of(source: str, backend: str, um_run, stdin: bytes = b"", **kw) -> UMFault:
    """Run `source`, which must fault; return the UMFault."""
    with pytest.raises(UMFault) as info:
        um_run(source, backend, stdin=stdin, **kw)
    fault = info.value
    assert fault.kind in KINDS
    return fault


def assert_fault_at(source: str, kind: str, backend: str, um_run, output: bytes | None = None):
    """`source` faults with `kind` at the instruction labelled `bad:`."""
    program = assemble(source)
    bad = _label_offset(source, "bad")
    fault = fault_of(source, backend, um_run)
    assert fault.kind == kind, fault
    assert fault.pc == bad, fault
    assert fault.instruction == int(program[bad]), fault
    assert f"{bad:#x}" in str(fault)
    return fault


def _label_offset(source: str, label: str) -> int:
    """Offset of `label` in `source` (assembled with a `.word label` appended)."""
    return int(assemble(source + f"\n.word {label}")[-1])


# ---------------------------------------------------------------- one test per kind


def test_invalid_instruction(backend, um_run):
    for word in (0xE0000000, 0xF0000000, 0xFFFFFFFF, 0xE1234567):
        src = f"li r1, 'a'\nout r1\nbad: .word {word:#x}\nhalt"
        fault = assert_fault_at(src, "invalid-instruction", backend, um_run)
        assert fault.instruction == word


def test_output_written_before_fault_is_kept(backend):
    from io import BytesIO

    out = BytesIO()
    program = assemble("li r1, 'o'\nout r1\nout r1\n.word 0xE0000000")
    with pytest.raises(UMFault):
        with UniversalMachine(program, backend=backend, stdout=out, memory_size=1 << 24) as um:
            um.run()
    assert out.getvalue() == b"oo"


def test_pc_past_the_end(backend, um_run):
    fault = fault_of("li r1, 1\nli r2, 2", backend, um_run)
    assert fault.kind == "pc-out-of-range"
    assert fault.pc == 2


def test_jump_outside_array_zero(backend, um_run):
    for target in (1000, 0x1FFFFFF):
        fault = fault_of(f"li r1, {target}\nloadprog r0, r1\nhalt", backend, um_run)
        assert fault.kind == "pc-out-of-range"
        assert fault.pc == target


def test_pc_outside_a_loaded_array(backend, um_run):
    # Load a 2-word array of no-ops: running off its end is outside the new array 0.
    fault = fault_of("li r1, 2\nmap r2, r1\nloadprog r2, r0\nhalt\nhalt\nhalt", backend, um_run)
    assert fault.kind == "pc-out-of-range"
    assert fault.pc == 2


@pytest.mark.parametrize("op", ["load", "store"])
@pytest.mark.parametrize("ident", [3, 4, 8, 12345, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFC,
                                   0xFFFFFFFF])
def test_never_mapped_array(op, ident, backend, um_run):
    access = "load r3, r1, r2" if op == "load" else "store r1, r2, r3"
    src = f"li32 r1, {ident}, r7\nli r2, 0\nbad: {access}\nhalt"
    assert_fault_at(src, "inactive-array", backend, um_run)


@pytest.mark.parametrize("op", ["load", "store"])
def test_unmapped_array(op, backend, um_run):
    access = "load r3, r1, r2" if op == "load" else "store r1, r2, r3"
    src = f"li r4, 10\nmap r1, r4\nunmap r1\nli r2, 0\nbad: {access}\nhalt"
    assert_fault_at(src, "inactive-array", backend, um_run)


@pytest.mark.parametrize("delta", [1, 4, 8, 16, 0xFFFFFFFC])
def test_id_arithmetic_does_not_reach_other_words(delta, backend, um_run):
    # An id near the only live array's id (say, its address plus 4) is not an array.
    src = f"""
        li r4, 64
        map r1, r4
        li32 r6, {delta}, r7
        add r1, r1, r6
        li r2, 0
    bad: load r3, r1, r2
        halt
    """
    fault = fault_of(src, backend, um_run)
    assert fault.kind in ("inactive-array", "index-out-of-bounds")
    assert fault.pc == _label_offset(src, "bad")


@pytest.mark.parametrize("op", ["load", "store"])
@pytest.mark.parametrize("size, index", [(5, 5), (5, 6), (0, 0), (1, 0xFFFFFFFF), (3, 0x80000000),
                                         (19, 0x40000000)])
def test_index_out_of_bounds(op, size, index, backend, um_run):
    access = "load r3, r1, r2" if op == "load" else "store r1, r2, r3"
    src = f"li r4, {size}\nmap r1, r4\nli32 r2, {index}, r7\nbad: {access}\nhalt"
    assert_fault_at(src, "index-out-of-bounds", backend, um_run)


@pytest.mark.parametrize("op", ["load", "store"])
def test_index_out_of_bounds_in_array_zero(op, backend, um_run):
    access = "load r3, r0, r2" if op == "load" else "store r0, r2, r3"
    src = f"li r2, end\nbad: {access}\nhalt\nend:"
    assert_fault_at(src, "index-out-of-bounds", backend, um_run)


def test_last_word_is_in_bounds(backend, um_run):
    src = "li r4, 5\nmap r1, r4\nli r2, 4\nli r3, 'k'\nstore r1, r2, r3\nload r5, r1, r2\nout r5\nhalt"
    assert um_run(src, backend).output == b"k"


def test_unmap_zero(backend, um_run):
    assert_fault_at("li r1, 1\nbad: unmap r0\nhalt", "unmap-zero", backend, um_run)


@pytest.mark.parametrize("ident", [3, 8, 0xFFFFFFF0, 0x80000000])
def test_unmap_never_mapped(ident, backend, um_run):
    src = f"li32 r1, {ident}, r7\nbad: unmap r1\nhalt"
    assert_fault_at(src, "unmap-inactive", backend, um_run)


def test_unmap_twice(backend, um_run):
    src = "li r4, 3\nmap r1, r4\nunmap r1\nbad: unmap r1\nhalt"
    assert_fault_at(src, "unmap-inactive", backend, um_run)


def test_divide_by_zero(backend, um_run):
    src = "li r1, 7\nli r2, 0\nbad: div r3, r1, r2\nhalt"
    assert_fault_at(src, "divide-by-zero", backend, um_run)


@pytest.mark.parametrize("value", [256, 0x1000, 0xFFFFFFFF])
def test_output_too_large(value, backend, um_run):
    src = f"li32 r1, {value}, r7\nbad: out r1\nhalt"
    assert_fault_at(src, "output-too-large", backend, um_run)


@pytest.mark.parametrize("ident", [5, 0xFFFFFFF0, 0x80000000])
def test_loadprog_never_mapped(ident, backend, um_run):
    src = f"li32 r1, {ident}, r7\nbad: loadprog r1, r0\nhalt"
    assert_fault_at(src, "loadprog-inactive", backend, um_run)


def test_loadprog_unmapped(backend, um_run):
    src = "li r4, 3\nmap r1, r4\nunmap r1\nbad: loadprog r1, r0\nhalt"
    assert_fault_at(src, "loadprog-inactive", backend, um_run)


@pytest.mark.parametrize("words", [0xFFFFFFFF, 0x80000000, 0x1000001])
def test_out_of_memory(words, backend, um_run):
    # The test machines have 64 MiB: more than 16 Mi words cannot fit.
    src = f"li32 r1, {words}, r7\nbad: map r2, r1\nhalt"
    assert_fault_at(src, "out-of-memory", backend, um_run)


def test_out_of_memory_by_many_small_arrays(backend, um_run):
    # 1 Mi-word arrays until memory (4 MiB here) runs out.
    src = """
        li r1, 0x100000
    loop:
    bad: map r2, r1
        li r7, loop
        loadprog r0, r7
    """
    fault = fault_of(src, backend, um_run, memory_size=4 << 20)
    assert fault.kind == "out-of-memory"
    assert fault.pc == _label_offset(src, "bad")


# ---------------------------------------------------------------- messages and survival


def test_fault_message_names_pc_instruction_and_reason(backend, um_run):
    fault = fault_of("li r1, 7\nli r2, 0\ndiv r3, r1, r2", backend, um_run)
    text = str(fault)
    assert "pc=0x2" in text
    assert f"{isa.encode(isa.DIV, 3, 1, 2):#010x}" in text
    assert "division by zero" in text
    assert fault.reason == "division by zero"


def test_every_fault_kind_is_covered():
    # Keeps this file in step with vm32.um.status: each kind has a test above.
    tested = {"invalid-instruction", "pc-out-of-range", "inactive-array", "index-out-of-bounds",
              "unmap-zero", "unmap-inactive", "divide-by-zero", "output-too-large",
              "loadprog-inactive", "out-of-memory"}
    assert KINDS == tested


def test_machine_runs_after_faults(backend, um_run):
    for src in ("li r1, 0\ndiv r1, r1, r1", "unmap r0", "li32 r1, 0xFFFFFFF0, r7\nload r2, r1, r0",
                ".word 0xF0000000"):
        with pytest.raises(UMFault):
            um_run(src, backend)
    assert um_run("li r1, 'o'\nout r1\nli r1, 'k'\nout r1\nhalt", backend).output == b"ok"


HOSTILE = [
    isa.encode(isa.LOAD, 1, 2, 3), isa.encode(isa.STORE, 1, 2, 3), isa.encode(isa.MAP, 0, 2, 3),
    isa.encode(isa.UNMAP, 0, 0, 2), isa.encode(isa.LOADPROG, 0, 2, 3), isa.encode(isa.ADD, 2, 2, 3),
    isa.encode(isa.MUL, 3, 3, 3), isa.encode(isa.NAND, 2, 2, 2), isa.encode(isa.CMOV, 1, 3, 2),
    isa.encode(isa.DIV, 2, 3, 1), isa.encode(isa.OUT, 0, 0, 1), isa.encode(isa.IN, 0, 0, 2),
]
instruction = st.one_of(
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from(HOSTILE),
    st.builds(isa.encode_imm, st.integers(0, 7), st.integers(0, isa.IMM_MASK)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.lists(instruction, min_size=1, max_size=40), data=st.binary(max_size=8))
def test_random_programs_never_crash_the_host(program, data, backend):
    # Whatever the words, a run ends in a halt, a UMFault, or the budget.
    words = np.array(program, dtype=np.uint32)
    with UniversalMachine(words, backend=backend, stdin=data, memory_size=1 << 22) as um:
        try:
            um.run(max_instructions=20_000)
        except UMFault as fault:
            assert fault.kind in KINDS
            assert fault.pc >= 0
    after = np.array([isa.encode_imm(1, 33), isa.encode(isa.OUT, c=1), 0x70000000], dtype=np.uint32)
    assert run_program(after, backend=backend, memory_size=1 << 22).output == b"!"
