"""Frames, eviction, the page-fault handler and address translation - all compiled.

Words: *page* is virtual, *frame* physical, *slot* a swap location.  `ms` is
the machine state (see state.py): a named tuple of arrays.

The fault path never returns to Python: `vm_translate` (TLB hit), then one
walk, then on a not-present entry the machine lock and `fault_locked`, which
takes a free frame or evicts a victim (writing it to swap only when needed),
fills the frame (swap, image file, or zeros) and maps it.  The walk's result,
the PTE's physical address, serves the whole fault: read-ahead, the fault
handler and the re-read after the TLB fill all use it (page tables are never
freed while their process lives, so the address stays valid without the lock).  Failures come back
as ST_* statuses; the caller (the Python API, or another kernel such as the UM)
turns them into exceptions.

Swap I/O and the lock.  A fault holds the machine lock only for bookkeeping and
4 KiB memory copies; the system calls happen outside it, so two CPUs' faults
overlap on the disk work:
  * page-out: the victim's frame is copied into the CPU's write-back buffer
    (``ms.bounce``) and the slot marked pending (``C_WB_SLOT``); the CPU writes the
    buffer to the slot after it unlocks (`wb_flush`).  A page-in of a pending slot
    copies that buffer instead (it is the freshest copy); a new write to a pending
    slot, or a patch (poke), waits for the pending one to land (`wb_wait`).
  * page-in: before taking the lock the faulting CPU reads the slot named by the
    PTE into its read-ahead buffer (`read_ahead`), recording the slot's write
    sequence number ``sseq`` (a seqlock: odd while a write is under way).  Under
    the lock the buffer is used if the PTE still names that slot and the number is
    unchanged; otherwise the slot is read under the lock.
Every write to a slot makes its number odd before it starts and even when done.

Eviction writes a page to swap only when it is dirty (it may already own a
slot: then the same slot is rewritten).  A clean page is dropped: its valid
copy is either its swap slot (kept, the PTE names it) or, if it never went to
swap, its origin - the image file or zeros - so its PTE returns to "never
loaded" and the next fault fills it from there again.
"""

from __future__ import annotations

import numpy as np


from vm32.jit import inline_leaf_kernel, kernel, leaf_kernel, outline_kernel
from vm32.kernel.layout import (
    C_CR3,
    C_PID,
    C_SPEC_SEQ,
    C_SPEC_SLOT,
    C_WB_SLOT,
    BOUNCE_STRIDE,
    CPU_STRIDE,
    FF_KERNEL,
    FF_PINNED,
    FF_TABLE,
    FREE,
    FT_FLAGS,
    FT_META,
    FT_OWNER,
    FT_PTE,
    FT_SLOT,
    FT_VPN,
    IMAGE_BASE,
    KERNEL,
    KERNEL_BASE,
    KV_FREE,
    KV_KFRAMES,
    KV_KPT,
    KV_ACCESSED_ON_LOAD,
    KV_SEES_EVERY_ACCESS,
    KV_NCPU,
    KV_NFRAMES,
    KV_NSLOTS,
    KV_SWAP_FD,
    OK,
    P_COLS,
    P_HEAP_HI,
    P_HEAP_LO,
    P_IMAGE,
    P_IMG_HI,
    P_IMG_LEN,
    P_IMG_W,
    P_PGDIR,
    P_STACK_HI,
    P_STACK_LO,
    REQ_PAGE,
    S_EVICT,
    S_FAULTS,
    S_IMAGE_BYTES_IN,
    S_IMAGE_IN,
    S_PAGE_OUT,
    S_PROT,
    S_RACE,
    S_SEGV,
    S_SWAP_BYTES_IN,
    S_SWAP_BYTES_OUT,
    S_SWAP_IN,
    S_TABLES,
    S_TLB_MISSES,
    S_WALKS,
    S_ZERO_FILL,
    ST_COLS,
    ST_NO_FRAME,
    ST_PROT_USER,
    ST_PROT_WRITE,
    ST_IN_SWAP,
    ST_IO_ERROR,
    ST_SEGV,
    ST_SWAP_FULL,
    RA_BUF,
    WB_BUF,
)
from vm32.kernel.frametable import frame_dirty, frame_evictable
from vm32.kernel.policies import policy_choose_victim, policy_on_access, policy_on_fault, policy_on_map
from vm32.kernel.policies.base import KEY_VPN_BITS, POL_PAGEABLE
from vm32.kernel.state import host_load_u8
from vm32.kernel.swap import slot_alloc, slot_free, swap_pread, swap_pwrite, wb_flush
from vm32.kernel.sync import cpu_poll, machine_lock, machine_unlock, post_request, shootdown
from vm32.atomic import atomic_add, atomic_cas, atomic_load, atomic_or, atomic_store, atomic_xchg, fence, spin_pause
from vm32.mmu.entry import (
    NPTENTRIES, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PAGE_WORDS, PTE_A, PTE_D, PTE_EVICTED, PTE_FRAME, PTE_G, PTE_P,
    PTE_U, PTE_W, pdx, pte_make, pte_pfn, pte_slot, pte_swapped,
)
from vm32.mmu.tlb import tlb_entry_pa, tlb_fill, tlb_invalidate, tlb_lookup, tlb_need
from vm32.mmu.walk import TR_NOT_PRESENT, mmu_use, pde_install, pde_of, pt_walk, pte_addr

R_NONE, R_IMAGE, R_ZERO, R_KERNEL = 0, 1, 2, 3  # what backs a virtual page


# ---- frames ------------------------------------------------------------------------------


@kernel
def frame_zero(ms, f):
    """Fill frame f with zeros (before it goes to a new owner: no data leaks)."""
    base = f * PAGE_WORDS
    for i in range(PAGE_WORDS):  # loops rather than slices: the fault path runs without NRT
        ms.words[base + i] = 0


@kernel
def page_copy(dst, d, src, s):
    """Copy the page of words src[s : s + PAGE_WORDS] to dst[d : d + PAGE_WORDS] (a loop,
    as the fault path runs without NRT): between a frame and a CPU's bounce buffer."""
    for i in range(PAGE_WORDS):
        dst[d + i] = src[s + i]


@kernel
def frame_flags(ms, f, flags):
    """Set frame f's FF_* flags, keeping the policy's count of unpinned frames
    (pol[POL_PAGEABLE]) current.  Requires the machine lock."""
    ms.pol[POL_PAGEABLE] += (1 if ms.ft[f, FT_FLAGS] & FF_PINNED else 0) - (1 if flags & FF_PINNED else 0)
    ms.ft[f, FT_FLAGS] = flags


@kernel
def frame_take(ms, f, owner, vpn, flags, pte_pa):
    """Record frame f as holding page `vpn` of `owner`, mapped by the PTE at `pte_pa`."""
    ms.ft[f, FT_OWNER] = owner
    ms.ft[f, FT_VPN] = vpn
    frame_flags(ms, f, flags)
    ms.ft[f, FT_SLOT] = -1
    ms.ft[f, FT_PTE] = pte_pa
    ms.ft[f, FT_META] = 0


@kernel
def frame_release(ms, f):
    """Mark frame f free and push it on the free stack.  Requires the machine lock."""
    frame_take(ms, f, FREE, -1, 0, -1)
    n = ms.kv[KV_FREE]
    ms.freel[n] = f
    ms.kv[KV_FREE] = n + 1


@kernel
def wb_wait(ms, cpu, s):
    """Wait until no other CPU has a write-back of slot `s` pending (lock held: those
    writes need no lock, so they finish; this CPU's own one is flushed here)."""
    if cpu >= 0 and ms.cpus[cpu * CPU_STRIDE + C_WB_SLOT] == s:
        wb_flush(ms, cpu)
    for c in range(ms.kv[KV_NCPU]):
        spins = 0
        while c != cpu and atomic_load(ms.cpus, c * CPU_STRIDE + C_WB_SLOT) == s:
            spins = spin_pause(spins)


@kernel
def page_out(ms, cpu, f, s):
    """Start writing frame f to slot s (lock held); OK or ST_IO_ERROR.  With a CPU, the
    frame goes to its write-back buffer and the write happens after the unlock."""
    wb_wait(ms, cpu, s)  # an earlier write of this slot lands first
    if cpu >= 0 and wb_flush(ms, cpu):  # the buffer is free
        page_copy(ms.bounce, cpu * BOUNCE_STRIDE + WB_BUF, ms.words, f * PAGE_WORDS)
        atomic_store(ms.cpus, cpu * CPU_STRIDE + C_WB_SLOT, s)  # pending first, then odd:
        atomic_add(ms.sseq, s, 1)  # a reader that sees the new number sees the pending mark
        return OK
    atomic_add(ms.sseq, s, 1)
    ok = swap_pwrite(ms, ms.words, f * PAGE_SIZE, s)
    atomic_add(ms.sseq, s, 1)
    return OK if ok else ST_IO_ERROR


@kernel
def page_in(ms, cpu, f, s):
    """Fill frame f with slot s (lock held): from a pending write-back buffer, else from
    this CPU's read-ahead if still valid, else read now.  False on a host I/O error."""
    dst = f * PAGE_WORDS
    for c in range(ms.kv[KV_NCPU]):
        if atomic_load(ms.cpus, c * CPU_STRIDE + C_WB_SLOT) == s:
            page_copy(ms.words, dst, ms.bounce, c * BOUNCE_STRIDE + WB_BUF)
            return True
    if cpu >= 0:
        base = cpu * CPU_STRIDE
        if ms.cpus[base + C_SPEC_SLOT] == s and atomic_load(ms.sseq, s) == ms.cpus[base + C_SPEC_SEQ]:
            ms.cpus[base + C_SPEC_SLOT] = -1
            page_copy(ms.words, dst, ms.bounce, cpu * BOUNCE_STRIDE + RA_BUF)
            return True
        ms.cpus[base + C_SPEC_SLOT] = -1
    return swap_pread(ms, ms.words, f * PAGE_SIZE, s)


@leaf_kernel
def read_ahead(ms, cpu, pte_pa):
    """Before taking the lock for a fault whose PTE the walk found at `pte_pa` (-1: no
    table): if the PTE names a swap slot that no write is changing, read the slot into
    this CPU's read-ahead buffer (see page_in).  The PTE is read without the lock;
    page_in checks everything again."""
    base = cpu * CPU_STRIDE
    ms.cpus[base + C_SPEC_SLOT] = -1
    if ms.kv[KV_SWAP_FD] < 0 or pte_pa < 0:
        return
    s = pte_slot(np.int64(ms.words[pte_pa >> 2]))
    if s < 0 or s >= ms.kv[KV_NSLOTS]:
        return
    seq = atomic_load(ms.sseq, s)
    if (seq & 1) == 0 and swap_pread(ms, ms.bounce, 4 * (cpu * BOUNCE_STRIDE + RA_BUF), s):
        ms.cpus[base + C_SPEC_SEQ] = seq
        ms.cpus[base + C_SPEC_SLOT] = s


@kernel
def evict(ms, cpu, f):
    """Take frame f away from its page; OK, or ST_SWAP_FULL / ST_IO_ERROR (the page stays).

    Requires the machine lock.  Leaves f owned by nobody and not on the free
    stack: the caller reuses it.
    """
    owner, vpn, pi, slot = ms.ft[f, FT_OWNER], ms.ft[f, FT_VPN], ms.ft[f, FT_PTE] >> 2, ms.ft[f, FT_SLOT]
    prot = np.int64(ms.words[pi]) & (PTE_W | PTE_U)
    new_slot = slot_alloc(ms) if slot < 0 else -1
    use = slot if slot >= 0 else new_slot
    # one atomic exchange: the page stops being present and we learn its final Dirty bit
    old = np.int64(atomic_xchg(ms.words, pi, pte_swapped(use, prot) if use >= 0 else PTE_EVICTED | prot))
    shootdown(ms, cpu, owner, vpn, False)
    st = owner * ST_COLS
    if old & PTE_D:
        if use < 0:
            atomic_store(ms.words, pi, old)  # nowhere to write it: the page stays mapped
            return ST_SWAP_FULL
        if page_out(ms, cpu, f, use) != OK:
            atomic_store(ms.words, pi, old)  # its data are still only here: it stays mapped
            if new_slot >= 0:
                slot_free(ms, new_slot)
            return ST_IO_ERROR
        ms.pstats[st + S_PAGE_OUT] += 1
        ms.pstats[st + S_SWAP_BYTES_OUT] += PAGE_SIZE
    elif slot < 0:
        # clean and never swapped: the image or zeros are its copy; forget the slot
        atomic_store(ms.words, pi, PTE_EVICTED | prot)
        if new_slot >= 0:
            slot_free(ms, new_slot)
    ms.pstats[st + S_EVICT] += 1
    frame_take(ms, f, FREE, -1, 0, -1)
    return OK


@kernel
def frame_cheap_victim(ms):
    """An evictable frame whose page needs no new swap slot to leave (clean, or dirty
    with a slot of its own), or -1.  A linear scan: only used when the swap is full."""
    for f in range(ms.kv[KV_NFRAMES]):
        if frame_evictable(ms.ft, f) and (ms.ft[f, FT_SLOT] >= 0 or not frame_dirty(ms.words, ms.ft, f)):
            return f
    return -1


@kernel
def frame_get(ms, cpu):
    """A frame for a new owner (contents undefined): a free one, else a victim evicted.

    When the policy's victim is dirty and the swap has no slot for it, a page that
    needs no new slot goes instead, so ST_SWAP_FULL means that every evictable page
    is dirty and slotless.  Returns the frame number, or ST_NO_FRAME / ST_SWAP_FULL.
    Requires the lock.
    """
    n = ms.kv[KV_FREE]
    if n > 0:
        ms.kv[KV_FREE] = n - 1
        return ms.freel[n - 1]
    v = policy_choose_victim(ms.words, ms.ft, ms.pol, ms.tlb, ms.cpus, cpu)
    if v < 0:
        return ST_NO_FRAME
    st = evict(ms, cpu, v)
    if st == OK:
        return v
    policy_on_map(ms.ft, ms.pol, v)  # v stays resident: back into the policy's view
    if st != ST_SWAP_FULL:
        return st
    v = frame_cheap_victim(ms)
    if v < 0:
        return ST_SWAP_FULL
    st = evict(ms, cpu, v)
    if st != OK:  # dirtied by another CPU an instant ago
        policy_on_map(ms.ft, ms.pol, v)
        return st
    return v


# ---- the fault handler ----------------------------------------------------------------------


@kernel
def region_of(ms, pid, va):
    """(R_* kind, writable) of virtual address `va` in process `pid`."""
    b = pid * P_COLS
    if IMAGE_BASE <= va < ms.procs[b + P_IMG_HI]:
        return R_IMAGE, ms.procs[b + P_IMG_W]
    if ms.procs[b + P_HEAP_LO] <= va < ms.procs[b + P_HEAP_HI]:
        return R_ZERO, 1
    if ms.procs[b + P_STACK_LO] <= va < ms.procs[b + P_STACK_HI]:
        return R_ZERO, 1
    if va >= KERNEL_BASE:
        return R_KERNEL, 1
    return R_NONE, 0


@kernel
def fill_from_image(ms, pid, f, vpn):
    """Copy page `vpn` of process `pid`'s image into frame f, zeros past the image's end."""
    b = pid * P_COLS
    off = (vpn << PAGE_SHIFT) - IMAGE_BASE
    n = min(PAGE_SIZE, ms.procs[b + P_IMG_LEN] - off)
    n = max(n, 0)
    base = f * PAGE_SIZE
    if n > 0:
        src = ms.procs[b + P_IMAGE] + off
        for i in range(n):
            ms.bytes[base + i] = host_load_u8(src + i)
    for i in range(n, PAGE_SIZE):
        ms.bytes[base + i] = 0
    return n


@kernel
def table_for(ms, cpu, pid, va):
    """Physical address of the PTE for `va`, installing a (pinned, zeroed) table if needed.

    Returns the address, or ST_NO_FRAME / ST_SWAP_FULL.  Requires the lock.
    """
    pgdir = ms.procs[pid * P_COLS + P_PGDIR]
    pte_pa = pt_walk(ms.words, pgdir, va)
    if pte_pa >= 0:
        return pte_pa
    t = frame_get(ms, cpu)
    if t < 0:
        return t
    frame_zero(ms, t)
    frame_take(ms, t, pid, pdx(va), FF_PINNED | FF_TABLE, pgdir + 4 * pdx(va))
    pde_install(ms.words, pgdir, va, t, PTE_W | PTE_U)
    ms.pstats[pid * ST_COLS + S_TABLES] += 1
    return pte_addr(pde_of(ms.words, pgdir, va), va)


@kernel
def fault_locked(ms, cpu, pid, va, pte_pa, write, user):
    """Serve a not-present fault of process `pid` at `va`, whose PTE a walk found at
    `pte_pa` (-1: no table then); the PTE's address (the page is present now, possibly
    because another CPU served it first) or an ST_* status.  Requires the machine lock.
    """
    st = pid * ST_COLS
    if pte_pa >= 0 and (np.int64(ms.words[pte_pa >> 2]) & PTE_P):
        ms.pstats[st + S_RACE] += 1
        return pte_pa
    kind, writable = region_of(ms, pid, va)
    if kind == R_KERNEL:
        return ST_PROT_USER if user else ST_SEGV
    if kind == R_NONE:
        return ST_SEGV
    if write and not writable:
        return ST_PROT_WRITE
    if pte_pa < 0:
        pte_pa = table_for(ms, cpu, pid, va)
        if pte_pa < 0:
            return pte_pa
        if np.int64(ms.words[pte_pa >> 2]) & PTE_P:  # another CPU made the table and the page
            ms.pstats[st + S_RACE] += 1
            return pte_pa
    ms.pstats[st + S_FAULTS] += 1
    policy_on_fault(ms.ft, ms.pol, (pid << KEY_VPN_BITS) | (va >> PAGE_SHIFT))
    f = frame_get(ms, cpu)
    if f < 0:
        return f
    slot = pte_slot(np.int64(ms.words[pte_pa >> 2]))
    if slot >= 0:
        if not page_in(ms, cpu, f, slot):
            frame_release(ms, f)
            return ST_IO_ERROR
        ms.pstats[st + S_SWAP_IN] += 1
        ms.pstats[st + S_SWAP_BYTES_IN] += PAGE_SIZE
    elif kind == R_IMAGE:
        ms.pstats[st + S_IMAGE_BYTES_IN] += fill_from_image(ms, pid, f, va >> PAGE_SHIFT)
        ms.pstats[st + S_IMAGE_IN] += 1
    else:
        frame_zero(ms, f)
        ms.pstats[st + S_ZERO_FILL] += 1
    frame_take(ms, f, pid, va >> PAGE_SHIFT, 0, pte_pa)
    ms.ft[f, FT_SLOT] = slot
    policy_on_map(ms.ft, ms.pol, f)
    prot = PTE_U | (PTE_W if writable else 0) | (PTE_A if ms.kv[KV_ACCESSED_ON_LOAD] else 0)
    atomic_store(ms.words, pte_pa >> 2, pte_make(f, prot))  # publish after the frame is filled
    return pte_pa


# ---- translation: what a CPU does on every access --------------------------------------------


@leaf_kernel
def prefault_host(ms):
    """Make the host map the frame that the next fault will probably use (top of the free
    stack) before the machine lock is taken.

    The first store to a page of the host's anonymous memory costs a host page fault
    (allocation and zeroing: microseconds); inside the lock it would stall every other
    CPU's faults.  ``atomic_add(x, 0)`` is a write access that changes nothing even if
    another CPU fills that frame at the same moment; the index is a racy read, checked
    against the bounds.  Once mapped, this is one atomic add on a cached line.
    """
    n = ms.kv[KV_FREE]
    if 0 < n <= ms.freel.shape[0]:
        f = ms.freel[n - 1]
        if 0 <= f < ms.kv[KV_NFRAMES]:
            atomic_add(ms.words, f * PAGE_WORDS, 0)


@leaf_kernel
def fault_in(ms, cpu, pid, va, pte_pa, write, user):
    """The not-present fault at `va` (PTE at `pte_pa`, -1: no table), served under the
    machine lock with the disk work outside it; the PTE's address or an ST_* status."""
    read_ahead(ms, cpu, pte_pa)
    prefault_host(ms)
    machine_lock(ms, cpu)
    r = fault_locked(ms, cpu, pid, va, pte_pa, write, user)
    machine_unlock(ms)
    wb_flush(ms, cpu)  # the page-out of this fault's victim, outside the lock
    return r


@leaf_kernel
def tlb_install(ms, cpu, va, pte_pa, e):
    """Fill CPU `cpu`'s TLB with entry `e` (from mmu_use of the PTE at `pte_pa`) and return
    the physical address of `va`; -1 (entry dropped again) if the PTE changed meanwhile.

    The fill is visible before the PTE is read again (sync.py, point 6): either an
    evicting CPU sees the fill and shoots it down, or this re-read sees the change.
    """
    tlb_fill(ms.tlb, cpu, va, e)
    fence()
    now = np.int64(ms.words[pte_pa >> 2])
    if not (now & PTE_P) or ((now ^ e) & PTE_FRAME):
        tlb_invalidate(ms.tlb, cpu, va >> PAGE_SHIFT)
        return np.int64(-1)
    return tlb_entry_pa(e, va)


@leaf_kernel
def load_unreferenced(ms, cpu, pid, va, pte_pa):
    """After the faulting access to `va` (PTE at `pte_pa`) of a policy whose pages come in
    unreferenced (ACCESSED_ON_LOAD False): clear the Accessed bit its walk set, and have
    this CPU drop the TLB entry at its next translation, so that the page's next use
    walks and sets it, as the trace simulator's access that completes without a fill.

    The access itself still goes through the entry (sync.py, point 6: a physical address
    is used only while the TLB holds its entry); the drop is a request to this CPU
    itself (point 5).  No machine lock is needed to post it: only this CPU serves its
    slot, and a request posted meanwhile by another CPU escalates to flush-all.
    """
    i = pte_pa >> 2
    while True:
        pte = np.int64(ms.words[i])
        if not (pte & PTE_A) or np.int64(atomic_cas(ms.words, i, pte, pte & ~PTE_A)) == pte:
            break
    post_request(ms.cpus, cpu, pid, va >> PAGE_SHIFT, REQ_PAGE)


# outline: called from vm_translate (inline), it would otherwise inherit LLVM's
# alwaysinline and the whole fault path would be copied into every access site.
@outline_kernel
def vm_translate_slow(ms, cpu, va, write, user):
    """A TLB miss (or any access, when the policy sees every one): walk, and on a
    not-present entry run the fault handler; pa or ST_*.  One walk per miss: the fault
    handler and the re-read after the TLB fill use the PTE's address that it found."""
    if ms.kv[KV_SEES_EVERY_ACCESS]:
        pa = tlb_lookup(ms.tlb, cpu, va, tlb_need(write, user))
        if pa >= 0:
            policy_on_access(ms.ft, ms.pol, pa >> PAGE_SHIFT)
            return pa
    base = cpu * CPU_STRIDE
    pid = ms.cpus[base + C_PID]
    cs = cpu * ST_COLS
    ms.cstats[cs + S_TLB_MISSES] += 1
    while True:
        ms.cstats[cs + S_WALKS] += 1
        pgdir = ms.cpus[base + C_CR3]
        pde = pde_of(ms.words, pgdir, va)
        pte_pa = pte_addr(pde, va) if pde & PTE_P else np.int64(-1)
        e = mmu_use(ms.words, pde, pte_pa, write, user) if pte_pa >= 0 else np.int64(TR_NOT_PRESENT)
        faulted = e == TR_NOT_PRESENT
        if faulted:
            pte_pa = fault_in(ms, cpu, pid, va, pte_pa, write, user)
            if pte_pa < 0:
                return fault_failed(ms, pid, pte_pa)
            e = mmu_use(ms.words, pde_of(ms.words, pgdir, va), pte_pa, write, user)
            if e == TR_NOT_PRESENT:
                continue  # evicted again before this CPU could use it: walk again
        if e < 0:
            return fault_failed(ms, pid, e)
        pa = tlb_install(ms, cpu, va, pte_pa, e)
        if pa >= 0:
            # the policy hears of the faulting access by on_map (as in the trace simulator)
            if faulted:
                if not ms.kv[KV_ACCESSED_ON_LOAD]:
                    load_unreferenced(ms, cpu, pid, va, pte_pa)
            elif ms.kv[KV_SEES_EVERY_ACCESS]:
                policy_on_access(ms.ft, ms.pol, pa >> PAGE_SHIFT)
            return pa


@leaf_kernel
def fault_failed(ms, pid, status):
    """Count a translation that failed with `status` in the process's counters; returns
    `status` (the caller records the address: access.ctx_fail)."""
    if status == ST_SEGV:
        atomic_add(ms.pstats, pid * ST_COLS + S_SEGV, 1)
    elif status == ST_PROT_USER or status == ST_PROT_WRITE:
        atomic_add(ms.pstats, pid * ST_COLS + S_PROT, 1)
    return status


# LLVM-level forced inlining (inline_leaf_kernel: LLVM's alwaysinline attribute; numba's
# IR-level inline="always", which miscompiled the UM kernel, is not used).
# As an ordinary leaf, LLVM inlined the whole fault path into vm_translate, which then was
# too big to inline into the caller's loop, and each call passed the machine tuple (~100
# scalars) by value.  Measured (benchmarks/paging.py --only tlb, random reads): ordinary
# leaf 23.3 ns per TLB hit; numba IR inlining 3.5 ns; forceinline 3.58 ns; flat 1.83 ns.
@inline_leaf_kernel
def vm_translate(ms, cpu, va, write, user):
    """Physical address of virtual `va` for CPU `cpu` (entered with cpu_enter), or ST_* < 0.

    `write` and `user` are 0/1.  The TLB-hit path is a poll, a load and a
    compare; misses and faults go to vm_translate_slow.  Usable from any kernel.
    """
    cpu_poll(ms, cpu)
    pa = tlb_lookup(ms.tlb, cpu, va, tlb_need(write, user))
    if pa < 0 or ms.kv[KV_SEES_EVERY_ACCESS]:
        pa = vm_translate_slow(ms, cpu, va, write, user)
    return pa


# ---- boot, processes, pinning (all under the machine lock) -----------------------------------


@kernel
def poke_word_locked(ms, pgdir, va, value):
    """Store `value` into the word at `va` (4-aligned) of the address space `pgdir` wherever
    that page lives now - its frame (then marked Dirty) or its swap slot - without a fault.

    Returns OK (written in its frame), ST_IN_SWAP (written in its swap slot), or ST_SEGV
    if the page has no copy to change (no table, or dropped clean: then it was not
    written since it came in).  Requires the machine lock, which keeps the page
    where it is.  Used to undo a heap operation whose later access failed (procheap).
    """
    pte_pa = pt_walk(ms.words, pgdir, va)
    if pte_pa < 0:
        return ST_SEGV
    pte = np.int64(ms.words[pte_pa >> 2])
    if pte & PTE_P:
        ms.words[((pte_pfn(pte) << PAGE_SHIFT) | (va & PAGE_MASK)) >> 2] = np.uint32(value & 0xFFFFFFFF)
        atomic_or(ms.words, pte_pa >> 2, PTE_D)  # the MMU may set A/D at the same time
        return OK
    slot = pte_slot(pte)
    if slot < 0:
        return ST_SEGV
    wb_wait(ms, -1, slot)  # a pending write-back of the slot lands first, then this patch
    atomic_add(ms.sseq, slot, 1)
    ms.swapw[(slot * PAGE_SIZE + (va & PAGE_MASK)) >> 2] = np.uint32(value & 0xFFFFFFFF)
    atomic_add(ms.sseq, slot, 1)
    return ST_IN_SWAP


@kernel
def kernel_boot(ms, kframes):
    """Set up kernel memory (frames 0..kframes-1), the kernel page table, the free stack."""
    nframes = ms.kv[KV_NFRAMES]
    for f in range(nframes):
        frame_take(ms, f, FREE, -1, 0, -1)
    kpt = kframes
    for f in range(kframes + 1):
        frame_take(ms, f, KERNEL, (KERNEL_BASE >> PAGE_SHIFT) + f, FF_PINNED | FF_KERNEL, kpt * PAGE_SIZE + 4 * f)
        frame_zero(ms, f)
    ms.ft[kpt, FT_FLAGS] |= FF_TABLE
    ms.ft[kpt, FT_VPN] = -1
    ms.ft[kpt, FT_PTE] = -1
    for f in range(kframes):
        ms.words[kpt * PAGE_WORDS + f] = np.uint32(pte_make(f, PTE_W | PTE_G | PTE_A | PTE_D))
    n = 0
    for f in range(nframes - 1, kframes, -1):  # lowest free frame on top
        ms.freel[n] = f
        n += 1
    ms.kv[KV_FREE] = n
    ms.kv[KV_KPT] = kpt * PAGE_SIZE
    ms.kv[KV_KFRAMES] = kframes


@kernel
def proc_setup_locked(ms, cpu, pid):
    """Give process `pid` a page directory with the kernel table mapped; OK or ST_*."""
    d = frame_get(ms, cpu)
    if d < 0:
        return d
    frame_zero(ms, d)
    frame_take(ms, d, pid, -1, FF_PINNED | FF_TABLE, -1)
    pde_install(ms.words, d * PAGE_SIZE, KERNEL_BASE, ms.kv[KV_KPT] >> PAGE_SHIFT, PTE_W)  # supervisor-only
    ms.procs[pid * P_COLS + P_PGDIR] = d * PAGE_SIZE
    return OK


@kernel
def proc_teardown_locked(ms, cpu, pid):
    """Free every frame and swap slot of process `pid` (which no CPU may be running)."""
    shootdown(ms, cpu, pid, -1, True)
    for c in range(ms.kv[KV_NCPU]):  # a CPU that last ran pid must reload CR3 on its next entry
        if ms.cpus[c * CPU_STRIDE + C_PID] == pid:
            atomic_store(ms.cpus, c * CPU_STRIDE + C_PID, -1)
    pgdir = ms.procs[pid * P_COLS + P_PGDIR]
    for i in range(pdx(KERNEL_BASE)):
        pde = np.int64(ms.words[(pgdir >> 2) + i])
        if not (pde & PTE_P):
            continue
        t = pte_pfn(pde) * PAGE_WORDS
        for j in range(NPTENTRIES):
            s = pte_slot(np.int64(ms.words[t + j]))
            if s >= 0:
                slot_free(ms, s)
    for f in range(ms.kv[KV_NFRAMES]):
        if ms.ft[f, FT_OWNER] == pid:
            if ms.ft[f, FT_SLOT] >= 0:
                slot_free(ms, ms.ft[f, FT_SLOT])
            frame_release(ms, f)
    ms.procs[pid * P_COLS + P_PGDIR] = -1


@kernel
def pin_locked(ms, cpu, pid, va, pin):
    """Pin (or unpin) the page at `va` of process `pid`, paging it in first; OK or ST_*."""
    pte_pa = pt_walk(ms.words, ms.procs[pid * P_COLS + P_PGDIR], va)
    if pte_pa < 0 or not (np.int64(ms.words[pte_pa >> 2]) & PTE_P):
        if not pin:
            return OK
        pte_pa = fault_locked(ms, cpu, pid, va, pte_pa, 0, 1)
        if pte_pa < 0:
            return pte_pa
    f = pte_pfn(np.int64(ms.words[pte_pa >> 2]))
    flags = ms.ft[f, FT_FLAGS]
    frame_flags(ms, f, (flags | FF_PINNED) if pin else (flags & ~FF_PINNED))
    return OK


@kernel
def locked_call_setup(ms, cpu, pid):
    """proc_setup_locked under the machine lock."""
    machine_lock(ms, cpu)
    st = proc_setup_locked(ms, cpu, pid)
    machine_unlock(ms)
    wb_flush(ms, cpu)
    return st


@kernel
def locked_call_teardown(ms, cpu, pid):
    """proc_teardown_locked under the machine lock."""
    machine_lock(ms, cpu)
    proc_teardown_locked(ms, cpu, pid)
    machine_unlock(ms)
    wb_flush(ms, cpu)


@kernel
def locked_call_pin(ms, cpu, pid, va, pin):
    """pin_locked under the machine lock."""
    machine_lock(ms, cpu)
    st = pin_locked(ms, cpu, pid, va, pin)
    machine_unlock(ms)
    wb_flush(ms, cpu)
    return st
