"""vm32.trace: real memory-reference traces replayed through vm32's own MMU, TLB and policies.

    readers   trace files (lackey, din, pin, rw, pages, u32, u64; gzip/xz/zstd) -> page references
    parsers   the compiled line parsers behind the readers
    fold      the rule that places 64-bit pages in the 32-bit simulator's region
    sim       the replay: the kernel's page tables, TLB and policy hooks on a machine without data
    future    one pass over a trace: OPT's next uses, LRU's stack distances (its whole curve)
    sweep     miss-ratio curves over frame counts and policies, on local processes or Dask
    plot      the curves drawn with matplotlib
    record    valgrind lackey on a command, into a compressed trace

Presentation (tables, --explain lines) is vm32.ui.trace; the command is vm32.cli.trace.
"""
