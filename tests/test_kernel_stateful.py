"""Hypothesis stateful test: random reads and writes over several processes on a machine
with far fewer frames than pages, checked against a plain dict model."""

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from naive_paging import MemoryModel
from vm32.kernel import Machine

HEAP_PAGES = 24


class PagingModel(RuleBasedStateMachine):
    procs = Bundle("procs")

    @initialize(policy=st.sampled_from(["fifo", "clock", "nru", "lru", "random"]), tlb=st.sampled_from([1, 4, 64]))
    def boot(self, policy, tlb):
        self.m = Machine(frames=14, swap="1M", policy=policy, tlb_entries=tlb, nru_period=3)
        self.models = {}

    @rule(target=procs)
    def spawn(self):
        if len(self.m.processes) >= 3:
            p = next(iter(self.m.processes.values()))
        else:
            p = self.m.spawn(b"IMG!" * 300, heap_size=HEAP_PAGES * 4096)
            self.models[p.pid] = (p, MemoryModel())
            self.models[p.pid][1].write(p.image_base, b"IMG!" * 300)
        return p.pid

    @rule(pid=procs, page=st.integers(0, HEAP_PAGES - 1), off=st.integers(0, 4095), data=st.binary(min_size=1, max_size=300))
    def write(self, pid, page, off, data):
        p, model = self.models[pid]
        va = p.heap_base + page * 4096 + off
        data = data[: p.heap_end - va]
        p.write(va, data)
        model.write(va, data)

    @rule(pid=procs, page=st.integers(0, HEAP_PAGES - 1), off=st.integers(0, 4095), n=st.integers(1, 5000))
    def read(self, pid, page, off, n):
        p, model = self.models[pid]
        va = p.heap_base + page * 4096 + off
        n = min(n, p.heap_end - va)
        assert p.read(va, n) == model.read(va, n)

    @rule(pid=procs, word=st.integers(0, HEAP_PAGES * 1024 - 1), value=st.integers(0, 2**32 - 1))
    def store_word(self, pid, word, value):
        p, model = self.models[pid]
        va = p.heap_base + 4 * word
        p.store_u32(va, value)
        model.write(va, value.to_bytes(4, "little"))

    @rule(pid=procs, word=st.integers(0, HEAP_PAGES * 1024 - 1))
    def load_word(self, pid, word):
        p, model = self.models[pid]
        va = p.heap_base + 4 * word
        assert p.load_u32(va) == int.from_bytes(model.read(va, 4), "little")

    @rule(pid=procs, off=st.integers(0, 1199), n=st.integers(1, 64))
    def read_image(self, pid, off, n):
        p, model = self.models[pid]
        assert p.read(p.image_base + off, n) == model.read(p.image_base + off, n)

    @invariant()
    def counters_consistent(self):
        if not hasattr(self, "m"):
            return
        s = self.m.stats()
        assert s["page_faults"] == s["zero_fill"] + s["image_in"] + s["swap_in"]
        assert s["swap_bytes_out"] == 4096 * s["page_outs"]
        assert s["free_frames"] + s["pinned_frames"] <= s["frames"]

    def teardown(self):
        if hasattr(self, "m"):
            self.m.close()


PagingModel.TestCase.settings = settings(
    max_examples=25, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestPaging = PagingModel.TestCase
