"""The flat UM backend on every heap policy (--heap-policy / heap_policy=): the same
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
