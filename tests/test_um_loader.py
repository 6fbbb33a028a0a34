"""The UM program loader: file validation, big-endian decoding, accepted program forms."""

import os

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vm32.errors import BadProgram, VM32Error
from vm32.um import loader
from vm32.um.loader import load_program, looks_like_assembly, parse_program, program_words


def write(path, data: bytes):
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- files


def test_valid_file_is_big_endian(tmp_path):
    p = write(tmp_path / "p.um", bytes.fromhex("01020304 deadbeef 00000000 ffffffff"))
    words = load_program(p)
    assert words.dtype == np.uint32 and words.dtype.isnative
    assert words.tolist() == [0x01020304, 0xDEADBEEF, 0, 0xFFFFFFFF]


def test_accepts_str_and_pathlike(tmp_path):
    p = write(tmp_path / "p.um", b"\x70\x00\x00\x00")
    assert load_program(str(p)).tolist() == [0x70000000]
    assert load_program(p).tolist() == [0x70000000]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=64))
def test_parse_round_trip(words):
    data = b"".join(w.to_bytes(4, "big") for w in words)
    assert parse_program(data).tolist() == words


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=64).filter(lambda b: len(b) % 4))
@example(b"\t\n\r         A")  # ragged, and reads as a line of assembly source
def test_any_ragged_length_is_refused(data):
    """Refused for its length, unless it reads as assembly source (that message comes first)."""
    reason = "looks like text" if looks_like_assembly(data) else "not a multiple of 4"
    with pytest.raises(BadProgram, match=reason):
        parse_program(data)


def test_empty_file(tmp_path):
    p = write(tmp_path / "empty.um", b"")
    with pytest.raises(BadProgram, match="empty") as info:
        load_program(p)
    assert str(p) in str(info.value)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 4097])
def test_truncated_file(tmp_path, n):
    p = write(tmp_path / "cut.um", bytes(range(256)) * 17)
    p.write_bytes(p.read_bytes()[:n])
    with pytest.raises(BadProgram, match=f"size {n} bytes is not a multiple of 4") as info:
        load_program(p)
    assert "cut.um" in str(info.value)


def test_directory(tmp_path):
    with pytest.raises(BadProgram, match="is a directory"):
        load_program(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(BadProgram, match="no such file") as info:
        load_program(tmp_path / "nope.um")
    assert "nope.um" in str(info.value)


def test_path_through_a_file(tmp_path):
    p = write(tmp_path / "p.um", b"\0\0\0\0")
    with pytest.raises(BadProgram, match="cannot read"):
        load_program(p / "inside")


def test_nul_in_path():
    with pytest.raises(BadProgram):
        load_program("bad\0name.um")


def test_unreadable_file(tmp_path):
    p = write(tmp_path / "secret.um", b"\0\0\0\0")
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("this user (root?) can read a mode-000 file")
        with pytest.raises(BadProgram, match="cannot read") as info:
            load_program(p)
        assert "secret.um" in str(info.value)
    finally:
        p.chmod(0o600)


def test_endless_file_is_cut_at_the_limit(monkeypatch):
    # /dev/zero reports size 0 and never ends: the loader must stop reading
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    monkeypatch.setattr(loader, "MAX_PROGRAM_BYTES", 1 << 16)
    with pytest.raises(BadProgram, match="limit"):
        load_program("/dev/zero")


def test_large_file_refused_without_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_PROGRAM_BYTES", 1 << 12)
    p = tmp_path / "big.um"
    with open(p, "wb") as f:
        f.truncate(1 << 13)  # sparse
    with pytest.raises(BadProgram, match="limit"):
        load_program(p)
    write(p, bytes(1 << 12))  # exactly at the limit is fine
    assert load_program(p).size == 1 << 10


def test_bad_program_is_a_vm32_error(tmp_path):
    with pytest.raises(VM32Error):
        load_program(tmp_path / "missing")


# ---------------------------------------------------------------- program_words


def test_program_words_forms(tmp_path):
    data = bytes.fromhex("d2000048 a0000002 70000000")
    expected = [0xD2000048, 0xA0000002, 0x70000000]
    p = write(tmp_path / "p.um", data)
    assert program_words(data).tolist() == expected
    assert program_words(bytearray(data)).tolist() == expected
    assert program_words(memoryview(data)).tolist() == expected
    assert program_words(p).tolist() == expected
    assert program_words(str(p)).tolist() == expected
    arr = np.array(expected, dtype=np.uint32)
    assert program_words(arr) is arr  # no copy for words already in the right form


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32, np.uint16, ">u4"])
def test_program_words_converts_integer_arrays(dtype):
    arr = np.array([0, 1, 0x7FFF], dtype=dtype)
    words = program_words(arr)
    assert words.dtype == np.uint32 and words.tolist() == [0, 1, 0x7FFF]


def test_program_words_full_range_int64():
    words = program_words(np.array([0, 0xFFFFFFFF], dtype=np.int64))
    assert words.tolist() == [0, 0xFFFFFFFF]


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((2, 2), dtype=np.uint32),  # 2-D
        np.zeros(0, dtype=np.uint32),  # empty
        np.zeros(0, dtype=np.int64),
        np.array(7, dtype=np.uint32),  # 0-D
        np.array([1, 1 << 32], dtype=np.int64),  # above 32 bits
        np.array([1 << 40], dtype=np.uint64),
        np.array([-1], dtype=np.int64),  # negative
        np.array([1.5, 2.0]),  # not integers: would be truncated
        np.array([True]),
    ],
    ids=["2d", "empty", "empty-int64", "0d", "2**32", "2**40", "negative", "float", "bool"],
)
def test_program_words_bad_arrays(arr):
    with pytest.raises(BadProgram):
        program_words(arr)


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02\x03\x04\x05"])
def test_program_words_bad_bytes(data):
    with pytest.raises(BadProgram):
        program_words(data)


@pytest.mark.parametrize("thing", [[1, 2, 3], 42, None])
def test_program_words_other_types(thing):
    with pytest.raises(BadProgram, match="array of words, UM file bytes or a path"):
        program_words(thing)


def test_read_error_becomes_bad_program(tmp_path, monkeypatch):
    # the same path as a mode-000 file, for when the tests run as root
    p = write(tmp_path / "secret.um", b"\0\0\0\0")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(p), "open", refuse)
    with pytest.raises(BadProgram, match=r"secret.um: cannot read \(Permission denied\)"):
        load_program(p)
