"""i386 page-directory and page-table entries, and the virtual-address split.

    31                 22 21                 12 11                  0
    +--------------------+--------------------+---------------------+
    |  directory index   |    table index     |   offset in page    |
    +--------------------+--------------------+---------------------+
             PDX(va)             PTX(va)             OFF(va)

A page directory and a page table are each one 4 KiB frame of 1024
little-endian 32-bit entries.  A *present* entry (bit 0 set):

    31                            12 11  9 8 7 6 5 4 3 2 1 0
    +-------------------------------+-----+-+-+-+-+-+-+-+-+-+
    |       frame number (pfn)      | OS  |G|PS|D|A|CD|WT|U|W|P|
    +-------------------------------+-----+-+-+-+-+-+-+-+-+-+

A *not-present* entry (bit 0 clear) is the OS's to use.  vm32 keeps the
protection bits W and U in place (so a write to a swapped-out read-only page is
still a protection fault) and encodes where the page lives:

    31                              10 9 8        3 2 1 0
    +---------------------------------+-+----------+-+-+-+
    |        swap slot (22 bits)      |S|   zero   |U|W|0|
    +---------------------------------+-+----------+-+-+-+

S (``PTE_SWAPPED``, an OS bit) says the slot field is valid.  An entry that is
all zero except possibly U/W has never been paged in: the kernel consults the
process's regions (image, heap, stack) to fill it.  22 slot bits address 16 GiB
of swap, enough for 6 GiB workloads on a 1 GiB machine (a present entry only
has 20 frame bits; the slot of a present page is kept in the frame table).
"""

from __future__ import annotations

from vm32.jit import inline_kernel
from vm32.memory import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PAGE_WORDS  # noqa: F401  (re-exported)

PDX_SHIFT = 22  # directory index = va >> 22
NPDENTRIES = 1 << (32 - PDX_SHIFT)  # 1024 entries in a page directory
NPTENTRIES = 1 << (PDX_SHIFT - PAGE_SHIFT)  # 1024 entries in a page table
PT_SPAN = 1 << PDX_SHIFT  # 4 MiB of virtual space per page table

PTE_P = 0x001  # Present
PTE_W = 0x002  # Read/Write: writes allowed
PTE_U = 0x004  # User/Supervisor: 1 = user mode may access
PTE_PWT = 0x008  # write-through (recorded, no effect here)
PTE_PCD = 0x010  # cache disable (recorded, no effect here)
PTE_A = 0x020  # Accessed: set by the MMU on any use
PTE_D = 0x040  # Dirty: set by the MMU on a write (PTE only)
PTE_PS = 0x080  # PDE: 4 MiB page (not used by vm32)
PTE_G = 0x100  # Global: survives a CR3 reload (kernel pages)
PTE_SWAPPED = 0x200  # OS bit 9 in a not-present entry: slot field is valid
PTE_EVICTED = 0x400  # OS bit 10 in a not-present entry without PTE_SWAPPED: the page was in a
#                      frame and left it clean (the image or zeros hold it); 0 = never touched
PTE_FLAGS = 0xFFF  # all flag bits of a present entry
PTE_FRAME = 0xFFFFF000  # frame-number field of a present entry
SLOT_SHIFT = 10  # slot field of a not-present entry: bits 10..31
MAX_SLOTS = 1 << (32 - SLOT_SHIFT)  # 4M slots = 16 GiB of swap


@inline_kernel
def pdx(va):
    """Directory index of virtual address `va` (bits 31..22)."""
    return (va >> PDX_SHIFT) & 0x3FF


@inline_kernel
def ptx(va):
    """Table index of virtual address `va` (bits 21..12)."""
    return (va >> PAGE_SHIFT) & 0x3FF


@inline_kernel
def pte_make(pfn, flags):
    """A present entry for frame `pfn` with `flags` (P is added); inverse of pte_pfn/pte_flags."""
    return ((pfn << PAGE_SHIFT) | (flags & PTE_FLAGS) | PTE_P) & 0xFFFFFFFF


@inline_kernel
def pte_pfn(pte):
    """Frame number of a present entry."""
    return (pte >> PAGE_SHIFT) & 0xFFFFF


@inline_kernel
def pte_flags(pte):
    """Flag bits (0..11) of an entry."""
    return pte & PTE_FLAGS


@inline_kernel
def pte_swapped(slot, prot):
    """A not-present entry saying the page is in swap `slot`; keeps W/U from `prot`."""
    return ((slot << SLOT_SHIFT) | PTE_SWAPPED | (prot & (PTE_W | PTE_U))) & 0xFFFFFFFF


@inline_kernel
def pte_slot(pte):
    """Swap slot of a not-present entry made by pte_swapped, or -1 if it names none."""
    if (pte & PTE_P) or not (pte & PTE_SWAPPED):
        return -1
    return (pte >> SLOT_SHIFT) & (MAX_SLOTS - 1)


def describe_flags(entry: int) -> str:
    """Flags of an entry as letters, e.g. ``P W U A D`` or ``- swap#12``, for tables."""
    if not entry & PTE_P:
        if entry & PTE_SWAPPED:
            return f"swap slot {(entry >> SLOT_SHIFT) & (MAX_SLOTS - 1)}"
        return "evicted clean" if entry & PTE_EVICTED else "not present"
    names = [(PTE_P, "P"), (PTE_W, "W"), (PTE_U, "U"), (PTE_A, "A"), (PTE_D, "D"), (PTE_G, "G")]
    return " ".join(n if entry & b else "-" for b, n in names)
