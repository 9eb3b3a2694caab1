"""Python's cyclic garbage collector, paused while a grammar compiles.

A compile allocates tens of thousands of small regex and rule objects, so the collector runs many times
during it, and each full collection walks every container object in the process (the caller's data, the
compile caches). On a JSONSchemaBench sample, pausing it cut the total compile time by 29% and the p99
from 207 to 130 ms.
The IR is acyclic: reference counting frees it as usual while the collector is off, and any cyclic garbage
made meanwhile waits for the first collection after the compile.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0  # compiles running now, in any thread
_was_enabled = False  # the collector's state when the first of them started


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Disables the collector until the last concurrent or nested compile ends, then restores its state."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
