"""Compiled parsers of trace text: bytes in, 64-bit page numbers and write flags out.

One kernel for every text format, a line reader per format:

    parse_text(fmt, buf, start, end, pages, writes, st) -> n

reads whole lines of ``buf[start:end]`` (``buf[end - 1]`` must be a newline),
appends one entry per page reference to ``pages`` (uint64 page numbers, address
>> PAGE_SHIFT) and ``writes`` (uint8, 1 for a write), and returns how many it wrote.  It
stops early, at a line boundary, when fewer than `REFS_PER_LINE` entries are left
in the outputs.  ``st`` (int64) reports:

    st[ST_POS]    index in buf of the first line not parsed (end when all were)
    st[ST_LINES]  newline characters passed (complete lines, blank ones included)
    st[ST_ERROR]  0, or an ERR_* code: the line at st[ST_POS] is malformed

Bounds: every index the kernels read follows a byte that is not a newline in
the same line, and the byte at end - 1 is one, so no read goes past end - 1.

Lines that start with ``#`` are comments in every format; lackey traces also
carry valgrind's own messages (``==pid== ...``, ``--pid-- ...``), skipped too.
"""

from __future__ import annotations

import numpy as np

from vm32.jit import inline_leaf_kernel, leaf_kernel as kernel
from vm32.memory import PAGE_SHIFT, PAGE_SIZE

ST_POS, ST_LINES, ST_ERROR = 0, 1, 2
ST_SIZE = 4
REFS_PER_LINE = 4  # the most one line can give: a lackey M (read + write) across two pages

ERR_SYNTAX = 1  # the line does not have the format's shape
ERR_ADDRESS = 2  # the address is missing or longer than 64 bits
ERR_SIZE = 3  # lackey size missing, 0 or larger than a page
ERR_RANGE = 4  # address + size runs past the top of the 64-bit space
ERR_PAGE = 5  # a page number whose addresses do not fit 64 bits
ERRORS = {
    ERR_SYNTAX: "malformed line",
    ERR_ADDRESS: "bad address (hexadecimal, at most 64 bits)",
    ERR_SIZE: "bad size (decimal, 1 to 4096 bytes)",
    ERR_RANGE: "the reference runs past the end of the 64-bit address space",
    ERR_PAGE: "page number too large: its addresses do not fit in 64 bits with 4 KiB pages",
}

NL, CR, SP, TAB = 10, 13, 32, 9
MAX_REF_SIZE = PAGE_SIZE  # a lackey reference touches at most two pages

_HEX = np.full(256, -1, dtype=np.int8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i


@inline_leaf_kernel
def _skip_line(buf, i):
    """Index just past the newline that ends the line containing i."""
    while buf[i] != NL:
        i += 1
    return i + 1


@inline_leaf_kernel
def _hex(buf, i):
    """(value, index after the digits, digit count) of the hexadecimal number at i."""
    v = np.uint64(0)
    d = 0
    while True:
        h = _HEX[buf[i]]
        if h < 0:
            break
        v = (v << np.uint64(4)) | np.uint64(h)
        i += 1
        d += 1
    return v, i, d


@inline_leaf_kernel
def _hex_address(buf, i):
    """(address, index after it, ok) of a hexadecimal address at i, with an optional 0x."""
    if buf[i] == 48 and (buf[i + 1] == 120 or buf[i + 1] == 88) and _HEX[buf[i + 2]] >= 0:  # "0x"
        i += 2
    v, i, d = _hex(buf, i)
    return v, i, 0 < d <= 16


@inline_leaf_kernel
def _decimal(buf, i, max_digits):
    """(value, index after the digits, digit count) of the decimal number at i (at most
    `max_digits` digits are summed; the count says how many there were)."""
    v = np.uint64(0)
    d = 0
    while 48 <= buf[i] <= 57:
        if d < max_digits:
            v = v * np.uint64(10) + np.uint64(buf[i] - 48)
        i += 1
        d += 1
    return v, i, d


@inline_leaf_kernel
def _blanks(buf, i):
    """Index of the first byte at or after i that is not a space or tab."""
    while buf[i] == SP or buf[i] == TAB:
        i += 1
    return i


@inline_leaf_kernel
def _line_end(buf, i):
    """True if only blanks (and a CR) remain before the newline at or after i."""
    i = _blanks(buf, i)
    if buf[i] == CR:
        i += 1
    return buf[i] == NL


@inline_leaf_kernel
def _comment(buf, i):
    """True if the line at i is blank or a comment."""
    c = buf[_blanks(buf, i)]
    return c == NL or c == CR or c == 35  # '#'


@inline_leaf_kernel
def _fail(st, pos, lines, code, n):
    st[ST_POS] = pos
    st[ST_LINES] = lines
    st[ST_ERROR] = code
    return n


@inline_leaf_kernel
def _done(st, pos, lines, n):
    st[ST_POS] = pos
    st[ST_LINES] = lines
    st[ST_ERROR] = 0
    return n


@inline_leaf_kernel
def _line_lackey(buf, i, pages, writes, n):
    """valgrind lackey: ``I  ADDR,SIZE`` (fetch), `` L|S|M ADDR,SIZE`` (load, store, modify).
    A reference that crosses a page boundary touches both pages; M is a read of its
    pages, then a write of them."""
    c = buf[i]
    op = -1
    if c == 73:  # "I  "
        if buf[i + 1] == SP and buf[i + 2] == SP:
            op = 0
    elif c == SP:  # " L ", " S ", " M "
        k = buf[i + 1]
        if k != NL and buf[i + 2] == SP:
            op = 0 if k == 76 else 1 if k == 83 else 2 if k == 77 else -1
    if op < 0:
        return n, i, ERR_SYNTAX
    a, i, d = _hex(buf, i + 3)
    if d == 0 or d > 16:
        return n, i, ERR_ADDRESS
    if buf[i] != 44:  # ','
        return n, i, ERR_SYNTAX
    size, i, d = _decimal(buf, i + 1, 5)
    if d == 0 or d > 5 or size == 0 or size > MAX_REF_SIZE:
        return n, i, ERR_SIZE
    if buf[i] != NL and not _line_end(buf, i):
        return n, i, ERR_SYNTAX
    if a > np.uint64(0xFFFFFFFFFFFFFFFF) - (size - np.uint64(1)):
        return n, i, ERR_RANGE
    first = a >> np.uint64(PAGE_SHIFT)
    last = (a + (size - np.uint64(1))) >> np.uint64(PAGE_SHIFT)
    for w in range(2 if op == 2 else 1):  # M: the read, then the write
        pages[n] = first
        writes[n] = 1 if (op == 1 or w == 1) else 0
        n += 1
        if last != first:
            pages[n] = last
            writes[n] = writes[n - 1]
            n += 1
    return n, i, 0


@inline_leaf_kernel
def _line_din(buf, i, pages, writes, n):
    """DineroIV din: ``LABEL ADDRESS [anything]``; label 0 read, 1 write, 2 instruction
    fetch, 3 unknown (a read), 4 cache flush (no reference); address hexadecimal."""
    i = _blanks(buf, i)
    label = buf[i] - 48
    if label < 0 or label > 4 or (buf[i + 1] != SP and buf[i + 1] != TAB):
        return n, i, ERR_SYNTAX
    a, i, ok = _hex_address(buf, _blanks(buf, i + 1))
    if not ok:
        return n, i, ERR_ADDRESS
    if buf[i] != SP and buf[i] != TAB and not _line_end(buf, i):
        return n, i, ERR_SYNTAX
    if label != 4:
        pages[n] = a >> np.uint64(PAGE_SHIFT)
        writes[n] = 1 if label == 1 else 0
        n += 1
    return n, i, 0


@inline_leaf_kernel
def _line_pin(buf, i, pages, writes, n):
    """Pin's pinatrace: ``IP: R|W ADDR`` (both hexadecimal with 0x); ``#eof`` ends it."""
    _, i, ok = _hex_address(buf, _blanks(buf, i))
    if not ok or buf[i] != 58:  # ':'
        return n, i, ERR_SYNTAX
    i = _blanks(buf, i + 1)
    k = buf[i]
    if not (k == 82 or k == 87) or (buf[i + 1] != SP and buf[i + 1] != TAB):  # R W
        return n, i, ERR_SYNTAX
    a, i, ok = _hex_address(buf, _blanks(buf, i + 1))
    if not ok:
        return n, i, ERR_ADDRESS
    if not _line_end(buf, i):
        return n, i, ERR_SYNTAX
    pages[n] = a >> np.uint64(PAGE_SHIFT)
    writes[n] = 1 if k == 87 else 0
    return n + 1, i, 0


@inline_leaf_kernel
def _line_rw(buf, i, pages, writes, n):
    """Plain ``ADDR R|W`` lines: a hexadecimal address (0x optional), R or W (any case)."""
    a, i, ok = _hex_address(buf, _blanks(buf, i))
    if not ok:
        return n, i, ERR_ADDRESS
    if buf[i] != SP and buf[i] != TAB:
        return n, i, ERR_SYNTAX
    i = _blanks(buf, i)
    k = buf[i] | 32  # lower case
    if not (k == 114 or k == 119) or not _line_end(buf, i + 1):  # r w
        return n, i, ERR_SYNTAX
    pages[n] = a >> np.uint64(PAGE_SHIFT)
    writes[n] = 1 if k == 119 else 0
    return n + 1, i, 0


@inline_leaf_kernel
def _line_pages(buf, i, pages, writes, n):
    """One decimal page number per line (the OSTEP simulator's form); all reads."""
    p, i, d = _decimal(buf, _blanks(buf, i), 17)
    if d == 0 or not _line_end(buf, i):
        return n, i, ERR_SYNTAX
    if d > 16 or p >= np.uint64(1 << 52):
        return n, i, ERR_PAGE
    pages[n] = p
    writes[n] = 0
    return n + 1, i, 0


LACKEY, DIN, PIN, RW, PAGES = 0, 1, 2, 3, 4
TEXT_FORMATS = {"lackey": LACKEY, "din": DIN, "pin": PIN, "rw": RW, "pages": PAGES}


@kernel
def parse_text(fmt, buf, start, end, pages, writes, st):
    """Parse the lines of ``buf[start:end]`` in text format `fmt` (a TEXT_FORMATS value);
    see the module docstring for the contract.  Blank lines, comments and, in lackey
    traces, valgrind's messages are skipped; each other line goes to its format's
    line reader, which writes its references and says whether the line was malformed."""
    n, i, lines = 0, start, 0
    cap = pages.shape[0] - REFS_PER_LINE
    while i < end and n <= cap:
        c = buf[i]
        if not (fmt == LACKEY and (c == 73 or c == SP and buf[i + 1] > SP)):  # not a common lackey line
            if _comment(buf, i) or (fmt == LACKEY and (c == 61 or c == 45)):  # '=' '-': valgrind's messages
                i = _skip_line(buf, i)
                lines += 1
                continue
        if fmt == LACKEY:
            n, j, err = _line_lackey(buf, i, pages, writes, n)
        elif fmt == PAGES:
            n, j, err = _line_pages(buf, i, pages, writes, n)
        elif fmt == DIN:
            n, j, err = _line_din(buf, i, pages, writes, n)
        elif fmt == PIN:
            n, j, err = _line_pin(buf, i, pages, writes, n)
        else:
            n, j, err = _line_rw(buf, i, pages, writes, n)
        if err:
            return _fail(st, i, lines, err, n)
        i = _skip_line(buf, j)
        lines += 1
    return _done(st, i, lines, n)
