"""vm32: an emulated 32-bit virtual memory system on a 64-bit host.

Layers, bottom-up (a layer imports only layers below it):

    vm32.errors   one exception hierarchy
    vm32.jit      the one place that sets numba options
    vm32.memory   PhysicalMemory: the host mmap seen as 4 KiB frames; word access seam
    vm32.heap     a 32-bit malloc/calloc/realloc/free over an address range
    vm32.um       the Universal Machine: loader, assembler, interpreter backends
    vm32.cli      the `vm32` command
"""

__version__ = "0.1.0"
