"""vm32.trace: real memory-reference traces replayed through vm32's own MMU, TLB and policies.

    readers   trace files (lackey, din, pin, rw, pages, u32, u64; gzip/xz/zstd) -> page references
    parsers   the compiled line parsers behind the readers
    fold      the rule that places 64-bit pages in the 32-bit simulator's region
"""
