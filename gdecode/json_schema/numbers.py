"""Exact digit-level regexes for JSON numbers and integer ranges.

:func:`integer_range_regex` turns ``[lo, hi]`` (either side optional, arbitrary-size ints) into the regex of
exactly the decimal integers in the range, written as JSON writes them: no leading zeros, no ``+``, and
``0`` never as ``-0``. The construction splits each bound by digit count and recurses digit by digit, so
its size is linear in the number of digits.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

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


Bound = tuple[Fraction, bool]  # (value, inclusive); values are decimals (denominator divides a power of 10)


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


def fraction_digits(v: Fraction) -> str:
    """The digits after the decimal point of a decimal ``v`` >= 0, without trailing zeros ("" if integral)."""
    f = v - math.floor(v)
    k = 0
    while (f * 10**k).denominator != 1:
        k += 1
        if k > MAX_DIGITS:
            raise LimitExceededError("number bound is not a decimal")
    return str(f * 10**k).zfill(k).rstrip("0") if k else ""


def _frac_ge(d: str, incl: bool, m: int) -> ir.Regex:
    """Digit strings s of length 0..m with 0.s >= 0.d (> when not ``incl``); ``d`` has no trailing zeros."""
    if not d:
        return ir.Repeat(DIGIT, 0, m) if incl else (_zeros_then_nonzero(m) if m else ir.NOTHING)
    if m == 0:
        return ir.NOTHING
    c = int(d[0])
    alts = [ir.Seq((ir.literal(d[0]), _frac_ge(d[1:], incl, m - 1)))]
    if c < 9:
        alts.append(ir.Seq((_digit_range(c + 1, 9), ir.Repeat(DIGIT, 0, m - 1))))
    return ir.Alt(tuple(alts))


def _frac_le(d: str, incl: bool, m: int) -> ir.Regex:
    """Digit strings s of length 0..m with 0.s <= 0.d (< when not ``incl``); ``d`` has no trailing zeros."""
    if not d:
        return ir.Repeat(ir.literal("0"), 0, m) if incl else ir.NOTHING
    alts: list[ir.Regex] = [ir.EPSILON]
    if m == 0:
        return ir.EPSILON
    c = int(d[0])
    if c > 0:
        alts.append(ir.Seq((_digit_range(0, c - 1), ir.Repeat(DIGIT, 0, m - 1))))
    alts.append(ir.Seq((ir.literal(d[0]), _frac_le(d[1:], incl, m - 1))))
    return ir.Alt(tuple(alts))


def _nonzero_fraction(parts: list[ir.Regex], m: int) -> ir.Regex:
    """Fractions of 1..m digits, not all zeros, matching every regex of ``parts``."""
    from gdecode import _regex_dfa as dfa

    out = dfa.to_plain_regex(dfa.mk_and((_zeros_then_nonzero(m), *parts)), what="number bounds")
    return out


def _unsigned_decimal(lo: Bound | None, hi: Bound | None, positive: bool, integers: bool = True) -> ir.Regex:
    """Unsigned decimals ``I`` or ``I.F`` (no exponent) with value y >= 0 within the bounds; ``positive``
    excludes the value 0. Forms whose value is an integer (no F, or F all zeros) compare I with the bounds.
    For I < y < I+1 (F not all zeros), with a = floor(lower bound) and b = floor(upper bound): I strictly
    between a and b accepts any F; I == a compares 0.F with the bound's fraction digits, and so does I == b.
    With a fraction, I and F together have at most MAX_FRACTION_DIGITS digits."""
    z_lo, z_hi = (1 if positive else 0), None
    if lo is not None:
        v, incl = lo
        z_lo = max(z_lo, math.ceil(v) if incl else math.floor(v) + 1)
    if hi is not None:
        w, incl = hi
        z_hi = math.floor(w) if incl else math.ceil(w) - 1
    a = math.floor(lo[0]) if lo is not None else None
    b = math.floor(hi[0]) if hi is not None else None
    dv = fraction_digits(lo[0]) if lo is not None else ""
    dw = fraction_digits(hi[0]) if hi is not None else ""
    # I with any nonzero F: a < I (or a <= I when the lower bound is an integer), I < b
    n_lo = 0 if lo is None else (a + 1 if dv else a)
    n_hi = None if hi is None else b - 1
    parts = []
    if not integers:  # only non-integral values: no integer-valued forms
        z_lo, z_hi = 1, 0
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
        # I == a (lower bound with fraction digits) and I == b: compare 0.F with the bounds' fraction digits
        special: dict[int, list[ir.Regex]] = {}
        if lo is not None and dv and (hi is None or a <= b):
            special[a] = [_frac_ge(dv, lo[1], m)]
        if hi is not None and (lo is None or b >= a):
            special.setdefault(b, []).append(_frac_le(dw, hi[1], m))
        for i_val, cons in special.items():
            if len(str(i_val)) == k:
                frac = _nonzero_fraction(cons, m)
                if frac != ir.NOTHING:
                    parts.append(ir.Seq((ir.literal(str(i_val)), ir.literal("."), frac)))
    if not parts:
        return ir.NOTHING
    return parts[0] if len(parts) == 1 else ir.Alt(tuple(parts))


@functools.lru_cache(maxsize=1024)
def decimal_range_regex(lo: Bound | None, hi: Bound | None, integers: bool = True) -> ir.Regex:
    """JSON numbers without exponent whose value x satisfies the decimal bounds ``lo`` (x >= v, or x > v when
    not inclusive) and ``hi``; numbers with a fraction have at most 15 digits.

    Exact on decimal values for that notation. The digit cap keeps it exact for validators that parse JSON
    numbers as doubles (Python's ``jsonschema``): two different decimals with <= 15 significant digits stay
    different and in the same order after rounding to doubles, so with bounds of <= 15 significant digits
    (the caller checks) every comparison agrees, while ``2.99999999999999999`` would become 3.0. Exponent
    forms (``1e2``) and longer fractions are not produced (a completeness gap, never a false accept).
    ``integers=False``: only values that are not integers."""
    for b in (lo, hi):
        if b is not None and len(str(abs(math.floor(b[0])))) > MAX_DIGITS:
            raise LimitExceededError(f"number bound with more than {MAX_DIGITS} digits")
    parts = []
    zero = Fraction(0)
    # x >= 0: y = x
    if hi is None or hi[0] > zero or (hi[0] == zero and hi[1]):
        parts.append(_unsigned_decimal(None if lo is None or lo[0] < zero else lo, hi, False, integers))
    # x < 0: y = -x > 0; x >= v  <=>  y <= -v ; x <= v  <=>  y >= -v
    if lo is None or lo[0] < zero:
        y_hi = None if lo is None else (-lo[0], lo[1])
        y_lo = None if hi is None or hi[0] >= zero else (-hi[0], hi[1])
        parts.append(ir.Seq((_MINUS, _unsigned_decimal(y_lo, y_hi, True, integers))))
    parts = [p for p in parts if p != ir.NOTHING]
    if not parts:
        return ir.NOTHING
    return parts[0] if len(parts) == 1 else ir.Alt(tuple(parts))
