"""vm32.jit: numba's on-disk cache saved by several processes at once."""

import os
import subprocess
import sys
import threading

from numba.core.caching import IndexDataCacheFile

import vm32.jit  # noqa: F401 - installs the locked save


def _cache_file(directory):
    return IndexDataCacheFile(str(directory), "kernel-1.py311", ("stamp", 1))


def test_two_saves_of_one_function_keep_each_signature_with_its_own_code(tmp_path):
    """A save that is preempted after reading the index (as a process can be) makes a
    second process's save wait, so both signatures keep their own data file."""
    first, second = _cache_file(tmp_path), _cache_file(tmp_path)
    index_read, resume = threading.Event(), threading.Event()
    read_index = first._load_index

    def read_index_then_pause():
        overloads = read_index()
        index_read.set()
        resume.wait(10)
        return overloads

    first._load_index = read_index_then_pause
    saving_a = threading.Thread(target=first.save, args=("signature a", "code of a"))
    saving_a.start()
    assert index_read.wait(10)
    saving_b = threading.Thread(target=second.save, args=("signature b", "code of b"))
    saving_b.start()
    saving_b.join(0.5)
    waited = saving_b.is_alive()
    resume.set()
    saving_a.join(10)
    saving_b.join(10)
    reader = _cache_file(tmp_path)
    assert waited, "the second save did not wait for the first"
    assert reader.load("signature a") == "code of a"
    assert reader.load("signature b") == "code of b"


def test_a_saved_signature_is_found_again_and_overwritten_in_place(tmp_path):
    cache = _cache_file(tmp_path)
    cache.save("signature a", "old code")
    cache.save("signature b", "code of b")
    cache.save("signature a", "new code")
    reader = _cache_file(tmp_path)
    assert reader.load("signature a") == "new code"
    assert reader.load("signature b") == "code of b"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kernel-1.py311.1.nbc", "kernel-1.py311.2.nbc", "kernel-1.py311.nbi"]


FACTORY = '''
from vm32.jit import kernel, outline_kernel


def make(k):
    @outline_kernel
    def step(a):
        s = 0
        for i in range(a.shape[0]):  # a loop: too big for LLVM to inline into its caller
            s += a[i] * (i ^ k) + k
            a[i] = s & 0xff
        return s
    return step


step_1, step_2 = make(1), make(2)


@kernel
def call_1(a):
    return step_1(a)


@kernel
def call_2(a):
    return step_2(a)
'''


def test_closures_of_one_factory_cached_by_two_processes_keep_their_own_code(tmp_path):
    """Two processes each cache a caller of one closure of a factory (the same qualified name,
    so numba's symbols differed only by a per-process count); a third loads both callers
    and each must still run its own closure (it ran the first one for both)."""
    (tmp_path / "factory.py").write_text(FACTORY)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path)}

    def run(*names):
        script = ("import sys, numpy as np, factory\n"
                  "print(*(getattr(factory, n)(np.arange(8)) for n in sys.argv[1:]))")
        r = subprocess.run([sys.executable, "-c", script, *names], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    alone = run("call_1") + run("call_2")  # each compiled and cached by a process of its own
    assert run("call_1", "call_2") == alone  # both loaded from the cache
