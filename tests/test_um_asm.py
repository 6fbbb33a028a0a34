"""The UM assembler and disassembler: every construct, every error, round trips."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vm32.errors import AssemblyError
from vm32.um import isa
from vm32.um.asm import assemble, assemble_file, to_bytes
from vm32.um.disasm import decode, disassemble, disassemble_word


def words(source: str) -> list[int]:
    """Assemble and return plain ints (easier to compare)."""
    out = assemble(source)
    assert out.dtype == np.uint32
    return [int(w) for w in out]


# ---------------------------------------------------------------- instructions


@pytest.mark.parametrize("op", [isa.CMOV, isa.LOAD, isa.STORE, isa.ADD, isa.MUL, isa.DIV, isa.NAND])
def test_three_register_operators(op):
    name = isa.MNEMONICS[op]
    assert words(f"{name} r1, r2, r3") == [isa.encode(op, 1, 2, 3)]
    assert words(f"{name.upper()} R7,R0,R5") == [isa.encode(op, 7, 0, 5)]


def test_operators_with_fewer_registers():
    assert words("halt") == [0x70000000]
    assert words("map r2, r3") == [isa.encode(isa.MAP, 0, 2, 3)]
    assert words("unmap r4") == [isa.encode(isa.UNMAP, 0, 0, 4)]
    assert words("out r5") == [isa.encode(isa.OUT, 0, 0, 5)]
    assert words("in r6") == [isa.encode(isa.IN, 0, 0, 6)]
    assert words("loadprog r1, r2") == [isa.encode(isa.LOADPROG, 0, 1, 2)]


def test_loadimm_and_alias():
    assert words("loadimm r3, 42") == [isa.encode_imm(3, 42)]
    assert words("li r3, 42") == [isa.encode_imm(3, 42)]
    assert words(f"li r7, {isa.IMM_MASK}") == [isa.encode_imm(7, isa.IMM_MASK)]


def test_number_and_char_literals():
    assert words("li r1, 0x2A\nli r1, 0b101010\nli r1, '*'\nli r1, 1_000") == [
        isa.encode_imm(1, 42)] * 3 + [isa.encode_imm(1, 1000)]
    assert words(r"li r1, '\n'" + "\n" + r"li r1, '\''" + "\n" + r"li r1, '\x7f'") == [
        isa.encode_imm(1, 10), isa.encode_imm(1, 39), isa.encode_imm(1, 127)]
    assert words("li r1, ';'  ; a comment\nli r1, '#' # another") == [
        isa.encode_imm(1, ord(";")), isa.encode_imm(1, ord("#"))]


def test_pseudo_instructions():
    assert words("nop") == [0]
    assert words("not r1, r2") == [isa.encode(isa.NAND, 1, 2, 2)]
    expanded = words("li32 r1, 0xDEADBEEF, r7")
    assert expanded == [
        isa.encode_imm(1, 0xDEAD), isa.encode_imm(7, 0x10000), isa.encode(isa.MUL, 1, 1, 7),
        isa.encode_imm(7, 0xBEEF), isa.encode(isa.ADD, 1, 1, 7)]
    assert len(words("li32 r1, 5, r2")) == 5  # fixed size, whatever the value
    assert words("li32 r1, -1, r2")[0] == isa.encode_imm(1, 0xFFFF)


def test_li32_computes_the_value():
    # Evaluate the expansion with a tiny Python model of the five words.
    for value in (0, 1, 0x1FFFFFF, 0x2000000, 0xFFFF0000, 0xFFFFFFFF, 0x12345678):
        regs = [0] * 8
        for w in words(f"li32 r2, {value}, r5"):
            op = w >> 28
            if op == isa.LOADIMM:
                regs[(w >> 25) & 7] = w & isa.IMM_MASK
            elif op == isa.MUL:
                regs[(w >> 6) & 7] = regs[(w >> 3) & 7] * regs[w & 7] & 0xFFFFFFFF
            else:
                assert op == isa.ADD
                regs[(w >> 6) & 7] = (regs[(w >> 3) & 7] + regs[w & 7]) & 0xFFFFFFFF
        assert regs[2] == value


# ---------------------------------------------------------------- labels and data


def test_labels_are_word_offsets_forward_and_backward():
    src = """
    start:  li r1, end      ; forward reference
            li r2, start
    mid:    li32 r3, mid, r4
    end:    halt
    """
    out = words(src)
    assert out[0] == isa.encode_imm(1, 7)
    assert out[1] == isa.encode_imm(2, 0)
    assert out[2] == isa.encode_imm(3, 0)  # mid = 2, high half 0
    assert out[5] == isa.encode_imm(4, 2)
    assert out[7] == 0x70000000


def test_several_labels_on_one_line_and_label_only_lines():
    out = assemble("a: b:\nc: halt\n.word a, b, c")
    assert list(out) == [0x70000000, 0, 0, 0]


def test_label_expressions():
    assert words("x: .word x + 3, y - x, -1 + 2, 'a' - 'A'\ny: halt") == [3, 4, 1, 32, 0x70000000]


def test_word_directive():
    assert words(".word 1, 0xFFFFFFFF, -1, -2147483648") == [1, 0xFFFFFFFF, 0xFFFFFFFF, 0x80000000]


def test_space_directive():
    assert words(".space 3\n.word 9\n.space 0") == [0, 0, 0, 9]


def test_equ_directive():
    assert words(".equ N, 4\n.equ M, N + 1\n.space M\nli r1, N") == [0] * 5 + [isa.encode_imm(1, 4)]


def test_string_directive_and_escapes():
    out = words(r'.string "Hi, ;#\n\t\\\"\0\x41' + "'" + '"')
    assert out == [ord(c) for c in 'Hi, ;#\n\t\\"\0A\'']


def test_label_after_string_counts_characters():
    out = words('.string "abc"\nend: .word end')
    assert out[-1] == 3


def test_empty_source():
    assert assemble("").shape == (0,)
    assert assemble("; nothing\n\n   # here\n").shape == (0,)


def test_to_bytes_is_big_endian():
    assert to_bytes(np.array([0x01020304, 0xA0B0C0D0], dtype=np.uint32)) == bytes(
        [1, 2, 3, 4, 0xA0, 0xB0, 0xC0, 0xD0])
    assert to_bytes([]) == b""


def test_assemble_file(tmp_path):
    path = tmp_path / "p.uma"
    path.write_text("li r1, 'A'\nout r1\nhalt\n")
    assert list(assemble_file(path)) == [isa.encode_imm(1, 65), isa.encode(isa.OUT, c=1), 0x70000000]
    path.write_text("li r1, 'A'\nbogus r1\n")
    with pytest.raises(AssemblyError, match=re.escape(f"{path}:2: unknown mnemonic")):
        assemble_file(path)
    with pytest.raises(AssemblyError, match="cannot read"):
        assemble_file(tmp_path / "missing.uma")


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("source, line, message", [
    ("halt\nfrob r1", 2, "unknown mnemonic 'frob'"),
    (".frob 1", 1, "unknown directive '.frob'"),
    ("add r1, r2, r8", 1, "bad register 'r8'"),
    ("add r1, r2, x", 1, "expected a register"),
    ("add r1, r2, 3", 1, "expected a register"),
    ("out", 1, "out takes 1 operand, got 0"),
    ("add r1, r2", 1, "add takes 3 operands, got 2"),
    ("halt r1", 1, "halt takes 0 operands, got 1"),
    ("map r1, r2, r3", 1, "map takes 2 operands, got 3"),
    ("li r1", 1, "loadimm takes 2 operands"),
    ("li r1, 0x2000000", 1, "out of range"),
    ("li r1, -1", 1, "out of range"),
    ("li r1, r2", 1, "expected a value, got register 'r2'"),
    ("li r1, nowhere", 1, "undefined label 'nowhere'"),
    ("a: halt\n\na: halt", 3, "duplicate label 'a'"),
    (".equ a, 1\na: halt", 2, "duplicate label 'a'"),
    ("r3: halt", 1, "register name"),
    (".word 0x100000000", 1, "does not fit in 32 bits"),
    (".word -2147483649", 1, "does not fit in 32 bits"),
    (".word", 1, "at least one value"),
    (".word 1,", 1, "empty operand"),
    (".word 1,,2", 1, "empty operand"),
    (".word 1 2", 1, "unexpected '2'"),
    (".word 1 +", 1, "incomplete value"),
    (".word 0x_", 1, "bad number"),
    (".word 12abc", 1, "unexpected 'abc'"),
    (".word 'ab'", 1, "unexpected character"),
    (".word '\\q'", 1, "unknown escape"),
    (".word \"s\"", 1, "expected a value, got string"),
    (".string 5", 1, "expected a string literal"),
    (".string \"\\xZZ\"", 1, "two hex digits"),
    (".string \"caf\u00e9\u20ac\"", 1, "not a byte"),
    (".string \"open", 1, "unexpected character"),
    (".space -1", 1, "count must be"),
    (".space later\nlater: halt", 1, "defined before this line"),
    (".equ 5, 1", 1, "symbol name"),
    ("li32 r1, 5, r1", 1, "scratch register must differ"),
    ("li32 r1, 5", 1, "li32 takes 3 operands"),
    ("5 r1", 1, "expected a mnemonic"),
    ("add r1 @ r2", 1, "unexpected character '@'"),
])
def test_errors_name_file_and_line(source, line, message):
    with pytest.raises(AssemblyError) as info:
        assemble(source, "prog.uma")
    text = str(info.value)
    assert text.startswith(f"prog.uma:{line}: "), text
    assert message in text, text


def test_huge_space_is_refused_quickly():
    with pytest.raises(AssemblyError, match="count must be|larger than"):
        assemble(".space 1000000000000")


# ---------------------------------------------------------------- disassembler


def test_disassembly_lines_show_offset_hex_and_instruction():
    listing = disassemble(assemble("li r1, 'H'\nout r1\nhalt\n.word 0xF0000000"))
    lines = listing.splitlines()
    assert len(lines) == 4
    assert lines[0].split(";")[0].strip() == "loadimm r1, 72"
    assert "00000000: d2000048" in lines[0] and "'H'" in lines[0]
    assert lines[1].split(";")[0].strip() == "out r1"
    assert lines[2].split(";")[0].strip() == "halt"
    assert lines[3].split(";")[0].strip() == ".word 0xf0000000"
    assert "00000003: f0000000" in lines[3]


def test_disassemble_bytes_and_ranges():
    program = assemble("li r1, 1\nli r2, 2\nli r3, 3\nhalt")
    assert disassemble(to_bytes(program)) == disassemble(program)
    part = disassemble(program, start=1, count=2).splitlines()
    assert len(part) == 2 and "00000001:" in part[0] and "00000002:" in part[1]
    with pytest.raises(ValueError):
        disassemble(b"\x00\x00\x00")


def test_noncanonical_words_become_data():
    # halt with stray register bits, add with bits in the unused field
    for word in (0x70000001, 0x30000200, 0x90000038, 0xE0000000, 0xFFFFFFFF):
        assert decode(word) is None
        line = disassemble_word(word)
        assert line.split(";")[0].strip() == f".word {word:#010x}"
        assert list(assemble(line)) == [word]


def test_every_opcode_round_trips():
    for op in range(13):
        word = isa.encode(op, 1, 2, 3)
        fields = isa.OPERANDS[op]
        canonical = isa.encode(op, *(r if f in fields else 0 for f, r in zip("abc", (1, 2, 3))))
        assert list(assemble(disassemble([canonical]))) == [canonical]
        assert list(assemble(disassemble([word]))) == [word]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=20))
def test_round_trip_any_words(ws):
    assert list(assemble(disassemble(ws))) == ws


@settings(max_examples=300, deadline=None)
@given(op=st.integers(0, 13), a=st.integers(0, 7), b=st.integers(0, 7), c=st.integers(0, 7),
       value=st.integers(0, isa.IMM_MASK))
def test_round_trip_valid_instructions_decode_as_instructions(op, a, b, c, value):
    if op == isa.LOADIMM:
        word = isa.encode_imm(a, value)
    else:
        fields = isa.OPERANDS[op]
        regs = {"a": a, "b": b, "c": c}
        word = isa.encode(op, *(regs[f] if f in fields else 0 for f in "abc"))
    text = decode(word)
    assert text is not None and text.split()[0] == isa.MNEMONICS[op]
    assert list(assemble(text)) == [word]


def test_shipped_programs_assemble():
    from importlib.resources import files

    programs = files("vm32.um") / "programs"
    names = sorted(p.name for p in programs.iterdir() if p.name.endswith(".uma"))
    assert "demo.uma" in names
    for name in names:
        program = assemble((programs / name).read_text(), name)
        assert len(program) > 0
        assert list(assemble(disassemble(program))) == list(program)
