"""Plain-Python oracles for the trace readers: each format parsed line by line with str
methods, into a list of (64-bit page number, is_write) pairs."""

from __future__ import annotations


def _hex(text: str) -> int:
    return int(text[2:] if text.lower().startswith("0x") else text, 16)


def _skip(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def lackey_refs(text: str) -> list[tuple[int, bool]]:
    """I/L/S/M lines; a reference crossing a page touches both; M = read then write."""
    refs = []
    for line in text.splitlines():
        if _skip(line) or line.startswith(("==", "--")):
            continue
        kind, rest = line[:3].strip(), line[3:]
        addr, size = rest.split(",")
        a, n = int(addr, 16), int(size)
        pages = sorted({a >> 12, (a + n - 1) >> 12})
        if kind in ("I", "L"):
            refs += [(p, False) for p in pages]
        elif kind == "S":
            refs += [(p, True) for p in pages]
        else:
            refs += [(p, False) for p in pages] + [(p, True) for p in pages]
    return refs


def din_refs(text: str) -> list[tuple[int, bool]]:
    """LABEL ADDR [...]: 0 read, 1 write, 2 fetch, 3 unknown, 4 flush (no reference)."""
    refs = []
    for line in text.splitlines():
        if _skip(line):
            continue
        label, addr = line.split()[:2]
        if label != "4":
            refs.append((_hex(addr) >> 12, label == "1"))
    return refs


def pin_refs(text: str) -> list[tuple[int, bool]]:
    """IP: R|W ADDR."""
    refs = []
    for line in text.splitlines():
        if _skip(line):
            continue
        _, kind, addr = line.split()
        refs.append((_hex(addr) >> 12, kind == "W"))
    return refs


def rw_refs(text: str) -> list[tuple[int, bool]]:
    """ADDR R|W."""
    refs = []
    for line in text.splitlines():
        if _skip(line):
            continue
        addr, kind = line.split()
        refs.append((_hex(addr) >> 12, kind.upper() == "W"))
    return refs


def pages_refs(text: str) -> list[tuple[int, bool]]:
    """One decimal page number per line."""
    return [(int(line), False) for line in text.splitlines() if not _skip(line)]


def fold(pages: list[int]) -> list[int]:
    """The folding rule: 4 MiB chunks placed from 0x00400000 in order of first appearance."""
    place: dict[int, int] = {}
    out = []
    for p in pages:
        c = p >> 10
        place.setdefault(c, 1 + len(place))
        out.append((place[c] << 10) | (p & 1023))
    return out
