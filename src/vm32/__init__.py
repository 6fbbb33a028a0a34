"""vm32: an emulated 32-bit virtual memory system on a 64-bit host.

Layers, bottom-up (a layer imports only its own or lower layers; tests/test_layering.py
checks it):

    base          vm32.errors (one exception hierarchy), vm32.jit (the one place that sets
                  numba options), vm32.defaults (the defaults and units the CLI and the API
                  share; no compiled code), vm32.atomic (CPU atomics for numba kernels),
                  vm32.files (files without a name, and outputs named only once complete),
                  vm32.workers (host threads that run processes, stopped before their
                  machine closes)
    vm32.memory   PhysicalMemory: the host mmap seen as 4 KiB frames; word access seam
    vm32.heap     a 32-bit malloc/calloc/realloc/free over an address range
    vm32.mmu      i386 page-directory/table entries, page walk, TLB
    vm32.kernel   frames, swap, replacement policies, processes, fault handler
    vm32.trace    trace readers and the simulator over the kernel's MMU and policies
    vm32.um       the Universal Machine: loader, assembler, interpreter backends
    vm32.ui       presentation: rich tables, status lines, live views (the layers below return data)
    vm32.cli      the `vm32` command (`python -m vm32`), one module per command group
"""

import hashlib
import os
from pathlib import Path

__version__ = "0.1.0"


def _numba_cache_dir() -> str:
    """A numba cache directory private to this exact version of vm32's sources.

    numba invalidates a cached kernel only when the kernel's *own* file
    changes, not when a function it calls from another file does; a stale
    kernel then runs old code.  Keying the directory on a hash of every source
    file makes any edit start from a clean cache.
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vm32"
    return str(base / f"numba-{__version__}-{digest.hexdigest()[:12]}")


if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = _numba_cache_dir()
    import sys

    if "numba" in sys.modules:  # numba read its configuration already: make it look again
        from numba.core import config as _config

        _config.reload_config()
