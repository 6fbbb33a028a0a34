"""The back end's memory seam: the IR of every segment access and allocation, on flat memory.

The region compiler (`vm32.um.jit.codegen`) never writes a memory access itself; it
asks a memory model for one.  `FlatMemory` is the model of the flat space with the
default (TLSF) heap: a segment id is the address of the segment's first word, its
liveness is one byte of the heap's tag map and its length the block header.  A paged
model would implement the same methods with a translation in front of each access.

The checks are those of the interpreter (vm32.um.flat._seg_check, built on
vm32.heap.core.heap_is_live and heap_size_of), written as IR so that LLVM can
specialise them: an access to segment 0 at a constant offset needs no check at all,
and with the alias classes below the tag and header loads of one segment are loaded
once per region stretch between allocations (a UM store never writes a header or a
tag: it writes only payload words of a live segment).
"""

from __future__ import annotations

from vm32.heap.core import HEADER, M_TAGS, T_LIVE
from vm32.um.jit.abi import JX_BITMAP, JX_HEAP, JX_HEAP_WORDS, JX_MEM, JX_MEM_WORDS, JX_META, JX_STALE
from vm32.um.jit.irtext import i32

ALIAS_CLASSES = ("payload", "header", "tags", "bitmap", "ctx", "st", "out", "regs")

HELPERS = {
    "vm32_jit_map": "declare i32 @vm32_jit_map(i32*, i64, i64*, i64, i64*, i64*, i32) nounwind",
    "vm32_jit_unmap": "declare i32 @vm32_jit_unmap(i32*, i64, i64*, i64, i64*, i64*, i32) nounwind",
}
"""The compiled helpers regions call (vm32.um.jit.helpers), by symbol name."""


class FlatMemory:
    """IR for segment accesses on flat memory; see the module docstring.

    `heap_base` and `heap_span` are the heap's M_BASE and M_SPAN (constants of a
    machine), `ncode` the length of segment 0 the region was compiled for.
    """

    ALIAS_CLASSES = ALIAS_CLASSES

    def __init__(self, heap_base: int, heap_span: int, ncode: int):
        self.heap_base = heap_base
        self.granules = (heap_span - 8) >> 3  # granule indexes g < granules are in range
        self.ncode = ncode

    def declarations(self) -> str:
        """Declarations of the helpers and intrinsics the IR uses."""
        return "\n".join([*HELPERS.values(), "declare i64 @llvm.fshr.i64(i64, i64, i64)"]) + "\n"

    def prologue(self, g) -> None:
        """Set up the function-wide pointers (in the entry block): %mem, %code (segment 0),
        %codeaddr (segment 0's address, never a valid id), %tags, %bitmap, the helpers' arguments."""
        f = g.f
        f.let("mem", f"inttoptr i64 {g.ctx(JX_MEM)} to i32*")
        f.let("heap", f"inttoptr i64 {g.ctx(JX_HEAP)} to i64*")
        f.let("meta", f"inttoptr i64 {g.ctx(JX_META)} to i64*")
        f.let("bitmap", f"inttoptr i64 {g.ctx(JX_BITMAP)} to i8*")
        heap8 = f.op("bitcast i64* %heap to i8*")
        f.let("tags", f"getelementptr i8, i8* {heap8}, i64 {8 * M_TAGS + 1}")
        f.let("code", "getelementptr i32, i32* %mem, i64 %cb")
        f.let("codeaddr", "shl i64 %cb, 2")
        self.helper_args = (f"i32* %mem, i64 {g.ctx(JX_MEM_WORDS)}, i64* %heap, i64 {g.ctx(JX_HEAP_WORDS)}, "
                            "i64* %meta, i64* %st")

    # -- segment 0 -------------------------------------------------------------------

    def _code_pointer(self, g, off) -> str | None:
        """Pointer to word `off` of segment 0 after its bounds check; None if it always fails."""
        f = g.f
        if off.const is not None:
            if off.const >= self.ncode:
                return None
            return f.op(f"getelementptr i32, i32* %code, i64 {off.const}")
        g.guard(f.op(f"icmp ult i32 {off.ir}, {i32(self.ncode)}"))
        off64 = f.op(f"zext i32 {off.ir} to i64")
        return f.op(f"getelementptr i32, i32* %code, i64 {off64}")

    # -- other segments ----------------------------------------------------------------

    def _segment_pointer(self, g, sid, off) -> str:
        """Pointer to word `off` of segment `sid` (not 0) after the interpreter's checks:
        `sid` is a live block other than segment 0 (heap_is_live) and off < its length.

        One branch for all of them: a failed check turns the next load's index into 0 (a
        word that is always there) instead of branching around it.
        """
        f, md = g.f, g.md
        sid64 = f.op(f"zext i32 {sid.ir} to i64")
        x = f.op(f"sub i64 {sid64}, {self.heap_base + 8}")
        gran = f.op(f"call i64 @llvm.fshr.i64(i64 {x}, i64 {x}, i64 3)")  # rotate right 3
        in_range = f.op(f"icmp ult i64 {gran}, {self.granules}")
        tagp = f.op(f"getelementptr i8, i8* %tags, i64 {f.op(f'select i1 {in_range}, i64 {gran}, i64 0')}")
        tag = f.op(f"load i8, i8* {tagp}{md.tbaa('tags')}")
        is_live = f.op(f"icmp ne i8 {f.op(f'and i8 {tag}, {T_LIVE}')}, 0")
        not_code = f.op(f"icmp ne i64 {sid64}, %codeaddr")
        live = f.op(f"and i1 {f.op(f'and i1 {in_range}, {is_live}')}, {not_code}")
        base = f.op(f"lshr i64 {sid64}, 2")
        header = f.op(f"select i1 {live}, i64 {f.op(f'sub i64 {base}, {HEADER // 4}')}, i64 0")
        nbytes = f.op(f"load i32, i32* {f.op(f'getelementptr i32, i32* %mem, i64 {header}')}{md.tbaa('header')}")
        in_bounds = f.op(f"icmp ult i32 {off.ir}, {f.op(f'lshr i32 {nbytes}, 2')}")
        g.guard(f.op(f"and i1 {live}, {in_bounds}"))
        off64 = off.const if off.const is not None else f.op(f"zext i32 {off.ir} to i64")
        return f.op(f"getelementptr i32, i32* %mem, i64 {f.op(f'add i64 {base}, {off64}')}")

    # -- the operations the region compiler asks for -------------------------------------

    def load(self, g, sid, off) -> str | None:
        """The i32 at word `off` of segment `sid`; None if the access always faults."""
        f, payload = g.f, g.md.tbaa("payload")
        if sid.const == 0:
            p = self._code_pointer(g, off)
            return None if p is None else f.op(f"load i32, i32* {p}{payload}")
        if sid.const is not None:
            return f.op(f"load i32, i32* {self._segment_pointer(g, sid, off)}{payload}")
        return g.split_on_zero(sid, lambda: self.load(g, g.known(0), off),
                               lambda: f.op(f"load i32, i32* {self._segment_pointer(g, sid, off)}{payload}"))

    def store(self, g, sid, off, value) -> bool | None:
        """Store `value` at word `off` of segment `sid`: True, or None if it always faults.

        A store into segment 0 then checks the compiled-word bitmap and leaves the
        region (EXIT_STALE) if the word is compiled code, unless the compiler proves
        it is not (`may_be_code`).
        """
        f, payload = g.f, g.md.tbaa("payload")
        if sid.const == 0:
            p = self._code_pointer(g, off)
            if p is None:
                return None
            f.do(f"store i32 {value.ir}, i32* {p}{payload}")
            if off.const is None or g.may_be_code(off.const):
                self._check_stale(g, off)
            return True

        def other():
            f.do(f"store i32 {value.ir}, i32* {self._segment_pointer(g, sid, off)}{payload}")
            return True

        if sid.const is not None:
            return other()
        return g.split_on_zero(sid, lambda: self.store(g, g.known(0), off, value), other)

    def _check_stale(self, g, off) -> None:
        """After a store at word `off` of segment 0: leave with EXIT_STALE if it is compiled."""
        f, md = g.f, g.md
        off64 = str(off.const) if off.const is not None else f.op(f"zext i32 {off.ir} to i64")
        bp = f.op(f"getelementptr i8, i8* %bitmap, i64 {off64}")
        bit = f.op(f"load i8, i8* {bp}{md.tbaa('bitmap')}")
        hit = f.op(f"icmp ne i8 {bit}, 0")
        stale, go_on = f.new_label("stale"), f.new_label("fresh")
        f.branch(hit, stale, go_on, likely=False)
        with f.cold(stale):
            sp = f.op(f"getelementptr i64, i64* %jx, i64 {JX_STALE}")
            plus1 = f.op(f"add i64 {off64}, 1")
            f.do(f"store i64 {plus1}, i64* {sp}{md.tbaa('ctx')}")
            g.exit_stale()
        f.label(go_on)

    def map(self, g, n) -> str:
        """Call the allocator: the id of a new segment of `n` words, 0 when out of memory."""
        return g.f.op(f"call i32 @vm32_jit_map({self.helper_args}, i32 {n.ir})")

    def unmap(self, g, sid) -> str:
        """Call the allocator to free segment `sid` (not 0): 0, or the fault status (nothing changed)."""
        return g.f.op(f"call i32 @vm32_jit_unmap({self.helper_args}, i32 {sid.ir})")
