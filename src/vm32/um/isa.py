"""The UM instruction set: opcodes, field layout, encode/decode.  One definition for all.

Standard operators (0-12)::

    31    28                      8  6 5  3 2  0
    +-------+---------------------+----+----+----+
    |  op   |       unused        | A  | B  | C  |
    +-------+---------------------+----+----+----+

Orthography (13)::

    31    28 27 25 24                            0
    +-------+-----+-------------------------------+
    |  13   |  A  |          value (25 bits)      |
    +-------+-----+-------------------------------+

The numba kernels decode with the same shifts, spelled out inline (`op_of`,
`reg_a` ... are plain functions usable from Python and from kernels).
"""

from vm32.jit import inline_kernel

CMOV, LOAD, STORE, ADD, MUL, DIV, NAND, HALT, MAP, UNMAP, OUT, IN, LOADPROG, LOADIMM = range(14)

MNEMONICS = (
    "cmov", "load", "store", "add", "mul", "div", "nand",
    "halt", "map", "unmap", "out", "in", "loadprog", "loadimm",
)
OPCODES = {name: op for op, name in enumerate(MNEMONICS)}

# Which of A, B, C each standard operator uses, in assembly operand order.
OPERANDS = {
    CMOV: "abc", LOAD: "abc", STORE: "abc", ADD: "abc", MUL: "abc", DIV: "abc", NAND: "abc",
    HALT: "", MAP: "bc", UNMAP: "c", OUT: "c", IN: "c", LOADPROG: "bc",
}

IMM_BITS = 25
IMM_MASK = (1 << IMM_BITS) - 1  # 0x1FFFFFF
WORD_MASK = 0xFFFFFFFF


@inline_kernel
def op_of(w):
    """Operator number (0-15) of instruction word `w`."""
    return (w >> 28) & 0xF


@inline_kernel
def reg_a(w):
    """Register A of a standard operator."""
    return (w >> 6) & 7


@inline_kernel
def reg_b(w):
    """Register B of a standard operator."""
    return (w >> 3) & 7


@inline_kernel
def reg_c(w):
    """Register C of a standard operator."""
    return w & 7


@inline_kernel
def imm_reg(w):
    """Register A of orthography (op 13)."""
    return (w >> 25) & 7


@inline_kernel
def imm_value(w):
    """The 25-bit value of orthography (op 13)."""
    return w & 0x1FFFFFF


def encode(op: int, a: int = 0, b: int = 0, c: int = 0) -> int:
    """Encode a standard operator (0-12) with registers a, b, c."""
    if not 0 <= op <= 12:
        raise ValueError(f"standard operator must be 0..12, not {op}")
    for r in (a, b, c):
        if not 0 <= r <= 7:
            raise ValueError(f"register must be 0..7, not {r}")
    return (op << 28) | (a << 6) | (b << 3) | c


def encode_imm(a: int, value: int) -> int:
    """Encode orthography: load the 25-bit `value` into register `a`."""
    if not 0 <= a <= 7:
        raise ValueError(f"register must be 0..7, not {a}")
    if not 0 <= value <= IMM_MASK:
        raise ValueError(f"orthography value must be 0..{IMM_MASK}, not {value}")
    return (LOADIMM << 28) | (a << 25) | value
