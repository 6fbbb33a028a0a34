"""A small writer of LLVM IR text for one function: fresh names, blocks, cold blocks, metadata.

The back end writes IR as text rather than through llvmlite.ir's objects: a region
is thousands of instructions, and formatting strings is several times faster than
building and printing an object graph, for the same text.
"""

from __future__ import annotations

from contextlib import contextmanager

WEIGHT_LIKELY = 2000
"""Branch weight of the expected side of a check (the other side weighs 1)."""


def i32(value: int) -> str:
    """`value` (any int, taken modulo 2**32) as an i32 literal (LLVM reads them signed)."""
    value &= 0xFFFFFFFF
    return str(value - (1 << 32) if value >= 1 << 31 else value)


class IRFunction:
    """The body of one LLVM function being written: hot blocks in order, then cold ones."""

    def __init__(self) -> None:
        self._hot: list[str] = []
        self._cold: list[str] = []
        self._out = self._hot
        self._n = 0
        self.label_now = "entry"  # the block instructions are being added to

    def fresh(self, hint: str = "v") -> str:
        """A new local name (%hintN)."""
        self._n += 1
        return f"%{hint}{self._n}"

    def op(self, text: str, hint: str = "v") -> str:
        """Emit ``%x = text``; return %x."""
        name = self.fresh(hint)
        self._out.append(f"  {name} = {text}")
        return name

    def let(self, name: str, text: str) -> None:
        """Emit ``%name = text`` (a function-wide value with a fixed name)."""
        self._out.append(f"  %{name} = {text}")

    def do(self, text: str) -> None:
        """Emit an instruction without a result."""
        self._out.append("  " + text)

    def label(self, name: str) -> None:
        """Start block `name` (the previous one must have ended with a terminator)."""
        self._out.append(f"{name}:")
        self.label_now = name

    def new_label(self, hint: str) -> str:
        """A new block name (without the %)."""
        self._n += 1
        return f"{hint}{self._n}"

    def branch(self, cond: str, if_true: str, if_false: str, likely: bool | None = None) -> None:
        """``br i1 cond``; `likely` True/False weighs the true side as expected/unexpected."""
        weights = ""
        if likely is True:
            weights = f", !prof {LIKELY}"
        elif likely is False:
            weights = f", !prof {UNLIKELY}"
        self.do(f"br i1 {cond}, label %{if_true}, label %{if_false}{weights}")

    @contextmanager
    def cold(self, name: str):
        """Write block `name` among the cold blocks (after every hot one)."""
        saved, saved_label = self._out, self.label_now
        self._out = self._cold
        self.label(name)
        try:
            yield
        finally:
            self._out, self.label_now = saved, saved_label

    def text(self) -> str:
        """The body: hot blocks, then cold blocks."""
        return "\n".join(self._hot + self._cold)


class Metadata:
    """The module's numbered metadata: branch weights and alias classes.

    `tbaa(name)` is the access tag of alias class `name`: accesses tagged with
    different classes never alias.  The back end asserts it for the memories it
    tags (segment payloads, block headers, heap tags, the compiled-word bitmap, the
    context, the machine state, the output buffer).
    """

    def __init__(self, classes: tuple[str, ...]) -> None:
        self._nodes = [
            f'!{{!"branch_weights", i32 {WEIGHT_LIKELY}, i32 1}}',
            f'!{{!"branch_weights", i32 1, i32 {WEIGHT_LIKELY}}}',
            '!{!"vm32 jit"}',
        ]
        self._tags = {}
        for name in classes:
            t = len(self._nodes)
            self._nodes.append(f'!{{!"{name}", !2, i64 0}}')
            self._tags[name] = f"!{len(self._nodes)}"
            self._nodes.append(f"!{{!{t}, !{t}, i64 0}}")

    def tbaa(self, name: str) -> str:
        """``, !tbaa !N`` for an access of alias class `name`."""
        return f", !tbaa {self._tags[name]}"

    def text(self) -> str:
        """The metadata definitions."""
        return "".join(f"!{i} = {node}\n" for i, node in enumerate(self._nodes))


LIKELY = "!0"
UNLIKELY = "!1"
