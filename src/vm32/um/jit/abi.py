"""The contract between tier 0 (the interpreter) and compiled regions.

A compiled region is a native function

    i64 region(i64 pc, i32* regs, i64* jx, i64* st)

entered at `pc` (one of its entries) with the UM registers in `regs`, the
context `jx` (an int64 array laid out by the JX_* indexes below) and the
machine state `st` (vm32.um.kernel's ST_* layout).  It runs until it must
leave, stores the registers back, adds the instructions it completed to
jx[JX_ICOUNT] and returns ``(how << 32) | pc'``:

    EXIT_JUMP   go on at pc' (a jump to code outside the region, or the budget
                jx[JX_LIMIT] is spent: checked at every jump)
    EXIT_STEP   the interpreter must run the instruction at pc' (one the region
                leaves to it: a fault, a halt, input, a load program of another
                segment...); registers and counts are those before it
    EXIT_STALE  a store changed a word of compiled code (jx[JX_STALE] is that
                word's offset + 1); go on at pc', after the store

Tier 0 (vm32.um.kernel.um_run_tiered) calls regions through `call_region`.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

# The context array jx: where the space's arrays are (compiled code and the helpers
# rebuild the space from it), and the counters tier 0 and regions share.
JX_MEM = 0  # host address of physical memory (uint32 words)
JX_MEM_WORDS = 1  # its length
JX_HEAP = 2  # host address of the heap's state array (int64)
JX_HEAP_WORDS = 3  # its length
JX_META = 4  # host address of the space's meta array (int64[1]: segment 0's address)
JX_SEGWORDS = 5  # host address of the segment table (uint32, vm32.um.jit.space)
JX_SEGWORDS_LEN = 6  # its length
JX_BITMAP = 7  # host address of the compiled-word bitmap (uint8 per word of segment 0)
JX_ENTRIES = 8  # host address of the entries (int64 per word of segment 0)
JX_RAN = 9  # host address of the instructions run per region entry (int64 per word of segment 0)
JX_TABLES_LEN = 10  # length of bitmap, entries and ran
JX_OUT = 11  # host address of the output buffer (bytes)
JX_OUT_CAP = 12  # its length
JX_CODE = 13  # word index of segment 0 in memory (set by tier 0 before each call)
JX_ICOUNT = 14  # instructions executed (in and out of a region call)
JX_LIMIT = 15  # a region leaves at its next jump once JX_ICOUNT >= JX_LIMIT
JX_STALE = 16  # word offset + 1 of a store into compiled code; 0: none
JX_JIT_ICOUNT = 17  # instructions executed in compiled code, over all calls
JX_CALLS = 18  # region calls made by tier 0
JX_HOT = 19  # the jump target that became hot (with status JIT_HOT)
JX_SIZE = 20

EXIT_JUMP = 0
EXIT_STEP = 1
EXIT_STALE = 2

PC_MASK = 0xFFFFFFFF
EXIT_SHIFT = 32


def new_context() -> np.ndarray:
    """A zeroed context array."""
    return np.zeros(JX_SIZE, dtype=np.int64)


REGION_ARGS = ("pc", "regs", "jx", "st")


def region_type() -> ir.FunctionType:
    """The LLVM type of a compiled region (see the module docstring)."""
    i64 = ir.IntType(64)
    return ir.FunctionType(i64, [i64, ir.IntType(32).as_pointer(), i64.as_pointer(), i64.as_pointer()])


@intrinsic
def pointer_to(typingctx, addr, dtype):
    """The host address `addr` (an integer) as a pointer to `dtype` items (for numba.carray)."""
    if not (isinstance(addr, types.Integer) and isinstance(dtype, types.NumberClass)):
        return None
    ptr = types.CPointer(dtype.dtype)
    sig = ptr(addr, dtype)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return sig, codegen


@intrinsic
def call_region(typingctx, entry, pc, regs, jx, st):
    """Call the region function at host address `entry` (int64) at `pc`; its packed exit."""
    if not all(isinstance(a, types.Array) for a in (regs, jx, st)):
        return None
    sig = types.int64(entry, pc, regs, jx, st)

    def codegen(context, builder, sig, args):
        fn = builder.inttoptr(args[0], region_type().as_pointer())
        data = [context.make_array(t)(context, builder, v).data for t, v in zip(sig.args[2:], args[2:])]
        pc64 = args[1] if args[1].type.width == 64 else builder.zext(args[1], ir.IntType(64))
        return builder.call(fn, [pc64, *data])

    return sig, codegen
