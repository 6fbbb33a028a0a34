"""The one exception hierarchy of vm32.

Every error a user can cause is a `VM32Error`; the CLI prints it as
``vm32: error: <message>`` and exits with status 1.  Messages say what
happened and, where it helps, what to do.
"""


class VM32Error(Exception):
    """Base of every error vm32 raises on purpose."""


class InvalidArgument(VM32Error, ValueError):
    """A size, address, flag or other argument is out of its allowed range."""


class BadProgram(VM32Error):
    """A UM program file cannot be loaded (missing, empty, size not a multiple of 4...)."""


class UMFault(VM32Error):
    """The Universal Machine failed in one of the ways its specification allows.

    Carries `kind` (a short name from `vm32.um.status.FAULTS`, such as
    ``divide-by-zero``), the program counter, the instruction word, the reason and
    the program's name (its file), which starts the message when given.
    """

    def __init__(self, kind: str, reason: str, pc: int, instruction: int, detail: str = "", program: str = ""):
        self.kind = kind
        self.reason = reason
        self.pc = pc
        self.instruction = instruction
        self.detail = detail
        self.program = program
        text = f"UM fault at pc={pc:#x} (instruction {instruction:#010x}): {reason}"
        if program:
            text = f"{program}: {text}"
        if detail:
            text += f" ({detail})"
        super().__init__(f"{text} [{kind}]")


class MemoryFault(VM32Error):
    """An access to emulated memory outside what the accessor may touch."""


class SegmentationFault(MemoryFault):
    """An access to a virtual address that no mapping covers."""


class ProtectionFault(MemoryFault):
    """An access that a mapping forbids (user to supervisor, write to read-only)."""


class OutOfMemory(VM32Error, MemoryError):
    """A resource ran out: heap space, physical frames, swap slots."""


class HeapError(VM32Error):
    """Misuse of the heap allocator."""


class InvalidFree(HeapError):
    """free/realloc/size_of of an address that is not the start of a block."""


class DoubleFree(InvalidFree):
    """free of a block that is already free."""


class HeapCorruption(HeapError):
    """heap check found a broken invariant."""


class AssemblyError(VM32Error):
    """UM assembly source that cannot be assembled; the message names file and line."""


class BadTrace(VM32Error):
    """A memory-reference trace cannot be parsed."""
