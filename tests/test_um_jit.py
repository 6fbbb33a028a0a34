"""The jit backend (vm32.um.jit): its parts alone, hand-written programs, and jit against flat.

Every UM semantics and fault test already runs on jit (conftest.UM_BACKENDS).  Here:
the front end on UM words; hand-written programs that stress what a JIT can get wrong
(code that changes while compiled, jumps into compiled code, programs loaded and
changed); hypothesis programs, self-modifying and loading programs, run on jit and on
flat, which must agree on output, registers, the fault and its pc, and the instruction
count.  Compiling in the foreground at a threshold of 2 instructions (the `jit` fixture),
so that compiled code runs from the second pass of every loop, the same on every run.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vm32.errors import UMFault
from vm32.heap.core import M_HIGH
from vm32.um import isa
from vm32.um.asm import assemble
from vm32.um.jit import frontend, runtime
from vm32.um.kernel import ST_ICOUNT, ST_PC
from vm32.um.machine import UniversalMachine

MEMORY = 1 << 22


@pytest.fixture
def jit(monkeypatch):
    """Compile code after its first pass, in the foreground, whatever the payoff."""
    monkeypatch.setattr(runtime, "THRESHOLD", 2)
    monkeypatch.setattr(runtime, "BACKGROUND", False)
    monkeypatch.setattr(runtime, "PAYOFF", 0)


def outcome(program, backend: str, stdin: bytes = b"", max_instructions: int | None = None) -> dict:
    """Run `program` (words or assembly) on `backend`: what it printed, how it ended
    (halt, a fault with its pc and word, or the budget), its registers and counts."""
    words = assemble(program) if isinstance(program, str) else np.asarray(program, np.uint32)
    out = io.BytesIO()
    with UniversalMachine(words, backend=backend, stdin=stdin, stdout=out, memory_size=MEMORY) as um:
        try:
            um.run(max_instructions=max_instructions)
            end = ("halt",) if um.halted else ("budget",)
        except UMFault as fault:
            end = (fault.kind, fault.pc, fault.instruction)
        stats = um.stats()
        return dict(output=out.getvalue(), end=end, regs=um.regs.tolist(), pc=int(um.st[ST_PC]),
                    instructions=int(um.st[ST_ICOUNT]), maps=stats["segments_mapped"], stats=stats)


def same_on_jit(program, stdin: bytes = b"") -> dict:
    """Run `program` on flat and on jit; assert they agree; return the jit outcome."""
    expected = outcome(program, "flat", stdin)
    got = outcome(program, "jit", stdin)
    for key in ("output", "end", "regs", "pc", "instructions", "maps"):
        assert got[key] == expected[key], key
    return got


# ---------------------------------------------------------------- front end


def test_cmov_then_loadprog_is_a_branch_with_two_targets():
    code = assemble("""
        li r1, 10
        li r2, 20
        cmov r1, r2, r3
        loadprog r0, r1
    """)
    end, term, constants = frontend.scan_run(code, 0, len(code), set())
    assert (end, term.kind, term.targets) == (4, "jump", (20, 10))
    assert {10, 20} <= constants


def test_computed_jump_has_no_constant_target():
    code = assemble("load r1, r0, r2\nloadprog r0, r1")
    _, term, _ = frontend.scan_run(code, 0, len(code), set())
    assert term.kind == "jump" and term.targets == ()


def test_halt_input_and_invalid_words_end_a_run_for_the_interpreter():
    for text in ("halt", "in r1", ".word 0xE0000000"):
        code = assemble(f"li r1, 1\n{text}\nli r2, 2")
        end, term, _ = frontend.scan_run(code, 0, len(code), set())
        assert (end, term.kind, term.pc) == (2, "step", 1)


def test_region_follows_targets_that_ran_and_splits_blocks_at_them():
    src = """
    top:    li r1, mid
            li r2, top
            cmov r1, r2, r3
            nop
    mid:    nop
            li r4, cold
            loadprog r0, r1
    cold:   halt
    """
    code = assemble(src)
    mid, cold = 4, 7
    region = frontend.form_region(code, len(code), 0, lambda pc: pc != cold)
    assert sorted(region.blocks) == [0, mid]
    assert region.blocks[0].term.kind == "fall" and region.blocks[mid].term.targets == (0, mid)
    assert not region.holds(cold)
    # A constant the region loads that is a target that ran may be a return address: in.
    assert frontend.form_region(code, len(code), 0, lambda pc: True).holds(cold)


def test_entry_constants_know_the_jump_register_is_zero_after_a_jump():
    code = assemble("""
    top:    li r5, 7
            li r1, top
            loadprog r6, r1
    """)
    region = frontend.form_region(code, len(code), 0, lambda pc: True)
    constants = frontend.entry_constants(region, code)
    assert constants[0][6] is None  # entered from outside: r6 unknown
    region.assume_zero = frozenset({6})
    assert frontend.entry_constants(region, code)[0][6] == 0
    assert frontend.entry_constants(region, code)[0][5] is None  # 7 from the loop, unknown from the entry


def test_written_and_segment_registers():
    assert frontend.written_register(isa.encode_imm(3, 5)) == 3
    assert frontend.written_register(isa.encode(isa.MAP, 0, 4, 1)) == 4
    assert frontend.written_register(isa.encode(isa.STORE, 1, 2, 3)) is None
    code = assemble("load r1, r2, r3\nstore r4, r5, r6\nloadprog r7, r0")
    region = frontend.form_region(code, len(code), 0, lambda pc: True)
    assert frontend.segment_registers(region, code) == {2, 4, 7}


# ---------------------------------------------------------------- hand-written programs

COUNT_DOWN = """
        nand r5, r6, r6         ; r5 = -1
        add r7, r7, r5
        li r4, done
        li r5, loop
        cmov r4, r5, r7
        loadprog r6, r4
"""


def test_code_that_overwrites_the_instruction_it_runs_next(jit):
    # Each pass writes `li r1, c` over the word after the store, then prints r1.
    src = """
        li r7, 40
        li r3, 'A'
    loop:
        li32 r2, 0xD2000000, r1 ; loadimm r1, 0
        add r2, r2, r3
        li r1, patch
        store r6, r1, r2
    patch:
        li r1, '?'
        out r1
        li r1, 1
        add r3, r3, r1
    """ + COUNT_DOWN + "done: halt"
    got = same_on_jit(src)
    assert got["output"] == bytes(range(ord("A"), ord("A") + 40))
    assert got["stats"]["jit_invalidations"] >= 1


def test_overwriting_a_loop_body_from_outside_the_loop(jit):
    # The inner loop prints its immediate 30 times; between inner loops the outer loop
    # writes a new immediate into it, so compiled inner loops go stale.
    src = """
        li r0, 'a'
    outer:
        li32 r2, 0xD4000000, r1 ; loadimm r2, 0
        add r2, r2, r0
        li r1, body
        store r6, r1, r2
        li r7, 30
    loop:
    body:
        li r2, '?'
        out r2
    """ + COUNT_DOWN + """
    done:
        li r1, 1
        add r0, r0, r1
        li r1, 'f'
        nand r1, r1, r1
        add r1, r1, r0          ; r0 - 'f' - 1: zero once r0 passes 'f'
        li r4, end
        li r5, outer
        cmov r4, r5, r1
        loadprog r6, r4
    end:
        halt
    """
    got = same_on_jit(src)
    assert got["output"] == b"".join(bytes([c]) * 30 for c in b"abcdef")


def test_jump_into_the_middle_of_a_compiled_block(jit):
    # The loop runs compiled; then a computed jump lands on a word inside its block.
    src = """
        li r7, 20
        li r3, 0
        li r0, 0
    loop:
        li r1, 1
        add r3, r3, r1
    middle:
        li r1, '0'
        add r1, r1, r3
        out r1
    """ + COUNT_DOWN + """
    done:
        li r4, again
        li r5, end
        cmov r4, r5, r0         ; the second time: end
        loadprog r6, r4
    again:
        li r0, 1
        li r7, 3
        li r1, middle
        loadprog r6, r1
    end:
        halt
    """
    got = same_on_jit(src)
    assert got["output"] == bytes(ord("0") + i for i in [*range(1, 21), 20, 21, 22])


def test_load_program_of_a_segment_that_is_later_changed(jit):
    # The program copies itself into a new segment, then three times: patch the copy's
    # letter, load the copy (a new segment 0) and run its compiled loop.  Rounds one and
    # three load the same words (compiled code reused), round two different ones.
    src = """
    start:
        li r1, copy_id
        load r2, r6, r1         ; the copy's id (0 before the first copy)
        li r4, run
        li r5, make
        cmov r4, r5, r2         ; wrong way round on purpose: make the copy if 0
        nand r3, r2, r2
        li r4, make
        li r5, run
        cmov r4, r5, r2
        loadprog r6, r4
    make:
        li r1, end
        map r2, r1
        li r3, 0
    copying:
        load r4, r6, r3
        store r2, r3, r4
        li r4, 1
        add r3, r3, r4
        nand r4, r3, r3
        li r5, end + 1
        add r4, r4, r5          ; end - r3
        li r5, copying
        li r1, copied
        cmov r1, r5, r4
        loadprog r6, r1
    copied:
        li r1, copy_id
        store r2, r1, r2        ; the copy knows its own id
    run:
        li r1, round
        load r0, r6, r1
        li r3, 1
        add r0, r0, r3
        store r2, r1, r0        ; next round, in the copy
        li r1, 4
        nand r1, r1, r1
        add r1, r1, r0          ; round - 5: zero after round 4
        li r4, finish
        li r5, patch
        cmov r4, r5, r1
        loadprog r6, r4
    patch:
        li r1, letters - 1
        add r1, r1, r0
        load r3, r6, r1         ; this round's letter
        li32 r4, 0xD6000000, r5 ; loadimm r3, 0
        add r4, r4, r3
        li r1, letter
        store r2, r1, r4        ; patch the copy's loop
        li r4, loop
        loadprog r2, r4         ; the copy, at its loop
    loop:
        li r7, 25
    again:
    letter:
        li r3, '?'
        out r3
        nand r5, r6, r6
        add r7, r7, r5
        li r4, start
        li r5, again
        cmov r4, r5, r7
        loadprog r6, r4
    finish:
        halt
    copy_id: .word 0
    round:   .word 0
    letters: .string "xyxz"
    end:
    """
    got = same_on_jit(src)
    assert got["output"] == b"x" * 25 + b"y" * 25 + b"x" * 25 + b"z" * 25
    assert got["end"] == ("halt",) and got["stats"]["program_loads"] == 4


def test_computed_jump_table(jit):
    # A table of code addresses; each case prints a letter and jumps back.
    src = """
        li r7, 60
    loop:
        li r1, 3
        div r2, r7, r1
        mul r2, r2, r1
        nand r2, r2, r2
        add r2, r2, r7
        li r1, 1
        add r2, r2, r1          ; r7 mod 3
        li r1, table
        add r1, r1, r2
        load r1, r6, r1
        loadprog r6, r1
    case0:
        li r1, 'a'
        out r1
        li r1, next
        loadprog r6, r1
    case1:
        li r1, 'b'
        out r1
        li r1, next
        loadprog r6, r1
    case2:
        li r1, 'c'
        out r1
    next:
    """ + COUNT_DOWN + """
    done:
        halt
    table: .word case0, case1, case2
    """
    got = same_on_jit(src)
    assert got["output"] == b"".join(b"abc"[i % 3:i % 3 + 1] for i in range(60, 0, -1))
    assert got["stats"]["jit_instructions"] > got["stats"]["interp_instructions"]


def test_region_compiled_and_invalidated_thousands_of_times(jit):
    # Every pass patches its own loop body: the region goes stale at once, every time;
    # after a few invalidations the loop is left to the interpreter.
    src = """
        li r7, 5000
    loop:
        li r1, body
        load r2, r6, r1
        store r6, r1, r2        ; the same word again: still a change of compiled code
    body:
        li r3, 1
    """ + COUNT_DOWN + "done: halt"
    got = same_on_jit(src)
    assert got["stats"]["jit_invalidations"] <= runtime.MAX_INVALIDATIONS + 1
    assert got["stats"]["jit_regions"] <= runtime.MAX_INVALIDATIONS + 2


def test_fault_in_compiled_code_names_the_pc_the_interpreter_names(jit):
    # A compiled loop walks off the end of its segment.
    src = """
        li r1, 50
        map r2, r1
        li r3, 0
    loop:
    bad:
        load r4, r2, r3         ; fails at r3 = 50, in compiled code
        add r4, r4, r3
        store r2, r3, r4
        li r1, 1
        add r3, r3, r1
        li r4, loop
        loadprog r6, r4
    """
    got = same_on_jit(src)
    bad = int(assemble(src + "\n.word bad")[-1])
    assert got["end"][:2] == ("index-out-of-bounds", bad) and got["regs"][3] == 50
    assert got["stats"]["jit_instructions"] > 0


def test_interpreter_tier_only(monkeypatch):
    # compile=False: the jit backend is the interpreter, with the same results.
    src = "li r7, 100\nloop:\nli r1, 'k'\nout r1\n" + COUNT_DOWN + "done: halt"
    monkeypatch.setattr(runtime, "THRESHOLD", 2)
    words = assemble(src)
    with UniversalMachine(words, backend="jit", stdout=io.BytesIO(), memory_size=MEMORY) as um:
        um.jit.compile_enabled = False
        stats = um.run()
    assert stats["jit_instructions"] == 0 and stats["jit_regions"] == 0
    assert stats["interp_instructions"] == stats["instructions"]


def test_code_replaced_again_and_again_runs_cold_then_compiled_again(monkeypatch):
    # morph.uma in 6 rounds of 15,000-40,000 instructions, each a new segment 0 that maps
    # the next (longer each time) and a segment that stays, and unmaps the last.  The first
    # two are short-lived (< 20,000), so from the third on flat's interpreter runs, keeping
    # no segment table; round 4 goes 25,000 instructions without a load program, so tier 0
    # takes over (the table rebuilt from the heap) and compiles the loop; round 5 unmaps
    # round 4's segment, mapped while cold, through the table.  Output, registers and counts
    # as on flat; the table exact at the end (without the rebuild it misses the segments
    # mapped while cold).
    src = (Path(__file__).parents[1] / "src/vm32/um/programs/morph.uma").read_text()
    src = src.replace(".equ ROUNDS, 200", ".equ ROUNDS, 6").replace(".equ BASE, 150000", ".equ BASE, 50")
    src = src.replace("li      r1, 7\n", "li      r1, 700\n")
    src = src.replace("li      r1, end                 ; the next version: a copy of array 0 ...\n",
                      "li r1, end\nli r4, 64\nmul r4, r4, r0\nadd r1, r1, r4\n")  # copies 64 words longer each round
    src = src.replace("counted:\n", "counted:\nli r1, 3\nmap r5, r1\n")  # and a segment that stays, each round
    monkeypatch.setattr(runtime, "THRESHOLD", 50)
    monkeypatch.setattr(runtime, "BACKGROUND", False)
    monkeypatch.setattr(runtime, "REGION_SECONDS", 20_000 / runtime.PAYOFF)
    monkeypatch.setattr(runtime, "LONG_LIVED", 25_000)
    rebuilt = []
    real = runtime.rebuild_segment_table
    monkeypatch.setattr(runtime, "rebuild_segment_table", lambda space: rebuilt.append(real(space)))
    outcomes = {}
    for backend in ("flat", "jit"):
        out = io.BytesIO()
        with UniversalMachine(assemble(src), backend=backend, stdout=out, memory_size=MEMORY) as um:
            stats = um.run(slice_instructions=5_000)
            outcomes[backend] = (out.getvalue(), um.regs.tolist(), stats["instructions"], stats["program_loads"])
            if backend == "jit":
                space, heap = um.jit.space, um.jit.heap
                code = int(space.meta[0])
                live = [a for a in range(4096, heap.state[M_HIGH], 8) if a != code and heap.is_live(a)]
                assert np.flatnonzero(space.segwords).tolist() == [a >> 3 for a in live]
                assert [int(space.segwords[a >> 3]) - 1 for a in live] == [heap.size_of(a) >> 2 for a in live]
    assert outcomes["jit"] == outcomes["flat"] and outcomes["flat"][3] == 6
    assert len(rebuilt) == 1 and stats["jit_instructions"] > 0


def test_stats_name_the_jit_figures(jit):
    stats = same_on_jit("li r7, 10\nloop:\n" + COUNT_DOWN + "done: halt")["stats"]
    for key in ("jit_regions", "jit_words", "jit_compile_seconds", "jit_invalidations",
                "jit_instructions", "interp_instructions"):
        assert key in stats
    assert stats["jit_instructions"] + stats["interp_instructions"] == stats["instructions"]
    assert stats["jit_regions"] >= 1 and stats["jit_words"] >= 6


# ---------------------------------------------------------------- jit against flat

BODY_REGS = 4  # random instructions write r0..r3 (r1 holds a segment); r4, r5 are scratch,
# r6 is 0, r7 counts the passes


def _single(draw, self_modifying: bool) -> str:
    """One random instruction that writes only body registers.  Most go through r1, a
    segment of 8 words mapped at the start, at small offsets, so that most programs
    run a few passes before anything faults; some fault at once."""
    reg = st.integers(0, 7)
    dest = st.sampled_from([0, 2, 3, 0, 2, 3, 1])  # r1 (the segment) rarely
    small = st.sampled_from([0, 1, 2, 3, 5, 7, 17, 0x1FFFFFF])
    segment = st.sampled_from([1, 1, 1, 6, 6, 0, 2] if self_modifying else [1, 1, 1, 1, 6, 0])
    kind = draw(st.sampled_from(["li"] * 5 + ["arith"] * 5 + ["cmov"] * 2 + ["load"] * 3 + ["store"] * 2
                                + ["map", "map-unmap", "out", "div", "in"]))
    if kind == "li":
        return f"li r{draw(dest)}, {draw(small)}"
    if kind == "arith":
        return f"{draw(st.sampled_from(['add', 'mul', 'nand']))} r{draw(dest)}, r{draw(reg)}, r{draw(reg)}"
    if kind in ("cmov", "div"):
        return f"{kind} r{draw(dest)}, r{draw(reg)}, r{draw(reg)}"
    if kind == "load":
        return f"load r{draw(dest)}, r{draw(segment)}, r{draw(reg)}"
    if kind == "store":
        return f"store r{draw(segment)}, r{draw(reg)}, r{draw(reg)}"
    if kind == "map":
        return f"map r{draw(st.sampled_from([0, 2, 3]))}, r{draw(reg)}"
    if kind == "map-unmap":  # a fresh segment; now and then an id that is not one
        victim = draw(st.sampled_from([0, 0, 0, 2, 3, 5]))
        return f"map r0, r{draw(reg)}\n    unmap r{victim}"
    if kind == "in":
        return f"in r{draw(dest)}"
    return f"out r{draw(reg)}"


SAFE_WORDS = st.one_of(
    st.builds(isa.encode, st.sampled_from([isa.ADD, isa.MUL, isa.NAND, isa.CMOV]),
              st.integers(0, BODY_REGS - 1), st.integers(0, 7), st.integers(0, 7)),
    st.builds(isa.encode_imm, st.integers(0, BODY_REGS - 1), st.integers(0, 300)),
)


@st.composite
def looping_programs(draw, self_modifying: bool, reloads: int = 0):
    """A loop over random items, run a few times; self-modifying: some items write a
    random safe word over a one-word item; reloads: at the end the program copies itself
    into a new segment, patches a word of the copy and loads it, `reloads` times."""
    n = draw(st.integers(1, 12))
    singles = [i for i in range(n) if draw(st.integers(0, 3)) > 0]
    lines = ["    li r6, 0", f"    li r7, {draw(st.integers(4, 8))}"]
    lines += [f"    li r{r}, {draw(st.integers(0, 9))}" for r in range(BODY_REGS)]
    lines += ["    li r1, 8", "    map r1, r1", "entry:", "loop:"]
    for i in range(n):
        lines.append(f"L{i}:")
        if i in singles:
            lines.append("    " + _single(draw, self_modifying))
            continue
        kind = draw(st.sampled_from(["branch", "patch"] if self_modifying else ["branch"]))
        if kind == "branch" or not singles:
            target = f"L{draw(st.integers(i + 1, n))}" if i + 1 < n else "next"
            cond = draw(st.integers(0, 7))
            lines += [f"    li r3, {target.replace(f'L{n}', 'next')}", f"    li r2, L{i + 1}" if i + 1 < n else "    li r2, next",
                      f"    cmov r2, r3, r{cond}", "    loadprog r6, r2"]
        else:
            word = draw(SAFE_WORDS)
            lines += [f"    li32 r3, {word:#x}, r2", f"    li r2, L{draw(st.sampled_from(singles))}",
                      "    store r6, r2, r3"]
    lines += ["next:", COUNT_DOWN, "done:"]
    if reloads:
        lines += _reload(draw, singles, reloads)
    lines += ["    halt"]
    return "\n".join(lines)


def _reload(draw, singles: list[int], reloads: int) -> list[str]:
    """Epilogue: while word `left` > 0, decrement it, copy segment 0 into a new segment,
    maybe patch one word of the copy, and load it at `entry` with r7 reset."""
    patch = draw(st.one_of(st.none(), SAFE_WORDS)) if singles else None
    lines = [
        "    li r1, left", "    load r2, r6, r1", "    li r4, finish", "    li r5, reload",
        "    cmov r4, r5, r2", "    loadprog r6, r4",
        "reload:", "    nand r5, r6, r6", "    add r2, r2, r5", "    store r6, r1, r2",
        "    li r1, end", "    map r2, r1", "    li r3, 0",
        "copying:", "    load r4, r6, r3", "    store r2, r3, r4", "    li r4, 1", "    add r3, r3, r4",
        "    nand r4, r3, r3", "    li r5, end + 1", "    add r4, r4, r5",
        "    li r5, copying", "    li r1, copied", "    cmov r1, r5, r4", "    loadprog r6, r1",
        "copied:",
    ]
    if patch is not None:
        lines += [f"    li32 r3, {patch:#x}, r4", f"    li r4, L{draw(st.sampled_from(singles))}",
                  "    store r2, r4, r3"]
    lines += ["    li r7, 3", "    li r4, entry", "    loadprog r2, r4", "finish:", "    halt",
              f"left: .word {reloads}", "end:"]
    return lines


def _agree(src: str, stdin: bytes) -> None:
    """flat and jit agree on `src`, if flat ends within its budget."""
    expected = outcome(src, "flat", stdin, max_instructions=100_000)
    assume(expected["end"] != ("budget",))
    got = outcome(src, "jit", stdin, max_instructions=400_000)
    for key in ("output", "end", "regs", "pc", "instructions", "maps"):
        assert got[key] == expected[key], (key, src)


_SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.filter_too_much,
                                                                          HealthCheck.too_slow])


@_SETTINGS
@given(src=looping_programs(self_modifying=False), stdin=st.binary(max_size=4))
def test_random_loops_agree_with_flat(jit, src, stdin):
    _agree(src, stdin)


@_SETTINGS
@given(src=looping_programs(self_modifying=True), stdin=st.binary(max_size=4))
def test_random_self_modifying_loops_agree_with_flat(jit, src, stdin):
    _agree(src, stdin)


@_SETTINGS
@given(src=looping_programs(self_modifying=True, reloads=3))
def test_random_load_program_chains_agree_with_flat(jit, src):
    _agree(src, b"")


# ---------------------------------------------------------------- vm32 um jit-dump


def test_jit_dump_shows_the_hot_loop_beside_its_ir(jit, tmp_path, capsys):
    from vm32.cli import main

    src = "li r7, 50\nli r3, 0\nloop:\nli r1, 1\nadd r3, r3, r1\n" + COUNT_DOWN + "done: halt"
    (tmp_path / "loop.um").write_bytes(assemble(src).astype(">u4").tobytes())
    assert main(["um", "jit-dump", str(tmp_path / "loop.um")]) == 0
    out = capsys.readouterr().out
    loop = int(assemble(src + "\n.word loop")[-1])
    assert f"region entered at {loop:#x}" in out
    assert "add r3, r3, r1" in out and "add i32" in out  # the UM word beside its IR
    assert main(["um", "jit-dump", str(tmp_path / "loop.um"), "--pc", hex(loop + 1), "--asm"]) == 0
    assert "vm32_region" in capsys.readouterr().out


@pytest.mark.parametrize("args, fragment", [(["--pc", "0x0"], "no compiled region holds pc 0x0"),
                                            (["--pc", "zz"], "--pc"), ([], None)])
def test_jit_dump_errors(jit, tmp_path, capsys, args, fragment):
    from vm32.cli import main

    src = "li r7, 50\nloop:\n" + COUNT_DOWN + "done: halt"
    if not args:  # a program that never gets hot
        src, fragment = "halt", "never got hot"
    (tmp_path / "p.um").write_bytes(assemble(src).astype(">u4").tobytes())
    assert main(["um", "jit-dump", str(tmp_path / "p.um"), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vm32: error:") and fragment in err and "Traceback" not in err


def test_ctrl_c_stops_compiled_code(tmp_path):
    # An endless loop, compiled within a moment; SIGINT ends the run with status 130.
    import select
    import signal
    import subprocess
    import sys
    import time

    # It prints a byte first: once that arrives (after the first slice) the process has
    # started, whatever the machine's load, and the loop compiles within milliseconds.
    spin = "li r2, 33\nout r2\nloop: li r1, loop\nloadprog r0, r1"
    (tmp_path / "spin.um").write_bytes(assemble(spin).astype(">u4").tobytes())
    outcome("li r7, 2000\nloop:\n" + COUNT_DOWN + "done: halt", "jit")  # numba's cache holds the kernels
    proc = subprocess.Popen([sys.executable, "-m", "vm32", "um", "run", str(tmp_path / "spin.um"), "--backend",
                             "jit", "--stats"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready and proc.stdout.read(1) == b"!", "the program did not start"
        time.sleep(2)  # long enough to compile the loop
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # an endless loop must not outlive a failed test
        proc.wait()
    assert proc.returncode == 130, err
    stats = err.decode()
    assert "Traceback" not in stats
    compiled = stats.split("jit instructions")[1].split("\n")[0]  # its row of the --stats table
    assert int("".join(ch for ch in compiled if ch.isdigit())) > 0, stats


def test_check_heap_runs_in_the_interpreter_tier(monkeypatch):
    # Checking the heap must see every allocation: on jit nothing is compiled, even code
    # hot enough, and the leaks are flat's.
    monkeypatch.setattr(runtime, "THRESHOLD", 2)
    source = "li r7, 50\nloop:\nli r1, 3\nmap r2, r1\n" + COUNT_DOWN + "done: halt"
    leaks = {}
    for backend in ("flat", "jit"):
        with UniversalMachine(assemble(source), backend=backend, check_heap=True, memory_size=MEMORY) as um:
            stats = um.run()
            leaks[backend] = sorted((r["site"], r["nbytes"]) for r in um.heap_leaks())
    assert leaks["jit"] == leaks["flat"] == [(2, 12)] * 50  # the map at pc 2
    assert stats["jit_regions"] == stats["jit_instructions"] == 0
    assert stats["interp_instructions"] == stats["instructions"] > 0
