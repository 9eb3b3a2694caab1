"""A wall-clock budget for one compilation (``Limits.max_compile_seconds``).

The outermost ``compile_*`` call opens the budget; long loops anywhere below it (schema walking, regex
products, grammar trimming) call :func:`check`, and the C++ core gets what is left. Nested compile calls
share the outer budget, so a JSON Schema compile is bounded as a whole, not per stage.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

from gdecode.errors import LimitExceededError

# (absolute monotonic deadline, configured seconds); None: no budget is open.
_current: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "gdecode_compile_deadline", default=None)


@contextlib.contextmanager
def compile_budget(seconds: float | None) -> Iterator[None]:
    """Opens a budget of `seconds` (None or <= 0: unbounded) unless an outer one is already open."""
    if _current.get() is not None or seconds is None or seconds <= 0:
        yield
        return
    token = _current.set((time.monotonic() + float(seconds), float(seconds)))
    try:
        yield
    finally:
        _current.reset(token)


def check(what: str) -> None:
    """Raises LimitExceededError when the open budget is spent; `what` names the stage that was running."""
    cur = _current.get()
    if cur is not None and time.monotonic() > cur[0]:
        raise LimitExceededError(f"compilation exceeded max_compile_seconds={cur[1]:g} ({what})")


def remaining() -> float | None:
    """Seconds left in the open budget (at least a millisecond), or None when no budget is open."""
    cur = _current.get()
    if cur is None:
        return None
    return max(cur[0] - time.monotonic(), 1e-3)
