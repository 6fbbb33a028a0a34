"""The back end's memory seam: the IR of every segment access and allocation, on flat memory.

The region compiler (`vm32.um.jit.codegen`) never writes a memory access itself; it
asks a memory model for one.  `FlatMemory` is the model of the jit space
(vm32.um.jit.space): a segment id is the address of the segment's first word, and
one load from the segment table says whether the id is an active segment and how
many words it has (the table's entry is n + 1, or 0).  A paged model would implement
the same methods with a translation in front of each access.

An access whose segment may be 0 or another one is a select, not a branch: the
base is segment 0's or the segment's, the bound segment 0's length (a constant of the
region) or the table's entry, and one unsigned compare checks the offset against it.
A constant offset into segment 0 needs no check at all.  Within a block the table
entry of a segment is loaded once (until the next map or unmap).
"""

from __future__ import annotations

from vm32.um.jit.abi import JX_BITMAP, JX_MEM, JX_SEGWORDS, JX_STALE
from vm32.um.jit.irtext import i32
from vm32.um.jit.space import GRANULE_SHIFT

ALIAS_CLASSES = ("payload", "segtable", "bitmap", "ctx", "st", "out", "regs")

HELPERS = {
    "vm32_jit_map": "declare i32 @vm32_jit_map(i64*, i64*, i32) nounwind",
    "vm32_jit_unmap": "declare i32 @vm32_jit_unmap(i64*, i64*, i32) nounwind",
}
"""The compiled helpers regions call (vm32.um.jit.helpers), by symbol name."""


class FlatMemory:
    """IR for segment accesses on the jit space's flat memory; see the module docstring.

    `table_len` is the segment table's length and `ncode` the length of segment 0 the
    region is compiled for (both constants of the compiled code).
    """

    ALIAS_CLASSES = ALIAS_CLASSES

    def __init__(self, table_len: int, ncode: int):
        self.table_len = table_len
        self.ncode = ncode

    def declarations(self) -> str:
        """Declarations of the helpers and intrinsics the IR uses."""
        return "\n".join([*HELPERS.values(), "declare i32 @llvm.fshr.i32(i32, i32, i32)"]) + "\n"

    def prologue(self, g) -> None:
        """Set up the function-wide pointers (in the entry block): %mem, %code (segment 0),
        %segwords, %bitmap."""
        f = g.f
        f.let("mem", f"inttoptr i64 {g.ctx(JX_MEM)} to i32*")
        f.let("segwords", f"inttoptr i64 {g.ctx(JX_SEGWORDS)} to i32*")
        f.let("bitmap", f"inttoptr i64 {g.ctx(JX_BITMAP)} to i8*")
        f.let("code", "getelementptr i32, i32* %mem, i64 %cb")

    def segment_entry(self, g, sid) -> str:
        """The segment table entry (i64) of id `sid`: n + 1 for an active segment of n
        words, 0 otherwise (id 0 included); loaded once per block and segment."""
        entry = g.checked.get(sid.ir)
        if entry is None:
            f = g.f
            slot = f.op(f"call i32 @llvm.fshr.i32(i32 {sid.ir}, i32 {sid.ir}, i32 {GRANULE_SHIFT})")
            in_table = f.op(f"icmp ult i32 {slot}, {i32(self.table_len)}")
            index = f.op(f"zext i32 {f.op(f'select i1 {in_table}, i32 {slot}, i32 0')} to i64")
            p = f.op(f"getelementptr i32, i32* %segwords, i64 {index}")
            words = f.op(f"load i32, i32* {p}{g.md.tbaa('segtable')}")
            entry = f.op(f"zext i32 {words} to i64")
            g.checked[sid.ir] = entry
        return entry

    def _pointer(self, g, sid, off, reach: int | None) -> tuple[str | None, str | None]:
        """(pointer to word `off` of segment `sid` after the check, i1 "sid is 0" or None
        when it cannot be); (None, None) if the access always fails.

        `reach` (for a constant `off`: at least off) is the largest constant offset the
        block accesses through the same segment id before anything may change the table;
        the one check covers them all.  If it fails, the region leaves at this access,
        before any of them, so the interpreter faults exactly where it would have.
        """
        f = g.f
        off64 = str(off.const) if off.const is not None else f.op(f"zext i32 {off.ir} to i64")
        if sid.const == 0:  # segment 0: its words are there unless off >= ncode
            if off.const is not None:
                if off.const >= self.ncode:
                    return None, None
            else:
                g.guard(f.op(f"icmp ult i32 {off.ir}, {i32(self.ncode)}"))
            return f.op(f"getelementptr i32, i32* %code, i64 {off64}"), "true"
        base = f.op(f"lshr i64 {f.op(f'zext i32 {sid.ir} to i64')}, 2")
        is0 = None
        if sid.const is None and sid.ir not in g.nonzero:
            is0 = f.op(f"icmp eq i32 {sid.ir}, 0")
            base = f.op(f"select i1 {is0}, i64 %cb, i64 {base}")
        checked = g.reached.get(sid.ir, -1)  # a fresh segment's length is known: see map
        if off.const is None or off.const > checked:
            bound = self.segment_entry(g, sid)
            if is0 is not None:
                bound = f.op(f"select i1 {is0}, i64 {self.ncode + 1}, i64 {bound}")
            last = f.op(f"add i64 {off64}, 1") if reach is None else str(reach + 1)
            g.guard(f.op(f"icmp ult i64 {last}, {bound}"))
            if reach is not None:
                g.reached[sid.ir] = reach
        if is0 is None:
            g.nonzero.add(sid.ir)
        return f.op(f"getelementptr i32, i32* %mem, i64 {f.op(f'add i64 {base}, {off64}')}"), is0

    def load(self, g, sid, off, reach: int | None = None) -> str | None:
        """The i32 at word `off` of segment `sid`; None if the access always faults
        (`reach`: see _pointer)."""
        p, _ = self._pointer(g, sid, off, reach)
        return None if p is None else g.f.op(f"load i32, i32* {p}{g.md.tbaa('payload')}")

    def store(self, g, sid, off, value, reach: int | None = None) -> bool | None:
        """Store `value` at word `off` of segment `sid`: True, or None if it always faults
        (`reach`: see _pointer).

        A store that may go to segment 0 then checks the compiled-word bitmap and leaves
        the region (EXIT_STALE) if the word is compiled code, unless the compiler proves
        it is not (`may_be_code`).
        """
        p, is0 = self._pointer(g, sid, off, reach)
        if p is None:
            return None
        g.f.do(f"store i32 {value.ir}, i32* {p}{g.md.tbaa('payload')}")
        if is0 is not None and (off.const is None or g.may_be_code(off.const)):
            self._check_stale(g, off, is0)
        return True

    def _check_stale(self, g, off, is0: str) -> None:
        """After a store at word `off` of segment 0 if `is0`: leave with EXIT_STALE if the
        word is compiled code."""
        f, md = g.f, g.md
        off64 = str(off.const) if off.const is not None else f.op(f"zext i32 {off.ir} to i64")
        if is0 != "true":
            off64 = f.op(f"select i1 {is0}, i64 {off64}, i64 0")
        bit = f.op(f"load i8, i8* {f.op(f'getelementptr i8, i8* %bitmap, i64 {off64}')}{md.tbaa('bitmap')}")
        hit = f.op(f"and i1 {is0}, {f.op(f'icmp ne i8 {bit}, 0')}")
        stale, go_on = f.new_label("stale"), f.new_label("fresh")
        f.branch(hit, stale, go_on, likely=False)
        with f.cold(stale):
            sp = f.op(f"getelementptr i64, i64* %jx, i64 {JX_STALE}")
            f.do(f"store i64 {f.op(f'add i64 {off64}, 1')}, i64* {sp}{md.tbaa('ctx')}")
            g.exit_stale()
        f.label(go_on)

    def map(self, g, n) -> str:
        """Call the allocator: the id of a new segment of `n` words, 0 when out of memory.

        When `n` is a constant, offsets below it need no check afterwards (until the
        segment table may change again), once the caller has checked the id is not 0.
        """
        g.forget_segments()
        sid = g.f.op(f"call i32 @vm32_jit_map(i64* %jx, i64* %st, i32 {n.ir})")
        if n.const is not None and n.const > 0:
            g.reached[sid] = n.const - 1
        return sid

    def unmap(self, g, sid) -> str:
        """Call the allocator to free segment `sid` (not 0): 0, or the fault status (nothing changed)."""
        g.forget_segments()
        return g.f.op(f"call i32 @vm32_jit_unmap(i64* %jx, i64* %st, i32 {sid.ir})")
