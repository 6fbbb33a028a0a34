"""vm32.trace.readers: every format against the plain oracles of naive_trace, malformed
lines, compression, format detection, streaming across blocks, and the folding rule."""

import gzip
import lzma

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

import naive_trace
from vm32.errors import BadTrace, InvalidArgument
from vm32.trace import readers
from vm32.trace.fold import PLACES
from vm32.trace.readers import detect_format, read_trace, trace_from_pages

LACKEY = """==123== Lackey, an example Valgrind tool
==123== Command: ./prog
I  0401ab70,3
 S 1fff000778,8
 L 04020ffe,4
 M 7fff0000fffc,8
--123-- a warning line
I  0401affe,5

# a comment
==123== Exit code: 0
"""
DIN = "2 0\n0 1000\n0 70f60888 a comment\n2 2cb5\n1 70f60890\n4 0\n3 FFFF1234\n"
PIN = "0x4005d0: W 0x7ffd12345678\n0x4005d4: R 0x601040\n#eof\n"
RW = "0x7ffd1238 R\n601040 W\n0X1000 w\n"
PAGES = "1\n2\n3\n4\n1\n2\n5\n1\n2\n3\n4\n5\n"
ORACLES = {
    "lackey": (LACKEY, naive_trace.lackey_refs),
    "din": (DIN, naive_trace.din_refs),
    "pin": (PIN, naive_trace.pin_refs),
    "rw": (RW, naive_trace.rw_refs),
    "pages": (PAGES, naive_trace.pages_refs),
}


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _expected(refs):
    return naive_trace.fold([p for p, _ in refs]), [int(w) for _, w in refs]


@pytest.mark.parametrize("fmt", list(ORACLES))
def test_each_format_matches_its_oracle(tmp_path, fmt):
    text, oracle = ORACLES[fmt]
    path = _write(tmp_path, f"t.{fmt}", text)
    for given_fmt in (fmt, "auto"):
        trace = read_trace(path, given_fmt)
        assert trace.format == fmt
        pages, writes = _expected(oracle(text))
        assert trace.vpns.tolist() == pages
        assert trace.writes.tolist() == writes
        assert [trace.page_label(v) for v in trace.vpns.tolist()] == [p for p, _ in oracle(text)]


def test_lackey_crossing_and_modify(tmp_path):
    trace = read_trace(_write(tmp_path, "t", " M 0ffe,4\nI  2000,1\n"), "lackey")
    labels = [trace.page_label(v) for v in trace.vpns.tolist()]
    assert labels == [0, 1, 0, 1, 2]  # read both pages, write both, then the fetch
    assert trace.writes.tolist() == [0, 0, 1, 1, 0]


@pytest.mark.parametrize("fmt, text, line, what", [
    ("lackey", "I  1000,4\nX  1000,4\n", 2, "malformed line"),
    ("lackey", "I  1000,4\n L ,4\n", 2, "bad address"),
    ("lackey", " L 1000,0\n", 1, "bad size"),
    ("lackey", " L 1000,5000\n", 1, "bad size"),
    ("lackey", " L 10000000000000000,4\n", 1, "bad address"),
    ("lackey", " L 1000,4 junk\n", 1, "malformed line"),
    ("lackey", " L ffffffffffffffff,4\n", 1, "past the end"),
    ("din", "0 1000\n\n9 1000\n", 3, "malformed line"),
    ("din", "0 xyz\n", 1, "bad address"),
    ("pin", "0x1: Q 0x2\n", 1, "malformed line"),
    ("rw", "1000 X\n", 1, "malformed line"),
    ("rw", "1000R\n", 1, "malformed line"),
    ("pages", "1\n2\nthree\n", 3, "malformed line"),
    ("pages", "4503599627370496\n", 1, "page number too large"),
])
def test_malformed_lines_name_file_line_and_text(tmp_path, fmt, text, line, what):
    path = _write(tmp_path, "bad.trace", text)
    with pytest.raises(BadTrace) as info:
        read_trace(path, fmt)
    message = str(info.value)
    assert f"bad.trace, line {line}: " in message and what in message
    assert repr(text.splitlines()[line - 1]) in message


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress, zstandard.ZstdCompressor().compress])
def test_compressed_traces_read_as_plain(tmp_path, compress):
    plain = read_trace(_write(tmp_path, "p", LACKEY))
    packed = read_trace(_write(tmp_path, "c", compress(LACKEY.encode())))
    assert packed.vpns.tolist() == plain.vpns.tolist() and packed.writes.tolist() == plain.writes.tolist()


def test_corrupt_compressed_data_is_bad_trace(tmp_path):
    data = gzip.compress(LACKEY.encode() * 50)
    with pytest.raises(BadTrace, match="cannot read the gzip data"):
        read_trace(_write(tmp_path, "c.gz", data[: len(data) // 2]))


def test_raw_addresses_u32_u64(tmp_path):
    addrs = [0x1000, 0x7FFFFFFF, 0x00401234]
    t32 = read_trace(_write(tmp_path, "a32", np.array(addrs, dtype="<u4").tobytes()), "u32")
    assert [t32.page_label(v) for v in t32.vpns.tolist()] == [a >> 12 for a in addrs]
    addrs64 = [0x7FFD12345678, 0x401000, 0x7FFD12345FFF]
    path = _write(tmp_path, "a64", np.array(addrs64, dtype="<u8").tobytes())
    t64 = read_trace(path)  # auto: every word has its top 16 bits clear
    assert t64.format == "u64"
    assert [t64.page_label(v) for v in t64.vpns.tolist()] == [a >> 12 for a in addrs64]
    assert t64.vpns[0] == t64.vpns[2] and not t64.writes.any()
    with pytest.raises(BadTrace, match="not a multiple of 8"):
        read_trace(_write(tmp_path, "odd", b"\x01" * 12), "u64")


def test_empty_and_undetectable_traces(tmp_path):
    with pytest.raises(BadTrace, match="empty"):
        read_trace(_write(tmp_path, "e", ""))
    with pytest.raises(BadTrace, match="no references"):
        read_trace(_write(tmp_path, "c", "# only a comment\n\n"), "pages")
    with pytest.raises(BadTrace, match="cannot tell the trace format.*--format"):
        read_trace(_write(tmp_path, "x", "hello world\n"))
    with pytest.raises(InvalidArgument, match="unknown trace format"):
        read_trace(_write(tmp_path, "y", PAGES), "csv")
    with pytest.raises(InvalidArgument, match="cannot open trace file"):
        read_trace(tmp_path / "missing")


def test_detect_format_from_first_lines():
    assert detect_format(LACKEY.encode(), "t") == "lackey"
    assert detect_format(DIN.encode(), "t") == "din"
    assert detect_format(PIN.encode(), "t") == "pin"
    assert detect_format(RW.encode(), "t") == "rw"
    assert detect_format(b"17", "t") == "pages"  # one line without its newline
    assert detect_format(np.array([0xF0001234, 0x12345678], dtype="<u4").tobytes(), "t") == "u32"


def test_streaming_across_small_blocks(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    bases = rng.integers(0, 1 << 35, 40) << 12  # 40 regions of a 64-bit space, each up to 16 MiB
    addrs = rng.choice(bases, 3000) + rng.integers(0, 1 << 24, 3000)
    kinds = rng.choice(["I ", " L", " S", " M"], 3000)
    text = "".join(f"{k} {a:x},{s}\n" for k, a, s in zip(kinds, addrs, rng.integers(1, 64, 3000)))
    text = text.rstrip("\n")  # and the last line without its newline
    whole = read_trace(_write(tmp_path, "t", text), "lackey")
    monkeypatch.setattr(readers, "BLOCK", 256)
    monkeypatch.setattr(readers, "OUT_REFS", 64)
    pieces = read_trace(_write(tmp_path, "t", text), "lackey")
    pages, writes = _expected(naive_trace.lackey_refs(text))
    assert whole.vpns.tolist() == pieces.vpns.tolist() == pages
    assert whole.writes.tolist() == pieces.writes.tolist() == writes
    assert whole.lines == 3000


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, (1 << 52) - 1), min_size=1, max_size=200))
def test_folding_keeps_distinct_pages_distinct(pages):
    trace = trace_from_pages(pages)
    assert trace.vpns.tolist() == naive_trace.fold(pages)
    assert len(set(trace.vpns.tolist())) == len(set(pages))
    assert [trace.page_label(v) for v in trace.vpns.tolist()] == pages


def test_folding_reports_chunks_that_share():
    pages = [c << 10 for c in range(PLACES + 5)]
    report = trace_from_pages(pages).folding
    assert (report.chunks, report.shared) == (PLACES + 5, 5)
    assert "5 chunks found all 959 places taken" in report.describe()
    assert trace_from_pages([3, 4]).folding.describe() == "1 chunk of 4 MiB placed from 0x00400000"


def test_binary_copy_is_kept_and_used(tmp_path, monkeypatch):
    from vm32.trace import cache

    monkeypatch.setenv("VM32_TRACE_CACHE", str(tmp_path / "copies"))
    monkeypatch.setattr(cache, "MIN_BYTES", 0)
    path = _write(tmp_path, "t.lackey", LACKEY)
    first = read_trace(path)
    assert "cached" not in first.meta and len(list((tmp_path / "copies").iterdir())) == 1
    again = read_trace(path)
    assert again.meta["cached"] and again.format == "lackey" and again.lines == first.lines
    assert again.vpns.tolist() == first.vpns.tolist() and again.writes.tolist() == first.writes.tolist()
    assert again.folding.describe() == first.folding.describe()
    path.write_text(LACKEY + "I  0,1\n")  # an edited file is parsed again
    assert read_trace(path).refs == first.refs + 1
    assert "cached" not in read_trace(path, cache=False).meta
    monkeypatch.setenv("VM32_TRACE_CACHE", "off")
    assert "cached" not in read_trace(path).meta
