"""PhysicalMemory: size rules, lazy commit, byte and word access, range errors, hexdump.

Most tests use small memories (a few frames), which the design promises to
support; one test creates the default 4 GiB memory and checks that the host
commits only what is touched.
"""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vm32.errors import InvalidArgument, VM32Error
from vm32.memory import (
    ADDRESS_LIMIT,
    DEFAULT_SIZE,
    PAGE_SIZE,
    PhysicalMemory,
    check_size,
    parse_size,
)

SMALL = 16 * PAGE_SIZE  # 64 KiB


@pytest.fixture(scope="module")
def mem():
    """One 64 KiB memory shared by the access tests (hypothesis reuses it)."""
    with PhysicalMemory(SMALL) as m:
        yield m


def resident_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- sizes


def test_default_is_4gib_and_lazily_committed():
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc/self/statm (Linux)")
    before = resident_bytes()
    with PhysicalMemory() as m:
        assert m.size == DEFAULT_SIZE == 1 << 32
        assert m.frames == 1 << 20
        assert m.bytes.size == 1 << 32 and m.words.size == 1 << 30
        # touch a few frames spread over the whole range, last byte included
        for pfn in (0, 1, 4096, 1 << 19, (1 << 20) - 1):
            m.write(m.frame_address(pfn) + 17, b"touched")
        m.write(m.size - 1, b"\xff")
        grown = resident_bytes() - before
        assert m.read(m.frame_address(1 << 19) + 17, 7) == b"touched"
        assert m.read(m.size - 1, 1) == b"\xff"
    # a handful of touched frames plus noise, not gigabytes
    assert grown < 64 << 20, f"resident set grew by {grown >> 20} MiB"


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=1 << 20))
def test_every_multiple_of_a_frame_works(frames):
    size = frames * PAGE_SIZE
    with PhysicalMemory(size) as m:
        assert m.size == size and m.frames == frames
        assert m.bytes.size == size and m.words.size == size // 4
        last = m.frame_address(frames - 1)
        assert last == size - PAGE_SIZE
        m.write_word(size - 4, 0xDEADBEEF)
        assert m.read_word(size - 4) == 0xDEADBEEF
        assert m.read(0, 4) == b"\0\0\0\0"  # fresh memory reads as zero


def test_one_frame_memory():
    with PhysicalMemory(PAGE_SIZE) as m:
        assert m.frames == 1
        m.write(0, bytes(range(256)) * 16)
        assert m.read(0, PAGE_SIZE) == bytes(range(256)) * 16
        with pytest.raises(InvalidArgument):
            m.frame_address(1)
        with pytest.raises(InvalidArgument):
            m.read(PAGE_SIZE - 1, 2)


@pytest.mark.parametrize(
    "size",
    [0, 1, 4095, 4097, PAGE_SIZE + 4, 3 * PAGE_SIZE // 2, ADDRESS_LIMIT + PAGE_SIZE,
     2 * ADDRESS_LIMIT, -PAGE_SIZE, -1],
)
def test_bad_integer_sizes(size):
    with pytest.raises(InvalidArgument):
        PhysicalMemory(size)
    with pytest.raises(InvalidArgument):
        check_size(size)


@pytest.mark.parametrize("size", [4096.0, 1.5, None, True, [4096], b"4096", object()])
def test_non_integer_sizes(size):
    with pytest.raises(InvalidArgument):
        PhysicalMemory(size)


def test_invalid_argument_is_a_vm32_and_value_error():
    with pytest.raises(VM32Error):
        PhysicalMemory(123)
    with pytest.raises(ValueError):
        PhysicalMemory(123)


@pytest.mark.parametrize(
    "text, value",
    [
        ("4096", 4096),
        ("64K", 64 << 10),
        ("64k", 64 << 10),
        ("64KiB", 64 << 10),
        ("16M", 16 << 20),
        ("16MB", 16 << 20),
        ("16mib", 16 << 20),
        ("4G", 4 << 30),
        ("4GiB", 4 << 30),
        (" 8K ", 8 << 10),
        ("0x1000", 4096),
        ("0x1000B", 0x1000B),  # a hex digit B, not a "bytes" suffix
        ("1_024K", 1 << 20),
        ("4096B", 4096),
        (8192, 8192),
        (np.int64(8192), 8192),
    ],
)
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "lots", "K", "4KK", "1.5M", "-4K", "4 G B", "0x", "4T", "G4"])
def test_parse_size_rejects(text):
    with pytest.raises(InvalidArgument, match="size"):
        parse_size(text)


@pytest.mark.parametrize("text", ["16M", "4G", "64K", "4GiB", "8k"])
def test_memory_accepts_size_strings(text):
    with PhysicalMemory(text) as m:
        assert m.size == parse_size(text)


def test_memory_rejects_unaligned_size_string():
    with pytest.raises(InvalidArgument, match="multiple of 4096"):
        PhysicalMemory("5000")
    with pytest.raises(InvalidArgument):
        PhysicalMemory("5G")


# ---------------------------------------------------------------- access


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_read_write_round_trip(mem, data):
    payload = data.draw(st.binary(min_size=0, max_size=300), label="payload")
    addr = data.draw(st.integers(0, SMALL - len(payload)), label="addr")
    before = mem.read(0, SMALL)
    mem.write(addr, payload)
    assert mem.read(addr, len(payload)) == payload
    # nothing outside [addr, addr + len) changed
    after = mem.read(0, SMALL)
    assert after[:addr] == before[:addr]
    assert after[addr + len(payload):] == before[addr + len(payload):]
    # the numpy byte view sees the same bytes
    assert mem.bytes[addr : addr + len(payload)].tobytes() == payload


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_write_accepts_bytes_like(mem, kind):
    mem.write(100, kind(b"abc"))
    assert mem.read(100, 3) == b"abc"


def test_word_view_is_little_endian(mem):
    mem.write(8, b"\x01\x02\x03\x04")
    assert mem.read_word(8) == 0x04030201
    assert int(mem.words[2]) == 0x04030201
    mem.write_word(12, 0xA1B2C3D4)
    assert mem.read(12, 4) == b"\xd4\xc3\xb2\xa1"
    assert mem.words.dtype == np.dtype("<u4")
    # the views share the memory
    mem.words[5] = 0x11223344
    assert mem.read(20, 4) == b"\x44\x33\x22\x11"


@settings(max_examples=60, deadline=None)
@given(st.integers(0, SMALL // 4 - 1), st.integers(0, 0xFFFFFFFF))
def test_word_round_trip(mem, index, value):
    mem.write_word(4 * index, value)
    assert mem.read_word(4 * index) == value
    assert mem.read(4 * index, 4) == value.to_bytes(4, "little")


@pytest.mark.parametrize("addr", [1, 2, 3, 4097, SMALL - 7])
def test_word_alignment(mem, addr):
    with pytest.raises(InvalidArgument, match="multiple of 4"):
        mem.read_word(addr)
    with pytest.raises(InvalidArgument, match="multiple of 4"):
        mem.write_word(addr, 0)


@pytest.mark.parametrize("addr", [SMALL, SMALL + 4, -4, ADDRESS_LIMIT, ADDRESS_LIMIT - 4])
def test_word_range(mem, addr):
    with pytest.raises(InvalidArgument):
        mem.read_word(addr)
    with pytest.raises(InvalidArgument):
        mem.write_word(addr, 0)


@pytest.mark.parametrize("value", [-1, 1 << 32, 1 << 40, 1.5, "7"])
def test_write_word_value_range(mem, value):
    mem.write_word(0, 0x55)
    with pytest.raises(InvalidArgument):
        mem.write_word(0, value)
    assert mem.read_word(0) == 0x55  # unchanged


def test_write_word_accepts_numpy_values(mem):
    mem.write_word(np.uint32(16), np.uint32(0xFFFFFFFF))
    assert mem.read_word(np.int64(16)) == 0xFFFFFFFF


@pytest.mark.parametrize(
    "addr, n",
    [
        (SMALL - 1, 2),  # straddles the end
        (SMALL - 4, 5),
        (SMALL, 1),
        (0, SMALL + 1),
        (-1, 1),
        (-1, 0),
        (ADDRESS_LIMIT, 0),
        (0, -1),
    ],
)
def test_read_outside_memory(mem, addr, n):
    with pytest.raises(InvalidArgument):
        mem.read(addr, n)


def test_write_straddling_the_end_changes_nothing(mem):
    mem.write(SMALL - 2, b"ok")
    with pytest.raises(InvalidArgument, match="outside physical memory"):
        mem.write(SMALL - 2, b"abc")
    assert mem.read(SMALL - 2, 2) == b"ok"
    with pytest.raises(InvalidArgument):
        mem.write(-1, b"x")


def test_edges_are_inside(mem):
    assert mem.read(SMALL, 0) == b""
    mem.write(SMALL - 1, b"z")
    assert mem.read(SMALL - 1, 1) == b"z"
    assert mem.read(0, SMALL)[-1:] == b"z"


def test_numpy_addresses_do_not_wrap(mem):
    # uint32 arithmetic would wrap 0xFFFFFFFE + 4 to 2 and pass a naive bound check
    with pytest.raises(InvalidArgument):
        mem.read(np.uint32(0xFFFFFFFE), 4)
    with pytest.raises(InvalidArgument):
        mem.read_word(np.uint32(0xFFFFFFFC))
    with pytest.raises(InvalidArgument):
        mem.write(np.uint32(0xFFFFFFFF), b"ab")
    mem.write(np.uint32(40), b"np")
    assert mem.read(np.int32(40), np.uint8(2)) == b"np"


@pytest.mark.parametrize("addr", [1.0, "0", None])
def test_non_integer_address(mem, addr):
    with pytest.raises(InvalidArgument):
        mem.read(addr, 1)


# ---------------------------------------------------------------- hexdump, frames


def test_hexdump_format(mem):
    mem.write(0x100, b"Hello, world!\n\x00\x7f" + bytes(range(0x41, 0x45)))
    lines = mem.hexdump(0x100, 20).splitlines()
    assert lines == [
        "00000100  48 65 6c 6c 6f 2c 20 77 6f 72 6c 64 21 0a 00 7f  |Hello, world!...|",
        "00000110  41 42 43 44" + " " * 38 + "|ABCD|",
    ]
    # the ASCII column starts at the same place on a short last line
    assert lines[0].index("|") == lines[1].index("|")


def test_hexdump_unaligned_start_and_empty(mem):
    mem.write(0x203, b"\x80\xffA")
    assert mem.hexdump(0x203, 3) == "00000203  80 ff 41" + " " * 41 + "|..A|"
    assert mem.hexdump(0x203, 0) == ""


def test_hexdump_range_checked(mem):
    with pytest.raises(InvalidArgument):
        mem.hexdump(SMALL - 8, 16)


def test_frame_address(mem):
    assert mem.frames == 16
    assert [mem.frame_address(p) for p in (0, 1, 15)] == [0, 4096, 15 * 4096]
    assert mem.frame_address(np.uint32(2)) == 8192
    for bad in (-1, 16, 1 << 20, 1.0):
        with pytest.raises(InvalidArgument):
            mem.frame_address(bad)


def test_repr_and_close():
    m = PhysicalMemory(2 * PAGE_SIZE)
    assert "frames=2" in repr(m) and "0x2000" in repr(m)
    view = m.bytes
    m.close()  # a caller's view keeps the mapping alive: no crash
    assert view[0] == 0
    with PhysicalMemory(PAGE_SIZE) as m2:
        m2.write(0, b"x")
    assert m2.bytes is None
    for use in (lambda: m2.read(0, 1), lambda: m2.write(0, b"y"), lambda: m2.read_word(0),
                lambda: m2.hexdump(0, 4)):
        with pytest.raises(InvalidArgument, match="closed"):
            use()


def test_host_refusal_is_out_of_memory(monkeypatch):
    import mmap as host_mmap

    import vm32.memory as memory_module
    from vm32.errors import OutOfMemory

    class Refusing:
        """Stands in for the mmap module: every mapping fails as under `ulimit -v`."""

        def __getattr__(self, name):
            return getattr(host_mmap, name)

        @staticmethod
        def mmap(*args, **kwargs):
            raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(memory_module, "mmap", Refusing())
    with pytest.raises(OutOfMemory, match="smaller memory size"):
        PhysicalMemory()
