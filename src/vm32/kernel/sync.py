"""Concurrency: the machine lock, TLB shootdown, and CPU entry/exit.

Several host threads run compiled code at once, each as one CPU with its own
TLB (``tlb[cpu]``).  The scheme, and why it is safe:

1. **One machine lock** (``kv[KV_LOCK]``, a compare-and-swap spin lock taken in
   compiled code) serialises every change of page tables, frame table, swap
   slots and policy state: all fault handling, spawn, exit, pin.  The TLB-hit
   path and the page walk take no lock.

2. **The MMU updates PTEs with compare-and-swap** (Accessed, Dirty), and the
   kernel takes a page away with an atomic exchange of its PTE.  So the kernel
   reads the final Dirty bit in the same instant the page stops being present;
   a CPU that tries to set Dirty afterwards sees its CAS fail, walks again and
   faults (waiting on the lock).  A write through a TLB entry that already
   knows Dirty is set can still happen, but then Dirty was set in the old PTE
   and the kernel will write the page out - after step 3.

3. **Shootdown with acknowledgement.**  Before a frame is copied out or reused,
   the evicting CPU invalidates its own TLB entry and posts a request into every
   other CPU's slot (``C_REQ``: one page, or escalated to flush-all if a request
   is still pending), then waits until each CPU that is *busy* has acknowledged
   (cleared its slot) or left compiled code.  A CPU polls its slot at the start
   of every translation (`cpu_poll`), i.e. between two accesses: when it
   acknowledges, the access that used the old translation has completed, and its
   store is visible before the acknowledgement (seq_cst atomics).  A CPU that
   waits for the lock polls too, so two faulting CPUs never deadlock.

4. **Busy flag (Dekker handshake).**  A CPU not busy (its thread is in Python
   or elsewhere) is not waited for: it sets busy (a seq_cst store, a full fence)
   and polls on entry, so it applies any pending request before its first
   translation.  The poster writes the request (seq_cst), then reads busy: one of
   the two always sees the other.

5. **Requests that are not waited for.**  When a replacement policy clears a
   page's Accessed bit, CPUs running the page's owner get a REQ_PAGE request too
   (`post_request`), but nobody waits for the answer: the entry only has to go
   before the *next* uses, so that they set Accessed again; a few uses in
   between merely make the page look older than it is.  This costs the other
   CPU a TLB refill (a full flush when requests pile up), only when several
   CPUs run the same process.

6. **Only CPUs that hold the entry are asked.**  An evicting CPU first makes the
   PTE not present (atomic exchange, a full fence), then looks at the other
   CPUs' TLB slot for the page: a CPU whose slot does not hold it gets no
   request and is not waited for.  This is safe because a CPU, after filling its
   TLB from a walk, fences and reads the PTE again before it uses the entry
   (vm_translate_slow): either the evicting CPU sees the fill, or the filling CPU
   sees the changed PTE, drops the entry and walks again.  Why: a CPU blocked
   in a system call (a page-out stuck in the host's dirty-page throttling) cannot
   answer; waiting for it cost 40% of the CPU time of the scale benchmark, and
   the victim is almost never in its TLB.  Contract for compiled callers: a
   physical address may be used only while the CPU's TLB holds the entry it came
   from; translations kept elsewhere (a UM fetch buffer) must be dropped whenever
   this CPU's TLB changes (a fill, an invalidation, a served request).

Only the CPU itself writes its TLB; other CPUs only post requests (and read it,
point 6).  The cost on the hot path is one atomic (plain on x86) load of the
CPU's own slot per access.  A busy CPU must translate (or call `cpu_poll`)
regularly: a CPU computing for a long time without memory accesses delays
evictions on other CPUs whose victims it has in its TLB.
"""

from __future__ import annotations

from vm32.jit import kernel, leaf_kernel, outline_kernel
from vm32.kernel.layout import (
    C_BUSY,
    C_CR3,
    C_MISS_SNAP,
    C_PID,
    C_REQ,
    C_REQ_PID,
    C_REQ_VPN,
    C_WALK_SNAP,
    CPU_STRIDE,
    KV_LOCK,
    KV_NCPU,
    OK,
    P_COLS,
    P_PGDIR,
    P_STATE,
    PS_LIVE,
    REQ_ALL,
    REQ_NONE,
    REQ_PAGE,
    S_ACCESSES,
    S_TLB_MISSES,
    S_WALKS,
    ST_COLS,
    ST_DEAD,
)
from vm32.kernel.swap import wb_flush
from vm32.atomic import atomic_add, atomic_cas, atomic_load, atomic_store, spin_pause
from vm32.mmu.tlb import tlb_flush, tlb_holds, tlb_invalidate


@outline_kernel  # cold: kept out of every access that polls
def cpu_service(ms, cpu):
    """Apply the pending shootdown request of CPU `cpu` to its own TLB and acknowledge it."""
    base = cpu * CPU_STRIDE
    r = atomic_load(ms.cpus, base + C_REQ)
    while r != REQ_NONE:
        if r == REQ_PAGE:
            if ms.cpus[base + C_REQ_PID] == ms.cpus[base + C_PID]:
                tlb_invalidate(ms.tlb, cpu, ms.cpus[base + C_REQ_VPN])
        else:
            tlb_flush(ms.tlb, cpu, True)
        seen = atomic_cas(ms.cpus, base + C_REQ, r, REQ_NONE)
        if seen == r:
            return
        r = seen  # escalated to REQ_ALL while we worked: serve again


@leaf_kernel
def cpu_poll(ms, cpu):
    """Serve a pending shootdown request, if any (one atomic load when there is none)."""
    if atomic_load(ms.cpus, cpu * CPU_STRIDE + C_REQ) != REQ_NONE:
        cpu_service(ms, cpu)


@kernel
def machine_lock(ms, cpu):
    """Take the machine lock for CPU `cpu` (-1: a host thread without a CPU), polling meanwhile."""
    spins = 0
    # test and test-and-set: wait with plain loads, so waiting CPUs do not bounce the line
    while atomic_load(ms.kv, KV_LOCK) != 0 or atomic_cas(ms.kv, KV_LOCK, 0, cpu + 2) != 0:
        if cpu >= 0:
            cpu_poll(ms, cpu)
            wb_flush(ms, cpu)  # (only pending after a failed write) the holder may wait for it
        spins = spin_pause(spins)


@kernel
def machine_unlock(ms):
    """Release the machine lock."""
    atomic_store(ms.kv, KV_LOCK, 0)


@kernel
def post_request(cpus, c, pid, vpn, kind):
    """Put a request into CPU c's slot, escalating to flush-all if one is pending.

    Requires the machine lock (one poster at a time), except for a request of CPU c to
    itself: only c serves its slot, and a poster that finds the slot taken escalates
    it to flush-all.  Does not wait for the answer.
    """
    base = c * CPU_STRIDE
    while True:
        r = atomic_load(cpus, base + C_REQ)
        if r == REQ_NONE:
            cpus[base + C_REQ_PID] = pid
            cpus[base + C_REQ_VPN] = vpn
            if atomic_cas(cpus, base + C_REQ, REQ_NONE, kind) == REQ_NONE:
                return
        elif r == REQ_ALL or atomic_cas(cpus, base + C_REQ, r, REQ_ALL) == r:
            return


@kernel
def shootdown(ms, cpu, pid, vpn, flush_all):
    """Make sure no CPU can use a translation for (pid, vpn) (or any, if `flush_all`).

    Requires the machine lock, and for a page the PTE already made not present (the
    caller exchanged it).  Returns when every other busy CPU that may use the
    translation has acknowledged: its accesses with it are complete and visible.
    For one page that is a CPU running `pid` whose TLB holds `vpn` (point 6 of the
    module docstring); for `flush_all`, every CPU.
    """
    if cpu >= 0:
        if flush_all:
            tlb_flush(ms.tlb, cpu, True)
        elif ms.cpus[cpu * CPU_STRIDE + C_PID] == pid:
            tlb_invalidate(ms.tlb, cpu, vpn)
    for c in range(ms.kv[KV_NCPU]):
        if c == cpu:
            continue
        base = c * CPU_STRIDE
        if not flush_all:
            if atomic_load(ms.cpus, base + C_PID) != pid:
                continue  # its TLB describes another process; switching to pid flushes it
            if not tlb_holds(ms.tlb[c], vpn):
                continue  # not in its TLB, and a fill from now on sees the PTE changed
        post_request(ms.cpus, c, pid, vpn, REQ_ALL if flush_all else REQ_PAGE)
        spins = 0
        while atomic_load(ms.cpus, base + C_BUSY) and atomic_load(ms.cpus, base + C_REQ) != REQ_NONE:
            spins = spin_pause(spins)


@kernel
def cpu_enter(ms, cpu, pid):
    """CPU `cpu` starts running process `pid` in compiled code; OK or ST_DEAD.

    Loads CR3 (flushing the TLB but Global entries) when the process changes,
    marks the CPU busy and serves pending shootdowns before any translation.
    """
    base = cpu * CPU_STRIDE
    if ms.cpus[base + C_PID] != pid:
        atomic_store(ms.cpus, base + C_PID, pid)
        ms.cpus[base + C_CR3] = ms.procs[pid * P_COLS + P_PGDIR]
        tlb_flush(ms.tlb, cpu, True)
    atomic_store(ms.cpus, base + C_BUSY, 1)
    cpu_poll(ms, cpu)
    if atomic_load(ms.procs, pid * P_COLS + P_STATE) != PS_LIVE:
        atomic_store(ms.cpus, base + C_BUSY, 0)
        return ST_DEAD
    ms.cpus[base + C_MISS_SNAP] = ms.cstats[cpu * ST_COLS + S_TLB_MISSES]
    ms.cpus[base + C_WALK_SNAP] = ms.cstats[cpu * ST_COLS + S_WALKS]
    return OK


@kernel
def cpu_leave(ms, cpu, accesses):
    """CPU `cpu` leaves compiled code: credit `accesses`, its TLB misses and walks to its process."""
    base = cpu * CPU_STRIDE
    pid = ms.cpus[base + C_PID]
    misses = ms.cstats[cpu * ST_COLS + S_TLB_MISSES] - ms.cpus[base + C_MISS_SNAP]
    walks = ms.cstats[cpu * ST_COLS + S_WALKS] - ms.cpus[base + C_WALK_SNAP]
    atomic_add(ms.pstats, pid * ST_COLS + S_ACCESSES, accesses)
    atomic_add(ms.pstats, pid * ST_COLS + S_TLB_MISSES, misses)
    atomic_add(ms.pstats, pid * ST_COLS + S_WALKS, walks)
    ms.cstats[cpu * ST_COLS + S_ACCESSES] += accesses
    wb_flush(ms, cpu)  # normally done right after each fault; never leave one pending
    atomic_store(ms.cpus, base + C_BUSY, 0)
