"""CPU allocator tuning for the renderer's large temporary tensors (call explicitly; never on import).

torch's CPU allocator takes each multi-megabyte temporary straight from the OS (glibc ``mmap``) and
returns it on free, so every elementwise op over millions of points pays thousands of page faults:
on a 2-core machine that cost more than the arithmetic (a 2M-element add: ~6 ms vs ~1 ms). Raising
glibc's mmap and trim thresholds keeps freed blocks in the heap for reuse. It is process-wide (the
process keeps up to ``max_bytes`` of freed memory), so the CLI and the benchmark opt in; a library
user can too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False


def tune_cpu_allocator(max_bytes: int = 1 << 30) -> bool:
    """Keep freed blocks up to ``max_bytes`` in the heap (glibc only). Returns whether it applied."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, int(min(max_bytes, 1 << 30))) == 1
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, int(max_bytes)) == 1
    except (OSError, AttributeError):
        return False
    _tuned = bool(ok)
    return _tuned
