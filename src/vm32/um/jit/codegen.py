"""The JIT's back end: one region (vm32.um.jit.frontend) to one LLVM function, as IR text.

Shape of the function (its contract is vm32.um.jit.abi):

    entry:     registers from `regs` into allocas %ra0..%ra7 (mem2reg makes them SSA
               values), the context fields it needs, the memory model's pointers
    dispatch:  the budget check, then a switch over the region's blocks on the target
               pc: where the function is entered and where computed jumps go
    b<pc>:     one per block; instructions with their checks, then the terminator:
               a direct branch for a constant target, a conditional branch for the
               "conditional move, then load program" idiom, the switch otherwise
    exit:      registers and the instruction count back to memory, return the exit

Inside a block the compiler keeps each register's current value (an IR value, and the
constant or the two-constant Select it is known to be), so a load immediate costs
nothing and folds into what uses it: a constant offset into segment 0 needs no bounds
check, a constant target is a direct branch.  Checks branch to a cold block that leaves
the region with EXIT_STEP at the checked instruction, so the interpreter runs it and
reports the fault with the exact pc; the budget is checked on backward branches and in
the dispatch block only (every cycle of the region passes through one of them).
"""

from __future__ import annotations

from vm32.um.isa import ADD, CMOV, DIV, LOAD, LOADIMM, MAP, MUL, NAND, OUT, STORE, UNMAP
from vm32.um.jit.abi import EXIT_JUMP, EXIT_SHIFT, EXIT_STALE, EXIT_STEP
from vm32.um.jit.abi import JX_CODE, JX_ICOUNT, JX_LIMIT, JX_OUT, JX_OUT_CAP
from vm32.um.jit.frontend import Region, entry_constants, step_abstract, written_register
from vm32.um.jit.irtext import IRFunction, Metadata, i32
from vm32.um.kernel import ST_OUT_LEN


class Val:
    """A register's value inside a block: IR operand `ir`, known constant `const` (or
    None), and for the branch idiom `sel` = (i1 condition, value if set, value if clear)."""

    __slots__ = ("ir", "const", "sel")

    def __init__(self, ir: str, const: int | None = None, sel: tuple | None = None):
        self.ir, self.const, self.sel = ir, const, sel


def known(value: int) -> Val:
    """The Val of constant `value`."""
    return Val(i32(value), value & 0xFFFFFFFF)


class RegionCompiler:
    """Writes the LLVM module of one region; see the module docstring."""

    def __init__(self, region: Region, code, memory, name: str, compiled=lambda word: False):
        self.region = region
        self.compiled = compiled
        self.own = {pc for s, e in region.spans() for pc in range(s, e)}
        self.unchecked: set[int] = set()  # words stored into without a check (see may_be_code)
        self.code = code
        self.mem = memory
        self.name = name
        self.f = IRFunction()
        self.md = Metadata(memory.ALIAS_CLASSES)
        self._ctx: dict[int, str] = {}

    # -- the function ---------------------------------------------------------------

    def module(self) -> str:
        """The LLVM module text: declarations, the region function, metadata."""
        f = self.f
        self.constants = entry_constants(self.region, self.code)
        f.label("entry")
        self._prologue()
        f.label("dispatch")
        self._dispatch()
        for start in sorted(self.region.blocks):
            self._block(self.region.blocks[start])
        with f.cold("exit"):
            self._epilogue()
        body = f.text()
        return (f"{self.mem.declarations()}\n"
                f"define i64 @{self.name}(i64 %pc, i32* noalias %regs, i64* noalias %jx, "
                f"i64* noalias %st) nounwind {{\n{body}\n}}\n\n{self.md.text()}")

    def ctx(self, index: int) -> str:
        """The value of context field jx[index], loaded once in the entry block."""
        if index not in self._ctx:
            p = self.f.op(f"getelementptr i64, i64* %jx, i64 {index}")
            self._ctx[index] = self.f.op(f"load i64, i64* {p}{self.md.tbaa('ctx')}", hint="jx")
        return self._ctx[index]

    def _prologue(self) -> None:
        f, md = self.f, self.md
        for r in range(8):
            f.let(f"ra{r}", "alloca i32")
        for name in ("ica", "exa", "ta"):
            f.let(name, "alloca i64")
        regs = md.tbaa("regs")
        for r in range(8):
            p = f.op(f"getelementptr i32, i32* %regs, i64 {r}")
            f.do(f"store i32 {f.op(f'load i32, i32* {p}{regs}')}, i32* %ra{r}")
        f.do(f"store i64 {self.ctx(JX_ICOUNT)}, i64* %ica")
        f.let("limit", f"add i64 {self.ctx(JX_LIMIT)}, 0")
        f.let("cb", f"add i64 {self.ctx(JX_CODE)}, 0")
        f.let("outbuf", f"inttoptr i64 {self.ctx(JX_OUT)} to i8*")
        f.let("outcap", f"add i64 {self.ctx(JX_OUT_CAP)}, 0")
        self.mem.prologue(self)
        f.do("store i64 %pc, i64* %ta")
        if not self.region.assume_zero:
            f.do("br label %dispatch")
            return
        checks = [f.op(f"icmp eq i32 {f.op(f'load i32, i32* %ra{r}')}, 0") for r in sorted(self.region.assume_zero)]
        ok = checks[0]
        for c in checks[1:]:
            ok = f.op(f"and i1 {ok}, {c}")
        f.branch(ok, "dispatch", "unassumed", likely=True)
        with f.cold("unassumed"):  # a register the code assumes 0 is not: the interpreter's
            f.do(f"store i64 {f.op(f'or i64 %pc, {EXIT_STEP << EXIT_SHIFT}')}, i64* %exa")
            f.do("br label %exit")

    def _dispatch(self) -> None:
        f = self.f
        target = f.op("load i64, i64* %ta")
        count = f.op("load i64, i64* %ica")
        over = f.op(f"icmp sge i64 {count}, %limit")
        f.branch(over, "dexit", "dswitch", likely=False)
        f.label("dswitch")
        cases = " ".join(f"i64 {s}, label %b{s}" for s in sorted(self.region.blocks))
        f.do(f"switch i64 {target}, label %dexit [ {cases} ]")
        with f.cold("dexit"):
            f.do(f"store i64 {target}, i64* %exa")  # EXIT_JUMP (0) at the target
            f.do("br label %exit")

    def _epilogue(self) -> None:
        f, md = self.f, self.md
        for r in range(8):
            p = f.op(f"getelementptr i32, i32* %regs, i64 {r}")
            f.do(f"store i32 {f.op(f'load i32, i32* %ra{r}')}, i32* {p}{md.tbaa('regs')}")
        p = f.op(f"getelementptr i64, i64* %jx, i64 {JX_ICOUNT}")
        f.do(f"store i64 {f.op('load i64, i64* %ica')}, i64* {p}{md.tbaa('ctx')}")
        f.do(f"ret i64 {f.op('load i64, i64* %exa')}")

    # -- blocks ------------------------------------------------------------------------

    def _block(self, block) -> None:
        """Write block `block`: its instructions, then its terminator."""
        f = self.f
        f.label(f"b{block.start}")
        self.block = block
        self.regs: list[Val | None] = [None if v is None else known(v) for v in self.constants[block.start]]
        self.dirty = [False] * 8
        self.count = f.op("load i64, i64* %ica", hint="ic")
        self.dead = False
        self.checked: dict[str, str] = {}  # segment id (IR value) -> its segment table entry
        self.reached: dict[str, int] = {}  # segment id (IR value) -> largest offset checked
        self.nonzero: set[str] = set()  # IR values known not to be 0
        term = block.term
        last = term.pc if term.kind in ("jump", "step") else block.end
        for pc in range(block.start, last):
            self._begin(pc)
            self._instruction(int(self.code[pc]))
            if self.dead:
                return
        self._begin(term.pc if term.kind != "fall" else block.end)
        if term.kind == "step":
            self._leave_now(EXIT_STEP)
        elif term.kind == "fall":
            self._flush_all(block.end - block.start)
            self._goto(term.pc)
        else:
            self._jump(int(self.code[term.pc]))

    def _begin(self, pc: int) -> None:
        """Start the instruction at `pc` (its checks share one cold exit, made on demand)."""
        self.pc = pc
        self.fail_label = None

    def get(self, r: int) -> Val:
        """The value of register `r` (loaded from its alloca on first use in the block)."""
        v = self.regs[r]
        if v is None:
            v = self.regs[r] = Val(self.f.op(f"load i32, i32* %ra{r}", hint=f"r{r}_"))
        return v

    def put(self, r: int, v: Val) -> None:
        """Set register `r` to `v`."""
        self.regs[r] = v
        self.dirty[r] = True

    def may_be_code(self, word: int) -> bool:
        """Whether a store into word `word` of segment 0 must check the compiled-word bitmap.

        Not if the word is neither in this region nor compiled now: the store goes
        unchecked and the word is recorded in `unchecked`, so that the driver
        invalidates this region before it compiles that word into another one.
        """
        if word in self.own or self.compiled(word):
            return True
        self.unchecked.add(word)
        return False

    def forget_segments(self) -> None:
        """The segment table may change (an allocator call): forget what was checked."""
        self.checked.clear()
        self.reached.clear()

    def reach(self, reg: int, off: Val) -> int | None:
        """For an access through segment register `reg` at offset `off` (the current
        instruction): if `off` is constant, the largest constant offset this block
        accesses through `reg` from here on, before `reg` changes or the allocator is
        called (see FlatMemory._pointer); else None."""
        if off.const is None:
            return None
        consts = [None if v is None else v.const for v in self.regs]
        best = off.const
        end = self.block.term.pc if self.block.term.kind in ("jump", "step") else self.block.end
        for pc in range(self.pc, end):
            w = int(self.code[pc])
            op = w >> 28
            if pc > self.pc and op in (LOAD, STORE):
                seg, at = ((w >> 3) & 7, w & 7) if op == LOAD else ((w >> 6) & 7, (w >> 3) & 7)
                if seg == reg and consts[at] is not None:
                    best = max(best, consts[at])
            if op in (MAP, UNMAP) or written_register(w) == reg:
                break
            step_abstract(consts, w, pc)
            consts = [v if isinstance(v, int) else None for v in consts]
        return best

    def known(self, value: int) -> Val:
        """The Val of constant `value` (for the memory model)."""
        return known(value)

    def _flush(self) -> None:
        """Store the registers changed in this block into their allocas."""
        for r in range(8):
            if self.dirty[r]:
                self.f.do(f"store i32 {self.regs[r].ir}, i32* %ra{r}")

    def _flush_all(self, done: int) -> None:
        """Flush the registers and the instruction count plus `done`; returns nothing."""
        self._flush()
        self.end_count = self.f.op(f"add i64 {self.count}, {done}", hint="ic")
        self.f.do(f"store i64 {self.end_count}, i64* %ica")

    def _leave_here(self, how: int, pc: int, done: int) -> None:
        """In the current (cold) block: leave the region with exit `how` at `pc`, `done`
        instructions of this block completed."""
        f = self.f
        self._flush()
        f.do(f"store i64 {f.op(f'add i64 {self.count}, {done}', hint='ic')}, i64* %ica")
        f.do(f"store i64 {(how << EXIT_SHIFT) | pc}, i64* %exa")
        f.do("br label %exit")

    def _leave_now(self, how: int) -> None:
        """Leave at the current instruction, not run (EXIT_STEP); the block ends here."""
        self._leave_here(how, self.pc, self.pc - self.block.start)
        self.dead = True

    def _fail_target(self) -> str:
        """The cold block that leaves with EXIT_STEP at the current instruction."""
        if self.fail_label is None:
            self.fail_label = self.f.new_label(f"fail{self.pc}_")
            with self.f.cold(self.fail_label):
                self._leave_here(EXIT_STEP, self.pc, self.pc - self.block.start)
        return self.fail_label

    def guard(self, ok: str) -> None:
        """Go on only if i1 `ok`; else leave for the interpreter at the current instruction."""
        go_on = self.f.new_label("ok")
        self.f.branch(ok, go_on, self._fail_target(), likely=True)
        self.f.label(go_on)

    def fail_now(self) -> None:
        """The current instruction always fails: leave for the interpreter; the block ends."""
        self.f.do(f"br label %{self._fail_target()}")
        self.dead = True

    def exit_stale(self) -> None:
        """In a cold block, after the current store: leave with EXIT_STALE at the next pc."""
        self._leave_here(EXIT_STALE, self.pc + 1, self.pc + 1 - self.block.start)

    # -- control flow ----------------------------------------------------------------

    def _goto(self, target: int) -> None:
        """Branch to `target` after the block's state is flushed (end_count set)."""
        f = self.f
        if target not in self.region.blocks:
            f.do(f"store i64 {(EXIT_JUMP << EXIT_SHIFT) | target}, i64* %exa")
            f.do("br label %exit")
            return
        if target > self.block.start:
            f.do(f"br label %b{target}")
            return
        over = f.op(f"icmp sge i64 {self.end_count}, %limit")
        spent = f.new_label("spent")
        f.branch(over, spent, f"b{target}", likely=False)
        with f.cold(spent):
            f.do(f"store i64 {(EXIT_JUMP << EXIT_SHIFT) | target}, i64* %exa")
            f.do("br label %exit")

    def _jump(self, w: int) -> None:
        """The load program ending the block (word `w` at self.pc)."""
        f = self.f
        b, c = (w >> 3) & 7, w & 7
        seg, target = self.get(b), self.get(c)
        if seg.const is not None and seg.const != 0:
            self._leave_now(EXIT_STEP)  # a load program of another segment: the interpreter's
            return
        if seg.const is None:
            self.guard(f.op(f"icmp eq i32 {seg.ir}, 0"))
        self._flush_all(self.pc + 1 - self.block.start)
        if target.const is not None:
            self._goto(target.const)
        elif target.sel is not None:
            cond, if_set, if_clear = target.sel
            ls, lc = f.new_label("taken"), f.new_label("untaken")
            f.branch(cond, ls, lc)
            f.label(ls)
            self._goto(if_set)
            f.label(lc)
            self._goto(if_clear)
        else:
            f.do(f"store i64 {f.op(f'zext i32 {target.ir} to i64')}, i64* %ta")
            f.do("br label %dispatch")

    # -- instructions ------------------------------------------------------------------

    def _instruction(self, w: int) -> None:
        """Write one instruction that is not a block terminator."""
        f = self.f
        op = w >> 28
        if op == LOADIMM:
            self.put((w >> 25) & 7, known(w & 0x1FFFFFF))
            return
        a, b, c = (w >> 6) & 7, (w >> 3) & 7, w & 7
        if op == CMOV:
            self._cmov(a, b, c)
        elif op == LOAD:
            off = self.get(c)
            v = self.mem.load(self, self.get(b), off, self.reach(b, off))
            if v is not None:
                self.put(a, Val(v))
            elif not self.dead:
                self.fail_now()
        elif op == STORE:
            off = self.get(b)
            if self.mem.store(self, self.get(a), off, self.get(c), self.reach(a, off)) is None and not self.dead:
                self.fail_now()
        elif op in (ADD, MUL, NAND):
            self._arith(op, a, self.get(b), self.get(c))
        elif op == DIV:
            self._div(a, self.get(b), self.get(c))
        elif op == MAP:
            sid = self.mem.map(self, self.get(c))
            self.guard(f.op(f"icmp ne i32 {sid}, 0"))
            self.nonzero.add(sid)
            self.put(b, Val(sid))
        elif op == UNMAP:
            self._unmap(self.get(c))
        elif op == OUT:
            self._out(self.get(c))
        else:  # the front end ends blocks at every other operator
            raise AssertionError(f"codegen: operator {op} inside a block at pc {self.pc}")

    def _cmov(self, a: int, b: int, c: int) -> None:
        f = self.f
        vc = self.get(c)
        if vc.const is not None:
            if vc.const != 0:
                self.put(a, self.get(b))
            return
        va, vb = self.get(a), self.get(b)
        cond = f.op(f"icmp ne i32 {vc.ir}, 0")
        value = f.op(f"select i1 {cond}, i32 {vb.ir}, i32 {va.ir}")
        sel = None
        if va.const is not None and vb.const is not None:
            sel = (cond, vb.const, va.const)
        self.put(a, Val(value, None, sel))

    def _arith(self, op: int, a: int, x: Val, y: Val) -> None:
        if x.const is not None and y.const is not None:
            if op == ADD:
                self.put(a, known(x.const + y.const))
            elif op == MUL:
                self.put(a, known(x.const * y.const))
            else:
                self.put(a, known(~(x.const & y.const)))
            return
        f = self.f
        if op == NAND:
            value = f.op(f"xor i32 {f.op(f'and i32 {x.ir}, {y.ir}')}, -1")
        else:
            value = f.op(f"{'add' if op == ADD else 'mul'} i32 {x.ir}, {y.ir}")
        self.put(a, Val(value))

    def _div(self, a: int, x: Val, y: Val) -> None:
        if y.const == 0:
            self.fail_now()
            return
        if x.const is not None and y.const is not None:
            self.put(a, known(x.const // y.const))
            return
        if y.const is None:
            self.guard(self.f.op(f"icmp ne i32 {y.ir}, 0"))
        self.put(a, Val(self.f.op(f"udiv i32 {x.ir}, {y.ir}")))

    def _unmap(self, sid: Val) -> None:
        f = self.f
        if sid.const == 0:
            self.fail_now()
            return
        if sid.const is None:
            self.guard(f.op(f"icmp ne i32 {sid.ir}, 0"))
        status = self.mem.unmap(self, sid)
        self.guard(f.op(f"icmp eq i32 {status}, 0"))

    def _out(self, v: Val) -> None:
        f, md = self.f, self.md
        if v.const is not None and v.const > 255:
            self.fail_now()
            return
        if v.const is None:
            self.guard(f.op(f"icmp ule i32 {v.ir}, 255"))
        lenp = f.op(f"getelementptr i64, i64* %st, i64 {ST_OUT_LEN}")
        n = f.op(f"load i64, i64* {lenp}{md.tbaa('st')}")
        self.guard(f.op(f"icmp slt i64 {n}, %outcap"))
        p = f.op(f"getelementptr i8, i8* %outbuf, i64 {n}")
        f.do(f"store i8 {f.op(f'trunc i32 {v.ir} to i8')}, i8* {p}{md.tbaa('out')}")
        f.do(f"store i64 {f.op(f'add i64 {n}, 1')}, i64* {lenp}{md.tbaa('st')}")
