"""Exact digit-level regexes for JSON numbers and integer ranges.

:func:`integer_range_regex` turns ``[lo, hi]`` (either side optional, arbitrary-size ints) into the regex of
exactly the decimal integers in the range, written as JSON writes them: no leading zeros, no ``+``, and
``0`` never as ``-0``. The construction splits each bound by digit count and recurses digit by digit, so
its size is linear in the number of digits.
"""

from __future__ import annotations

import functools

from gdecode import ir
from gdecode.errors import LimitExceededError

DIGIT = ir.Chars(((0x30, 0x39),))
NONZERO = ir.Chars(((0x31, 0x39),))
_MINUS = ir.literal("-")
MAX_DIGITS = 4000

_INT = ir.Seq((ir.Repeat(_MINUS, 0, 1), ir.Alt((ir.literal("0"), ir.Seq((NONZERO, ir.Repeat(DIGIT, 0, None)))))))
INTEGER = _INT
NUMBER = ir.Seq((
    _INT,
    ir.Repeat(ir.Seq((ir.literal("."), ir.Repeat(DIGIT, 1, None))), 0, 1),
    ir.Repeat(ir.Seq((ir.Chars(((0x45, 0x45), (0x65, 0x65))), ir.Repeat(ir.Chars(((0x2B, 0x2B), (0x2D, 0x2D))), 0, 1),
                      ir.Repeat(DIGIT, 1, None))), 0, 1),
))  # fmt: skip


def _digit_range(a: int, b: int) -> ir.Chars:
    return ir.Chars(((0x30 + a, 0x30 + b),))


def _same_length(lo: str, hi: str) -> ir.Regex:
    """Digit strings of len(lo) == len(hi) between lo and hi (inclusive, lo <= hi); leading zeros allowed."""
    prefix: list[ir.Regex] = []
    while lo and lo[0] == hi[0]:
        prefix.append(ir.literal(lo[0]))
        lo, hi = lo[1:], hi[1:]
    if not lo:
        return ir.Seq(tuple(prefix))
    n = len(lo) - 1
    lo_full = lo[1:] == "0" * n
    hi_full = hi[1:] == "9" * n
    alts: list[ir.Regex] = []
    first, last = int(lo[0]) + (0 if lo_full else 1), int(hi[0]) - (0 if hi_full else 1)
    if not lo_full:
        alts.append(ir.Seq((ir.literal(lo[0]), _same_length(lo[1:], "9" * n))))
    if first <= last:
        alts.append(ir.Seq((_digit_range(first, last), ir.Repeat(DIGIT, n, n))))
    if not hi_full:
        alts.append(ir.Seq((ir.literal(hi[0]), _same_length("0" * n, hi[1:]))))
    body = alts[0] if len(alts) == 1 else ir.Alt(tuple(alts))
    return ir.Seq((*prefix, body))


def _natural_range(lo: int, hi: int | None) -> ir.Regex:
    """Decimal naturals in [lo, hi] (lo >= 0; hi None = unbounded) without leading zeros."""
    if hi is not None and hi < lo:
        return ir.NOTHING
    parts: list[ir.Regex] = []
    if lo == 0:
        parts.append(ir.literal("0"))
        if hi == 0:
            return parts[0]
        lo = 1
    a = str(lo)
    la = len(a)
    if hi is None:
        parts.append(_same_length(a, "9" * la))
        parts.append(ir.Seq((NONZERO, ir.Repeat(DIGIT, la, None))))
    else:
        b = str(hi)
        lb = len(b)
        if la == lb:
            parts.append(_same_length(a, b))
        else:
            parts.append(_same_length(a, "9" * la))
            if lb - la >= 2:
                parts.append(ir.Seq((NONZERO, ir.Repeat(DIGIT, la, lb - 2))))
            parts.append(_same_length("1" + "0" * (lb - 1), b))
    return parts[0] if len(parts) == 1 else ir.Alt(tuple(parts))


def integer_range_regex(lo: int | None, hi: int | None) -> ir.Regex:
    """JSON integers n with lo <= n <= hi (None: unbounded on that side)."""
    for bound in (lo, hi):
        if bound is not None and len(str(abs(bound))) > MAX_DIGITS:
            raise LimitExceededError(f"integer bound with more than {MAX_DIGITS} digits")
    parts: list[ir.Regex] = []
    if hi is None or hi >= 0:
        parts.append(_natural_range(max(lo, 0) if lo is not None else 0, hi))
    if lo is None or lo < 0:
        top = -1 if hi is None else min(hi, -1)
        if lo is None or lo <= top:
            parts.append(ir.Seq((_MINUS, _natural_range(-top, None if lo is None else -lo))))
    parts = [p for p in parts if p != ir.NOTHING]
    if not parts:
        return ir.NOTHING
    return parts[0] if len(parts) == 1 else ir.Alt(tuple(parts))


Bound = tuple[int, bool]  # (integer value, inclusive)


MAX_FRACTION_DIGITS = 15  # numbers with a fraction have at most this many digits (see decimal_range_regex)


def _zeros_then_nonzero(m: int) -> ir.Regex:
    """1..m digits, not all zeros."""
    zero = ir.literal("0")
    return ir.Alt(tuple(ir.Seq((ir.Repeat(zero, z, z), NONZERO, ir.Repeat(DIGIT, 0, m - 1 - z))) for z in range(m)))


def _clip(lo: int, hi: int | None, k: int) -> tuple[int, int] | None:
    """[lo, hi] restricted to the naturals with exactly k digits."""
    a, b = (0, 9) if k == 1 else (10 ** (k - 1), 10**k - 1)
    a, b = max(a, lo), b if hi is None else min(b, hi)
    return (a, b) if a <= b else None


def _unsigned_decimal(lo: Bound | None, hi: Bound | None, positive: bool) -> ir.Regex:
    """Unsigned decimals ``I`` or ``I.F`` (no exponent) with value y >= 0 within the bounds; ``positive``
    excludes the value 0. For y == I (F absent or all zeros) the bounds apply to I; for I < y < I+1 a lower
    bound v (either kind) means I >= v and an upper bound v means I <= v - 1. With a fraction, I and F
    together have at most MAX_FRACTION_DIGITS digits."""
    z_lo, n_lo = (1 if positive else 0), 0
    z_hi = n_hi = None
    if lo is not None:
        v, incl = lo
        z_lo = max(z_lo, v if incl else v + 1)
        n_lo = max(n_lo, v)
    if hi is not None:
        v, incl = hi
        z_hi = v if incl else v - 1
        n_hi = v - 1
    parts = []
    if z_hi is None or z_lo <= z_hi:
        parts.append(_natural_range(z_lo, z_hi))
    for k in range(1, MAX_FRACTION_DIGITS):
        m = MAX_FRACTION_DIGITS - k
        if z_hi is None or z_lo <= z_hi:
            r = _clip(z_lo, z_hi, k)
            if r is not None:
                parts.append(ir.Seq((_natural_range(*r), ir.literal("."), ir.Repeat(ir.literal("0"), 1, m))))
        if n_hi is None or n_lo <= n_hi:
            r = _clip(n_lo, n_hi, k)
            if r is not None:
                parts.append(ir.Seq((_natural_range(*r), ir.literal("."), _zeros_then_nonzero(m))))
    if not parts:
        return ir.NOTHING
    return parts[0] if len(parts) == 1 else ir.Alt(tuple(parts))




@functools.lru_cache(maxsize=1024)
def decimal_range_regex(lo: Bound | None, hi: Bound | None) -> ir.Regex:
    """JSON numbers without exponent whose value x satisfies integer bounds ``lo`` (x >= v, or x > v when not
    inclusive) and ``hi``; numbers with a fraction have at most 15 digits.

    Exact on decimal values for that notation. The digit cap keeps it exact for validators that parse JSON
    numbers as doubles (Python's ``jsonschema``): a decimal with <= 15 significant digits is on the same side
    of every integer bound after rounding to a double, while ``2.99999999999999999`` becomes 3.0. Exponent
    forms (``1e2``) and longer fractions are not produced (a completeness gap, never a false accept)."""
    for b in (lo, hi):
        if b is not None and len(str(abs(b[0]))) > MAX_DIGITS:
            raise LimitExceededError(f"number bound with more than {MAX_DIGITS} digits")
    parts = []
    # x >= 0: y = x
    if hi is None or hi[0] > 0 or (hi[0] == 0 and hi[1]):
        parts.append(_unsigned_decimal(None if lo is None or lo[0] < 0 else lo, hi, positive=False))
    # x < 0: y = -x > 0; x >= v  <=>  y <= -v ; x <= v  <=>  y >= -v
    if lo is None or lo[0] < 0:
        y_hi = None if lo is None else (-lo[0], lo[1])
        y_lo = None if hi is None or hi[0] >= 0 else (-hi[0], hi[1])
        parts.append(ir.Seq((_MINUS, _unsigned_decimal(y_lo, y_hi, positive=True))))
    parts = [p for p in parts if p != ir.NOTHING]
    if not parts:
        return ir.NOTHING
    return parts[0] if len(parts) == 1 else ir.Alt(tuple(parts))
