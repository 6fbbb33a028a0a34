"""A two-pass assembler for Universal Machine programs.

The syntax, one statement per line::

    ; a comment (so is everything after '#')
    start:                      ; a label: its value is the word offset in the program
            li      r1, 'H'     ; loadimm r1, 72
            out     r1
    loop:   add     r2, r2, r3  ; labels may share a line with a statement
            halt
    msg:    .string "hi\\n\\0"  ; data: one character per word

Statements
    Every UM operator, by its name in `vm32.um.isa.MNEMONICS`, with registers
    in the order A, B, C for the operands it uses (`vm32.um.isa.OPERANDS`)::

        cmov a, b, c     load a, b, c     store a, b, c
        add a, b, c      mul a, b, c      div a, b, c      nand a, b, c
        halt             map b, c         unmap c          out c
        in c             loadprog b, c    loadimm a, value

    ``load rA, rB, rC`` reads array rB at offset rC; ``store rA, rB, rC``
    writes rC into array rA at offset rB; ``map rB, rC`` puts the id of a
    new array of rC words in rB; ``loadprog rB, rC`` jumps to offset rC after
    copying array rB to array 0 (no copy when rB holds 0: a plain jump).

    Aliases and pseudo-instructions (each expands to plain UM words):

    ``li rA, value``          loadimm (1 word)
    ``nop``                   cmov r0, r0, r0: changes nothing (1 word)
    ``not rA, rB``            nand rA, rB, rB (1 word)
    ``li32 rA, value, rT``    any 32-bit value in rA; always 5 words, and
                              clobbers the scratch register rT (which must
                              not be rA)::

                                  loadimm rA, value >> 16
                                  loadimm rT, 0x10000
                                  mul     rA, rA, rT
                                  loadimm rT, value & 0xFFFF
                                  add     rA, rA, rT

Directives
    ``.word v[, v...]``   one word per value (-2**31 .. 2**32-1; negative
                          values are stored in two's complement).
    ``.space n``          n zero words.
    ``.string "text"``    one word per character, no terminator added; escapes
                          ``\\n \\t \\r \\\\ \\" \\' \\0`` and ``\\xHH``.
    ``.equ NAME, value``  defines a constant symbol.

Operands
    Registers ``r0`` .. ``r7`` (case-insensitive).  A value is an expression:
    terms joined by ``+`` and ``-``, optionally with a leading ``-``.  A term is
    a decimal (``42``), hex (``0x2a``) or binary (``0b101010``) number
    (``_`` separators allowed), a character literal (``'*'``, ``'\\n'``), a
    label, or a `.equ` symbol.  So code meant to run from another array after
    ``loadprog`` can use ``target - block_start``.  Mnemonics, directives and
    register names are case-insensitive; labels are not.

    `.space` counts and `.equ` values may use only numbers and symbols
    defined on earlier lines (they fix the layout in the first pass);
    everything else may refer to labels anywhere in the file.

Errors raise `vm32.errors.AssemblyError` with a ``file:line: message`` text.

The program words come back as a numpy ``uint32`` array; `to_bytes` gives
the UM file format (big-endian words).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vm32.errors import AssemblyError
from vm32.um import isa

MAX_PROGRAM_WORDS = 1 << 26  # 256 MiB of program: a guard against `.space 10**12`

ALIASES = {"li": "loadimm"}
PSEUDO_SIZES = {"li32": 5, "nop": 1, "not": 1}
DIRECTIVES = (".word", ".space", ".string", ".equ")

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>[;\#].*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<char>'(?:[^'\\]|\\.[0-9a-fA-F]*)')
  | (?P<number>0[xX][0-9a-fA-F_]+|0[bB][01_]+|[0-9][0-9_]*)
  | (?P<ident>[A-Za-z_.][A-Za-z0-9_.$]*)
  | (?P<punct>[,:+\-])
    """,
    re.VERBOSE,
)
_REGISTER = re.compile(r"[rR]([0-9]+)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


@dataclass
class _Token:
    kind: str
    text: str


@dataclass
class _Statement:
    """One instruction or data directive, waiting for pass 2."""

    name: str
    operands: list[list[_Token]]
    offset: int
    line: int


class _Source:
    """Reports errors at a line of one source file."""

    def __init__(self, filename: str):
        self.filename = filename
        self.line = 0

    def error(self, message: str, line: int | None = None) -> AssemblyError:
        """An AssemblyError for `line` (default: the current line)."""
        return AssemblyError(f"{self.filename}:{self.line if line is None else line}: {message}")


def assemble(source: str, filename: str = "<input>") -> np.ndarray:
    """Assemble UM `source` text into program words (numpy uint32 array).

    Raises AssemblyError naming `filename` and the line of the first error.
    """
    src = _Source(filename)
    symbols: dict[str, int] = {}
    statements: list[_Statement] = []
    offset = 0
    for number, text in enumerate(source.splitlines(), start=1):
        src.line = number
        tokens = _tokenize(text, src)
        tokens = _take_labels(tokens, symbols, offset, src)
        if not tokens:
            continue
        stmt = _parse_statement(tokens, offset, src)
        size = _statement_size(stmt, symbols, src)
        if stmt.name != ".equ":
            statements.append(stmt)
        offset += size
        if offset > MAX_PROGRAM_WORDS:
            raise src.error(f"program larger than {MAX_PROGRAM_WORDS} words")
    words: list[int] = []
    for stmt in statements:
        src.line = stmt.line
        words.extend(_emit(stmt, symbols, src))
    return np.array(words, dtype=np.uint32)


def assemble_file(path: str | Path) -> np.ndarray:
    """Assemble the UM source file at `path`; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AssemblyError(f"{path}: cannot read assembly source: {exc}") from exc
    return assemble(text, str(path))


def to_bytes(words) -> bytes:
    """The UM program file format of `words`: each word as 4 big-endian bytes."""
    return np.asarray(words, dtype=np.uint32).astype(">u4").tobytes()


# ---------------------------------------------------------------- pass 1


def _tokenize(text: str, src: _Source) -> list[_Token]:
    """The tokens of one line, comments and blanks dropped."""
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise src.error(f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind not in ("ws", "comment"):
            tokens.append(_Token(kind, m.group()))
        pos = m.end()
    return tokens


def _take_labels(tokens: list[_Token], symbols: dict[str, int], offset: int,
                 src: _Source) -> list[_Token]:
    """Define the `label:` prefixes of a line at `offset`; return the rest."""
    while len(tokens) >= 2 and tokens[0].kind == "ident" and tokens[1].text == ":":
        _define(tokens[0].text, offset, symbols, src)
        tokens = tokens[2:]
    return tokens


def _define(name: str, value: int, symbols: dict[str, int], src: _Source) -> None:
    """Add symbol `name`; duplicates, register names and directives are errors."""
    if _REGISTER.fullmatch(name):
        raise src.error(f"{name!r} is a register name and cannot be a label")
    if name.startswith("."):
        raise src.error(f"label {name!r} must not start with '.'")
    if name in symbols:
        raise src.error(f"duplicate label {name!r}")
    symbols[name] = value


def _parse_statement(tokens: list[_Token], offset: int, src: _Source) -> _Statement:
    """Split `name op, op, ...` into the name and a token list per operand."""
    head = tokens[0]
    if head.kind != "ident":
        raise src.error(f"expected a mnemonic or directive, got {head.text!r}")
    operands: list[list[_Token]] = []
    if len(tokens) > 1:
        current: list[_Token] = []
        for tok in tokens[1:]:
            if tok.text == ",":
                if not current:
                    raise src.error("empty operand")
                operands.append(current)
                current = []
            else:
                current.append(tok)
        if not current:
            raise src.error("empty operand")
        operands.append(current)
    name = head.text.lower()
    name = ALIASES.get(name, name)
    return _Statement(name, operands, offset, src.line)


def _statement_size(stmt: _Statement, symbols: dict[str, int], src: _Source) -> int:
    """Words the statement occupies; `.equ` defines its symbol here (size 0)."""
    name = stmt.name
    if name in isa.OPCODES:
        return 1
    if name in PSEUDO_SIZES:
        return PSEUDO_SIZES[name]
    if name == ".word":
        if not stmt.operands:
            raise src.error(".word needs at least one value")
        return len(stmt.operands)
    if name == ".space":
        _count(stmt, 1, src)
        n = _value(stmt.operands[0], symbols, src, early=True)
        if not 0 <= n <= MAX_PROGRAM_WORDS:
            raise src.error(f".space count must be 0..{MAX_PROGRAM_WORDS}, not {n}")
        return n
    if name == ".string":
        _count(stmt, 1, src)
        return len(_string(stmt.operands[0], src))
    if name == ".equ":
        _count(stmt, 2, src)
        target = stmt.operands[0]
        if len(target) != 1 or target[0].kind != "ident":
            raise src.error(".equ needs a symbol name first")
        _define(target[0].text, _value(stmt.operands[1], symbols, src, early=True), symbols, src)
        return 0
    if name.startswith("."):
        raise src.error(f"unknown directive {name!r} (known: {', '.join(DIRECTIVES)})")
    raise src.error(f"unknown mnemonic {name!r}")


# ---------------------------------------------------------------- pass 2


def _emit(stmt: _Statement, symbols: dict[str, int], src: _Source) -> list[int]:
    """The words of one statement, all symbols now known."""
    name, ops = stmt.name, stmt.operands
    if name == "loadimm":
        _count(stmt, 2, src)
        value = _value(ops[1], symbols, src)
        if not 0 <= value <= isa.IMM_MASK:
            raise src.error(f"loadimm value {value} ({value:#x}) out of range 0..{isa.IMM_MASK:#x} "
                            "(25 bits); use li32 for larger values")
        return [isa.encode_imm(_register(ops[0], src), value)]
    if name in isa.OPCODES:
        op = isa.OPCODES[name]
        fields = isa.OPERANDS[op]
        _count(stmt, len(fields), src)
        regs = {f: _register(o, src) for f, o in zip(fields, ops)}
        return [isa.encode(op, regs.get("a", 0), regs.get("b", 0), regs.get("c", 0))]
    if name == "nop":
        _count(stmt, 0, src)
        return [isa.encode(isa.CMOV)]
    if name == "not":
        _count(stmt, 2, src)
        b = _register(ops[1], src)
        return [isa.encode(isa.NAND, _register(ops[0], src), b, b)]
    if name == "li32":
        return _emit_li32(stmt, symbols, src)
    if name == ".word":
        return [_word(o, symbols, src) for o in ops]
    if name == ".space":
        return [0] * _value(ops[0], symbols, src)
    if name == ".string":
        return [ord(ch) for ch in _string(ops[0], src)]
    raise src.error(f"internal: unhandled statement {name!r}")  # pass 1 filtered the rest


def _emit_li32(stmt: _Statement, symbols: dict[str, int], src: _Source) -> list[int]:
    """loadimm/mul/add words that put any 32-bit value in rA, using scratch rT."""
    _count(stmt, 3, src)
    a = _register(stmt.operands[0], src)
    value = _word(stmt.operands[1], symbols, src)
    t = _register(stmt.operands[2], src)
    if t == a:
        raise src.error("li32 scratch register must differ from the target register")
    return [
        isa.encode_imm(a, value >> 16),
        isa.encode_imm(t, 0x10000),
        isa.encode(isa.MUL, a, a, t),
        isa.encode_imm(t, value & 0xFFFF),
        isa.encode(isa.ADD, a, a, t),
    ]


# ---------------------------------------------------------------- operands


def _count(stmt: _Statement, n: int, src: _Source) -> None:
    """Require exactly `n` operands."""
    if len(stmt.operands) != n:
        plural = "operand" if n == 1 else "operands"
        raise src.error(f"{stmt.name} takes {n} {plural}, got {len(stmt.operands)}")


def _register(operand: list[_Token], src: _Source) -> int:
    """The register number 0..7 an operand names."""
    text = " ".join(t.text for t in operand)
    if len(operand) != 1 or operand[0].kind != "ident":
        raise src.error(f"expected a register r0..r7, got {text!r}")
    m = _REGISTER.fullmatch(operand[0].text)
    if m is None:
        raise src.error(f"expected a register r0..r7, got {text!r}")
    n = int(m.group(1))
    if n > 7:
        raise src.error(f"bad register {text!r}: the UM has r0..r7")
    return n


def _word(operand: list[_Token], symbols: dict[str, int], src: _Source) -> int:
    """A 32-bit word value; negative values wrap to two's complement."""
    value = _value(operand, symbols, src)
    if not -(1 << 31) <= value <= isa.WORD_MASK:
        raise src.error(f"value {value} does not fit in 32 bits")
    return value & isa.WORD_MASK


def _value(operand: list[_Token], symbols: dict[str, int], src: _Source,
           early: bool = False) -> int:
    """Evaluate `[-] term {(+|-) term}`; `early`: symbols so far must define it."""
    total = 0
    sign = 1
    expect_term = True
    for tok in operand:
        if expect_term:
            if tok.text == "-" and tok is operand[0]:
                sign = -1
                continue
            total += sign * _term(tok, symbols, src, early)
            expect_term = False
        elif tok.text in "+-" and tok.kind == "punct":
            sign = 1 if tok.text == "+" else -1
            expect_term = True
        else:
            raise src.error(f"unexpected {tok.text!r} in value "
                            f"{' '.join(t.text for t in operand)!r}")
    if expect_term:
        raise src.error(f"incomplete value {' '.join(t.text for t in operand)!r}")
    return total


def _term(tok: _Token, symbols: dict[str, int], src: _Source, early: bool) -> int:
    """The value of one number, character literal or symbol."""
    if tok.kind == "number":
        try:
            text = tok.text.replace("_", "")
            return int(text, 0) if text[1:2] in ("x", "X", "b", "B") else int(text, 10)
        except ValueError:
            raise src.error(f"bad number {tok.text!r}") from None
    if tok.kind == "char":
        chars = _unescape(tok.text[1:-1], src)
        if len(chars) != 1:
            raise src.error(f"bad character literal {tok.text}")
        return ord(chars)
    if tok.kind == "ident":
        if _REGISTER.fullmatch(tok.text):
            raise src.error(f"expected a value, got register {tok.text!r}")
        if tok.text in symbols:
            return symbols[tok.text]
        if early:
            raise src.error(f"symbol {tok.text!r} must be defined before this line")
        raise src.error(f"undefined label {tok.text!r}")
    if tok.kind == "string":
        raise src.error(f"expected a value, got string {tok.text}")
    raise src.error(f"expected a value, got {tok.text!r}")


def _string(operand: list[_Token], src: _Source) -> str:
    """The decoded text of a string-literal operand."""
    if len(operand) != 1 or operand[0].kind != "string":
        raise src.error(f"expected a string literal, got {' '.join(t.text for t in operand)!r}")
    return _unescape(operand[0].text[1:-1], src)


def _unescape(body: str, src: _Source) -> str:
    """Decode backslash escapes; only byte-sized (0..255) characters are allowed."""
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body):
                raise src.error("unfinished escape at end of literal")
            esc = body[i + 1]
            if esc == "x":
                digits = body[i + 2:i + 4]
                if len(digits) != 2 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                    raise src.error("\\x needs two hex digits")
                out.append(chr(int(digits, 16)))
                i += 4
                continue
            if esc not in _ESCAPES:
                raise src.error(f"unknown escape '\\{esc}'")
            out.append(_ESCAPES[esc])
            i += 2
            continue
        if ord(ch) > 255:
            raise src.error(f"character {ch!r} is not a byte (0..255)")
        out.append(ch)
        i += 1
    return "".join(out)
