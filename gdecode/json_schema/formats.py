"""String ``format`` values enforced as regexes over the decoded string.

Each pattern is written so that ECMA (our parser) and Python ``re`` read it the same way; the tests and the
enum filter check formats with these same patterns. Every pattern accepts only strings that are valid for
its format (never a false accept); where the exact language is not a small regular one, the pattern is a
documented *subset* (a completeness gap: some valid strings are not generated). Formats not listed here
raise UnsupportedFeatureError (assertions we cannot guarantee): ``idn-hostname``, ``idn-email``, ``iri``,
``iri-reference`` and ``regex``. Names that are not formats of the spec are ignored, as validators do.

* ``date``: RFC 3339 full-date with real month lengths and leap years; years 0001-9999.
* ``time``: RFC 3339 full-time, offset ``Z`` or ``±hh:mm``. Subset: a leap second (``:60``) only at
  23:59 with a zero offset (``Z``, ``+00:00``, ``-00:00``); other offsets that put it at 23:59 UTC are valid
  but not generated.
* ``date-time``: date ``T`` time (``t``/``z`` in lower case allowed, as RFC 3339 does).
* ``duration``: RFC 3339 appendix A ``duration`` (exact).
* ``uuid``: RFC 4122 textual form, hex digits in either case.
* ``ipv4``: dotted quad without leading zeros. ``ipv6``: RFC 4291 text forms (RFC 3986 ``IPv6address``),
  no zone id (exact).
* ``hostname``: RFC 1123 labels (letters, digits, inner hyphens; 1-63 characters). Subset: at most four
  labels, the fourth at most 61 characters (so the whole name fits in 253), and no label with ``--`` at
  positions 3-4 (which would make it an IDNA A-label such as ``xn--...`` whose Punycode must be checked).
* ``email``: RFC 5321 ``Mailbox`` (dot-atom or quoted local part; domain, ``[IPv4]`` or ``[IPv6:...]``).
  Subset: no General-address-literal (its tag must be IANA-registered).
* ``uri``, ``uri-reference``: RFC 3986 ``URI`` / ``URI-reference`` ABNF (exact).
* ``uri-template``: RFC 6570 level-4 templates. Subset: the reserved operators ``= , ! @ |`` are not used.
* ``json-pointer`` (RFC 6901), ``relative-json-pointer`` (draft-handrews): exact.
"""

from __future__ import annotations

import functools
import re

from gdecode import ir
from gdecode.regex import parse_regex

_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MD = r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
DATE = rf"(?:{_YEAR}-{_MD}|{_LEAP}-02-29)"
_FRAC = r"(?:\.[0-9]+)?"
_OFFSET = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIME = (rf"(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]{_FRAC}{_OFFSET}"
        rf"|23:59:60{_FRAC}(?:[Zz]|[+-]00:00))")
_HEX = "[0-9a-fA-F]"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"


def _ipv6() -> str:
    """RFC 3986 ``IPv6address``: the nine forms by where ``::`` stands."""
    h16 = f"{_HEX}{{1,4}}"
    ls32 = f"(?:{h16}:{h16}|{IPV4})"
    forms = [f"(?:{h16}:){{6}}{ls32}", f"::(?:{h16}:){{5}}{ls32}"]
    for before, after in ((0, 4), (1, 3), (2, 2), (3, 1), (4, 0)):
        head = f"(?:{h16}:){{0,{before}}}{h16}" if before else h16
        forms.append(f"(?:{head})?::(?:{h16}:){{{after}}}{ls32}")
    forms.append(f"(?:(?:{h16}:){{0,5}}{h16})?::{h16}")
    forms.append(f"(?:(?:{h16}:){{0,6}}{h16})?::")
    return "(?:" + "|".join(forms) + ")"


IPV6 = _ipv6()

# RFC 3986
_PCT = f"%{_HEX}{_HEX}"
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUBDELIMS = r"!$&'()*+,;="
_PCHAR = f"(?:[{_UNRESERVED}{_SUBDELIMS}:@]|{_PCT})"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_USERINFO = f"(?:[{_UNRESERVED}{_SUBDELIMS}:]|{_PCT})*"
_IPFUTURE = rf"[vV]{_HEX}+\.[{_UNRESERVED}{_SUBDELIMS}:]+"
_HOST = rf"(?:\[(?:{IPV6}|{_IPFUTURE})\]|{IPV4}|(?:[{_UNRESERVED}{_SUBDELIMS}]|{_PCT})*)"
_AUTHORITY = f"(?:{_USERINFO}@)?{_HOST}(?::[0-9]*)?"
_SEGMENT = f"{_PCHAR}*"
_SEGMENT_NZ = f"{_PCHAR}+"
_SEGMENT_NZ_NC = f"(?:[{_UNRESERVED}{_SUBDELIMS}@]|{_PCT})+"
_PATH_ABEMPTY = f"(?:/{_SEGMENT})*"
_PATH_ABSOLUTE = f"/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"
_PATH_ROOTLESS = f"{_SEGMENT_NZ}(?:/{_SEGMENT})*"
_PATH_NOSCHEME = f"{_SEGMENT_NZ_NC}(?:/{_SEGMENT})*"
_QUERY = f"(?:{_PCHAR}|[/?])*"
_TAIL = rf"(?:\?{_QUERY})?(?:#{_QUERY})?"
URI = f"{_SCHEME}:(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_ROOTLESS})?{_TAIL}"
_RELATIVE = f"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_NOSCHEME})?{_TAIL}"
URI_REFERENCE = f"(?:{URI}|{_RELATIVE})"

# RFC 6570 literals: ASCII minus controls, space, " % < > \ ^ ` { | }, plus ucschar/iprivate and pct-encoded.
# "'" (%x27) is allowed as in RFC 6570 erratum 6937 and the JSON Schema Test Suite.
_UCS = ("\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd\U00020000-\U0002fffd\U00030000-\U0003fffd"
        "\U00040000-\U0004fffd\U00050000-\U0005fffd\U00060000-\U0006fffd\U00070000-\U0007fffd\U00080000-\U0008fffd"
        "\U00090000-\U0009fffd\U000a0000-\U000afffd\U000b0000-\U000bfffd\U000c0000-\U000cfffd\U000d0000-\U000dfffd"
        "\U000e1000-\U000efffd\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd")
_TLITERAL = f"(?:[!#$&'()*+,\\-./0-9:;=?@A-Z\\[\\]_a-z~{_UCS}]|{_PCT})"
_VARCHAR = f"(?:[A-Za-z0-9_]|{_PCT})"
_VARSPEC = rf"{_VARCHAR}(?:\.?{_VARCHAR})*(?::[1-9][0-9]{{0,3}}|\*)?"
_EXPRESSION = rf"\{{[+#./;?&]?{_VARSPEC}(?:,{_VARSPEC})*\}}"
URI_TEMPLATE = f"(?:{_TLITERAL}|{_EXPRESSION})*"

JSON_POINTER = r"(?:/(?:[^/~]|~[01])*)*"
RELATIVE_JSON_POINTER = rf"(?:0|[1-9][0-9]*)(?:#|{JSON_POINTER})"

_A = "[A-Za-z0-9]"
_H = "[A-Za-z0-9-]"
# 1-63 characters, letters/digits/hyphens, no hyphen first or last, not "--" at positions 3-4
_LABEL = rf"(?:{_A}|{_A}{_A}|{_A}{_H}{_A}|{_A}{_H}{_H}{_A}|{_A}{_H}(?:{_A}{_H}|-{_A}){_H}{{0,{{n}}}}{_A})"
_HOSTNAME = (_LABEL.replace("{n}", "58") + r"(?:\." + _LABEL.replace("{n}", "58") + "){0,2}"
             + r"(?:\." + _LABEL.replace("{n}", "56") + ")?")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]"
_QTEXT = r"[ !#-\[\]-~]"
_LOCAL = rf'(?:{_ATEXT}+(?:\.{_ATEXT}+)*|"(?:{_QTEXT}|\\[ -~])*")'
_SUBDOMAIN = f"{_A}(?:{_H}*{_A})?"
_DOMAIN = rf"(?:{_SUBDOMAIN}(?:\.{_SUBDOMAIN})*|\[(?:{IPV4}|IPv6:{IPV6})\])"
EMAIL = f"{_LOCAL}@{_DOMAIN}"

_DUR_TIME = "T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
_DUR_DATE = f"(?:[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?|[0-9]+M(?:[0-9]+D)?|[0-9]+D)(?:{_DUR_TIME})?"
DURATION = f"P(?:{_DUR_DATE}|{_DUR_TIME}|[0-9]+W)"

PATTERNS = {
    "date": DATE,
    "time": TIME,
    "date-time": rf"{DATE}[Tt]{TIME}",
    "duration": DURATION,
    "uuid": rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    "ipv4": IPV4,
    "ipv6": IPV6,
    "hostname": _HOSTNAME,
    "email": EMAIL,
    "uri": URI,
    "uri-reference": URI_REFERENCE,
    "uri-template": URI_TEMPLATE,
    "json-pointer": JSON_POINTER,
    "relative-json-pointer": RELATIVE_JSON_POINTER,
}


# The formats of JSON Schema 2020-12 (section 7.3). Unsupported ones fail closed; other names are not
# formats of the spec: validators ignore them, and so does the compiler (with a warning).
STANDARD = frozenset({
    "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6",
    "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer",
    "relative-json-pointer", "regex",
})  # fmt: skip


def is_supported(name: str) -> bool:
    return name in PATTERNS


@functools.cache
def format_regex(name: str) -> ir.Regex:
    """The IR regex (full match) of a supported format; KeyError for others."""
    return parse_regex(PATTERNS[name], flavor="ecma")


@functools.cache
def _compiled(name: str) -> re.Pattern:
    return re.compile(PATTERNS[name])


def check(name: str, value: str) -> bool:
    """Python-side check with the same pattern (used to filter enum candidates and in tests)."""
    return _compiled(name).fullmatch(value) is not None
