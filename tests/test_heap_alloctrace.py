"""Tests of vm32.heap.alloctrace: the versioned .npz allocation-trace format."""

import zipfile

import numpy as np
import pytest

from vm32.errors import BadTrace
from vm32.heap import alloctrace


def test_round_trip(tmp_path):
    events = np.array([3, 5, -1, 2, -4, -2], dtype=np.int64)
    alloctrace.save(tmp_path / "t.npz", events, "prog.um")
    loaded, program = alloctrace.load(tmp_path / "t.npz")
    assert loaded.dtype == np.int32 and loaded.tolist() == events.tolist() and program == "prog.um"
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]  # no temporary file left


@pytest.mark.parametrize("events, message", [
    ([3, -2], "event 1 frees handle 1, which is not an earlier allocation"),
    ([3, -1, -1], "event 2 frees handle 0, which was freed already"),
    ([3, -2147483648], "event 1 frees handle 2147483647, which is not an earlier allocation"),
    ([3, 4, -2, -3], "event 3 frees handle 2, which is not an earlier allocation"),
])
def test_bad_frees_name_the_event(tmp_path, events, message):
    path = tmp_path / "bad.npz"
    np.savez(path, version=np.int32(1), program=np.str_("x"), events=np.array(events, np.int32))
    with pytest.raises(BadTrace, match=message):
        alloctrace.load(path)


def test_foreign_truncated_and_wrong_version_files(tmp_path):
    cases = {
        "npy.npz": lambda p: np.save(open(p, "wb"), np.arange(3)),
        "text.npz": lambda p: p.write_text("+10,-0\n"),
        "members.npz": lambda p: np.savez(p, events=np.arange(3, dtype=np.int32)),
        "v2.npz": lambda p: np.savez(p, version=np.int32(2), program=np.str_("x"), events=np.zeros(1, np.int32)),
        "int64.npz": lambda p: np.savez(p, version=np.int32(1), program=np.str_("x"), events=np.zeros(1, np.int64)),
    }
    messages = {"npy.npz": "single .npy array", "text.npz": "not a readable", "members.npz": "members events",
                "v2.npz": "trace version 2", "int64.npz": "int64 with 1 dimensions"}
    for name, make in cases.items():
        make(tmp_path / name)
        with pytest.raises(BadTrace, match=messages[name]):
            alloctrace.load(tmp_path / name)
    alloctrace.save(tmp_path / "ok.npz", np.arange(1000), "x")
    data = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadTrace, match="cut.npz: not a readable"):
        alloctrace.load(tmp_path / "cut.npz")
    with pytest.raises(BadTrace, match="no such file"):
        alloctrace.load(tmp_path / "missing.npz")
    assert zipfile.is_zipfile(tmp_path / "ok.npz")


def test_save_refuses_wide_events_and_leaves_nothing(tmp_path):
    with pytest.raises(BadTrace, match="32-bit"):
        alloctrace.save(tmp_path / "w.npz", np.array([1 << 40]), "x")
    assert list(tmp_path.iterdir()) == []
