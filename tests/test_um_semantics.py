"""Every UM instruction's semantics, through small assembled programs, on every backend.

Programs print their results (`out_word` prints a register as 4 big-endian
bytes) and the tests compare the output with what the specification says.
"""

from importlib.resources import files

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vm32.um.asm import assemble
from vm32.um.kernel import ST_PC
from vm32.um.machine import UniversalMachine, run_program

M32 = 0xFFFFFFFF
HYPOTHESIS = settings(max_examples=25, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


def binop(op: str, b: int, c: int, out_word) -> str:
    """A program computing `op r3, r1, r2` on b, c and printing r3."""
    return f"li32 r1, {b}, r7\nli32 r2, {c}, r7\n{op} r3, r1, r2\n" + out_word("r3") + "halt\n"


def run_binop(op, b, c, backend, um_run, out_word, words_of) -> int:
    """The value `op` gives for (b, c) on `backend`."""
    return words_of(um_run(binop(op, b, c, out_word), backend).output)[0]


# ---------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("op, b, c, expected", [
    ("add", 0xFFFFFFFF, 2, 1),
    ("add", 0x80000000, 0x80000000, 0),
    ("add", 1234, 4321, 5555),
    ("mul", 0x10000, 0x10000, 0),
    ("mul", 0xFFFFFFFF, 0xFFFFFFFF, 1),
    ("mul", 0x12345, 0x6789, 0x12345 * 0x6789 & M32),
    ("mul", 0x80000000, 2, 0),
    ("div", 0xFFFFFFFF, 2, 0x7FFFFFFF),
    ("div", 0x80000000, 1, 0x80000000),
    ("div", 0xFFFFFFFF, 0xFFFFFFFF, 1),
    ("div", 7, 2, 3),
    ("div", 5, 7, 0),
    ("div", 0, 3, 0),
    ("nand", 0xF0F0F0F0, 0xFF00FF00, 0x0FFF0FFF),
    ("nand", 0, 0, 0xFFFFFFFF),
    ("nand", 0xFFFFFFFF, 0xFFFFFFFF, 0),
    ("nand", 0x12345678, 0x12345678, ~0x12345678 & M32),
])
def test_arithmetic(op, b, c, expected, backend, um_run, out_word, words_of):
    assert run_binop(op, b, c, backend, um_run, out_word, words_of) == expected


ORACLE = {
    "add": lambda b, c: (b + c) & M32,
    "mul": lambda b, c: (b * c) & M32,
    "div": lambda b, c: b // c,
    "nand": lambda b, c: ~(b & c) & M32,
}
word = st.one_of(st.integers(0, M32), st.sampled_from([0, 1, 2, 0x7FFFFFFF, 0x80000000, M32]))


@HYPOTHESIS
@given(op=st.sampled_from(sorted(ORACLE)), b=word, c=word)
def test_arithmetic_matches_python(op, b, c, backend, um_run, out_word, words_of):
    if op == "div" and c == 0:
        c = 1
    assert run_binop(op, b, c, backend, um_run, out_word, words_of) == ORACLE[op](b, c)


@HYPOTHESIS
@given(a=word, b=word, c=word)
def test_cmov_matches_python(a, b, c, backend, um_run, out_word, words_of):
    src = f"li32 r1, {a}, r7\nli32 r2, {b}, r7\nli32 r3, {c}, r7\ncmov r1, r2, r3\n"
    out = um_run(src + out_word("r1") + "halt", backend).output
    assert words_of(out) == [b if c else a]


def test_cmov_taken_and_not_taken(backend, um_run, out_word, words_of):
    src = """
        li r1, 11
        li r2, 22
        li r3, 1
        cmov r1, r2, r3     ; taken: r1 = 22
        li r4, 44
        cmov r4, r2, r0     ; not taken: r0 is 0
    """ + out_word("r1") + out_word("r4") + "halt"
    assert words_of(um_run(src, backend).output) == [22, 44]


def test_registers_start_at_zero(backend, um_run, out_word, words_of):
    src = "".join(f"add r1, r1, r{i}\n" for i in (0, 2, 3, 4, 5, 6, 7))  # sum of all eight
    assert words_of(um_run(src + out_word("r1") + "halt", backend).output) == [0]


def test_loadimm_25_bits_into_every_register(backend, um_run, out_word, words_of):
    # Fill the register with ones first: loadimm replaces all 32 bits (no sign extension).
    src = ""
    for r in range(8):
        value = 0x1FFFFFF - r
        src += f"li32 r{r}, 0xFFFFFFFF, r{(r + 1) % 8}\nli r{r}, {value}\n"
        if r != 1:
            src += f"cmov r1, r{r}, r{r}\n"
        src += out_word("r1")
    assert words_of(um_run(src + "halt", backend).output) == [0x1FFFFFF - r for r in range(8)]


def test_loadimm_raw_word(backend, um_run, out_word, words_of):
    # 0xDFFFFFFF = operator 13, register 7, value 0x1FFFFFF
    src = ".word 0xDFFFFFFF\nadd r1, r7, r0\n" + out_word("r1") + "halt"
    assert words_of(um_run(src, backend).output) == [0x1FFFFFF]


# ---------------------------------------------------------------- arrays


def test_map_gives_zeroed_nonzero_distinct_ids(backend, um_run, out_word, words_of):
    sizes = [1, 2, 3, 19, 100, 1000, 0, 4096, 7]
    src = ""
    for size in sizes:
        # map, then sum every word of the new array (must be 0), print the id and the sum
        src += f"""
            li r1, {size}
            map r2, r1
            li r3, 0                    ; sum
            li r4, {size}
        loop{size}:
            li r6, done{size}
            li r7, body{size}
            cmov r6, r7, r4
            loadprog r0, r6
        body{size}:
            not r5, r0
            add r4, r4, r5
            load r5, r2, r4
            add r3, r3, r5
            li r7, loop{size}
            loadprog r0, r7
        done{size}:
            add r4, r2, r0
        """ + out_word("r4") + out_word("r3")
    out = words_of(um_run(src + "halt", backend).output)
    ids, sums = out[0::2], out[1::2]
    assert sums == [0] * len(sizes)
    assert 0 not in ids
    assert len(set(ids)) == len(ids)


def test_unmap_then_map_reuses_and_rezeroes(backend, um_run, out_word, words_of):
    src = """
        li r1, 8
        map r2, r1
        li r3, 5
        li r4, 99
        store r2, r3, r4        ; a[5] = 99
        add r4, r2, r0
    """ + out_word("r4") + """
        unmap r2
        li r1, 8
        map r2, r1              ; same size again: the freed id comes back
        add r4, r2, r0
    """ + out_word("r4") + """
        li r3, 5
        load r4, r2, r3         ; and its words are zero again
    """ + out_word("r4") + "halt"
    first, second, value = words_of(um_run(src, backend).output)
    assert second == first
    assert value == 0


def test_map_unmap_churn_keeps_live_count(backend, um_run):
    # 5000 map/unmap pairs; the machine's counters see all of them
    src = """
        li r1, 5000
        li r3, 1
        not r4, r0              ; -1
    loop:
        map r2, r3
        unmap r2
        add r1, r1, r4
        li r6, done
        li r7, loop
        cmov r6, r7, r1
        loadprog r0, r6
    done:
        halt
    """
    stats = um_run(src, backend).stats
    assert stats["segments_mapped"] == 5000
    assert stats["segments_unmapped"] == 5000
    assert stats["peak_live_segments"] == 1
    assert stats["live_segments"] == 0


def test_live_and_peak_segments(backend, um_run):
    stats = um_run("li r1, 2\nmap r2, r1\nmap r3, r1\nmap r4, r1\nunmap r3\nmap r3, r1\nunmap r2\nhalt",
                   backend).stats
    assert (stats["live_segments"], stats["peak_live_segments"]) == (2, 3)


def test_load_store_round_trip(backend, um_run, out_word, words_of):
    src = """
        li r1, 3
        map r2, r1
        li32 r3, 0xCAFEBABE, r7
        li r4, 2
        store r2, r4, r3        ; a[2] = 0xCAFEBABE
        li r4, 0
        li r3, 17
        store r2, r4, r3        ; a[0] = 17
        li r4, 2
        load r1, r2, r4
    """ + out_word("r1") + """
        li r4, 0
        load r1, r2, r4
    """ + out_word("r1") + """
        li r4, 1
        load r1, r2, r4
    """ + out_word("r1") + """
        li r4, cell             ; array 0 is an array too
        li r3, 4242
        store r0, r4, r3
        load r1, r0, r4
    """ + out_word("r1") + "halt\ncell: .word 0"
    assert words_of(um_run(src, backend).output) == [0xCAFEBABE, 17, 0, 4242]


def test_arrays_are_independent(backend, um_run, out_word, words_of):
    src = """
        li r1, 4
        map r2, r1
        map r3, r1
        li r4, 1
        li r5, 111
        store r2, r4, r5
        li r5, 222
        store r3, r4, r5
        load r1, r2, r4
    """ + out_word("r1") + "li r4, 1\nload r1, r3, r4\n" + out_word("r1") + "halt"
    assert words_of(um_run(src, backend).output) == [111, 222]


# ---------------------------------------------------------------- load program


def test_loadprog_from_zero_is_a_jump(backend, um_run):
    src = """
        li r1, 'a'
        li r2, target
        loadprog r0, r2
        out r1                  ; skipped
    target:
        li r1, 'b'
        out r1
        halt
    """
    assert um_run(src, backend).output == b"b"


def test_self_modifying_code_in_array_zero(backend, um_run):
    # Amending array 0 changes what runs next (no stale predecoded code).
    src = """
        li r1, patch
        li r2, new
        load r3, r0, r2         ; the word of `new: out r4`
        store r0, r1, r3        ; patch: halt -> out r4
        li r4, 'x'
    patch:
        halt
        li r4, 'y'
        out r4
        halt
    new:
        out r4
    """
    assert um_run(src, backend).output == b"xy"


def test_loadprog_from_another_array_copies(backend, um_run):
    # Copy `block` into a new array and run it there; the code then amends its
    # source array, which must not change the running array 0.
    src = """
        li r1, block_end - block
        map r2, r1
        li r3, block_end - block
    copy:
        not r4, r0
        add r3, r3, r4
        li r4, block
        add r4, r4, r3
        load r4, r0, r4
        store r2, r3, r4
        li r6, run
        li r7, copy
        cmov r6, r7, r3
        loadprog r0, r6
    run:
        li r1, 1
        loadprog r2, r1          ; start at the block's second word
        halt                     ; never reached: array 0 is replaced
    block:
        halt                     ; offset 0: skipped, we start at 1
        li r3, 'A'
        out r3
        li r4, late - block
        li32 r5, 0x70000000, r6  ; r5 = the halt instruction
        store r2, r4, r5         ; amend the *source* array's copy of `late`
        load r3, r2, r4          ; the source really changed
        li32 r6, 0x7000000, r7
        div r3, r3, r6
        li r6, 'A' - 16 + 6
        add r3, r3, r6           ; 16 + 'A' - 16 + 6 = 'G'
        out r3
    late:
        li r3, 'B'               ; still runs: array 0 is a copy
        out r3
        li r4, 0
        load r3, r0, r4          ; array 0's first word is the block's halt
        li32 r6, 0x7000000, r7
        div r3, r3, r6
        li r6, 'a' - 16
        add r3, r3, r6
        out r3                   ; 'a'
        unmap r2                 ; the source array is still active
        halt
    block_end:
    """
    assert um_run(src, backend).output == b"AGBa"


def test_loadprog_runs_the_new_array(backend, um_run):
    # The loaded array [0, 0, halt] runs from offset 0: two no-op cmovs, then halt.
    src = """
        li r1, 3
        map r2, r1
        li r1, 0
        li32 r3, 0x70000000, r4
        li r4, 2
        store r2, r4, r3        ; [0, 0, halt]
        li r4, 0
        loadprog r2, r4
    """
    result = um_run(src, backend)
    assert result.output == b""
    assert result.stats["program_loads"] >= 1


# ---------------------------------------------------------------- I/O


def test_input_then_eof(backend, um_run, out_word, words_of):
    src = "".join("in r1\n" + out_word("r1") for _ in range(5)) + "halt"
    out = words_of(um_run(src, backend, stdin=b"\x00\xffA").output)
    assert out == [0, 255, 65, M32, M32]


def test_input_of_every_byte(backend):
    data = bytes(range(256)) * 2
    result = run_program(assemble_file_text("echo.uma"), stdin=data, backend=backend)
    upper = bytes(b - 32 if ord("a") <= b <= ord("z") else b for b in data)
    assert result.output == upper


def test_output_every_byte(backend, um_run):
    src = """
        li r1, 0
        li r2, 1
        li r3, 256
        not r3, r3
        add r3, r3, r2          ; -256
    loop:
        out r1
        add r1, r1, r2
        add r4, r1, r3          ; 0 when r1 == 256
        li r6, done
        li r7, loop
        cmov r6, r7, r4
        loadprog r0, r6
    done:
        halt
    """
    assert um_run(src, backend).output == bytes(range(256))


def test_large_output_and_input_cross_buffer_boundaries(backend):
    data = bytes((i * 7) % 251 for i in range(200_000))
    result = run_program(assemble_file_text("echo.uma"), stdin=data, backend=backend)
    assert result.output == bytes(b - 32 if 97 <= b <= 122 else b for b in data)


# ---------------------------------------------------------------- shipped programs


def assemble_file_text(name: str):
    """Assemble one of the programs shipped in vm32/um/programs."""
    path = files("vm32.um") / "programs" / name
    return assemble(path.read_text(), name)


def test_demo_program(backend):
    result = run_program(assemble_file_text("demo.uma"), backend=backend)
    text = result.output.decode()
    assert text.endswith("demo: all checks passed\n"), text
    assert "X" not in text.split("\n", 1)[1]
    assert "sum of squares 2646700" in text
    assert result.stats["instructions"] < 10_000_000
    assert result.stats["program_loads"] >= 2


def test_hello_program(backend):
    assert run_program(assemble_file_text("hello.uma"), backend=backend).output == b"Hello, world!\n"


def test_echo_program(backend):
    result = run_program(assemble_file_text("echo.uma"), stdin=b"Hi there, {UM} az@[`\n",
                         backend=backend)
    assert result.output == b"HI THERE, {UM} AZ@[`\n"


def test_program_as_file_bytes(backend):
    from vm32.um.asm import to_bytes

    program = to_bytes(assemble_file_text("hello.uma"))
    assert run_program(program, backend=backend).output == b"Hello, world!\n"


def test_machine_can_be_run_in_steps(backend):
    program = assemble_file_text("demo.uma")
    with UniversalMachine(program, backend=backend) as um:
        um.run(max_instructions=1000)
        assert not um.halted
        stats = um.run()
        assert um.halted
    assert stats["instructions"] == run_program(program, backend=backend).stats["instructions"]


# ---------------------------------------------------------------- instruction counts

def countdown(n: int) -> str:
    """UM source of a loop whose body runs `n` times, then halts."""
    return f"""
        li      r1, {n}
        not     r3, r0
        li      r7, done
        li      r6, loop
loop:   li      r5, body
        cmov    r7, r5, r1      ; r1 != 0: continue at body
        loadprog r0, r7
body:   li      r7, done
        add     r1, r1, r3
        loadprog r0, r6
done:   halt
"""


@pytest.mark.parametrize("n", [0, 1, 7])
def test_instruction_count_is_exact(backend, n):
    program = assemble(countdown(n))
    # 4 set-up + n * (3 + 3) + 3 (last test) + 1 halt
    expected = 4 + 6 * n + 3 + 1
    assert run_program(program, backend=backend).stats["instructions"] == expected
    with UniversalMachine(program, backend=backend) as um:  # one jump per call
        while not um.halted:
            um.run(max_instructions=1)
        assert um.stats()["instructions"] == expected


def test_failing_instruction_is_not_counted(backend):
    from vm32.errors import UMFault

    with UniversalMachine(assemble("li r1, 0\nli r2, 5\ndiv r3, r2, r1\nhalt\n"), backend=backend) as um:
        with pytest.raises(UMFault):
            um.run()
        assert um.stats()["instructions"] == 2
        assert int(um.st[ST_PC]) == 2  # pc stays at the failing instruction


# ---------------------------------------------------------------- sandmark


@pytest.mark.sandmark
def test_sandmark_output_is_exact(backend, um_corpus):
    program = (um_corpus / "sandmark.umz").read_bytes()
    expected = (um_corpus / "sandmark.expected").read_bytes()
    result = run_program(program, backend=backend)
    assert result.output == expected


def test_output_is_flushed_before_waiting_for_input(backend):
    # An interactive program's prompt must reach stdout before the machine reads.
    from io import BytesIO

    out = BytesIO()

    class Keyboard:
        """A stdin that records what stdout held when each read came."""

        def __init__(self):
            self.seen = []

        def read1(self, n):
            self.seen.append(out.getvalue())
            return b"y" if len(self.seen) == 1 else b""

    keyboard = Keyboard()
    program = assemble("li r1, '?'\nout r1\nin r2\nout r2\nin r2\nhalt")
    with UniversalMachine(program, backend=backend, stdin=keyboard, stdout=out,
                          memory_size=1 << 24) as um:
        um.run()
    assert keyboard.seen[0] == b"?"
    assert out.getvalue() == b"?y"


def test_recording_backend_logs_maps_and_unmaps():
    from vm32.um.recording import record_allocations

    program = assemble("""
        li r1, 3
        li r2, 5
        map r3, r1          ; handle 0: 3 words
        map r4, r2          ; handle 1: 5 words
        unmap r3            ; handle 0 goes
        map r3, r2          ; handle 2: 5 words (id reused by the classic table)
        unmap r4
        halt
    """)
    events = record_allocations(program)
    assert events.dtype == "int32" and events.tolist() == [3, 5, -1, 5, -2]
