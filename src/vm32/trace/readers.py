"""Reading memory-reference traces: files in, page references out, in numpy arrays.

    read_trace(path, format="auto") -> Trace       a file (gzip, xz or zstd: transparently)
    trace_from_pages([1, 2, 3, 1], writes=None)    an explicit page list (the OSTEP `-a`)

Formats (`FORMATS`; the names of ``--format``):

    lackey   valgrind lackey: ``I  0401ab70,3`` / `` L|S|M 1ffefffd78,8``
    din      DineroIV: ``LABEL ADDR`` (0 read, 1 write, 2 fetch, 3 unknown, 4 flush)
    pin      Pin pinatrace: ``0x4005d0: R 0x7ffd1238``
    rw       ``ADDR R|W`` (hexadecimal address)
    pages    one decimal page number per line (the OSTEP simulator's form)
    u32/u64  raw little-endian 32/64-bit addresses, all reads

``auto`` looks at the first lines: text whose lines all have one format's shape
is that format; binary data is u64 when every 64-bit word has its top 16 bits
clear (user addresses of a 64-bit program), else u32.

The file is streamed in blocks through the compiled parsers (vm32.trace.parsers):
no Python object per reference.  Page numbers are 64-bit until they are folded
into the simulator's region (vm32.trace.fold), block by block.
"""

from __future__ import annotations

import gzip
import lzma
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vm32.errors import BadTrace, InvalidArgument
from vm32.trace import parsers
from vm32.trace.fold import Folder, FoldReport

FORMATS = ("lackey", "din", "pin", "rw", "pages", "u32", "u64")
BLOCK = 8 << 20  # bytes read from the file at a time
OUT_REFS = 1 << 20  # page references produced per parser call
SAMPLE = 1 << 16  # bytes looked at to detect the format
COMPRESSED_GUESS = 8  # how many times larger than its file compressed trace data is taken to be
DETECT_LINES = 32

_GZIP, _XZ, _ZSTD = b"\x1f\x8b", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"

_SHAPES = {  # the shape of one line of each text format, for `auto` (the parsers decide)
    "lackey": rb"(I  | [LSM] )[0-9a-fA-F]+,[0-9]+\s*",
    "pin": rb"\s*0x[0-9a-fA-F]+:\s+[RW]\s+0x[0-9a-fA-F]+\s*",
    "din": rb"\s*[0-4][ \t]+(0[xX])?[0-9a-fA-F]+([ \t].*)?\s*",
    "rw": rb"\s*(0[xX])?[0-9a-fA-F]+[ \t]+[RWrw]\s*",
    "pages": rb"\s*[0-9]+\s*",
}


@dataclass
class Trace:
    """A trace as page references: ``vpns[i]`` (uint32 virtual page numbers in the
    simulator's region) and ``writes[i]`` (uint8, 1 for a write)."""

    vpns: np.ndarray
    writes: np.ndarray
    name: str
    format: str
    folding: FoldReport | None = None
    lines: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def refs(self) -> int:
        """Number of page references."""
        return int(self.vpns.shape[0])

    def page_label(self, vpn: int) -> int:
        """The page number `vpn` had in the trace (before folding)."""
        return self.folding.original_page(vpn) if self.folding is not None else vpn


def open_trace_file(path: str | os.PathLike):
    """`path` opened for reading bytes, decompressed if it is gzip, xz or zstd; and the
    name of the compression ("" for none).  InvalidArgument if it cannot be opened."""
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise InvalidArgument(f"cannot open trace file {path}: {e.strerror}") from None
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(_GZIP):
        return gzip.GzipFile(fileobj=raw, mode="rb"), "gzip"
    if magic.startswith(_XZ):
        return lzma.LZMAFile(raw, mode="rb"), "xz"
    if magic.startswith(_ZSTD):
        try:
            import zstandard
        except ImportError:
            raw.close()
            raise InvalidArgument(f"{path} is zstd-compressed: reading it needs the zstandard package "
                                  "(pip install zstandard)") from None
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), "zstd"
    return raw, ""


def _is_binary(sample: bytes) -> bool:
    text = sample.translate(None, b"\t\n\r")
    return any(b < 32 or b > 126 for b in text[:4096])


def detect_format(sample: bytes, name: str) -> str:
    """The format of a trace whose first bytes are `sample` (see the module docstring)."""
    import re

    if not sample:
        raise BadTrace(f"{name}: the trace is empty")
    if _is_binary(sample):
        words = np.frombuffer(sample[: len(sample) // 8 * 8], dtype="<u8")
        return "u64" if words.size and not np.any(words >> np.uint64(48)) else "u32"
    lines = [ln for ln in sample.split(b"\n")[:-1] if ln.strip() and not ln.startswith((b"#", b"==", b"--"))]
    if not lines and b"\n" not in sample:  # one line without an end
        lines = [sample]
    lines = lines[:DETECT_LINES]
    for fmt, shape in _SHAPES.items():
        pattern = re.compile(shape)
        if lines and all(pattern.fullmatch(ln) for ln in lines):
            return fmt
    first = (lines[0] if lines else sample[:60]).decode("utf-8", "replace")[:60]
    raise BadTrace(f"{name}: cannot tell the trace format from its first lines (the first reads "
                   f"{first!r}); name it with --format ({', '.join(FORMATS)})")


def _grown(a: np.ndarray, used: int, size: int) -> np.ndarray:
    """A new array of `size` elements of a's dtype starting with ``a[:used]``."""
    b = np.empty(size, dtype=a.dtype)
    b[:used] = a[:used]
    return b


class _Collector:
    """Folds parser output into growing arrays of page references."""

    def __init__(self, capacity: int = OUT_REFS):
        self.folder = Folder()
        self.vpns = np.empty(capacity, dtype=np.uint32)
        self.writes = np.empty(capacity, dtype=np.uint8)
        self.n = 0
        self.pages = np.empty(OUT_REFS, dtype=np.uint64)
        self.flags = np.empty(OUT_REFS, dtype=np.uint8)

    def take(self, n: int, pages: np.ndarray | None = None, flags: np.ndarray | None = None) -> None:
        """Append ``pages[:n]`` (default: the parser buffers) folded, and their write flags."""
        pages = self.pages if pages is None else pages
        flags = self.flags if flags is None else flags
        if self.n + n > self.vpns.shape[0]:
            size = max(2 * self.vpns.shape[0], self.n + n)
            self.vpns = _grown(self.vpns, self.n, size)
            self.writes = _grown(self.writes, self.n, size)
        self.folder.fold(pages, n, self.vpns, self.n)
        self.writes[self.n: self.n + n] = flags[:n]
        self.n += n

    def trace(self, name: str, fmt: str, lines: int) -> Trace:
        """The references taken, as a Trace; BadTrace if there were none."""
        if self.n == 0:
            raise BadTrace(f"{name}: the trace has no references")
        self.vpns.resize(self.n, refcheck=False)  # gives the unused room back
        self.writes.resize(self.n, refcheck=False)
        return Trace(self.vpns, self.writes, name, fmt, self.folder.report(), lines)


def _bad_line(name: str, fmt: str, raw: bytearray, pos: int, line_no: int, code: int) -> BadTrace:
    end = raw.find(b"\n", pos)
    text = bytes(raw[pos: end if end >= 0 else pos + 80]).rstrip(b"\r").decode("utf-8", "replace")
    if len(text) > 80:
        text = text[:77] + "..."
    return BadTrace(f"{name}, line {line_no}: {parsers.ERRORS[code]} in a {fmt} trace: {text!r}")


def _expected_refs(head: bytes, fmt: str, data_bytes: int) -> int:
    """A guess at the references in `data_bytes` of trace data that starts with `head`
    (sized so that the output arrays rarely grow: each growth copies them)."""
    if fmt in ("u32", "u64"):
        return data_bytes // (4 if fmt == "u32" else 8) + 1
    lines = head.count(b"\n")
    per_line = len(head) / lines if lines else 16
    return int(data_bytes / per_line * 1.05) + OUT_REFS


def _read_text(stream, name: str, fmt: str, head: bytes, progress, capacity: int) -> Trace:
    kind = parsers.TEXT_FORMATS[fmt]
    out = _Collector(capacity)
    room = max(BLOCK, len(head))  # bytes of data the buffer holds; one more for a final newline
    raw = bytearray(room + 1)
    buf = np.frombuffer(raw, dtype=np.uint8)
    st = np.zeros(parsers.ST_SIZE, dtype=np.int64)
    filled = len(head)
    raw[:filled] = head
    lines_before, eof = 0, False
    while True:
        while not eof and filled < room:
            got = stream.readinto(memoryview(raw)[filled:room])
            eof = not got
            filled += got or 0
            if progress is not None and got:
                progress(got)
        end = raw.rfind(b"\n", 0, filled) + 1
        if end == 0:
            if not eof:
                raise BadTrace(f"{name}, line {lines_before + 1}: a line longer than {room >> 20} MiB")
            if filled == 0:
                break
            raw[filled] = 10  # the last line, without its newline
            filled += 1
            end = filled
        pos = 0
        while pos < end:
            n = parsers.parse_text(kind, buf, pos, end, out.pages, out.flags, st)
            out.take(n)
            if st[parsers.ST_ERROR]:
                raise _bad_line(name, fmt, raw, int(st[parsers.ST_POS]), lines_before + int(st[parsers.ST_LINES]) + 1,
                                int(st[parsers.ST_ERROR]))
            pos = int(st[parsers.ST_POS])
            lines_before += int(st[parsers.ST_LINES])
        rest = filled - end
        raw[:rest] = raw[end:filled]
        filled = rest
        if eof and filled == 0:
            break
    return out.trace(name, fmt, lines_before)


def _read_binary(stream, name: str, fmt: str, head: bytes, progress, capacity: int) -> Trace:
    width = 4 if fmt == "u32" else 8
    out = _Collector(capacity)
    pending = head
    total = len(head)
    while True:
        more = stream.read(BLOCK)
        if more and progress is not None:
            progress(len(more))
        data = pending + more if pending else more
        total += len(more)
        usable = len(data) // width * width if more else len(data)
        if not more and usable % width:
            raise BadTrace(f"{name}: a {fmt} trace is a sequence of {width}-byte addresses, but it has "
                           f"{total} bytes (not a multiple of {width})")
        if usable:
            addrs = np.frombuffer(data, dtype=f"<u{width}", count=usable // width)
            pages = (addrs >> addrs.dtype.type(12)).astype(np.uint64)
            for k in range(0, pages.size, OUT_REFS):
                part = pages[k: k + OUT_REFS]
                out.take(part.size, part, np.zeros(part.size, dtype=np.uint8))
        pending = data[usable:]
        if not more:
            break
    return out.trace(name, fmt, 0)


def read_trace(path: str | os.PathLike, format: str = "auto", *, progress=None, cache: bool = True) -> Trace:
    """Read the trace file `path` (see the module docstring for formats and compression).

    With `cache`, a binary copy kept from an earlier read of the same file is loaded
    instead, and a new read keeps one (vm32.trace.cache).  `progress(nbytes)`, if
    given, is called as decompressed bytes are read.
    Raises BadTrace for a malformed line (naming the file, line and text), an empty
    trace or an unknown format; InvalidArgument if the file cannot be opened.
    """
    fmt = str(format).strip().lower()
    if fmt != "auto" and fmt not in FORMATS:
        raise InvalidArgument(f"unknown trace format {format!r}; choose auto or one of {', '.join(FORMATS)}")
    name, asked = str(path), fmt
    if Path(path).is_dir():
        raise InvalidArgument(f"cannot read trace file {name}: it is a directory")
    if cache:
        from vm32.trace import cache as copies

        kept = copies.load(path, asked)
        if kept is not None:
            return kept
    stream, compression = open_trace_file(path)
    with stream:
        try:
            head = stream.read(SAMPLE)
            if fmt == "auto":
                fmt = detect_format(head, name)
            if progress is not None:
                progress(len(head))
            reader = _read_binary if fmt in ("u32", "u64") else _read_text
            size = os.path.getsize(path) * (1 if not compression else COMPRESSED_GUESS)
            trace = reader(stream, name, fmt, head, progress, _expected_refs(head, fmt, size))
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise BadTrace(f"{name}: cannot read the {compression or 'trace'} data: {e}") from None
        except Exception as e:  # zstandard raises its own ZstdError
            if type(e).__name__ == "ZstdError":
                raise BadTrace(f"{name}: cannot read the zstd data: {e}") from None
            raise
    trace.meta["compression"] = compression
    if cache:
        copies.store(path, asked, trace)
    return trace


def trace_from_pages(pages, writes=None, name: str = "-a") -> Trace:
    """A trace of the page numbers `pages` (ints >= 0), reads unless `writes` says otherwise."""
    try:
        arr = np.asarray([int(p) for p in pages], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgument(f"{name}: page numbers must be integers") from None
    if arr.size == 0:
        raise BadTrace(f"{name}: the trace has no references")
    if np.any(arr < 0) or np.any(arr >= 1 << 52):
        raise BadTrace(f"{name}: page numbers must be between 0 and 2**52 - 1")
    flags = np.zeros(arr.size, dtype=np.uint8) if writes is None else np.asarray(writes, dtype=np.uint8)
    if flags.shape != arr.shape:
        raise InvalidArgument(f"{name}: {arr.size} pages but {flags.size} write flags")
    out = _Collector()
    out.take(arr.size, arr.astype(np.uint64), flags)
    return out.trace(name, "pages", arr.size)
