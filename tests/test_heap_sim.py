"""Tests of vm32.heap.sim (`vm32 heap sim`): its output for explicit op lists, its decisions
against the textbook model of tests/naive_heap.py, and its errors."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naive_heap import NaiveFreeList
from vm32.errors import InvalidArgument
from vm32.heap.sim import SimOptions, run, simulate


def test_answers_for_an_explicit_list():
    lines = run(SimOptions(alloc_list="+10,+20,-0,+5,-1", policy="FIRST", compute=True))
    assert lines[:3] == ["seed 0", "size 100", "baseAddr 1000"]
    body = lines[lines.index("") + 1:]
    assert body == [
        "ptr[0] = Alloc(10) returned 1000 (searched 1 elements)",
        "Free List [ Size 1 ]: [ addr:1010 sz:90 ]",
        "",
        "ptr[1] = Alloc(20) returned 1010 (searched 1 elements)",
        "Free List [ Size 1 ]: [ addr:1030 sz:70 ]",
        "",
        "Free(ptr[0])",
        "returned 0",
        "Free List [ Size 2 ]: [ addr:1000 sz:10 ][ addr:1030 sz:70 ]",
        "",
        "ptr[2] = Alloc(5) returned 1000 (searched 1 elements)",
        "Free List [ Size 2 ]: [ addr:1005 sz:5 ][ addr:1030 sz:70 ]",
        "",
        "Free(ptr[1])",
        "returned 0",
        "Free List [ Size 3 ]: [ addr:1005 sz:5 ][ addr:1010 sz:20 ][ addr:1030 sz:70 ]",
        "",
        "FINALSTATS policy=FIRST order=ADDRSORT coalesce=False ops=5 allocs=3 frees=2 failed=0 searched=3 "
        "free_list=3 free_bytes=95 largest_free=70",
    ]


def test_header_alignment_and_payload_addresses():
    lines = run(SimOptions(alloc_list="+3,+5,-0,-0,+200", header=4, align=4, policy="BEST", coalesce=True,
                           compute=True))
    assert "ptr[0] = Alloc(3) returned 1004 (searched 1 elements)" in lines
    assert "ptr[1] = Alloc(5) returned 1012 (searched 1 elements)" in lines
    assert "Free List [ Size 2 ]: [ addr:1000 sz:8 ][ addr:1020 sz:80 ]" in lines
    assert lines.count("returned -1") == 1  # the second free of ptr[0]
    assert "ptr[2] = Alloc(200) returned -1 (searched 2 elements)" in lines


def test_questions_without_answers():
    lines = run(SimOptions(alloc_list="+10,-0"))
    assert "ptr[0] = Alloc(10) returned ?" in lines and "returned ?" in lines
    assert lines.count("List?") == 2 and not any("Free List" in x for x in lines)
    assert lines[-1] == "FINALSTATS policy=BEST order=ADDRSORT coalesce=False ops=2 allocs=1 frees=1 (answers with -c)"


def test_explain_says_why():
    lines = run(SimOptions(alloc_list="+10,+30,+10,+20,+30,-1,-3,+15", policy="BEST", compute=True, explain=True))
    why = [x for x in lines if x.startswith("why:")]
    assert len(why) == 8
    assert why[-1] == ("why: Alloc(15) needs 15 bytes; best fit: [ addr:1050 sz:20 ] is the smallest of the 2 "
                       "that fit (all 2 searched); 5 bytes stay free at 1065")
    assert run(SimOptions(alloc_list="+200", compute=True, explain=True))[-4].endswith("so it fails")


def test_random_lists_are_seeded_and_only_free_live_pointers():
    a = simulate(SimOptions(seed=3, ops=50, range=20, percent=60, compute=True))
    b = simulate(SimOptions(seed=3, ops=50, range=20, percent=60, compute=True))
    assert [(s.ptr, s.size, s.addr) for s in a] == [(s.ptr, s.size, s.addr) for s in b]
    assert len(a) == 50 and all(s.status == 0 for s in a if s.size is None)
    assert simulate(SimOptions(seed=4, ops=50)) != a


@pytest.mark.parametrize("options, message", [
    (dict(alloc_list="+x,-99"), r"-A item 1 '\+x'"),
    (dict(alloc_list="+5,-99"), r"-A item 2 '-99': ptr\[99\] is not allocated"),
    (dict(alloc_list="+5,*1"), r"-A item 2 '\*1'"),
    (dict(alloc_list="+0"), "no block"),
    (dict(policy="RANDOM"), "-p RANDOM"),
    (dict(order="LIFO"), "-l LIFO"),
    (dict(size=0), "-S 0"),
    (dict(align=0), "-a 0"),
    (dict(header=-4), "-H -4"),
    (dict(base=-1), "-b -1"),
    (dict(percent=0), "-P 0"),
    (dict(range=0), "-r 0"),
])
def test_bad_options_name_the_flag_or_item(options, message):
    with pytest.raises(InvalidArgument, match=message):
        run(SimOptions(**options))


ops_lists = st.lists(st.tuples(st.booleans(), st.integers(1, 40), st.integers(0, 30)), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(ops=ops_lists, policy=st.sampled_from(["FIRST", "BEST", "WORST", "NEXT"]),
       order=st.sampled_from(["ADDRSORT", "SIZESORT+", "SIZESORT-", "INSERT-FRONT", "INSERT-BACK"]),
       coalesce=st.booleans(), header=st.sampled_from([0, 1, 4, 8]), align=st.sampled_from([-1, 1, 4, 8]),
       size=st.sampled_from([50, 100, 300]))
def test_decisions_are_the_textbook_models(ops, policy, order, coalesce, header, align, size):
    items, allocs = [], 0
    for alloc, n, k in ops:
        if alloc or allocs == 0:
            items.append(f"+{n}")
            allocs += 1
        else:
            items.append(f"-{k % allocs}")
    o = SimOptions(alloc_list=",".join(items), policy=policy, order=order, coalesce=coalesce, header=header,
                   align=align, size=size, compute=True)
    model = NaiveFreeList(1000, size, search=policy, order=order, coalesce=coalesce, header=header, align=align)
    ptrs = []
    for step, item in zip(simulate(o), items):
        if item[0] == "+":
            addr, searched = model.malloc(int(item[1:]))
            ptrs.append(addr)
            assert (step.addr, step.searched) == (addr, searched)
        else:
            assert step.status == (model.free_block(ptrs[int(item[1:])]) if ptrs[int(item[1:])] >= 0 else -1)
        assert step.free_list == model.free


def test_command_line(capsys):
    from vm32.cli import main

    assert main(["heap", "sim", "-A", "+10,+20,-0", "-p", "first", "-c", "-a", "-1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "policy FIRST" in out and "Free List [ Size 2 ]: [ addr:1000 sz:10 ][ addr:1030 sz:70 ]" in out
    assert out[-1].startswith("FINALSTATS policy=FIRST")
    assert main(["heap", "sim", "-A", "+x,-99"]) == 1
    assert capsys.readouterr().err == "vm32: error: -A item 1 '+x': expected +SIZE (allocate) or -INDEX (free ptr[INDEX])\n"
    assert main(["heap", "sim", "-S", "0"]) == 1
    assert "-S 0" in capsys.readouterr().err


def test_policy_names_for_help_are_the_registry():
    from vm32.defaults import DEFAULT_HEAP_POLICY, HEAP_POLICIES
    from vm32.heap import POLICIES

    assert HEAP_POLICIES == tuple(POLICIES) and DEFAULT_HEAP_POLICY == "tlsf"


def test_sim_starts_without_the_kernel():
    """`vm32 heap sim` answers quickly because its parser imports no kernel (and the page
    policies the help texts name are the live kernel's)."""
    from vm32.defaults import LIVE_PAGE_POLICIES
    from vm32.kernel.policies import LIVE_POLICIES

    assert LIVE_PAGE_POLICIES == LIVE_POLICIES
    code = "import sys, vm32.cli as c; c.build_parser(); print(sorted(m for m in sys.modules if m.startswith('vm32.kernel')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("argv", [
    ["-A", "+10,+20,-0,+5,-1,+30,+3,-2,+8", "-p", "FIRST", "-l", "SIZESORT+", "-C", "-H", "4", "-a", "4", "-c"],
    ["-s", "7", "-n", "40", "-p", "NEXT", "-l", "INSERT-BACK", "-C", "-c", "--explain"],
])
def test_interpreted_sim_answers_as_the_compiled_one(argv, capsys):
    """The `vm32 heap sim` command runs the kernels interpreted (NUMBA_DISABLE_JIT, for its
    start-up): the same output as the compiled kernels in this process."""
    from vm32.cli import main

    assert main(["heap", "sim", *argv]) == 0
    compiled = capsys.readouterr().out
    out = subprocess.run([sys.executable, "-m", "vm32.cli", "heap", "sim", *argv], capture_output=True,
                         text=True, check=True).stdout
    assert out == compiled and "FINALSTATS" in out
