"""Disassembler: UM program words back to `vm32.um.asm` syntax.

Each word becomes one line that the assembler accepts and that assembles to
the same word, followed by a comment with the word's offset and hex value::

        loadimm r1, 72            ; 00000000: d2000048  'H'
        out r1                    ; 00000001: a0000001
        halt                      ; 00000002: 70000000

A word is shown as an instruction only when the assembler would rebuild it
bit for bit: the operator is 0..13 and every bit the operator ignores is 0.
Other words (operators 14 and 15, or stray bits in unused fields, which is
what data such as text or tables usually looks like) are shown as
``.word 0x........`` with the would-be instruction in the comment.  So
``assemble(disassemble(words))`` always reproduces `words`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vm32.um import isa

_COLUMN = 26  # where the offset comment starts


def decode(word: int) -> str | None:
    """Assembly text for `word`, or None if it is not a canonical instruction.

    Canonical: operator 0..13 and the bits the operator ignores are all 0.
    """
    word &= isa.WORD_MASK
    op = word >> 28
    if op == isa.LOADIMM:
        return f"loadimm r{(word >> 25) & 7}, {word & isa.IMM_MASK}"
    if op > isa.LOADIMM:
        return None
    text = _standard(word)
    if _canonical(op, word):
        return text
    return None


def disassemble(words: Sequence[int] | np.ndarray | bytes, start: int = 0,
                count: int | None = None) -> str:
    """Listing of `words[start:start+count]`, one re-assemblable line per word.

    `words` may be program words or a UM file's bytes (big-endian, length a
    multiple of 4).  Offsets in the listing are indices into `words`.
    """
    if isinstance(words, (bytes, bytearray, memoryview)):
        data = bytes(words)
        if len(data) % 4:
            raise ValueError(f"UM program bytes must be a multiple of 4 long, not {len(data)}")
        words = np.frombuffer(data, dtype=">u4")
    arr = np.asarray(words)
    stop = len(arr) if count is None else min(len(arr), start + count)
    return "".join(disassemble_word(int(arr[i]), i) + "\n" for i in range(start, stop))


def disassemble_word(word: int, offset: int = 0) -> str:
    """One listing line for `word` at `offset` (no newline)."""
    word &= isa.WORD_MASK
    text, note = _text_and_note(word)
    if decode(word) is not None and (word < 0x100 or (word >> 28 == isa.LOADIMM and (word & isa.IMM_MASK) < 0x100)):
        note = _char_note(word & 0xFF)
    return f"    {text:<{_COLUMN}}; {offset:08x}: {word:08x}{note}"


def instruction_text(word: int) -> str:
    """`word` as one instruction for a person (a debugger's line): its assembly text, or
    ``.word`` and why it is not a canonical instruction."""
    text, note = _text_and_note(word & isa.WORD_MASK)
    return text + note


def _text_and_note(word: int) -> tuple[str, str]:
    text = decode(word)
    if text is not None:
        return text, ""
    op = word >> 28
    if op <= isa.LOADPROG:
        return f".word {word:#010x}", f"  ({_standard(word)}, unused bits set)"
    return f".word {word:#010x}", f"  (operator {op} is not an instruction)"


def _standard(word: int) -> str:
    """Assembly text of a standard operator, naming only the registers it uses."""
    op = word >> 28
    regs = {"a": (word >> 6) & 7, "b": (word >> 3) & 7, "c": word & 7}
    fields = isa.OPERANDS[op]
    name = isa.MNEMONICS[op]
    if not fields:
        return name
    return f"{name} " + ", ".join(f"r{regs[f]}" for f in fields)


def _canonical(op: int, word: int) -> bool:
    """True if all bits that standard operator `op` ignores are 0 in `word`."""
    used = (0xF << 28)
    for field, shift in (("a", 6), ("b", 3), ("c", 0)):
        if field in isa.OPERANDS[op]:
            used |= 7 << shift
    return word & ~used & isa.WORD_MASK == 0


def _char_note(byte: int) -> str:
    """A comment showing `byte` as a character, when it is a printable one."""
    if byte == 10:
        return "  '\\n'"
    if 32 <= byte < 127:
        return f"  {chr(byte)!r}" if chr(byte) != "'" else "  \"'\""
    return ""
