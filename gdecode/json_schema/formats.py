"""String ``format`` values enforced exactly, as regexes over the decoded string.

Each pattern is written so that ECMA (our parser) and Python ``re`` read it the same way; the tests and the
enum filter check formats with these same patterns. Formats not listed here raise
UnsupportedFeatureError (they are assertions we cannot guarantee).

* ``date``: RFC 3339 full-date with real month lengths and leap years; years 0001-9999.
* ``time``: RFC 3339 full-time, seconds 00-59 (leap second 60 not generated), offset ``Z`` or ``±hh:mm``.
* ``date-time``: date ``T`` time (``t``/``z`` in lower case allowed, as RFC 3339 does).
* ``uuid``: RFC 4122 textual form, hex digits in either case.
* ``ipv4``: dotted quad without leading zeros.
"""

from __future__ import annotations

import functools
import re

from gdecode import ir

_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MD = r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
DATE = rf"(?:{_YEAR}-{_MD}|{_LEAP}-02-29)"
TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_HEX = "[0-9a-fA-F]"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"

PATTERNS = {
    "date": DATE,
    "time": TIME,
    "date-time": rf"{DATE}[Tt]{TIME}",
    "uuid": rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    "ipv4": rf"{_OCTET}(?:\.{_OCTET}){{3}}",
}


def is_supported(name: str) -> bool:
    return name in PATTERNS


@functools.cache
def format_regex(name: str) -> ir.Regex:
    """The IR regex (full match) of a supported format; KeyError for others."""
    from gdecode.regex import parse_regex

    return parse_regex(PATTERNS[name], flavor="ecma")


@functools.cache
def _compiled(name: str) -> re.Pattern:
    return re.compile(PATTERNS[name])


def check(name: str, value: str) -> bool:
    """Python-side check with the same pattern (used to filter enum candidates and in tests)."""
    return _compiled(name).fullmatch(value) is not None
