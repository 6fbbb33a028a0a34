"""The jit backend: UM code compiled to host code on flat memory, exact on self-modifying code.

Parts, one job each (each testable alone):

    abi       the contract between tier 0 and compiled regions: the context array, the
              region function's signature and exits, the call intrinsic
    space     JitSpace: the flat space plus the compiled-word bitmap, entries, counts
    frontend  regions: straight runs, blocks, constant targets (the conditional-branch
              idiom), constants at block entries (a data flow)
    codegen   a region to LLVM IR text: registers as SSA values, checks as cold exits
    flatmem   the IR of segment accesses and allocations on flat memory (the memory
              seam of the back end: a paged model would replace this part only)
    irtext    the IR text writer
    helpers   map and unmap as C callables (the interpreter's own code)
    engine    llvmlite: optimise, emit, load and unload machine code, on first use only
    runtime   JitDriver: runs tier 0, compiles hot regions, installs and invalidates them

Tier 0 is the interpreter (vm32.um.kernel.um_run_tiered, the same `um_step` as the
flat backend's) counting entries at jump targets; a target entered THRESHOLD times
is compiled with the code around it that ran (a region) and from then on tier 0 calls
the region's machine code whenever it reaches one of its blocks.
"""
