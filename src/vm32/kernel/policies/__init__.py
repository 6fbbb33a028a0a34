"""Page-replacement policies: one module per policy, one registry.

    fifo         first in, first out (load order)
    clock        second chance over the frames: the Accessed bit as reference bit; a page
                 comes in referenced (the MMU sets Accessed on the faulting access)
    clock-clear  the same, but a page comes in unreferenced (libCacheSim's Clock)
    nru          not recently used: classes from Accessed/Dirty, Accessed cleared periodically
    lru          least recently used: a list in order of use
    random       seeded pseudo-random
    opt          Belady's optimum (traces only: it needs each reference's next use)
    sieve        SIEVE: a hand over pages in load order, sparing visited ones once
    arc          ARC: recency and frequency lists with ghosts, an adaptive target

The interface of a policy.  A policy is a module (or any object) with:

    NAME               the name users give (--policy NAME)
    ID                 a small integer, unique; pol[POL_KIND] holds it
    SEES_EVERY_ACCESS  True: the kernel calls on_access on every access, TLB hits
                       included (the slow way for the live kernel); False: only faults
    ACCESSED_ON_LOAD   True: a page comes in with its Accessed bit set (the faulting
                       access counts as a use); False: with it clear (the access
                       completes without filling the TLB, so the next use sets it)
    NEEDS_FUTURE       True: runs on traces only; pol[POL_NEXT] holds the next use of
                       the page referenced, before every on_map and on_access
    REASON             a few words for --explain: why its victim was chosen
    state_size(nframes) -> int     words of state it needs after the common header
    init_state(pol, nframes)       (Python) set them up; the header is set already

and four compiled kernels (numba, e.g. vm32.jit.leaf_kernel) over the frame table
``ft[f, FT_*]``, the state ``pol`` and, for the victim, the page tables in
``words`` (a page's Accessed/Dirty bits: vm32.kernel.frametable) and the TLBs:

    on_fault(ft, pol, key)         a fault for page key = (owner << 20) | vpn begins
    on_map(ft, pol, f)             frame f was just given a page
    on_access(ft, pol, f)          the page in frame f was used
    choose_victim(words, ft, pol, tlb, cpus, cpu) -> f, or -1 if no frame is evictable

`choose_victim` never returns a pinned or free frame and does not evict: the
caller does; a policy that keeps frames on lists takes the victim off them.  If
the eviction fails the caller gives the frame back with on_map.  See base.py for
the common header.  Adding a policy to vm32 is one module here and its name in
BUILTIN.  A policy of your own runs in the trace simulator without touching
vm32: ``vm32 trace sim --policy mypkg.mypolicy:Policy`` (an attribute of an
importable module), or `register(policy)` from Python first.

The kernel's dispatchers (policy_on_fault ... policy_choose_victim) are built
from BUILTIN: each is a chain that compares pol[POL_KIND] with one policy's ID
and calls its kernel (LLVM inlines the chain into a few compares).  When several
CPUs share a machine (pol[POL_SHARED]), the hooks of a policy that sees every
access run under the policy's own spin lock: its lists change on TLB hits, which
take no machine lock.
"""

from __future__ import annotations

import importlib

from vm32.errors import InvalidArgument
from vm32.jit import inline_leaf_kernel, leaf_kernel, outline_leaf_kernel
from vm32.kernel.policies import arc, clock, clock_clear, fifo, lru, nru, opt, random_, sieve
from vm32.kernel.policies.base import POL_KIND, POL_LOCK, POL_SHARED, make_state
from vm32.atomic import atomic_cas, atomic_store, spin_pause

BUILTIN = (fifo, clock, nru, lru, random_, clock_clear, opt, sieve, arc)
ALIASES = {"second-chance": "clock", "secondchance": "clock", "sc": "clock"}
_HOOKS = ("NAME", "ID", "SEES_EVERY_ACCESS", "ACCESSED_ON_LOAD", "NEEDS_FUTURE", "REASON", "state_size",
          "init_state", "on_fault", "on_map", "on_access", "choose_victim")

_REGISTRY = {p.NAME: p for p in BUILTIN}
POLICIES = {p.NAME: p.ID for p in BUILTIN}  # name -> id of the built-in policies
LIVE_POLICIES = tuple(p.NAME for p in BUILTIN if not p.NEEDS_FUTURE)  # the ones a live machine runs
P_FIFO, P_CLOCK, P_NRU, P_LRU, P_RANDOM = fifo.ID, clock.ID, nru.ID, lru.ID, random_.ID
_BY_ID = {p.ID: p for p in BUILTIN}


def register(policy) -> None:
    """Make `policy` (see the module docstring) known by its NAME to the trace simulator."""
    missing = [h for h in _HOOKS if not hasattr(policy, h)]
    if missing:
        raise InvalidArgument(f"policy {getattr(policy, 'NAME', policy)!r} lacks {', '.join(missing)}")
    name = str(policy.NAME).strip().lower()
    taken = _BY_ID.get(int(policy.ID))
    if taken is not None and taken is not policy:
        raise InvalidArgument(f"policy id {policy.ID} of {name!r} is taken by {taken.NAME!r}")
    _REGISTRY[name] = policy
    _BY_ID[int(policy.ID)] = policy


def load_policy(spec: str):
    """The policy named `spec`: a registered name, or ``package.module:Attribute`` (imported
    and registered).  InvalidArgument if there is none."""
    if not isinstance(spec, str):  # a policy object itself
        register(spec)
        return spec
    key = spec.strip().lower()
    key = ALIASES.get(key, key)
    if key in _REGISTRY:
        return _REGISTRY[key]
    if ":" in str(spec):
        module_name, _, attr = str(spec).strip().partition(":")
        try:
            policy = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise InvalidArgument(f"cannot load policy {spec!r}: {e}") from None
        register(policy)
        return policy
    raise InvalidArgument(f"unknown replacement policy {spec!r}; choose one of {', '.join(_REGISTRY)} "
                          "(or give package.module:Policy)")


def policy_id(name: str) -> int:
    """Id of the policy called `name` (case-insensitive; 'second-chance' = 'clock')."""
    return int(load_policy(name).ID)


def policy_name(kind: int) -> str:
    """Name of policy id `kind`."""
    return _BY_ID[int(kind)].NAME


def policy_by_id(kind: int):
    """The policy with id `kind`."""
    return _BY_ID[int(kind)]


def sees_every_access(kind: int) -> bool:
    """True if policy `kind` must be told of every access (on_access on TLB hits too)."""
    return bool(_BY_ID[int(kind)].SEES_EVERY_ACCESS)


def live_policy_id(name: str) -> int:
    """Id of policy `name` for the live kernel: a built-in one that needs no future."""
    policy = load_policy(name)
    if policy.NEEDS_FUTURE:
        raise InvalidArgument(f"policy {policy.NAME!r} needs to know the future: it runs on traces only "
                              "(vm32 trace sim), not on a live machine")
    if _REGISTRY.get(policy.NAME) is not policy or policy not in BUILTIN:
        raise InvalidArgument(f"policy {policy.NAME!r} is not built in: policies of your own run in "
                              "vm32 trace sim; the live kernel runs the built-in ones")
    return int(policy.ID)


def make_policy_state(kind: int, nframes: int, seed: int = 1, nru_period: int = 16):
    """A fresh `pol` array for policy id `kind` over `nframes` frames."""
    policy = _BY_ID[int(kind)]
    pol = make_state(int(policy.ID), nframes, int(policy.state_size(nframes)), seed, nru_period)
    policy.init_state(pol, nframes)
    return pol


# ---- the kernel's dispatchers, derived from BUILTIN --------------------------------------------


@outline_leaf_kernel
def _take_lock(pol):
    spins = 0
    while atomic_cas(pol, POL_LOCK, 0, 1) != 0:
        spins = spin_pause(spins)


@inline_leaf_kernel
def _lock(pol):
    if pol[POL_SHARED]:
        _take_lock(pol)


@inline_leaf_kernel
def _unlock(pol):
    if pol[POL_SHARED]:
        atomic_store(pol, POL_LOCK, 0)


@inline_leaf_kernel
def _no_policy3(ft, pol, x):
    pass


@inline_leaf_kernel
def _no_policy6(words, ft, pol, tlb, cpus, cpu):
    return -1


def _chain(policies, hook: str, arity: int):
    """A compiled dispatcher of `hook` over `policies`: compare pol[POL_KIND] with each ID
    (an unknown id does nothing and chooses no victim).  The per-access hooks are inlined
    into their callers; choose_victim, the slow one, is not."""
    jit = leaf_kernel if hook == "choose_victim" else inline_leaf_kernel
    rest = _no_policy3 if arity == 3 else _no_policy6
    for policy in reversed(policies):
        rest = _level(jit, arity, getattr(policy, hook), policy.ID, policy.SEES_EVERY_ACCESS, rest)
    return rest


def _level(jit, arity: int, f, pid: int, locked: bool, rest):
    """One link of a chain: policy `pid`'s hook `f` (under the policy lock if `locked`), else `rest`."""
    if arity == 3:  # on_fault, on_map, on_access: (ft, pol, x)
        @jit
        def d3(ft, pol, x):
            if pol[POL_KIND] != pid:
                return rest(ft, pol, x)
            if locked:
                _lock(pol)
            r = f(ft, pol, x)
            if locked:
                _unlock(pol)
            return r
        return d3

    @jit
    def d6(words, ft, pol, tlb, cpus, cpu):  # choose_victim
        if pol[POL_KIND] != pid:
            return rest(words, ft, pol, tlb, cpus, cpu)
        if locked:
            _lock(pol)
        r = f(words, ft, pol, tlb, cpus, cpu)
        if locked:
            _unlock(pol)
        return r
    return d6


def make_dispatchers(policies) -> dict:
    """The four hook dispatchers over `policies`, by the names the kernel calls them."""
    return {
        "policy_on_fault": _chain(policies, "on_fault", 3),
        "policy_on_map": _chain(policies, "on_map", 3),
        "policy_on_access": _chain(policies, "on_access", 3),
        "policy_choose_victim": _chain(policies, "choose_victim", 6),
    }


_BUILTIN_DISPATCH = make_dispatchers(BUILTIN)
policy_on_fault = _BUILTIN_DISPATCH["policy_on_fault"]
"""Tell the active policy that a fault for page `key` begins (ft, pol, key)."""
policy_on_map = _BUILTIN_DISPATCH["policy_on_map"]
"""Tell the active policy that frame f was just given a page (ft, pol, f)."""
policy_on_access = _BUILTIN_DISPATCH["policy_on_access"]
"""Tell the active policy that the page in frame f was used (ft, pol, f)."""
policy_choose_victim = _BUILTIN_DISPATCH["policy_choose_victim"]
"""The active policy's victim frame (evictable), or -1 if every frame is pinned or free
(words, ft, pol, tlb, cpus, cpu)."""
