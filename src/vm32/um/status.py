"""Status codes the UM kernels return, and the fault kinds they stand for.

A kernel never raises: it stops and returns one of these codes; the Python
driver (`vm32.um.machine`) turns a fault code into a `vm32.errors.UMFault`
whose `kind` is the short name below and whose message is the long one.
"""

# Not faults: why a kernel call returned.
HALTED = 0  # op 7 executed
NEED_INPUT = 1  # op 11 found the input buffer empty; refill and call again
OUTPUT_FULL = 2  # the output buffer is full; drain it and call again
BUDGET = 3  # the instruction budget of this call is spent; call again to go on

# Not faults, from the jit backend's tier 0 only (vm32.um.kernel.um_run_tiered): the jit
# driver acts on them and calls again.
JIT_HOT = 4  # the jump target at pc reached the compile threshold
JIT_STALE = 5  # a store changed a word of compiled code
JIT_NEW_CODE = 6  # a load program of another segment replaced segment 0

# Faults: the machine stops for good (pc points at the failing instruction).
FAULT_BASE = 16
INVALID_INSTRUCTION = 16
PC_OUT_OF_RANGE = 17
INACTIVE_ARRAY = 18
INDEX_OUT_OF_BOUNDS = 19
UNMAP_ZERO = 20
UNMAP_INACTIVE = 21
DIVIDE_BY_ZERO = 22
OUTPUT_TOO_LARGE = 23
LOADPROG_INACTIVE = 24
OUT_OF_MEMORY = 25

FAULTS = {
    INVALID_INSTRUCTION: ("invalid-instruction", "the operator number is not 0..13"),
    PC_OUT_OF_RANGE: ("pc-out-of-range", "the execution finger points outside the 0 array"),
    INACTIVE_ARRAY: ("inactive-array", "index or amendment of an array that is not active"),
    INDEX_OUT_OF_BOUNDS: ("index-out-of-bounds", "the offset lies outside the array's capacity"),
    UNMAP_ZERO: ("unmap-zero", "abandonment of the 0 array"),
    UNMAP_INACTIVE: ("unmap-inactive", "abandonment of an array that is not active"),
    DIVIDE_BY_ZERO: ("divide-by-zero", "division by zero"),
    OUTPUT_TOO_LARGE: ("output-too-large", "output of a value above 255"),
    LOADPROG_INACTIVE: ("loadprog-inactive", "load program from an array that is not active"),
    OUT_OF_MEMORY: ("out-of-memory", "allocation failed: the machine's memory is exhausted"),
}
