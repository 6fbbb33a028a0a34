"""Plain-Python oracles for the paging tests: obvious list/dict versions of the policies
and of a process's memory, slow and easy to trust."""

from __future__ import annotations

import random


def fifo_faults(refs, nframes):
    """(faults, victims) of FIFO on the page reference string `refs`."""
    frames, faults, victims = [], 0, []
    for p in refs:
        if p in frames:
            continue
        faults += 1
        if len(frames) == nframes:
            victims.append(frames.pop(0))
        frames.append(p)
    return faults, victims


def lru_faults(refs, nframes):
    """(faults, victims) of exact LRU."""
    frames, faults, victims = [], 0, []
    for p in refs:
        if p in frames:
            frames.remove(p)
            frames.append(p)
            continue
        faults += 1
        if len(frames) == nframes:
            victims.append(frames.pop(0))
        frames.append(p)
    return faults, victims


def clock_faults(refs, nframes, referenced_on_load=True):
    """(faults, victims) of second chance over frames in slot order with a sweeping hand.

    A newly loaded page starts referenced (the MMU sets Accessed on its first use),
    unless `referenced_on_load` is False.
    """
    slots = [None] * nframes
    ref = [False] * nframes
    hand, faults, victims = 0, 0, []
    for p in refs:
        if p in slots:
            ref[slots.index(p)] = True
            continue
        faults += 1
        if None in slots:
            i = slots.index(None)
        else:
            while ref[hand]:
                ref[hand] = False
                hand = (hand + 1) % nframes
            i = hand
            victims.append(slots[i])
            hand = (hand + 1) % nframes
        slots[i] = p
        ref[i] = referenced_on_load
    return faults, victims


def nru_faults(refs, writes, nframes, period):
    """(faults, victims) of NRU: lowest class 2*A+D from a rotating hand, A cleared every
    `period` victim choices (after the choice)."""
    slots = [None] * nframes
    acc = [False] * nframes
    dirty = [False] * nframes
    hand, count, faults, victims = 0, 0, 0, []
    for p, w in zip(refs, writes):
        if p in slots:
            i = slots.index(p)
            acc[i] = True
            dirty[i] = dirty[i] or w
            continue
        faults += 1
        if None in slots:
            i = slots.index(None)
        else:
            best, best_cls, f = None, 4, hand
            for _ in range(nframes):
                cls = 2 * acc[f] + dirty[f]
                if cls < best_cls:
                    best, best_cls = f, cls
                    if cls == 0:
                        break
                f = (f + 1) % nframes
            hand = (best + 1) % nframes
            count += 1
            if count >= period:
                count = 0
                acc = [False] * nframes
            i = best
            victims.append(slots[i])
        slots[i] = p
        acc[i] = True
        dirty[i] = w
    return faults, victims


class MemoryModel:
    """A process's memory as a dict of bytes: what every read must return."""

    def __init__(self):
        self.data: dict[int, int] = {}

    def write(self, va: int, payload: bytes) -> None:
        for i, b in enumerate(payload):
            self.data[va + i] = b

    def read(self, va: int, n: int) -> bytes:
        return bytes(self.data.get(va + i, 0) for i in range(n))


def random_refs(seed: int, n: int, pages: int) -> list[int]:
    """A reproducible random reference string."""
    r = random.Random(seed)
    return [r.randrange(pages) for _ in range(n)]


def clock_clear_faults(refs, nframes):
    """(faults, victims) of second chance whose newly loaded page starts *un*referenced
    (libCacheSim's Clock: the faulting access does not count as a use)."""
    return clock_faults(refs, nframes, referenced_on_load=False)


def opt_faults(refs, nframes):
    """(faults, victims) of Belady's OPT: evict the page used again farthest in the future
    (never again counts as farthest; among those, the one loaded first)."""
    frames, faults, victims = [], 0, []
    for i, p in enumerate(refs):
        if p in frames:
            continue
        faults += 1
        if len(frames) == nframes:
            def next_use(q):
                try:
                    return refs.index(q, i + 1)
                except ValueError:
                    return len(refs)
            victim = max(frames, key=next_use)
            frames.remove(victim)
            victims.append(victim)
        frames.append(p)
    return faults, victims


def sieve_faults(refs, nframes):
    """(faults, victims) of SIEVE: a queue in load order (newest at the head) and a hand that
    moves from the tail toward the head, sparing visited pages once (clearing the mark)."""
    queue, visited, hand = [], {}, None  # queue[0] is the head (newest)
    faults, victims = 0, []
    for p in refs:
        if p in visited:
            visited[p] = True
            continue
        faults += 1
        if len(queue) == nframes:
            k = len(queue) - 1 if hand is None else queue.index(hand)
            while visited[queue[k]]:
                visited[queue[k]] = False
                k = k - 1 if k > 0 else len(queue) - 1
            victim = queue.pop(k)
            hand = queue[k - 1] if k > 0 else None
            del visited[victim]
            victims.append(victim)
        queue.insert(0, p)
        visited[p] = False
    return faults, victims


def arc_faults(refs, nframes):
    """(faults, victims) of ARC (Megiddo and Modha) as libCacheSim counts it: T1/T2 resident
    LRU lists, B1/B2 ghost lists, target p a float; lists are [head (MRU) ... tail (LRU)]."""
    t1, t2, b1, b2 = [], [], [], []
    p_target = 0.0
    faults, victims = 0, []

    def replace(in_b2):
        if (t1 and (len(t1) > p_target or (len(t1) == p_target and in_b2))) or not t2:
            victim = t1.pop()
            b1.insert(0, victim)
        else:
            victim = t2.pop()
            b2.insert(0, victim)
        victims.append(victim)

    for x in refs:
        if x in t1:
            t1.remove(x)
            t2.insert(0, x)
            continue
        if x in t2:
            t2.remove(x)
            t2.insert(0, x)
            continue
        faults += 1
        full = len(t1) + len(t2) >= nframes
        if x in b1:
            p_target = min(p_target + max(len(b2) / len(b1), 1), nframes)
            b1.remove(x)
            if full:
                replace(False)
            t2.insert(0, x)
        elif x in b2:
            p_target = max(p_target - max(len(b1) / len(b2), 1), 0)
            b2.remove(x)
            if full:
                replace(True)
            t2.insert(0, x)
        else:
            if full:
                if len(t1) + len(b1) + 1 > nframes:
                    if b1:
                        b1.pop()
                        replace(False)
                    else:
                        victims.append(t1.pop())
                else:
                    if len(t1) + len(b1) + len(t2) + len(b2) >= 2 * nframes and b2:
                        b2.pop()
                    replace(False)
            t1.insert(0, x)
    return faults, victims
