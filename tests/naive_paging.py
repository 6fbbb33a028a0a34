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


def clock_faults(refs, nframes):
    """(faults, victims) of second chance over frames in slot order with a sweeping hand.

    A newly loaded page starts referenced (the MMU sets Accessed on its first use).
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
        ref[i] = True
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
