"""JSON string lexemes: a regex over *decoded* characters becomes the regex of its JSON encodings.

The encoding is a homomorphism applied to every character set of the decoded regex, so constraints
written on the string value (``pattern``, lengths, formats, "key not in this set") stay exact: with the
``"standard"`` escape policy a character is written literally, except ``"`` and ``\\`` (always escaped),
``/`` (literal or ``\\/``) and control characters U+0000..U+001F (``\\b \\f \\n \\r \\t`` or ``\\u00XX``,
hex digits in either case). Every encoding decodes to exactly one character, so lengths are preserved.
"""

from __future__ import annotations

import functools

from gdecode import _regex_dfa as dfa
from gdecode import ir

QUOTE = ir.literal('"')
ANY = dfa.ANY
ANYSTAR = dfa.ANYSTAR
_SHORT = {0x22: '\\"', 0x5C: "\\\\", 0x2F: "\\/", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_RAW_OK = dfa.r_sub(dfa.ANY_RANGES, ((0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C)))
_SPECIAL = ((0x00, 0x1F), (0x22, 0x22), (0x2F, 0x2F), (0x5C, 0x5C))


def _hex_digits(values) -> ir.Chars:
    """The hex digits of ``values`` (0..15), in either case."""
    out = []
    for v in values:
        ch = "0123456789abcdef"[v]
        out += [(ord(ch), ord(ch)), (ord(ch.upper()), ord(ch.upper()))]
    return ir.char_set(out)


@functools.lru_cache(maxsize=4096)
def encode_chars(ranges: tuple) -> ir.Regex:
    """All JSON encodings of one character from ``ranges``, grouped so the automaton stays small:
    literal characters | ``\\`` + one short-escape letter | ``\\u00`` + high nibble + low nibble."""
    alts: list[ir.Regex] = []
    raw = dfa.r_and(tuple(ranges), _RAW_OK)
    if raw:
        alts.append(ir.Chars(raw))
    special = [cp for lo, hi in dfa.r_and(tuple(ranges), _SPECIAL) for cp in range(lo, hi + 1)]
    short = [ord(_SHORT[cp][1]) for cp in special if cp in _SHORT]
    if short:
        alts.append(ir.Seq((ir.literal("\\"), ir.char_set([(c, c) for c in short]))))
    for high in (0, 1):
        lows = [cp & 0xF for cp in special if cp < 0x20 and cp >> 4 == high]
        if lows:
            alts.append(ir.Seq((ir.literal("\\u00"), _hex_digits([high]), _hex_digits(lows))))
    if len(alts) == 1:
        return alts[0]
    return ir.Alt(tuple(alts))


def encode(regex: ir.Regex, memo: dict | None = None) -> ir.Regex:
    """The regex of the JSON encodings (without quotes) of the strings ``regex`` matches."""
    memo = {} if memo is None else memo
    hit = memo.get(regex)
    if hit is not None:
        return hit
    if isinstance(regex, ir.Chars):
        out = encode_chars(tuple(regex.ranges))
    elif isinstance(regex, ir.Seq):
        out = ir.Seq(tuple(encode(r, memo) for r in regex.items))
    elif isinstance(regex, ir.Alt):
        out = ir.Alt(tuple(encode(r, memo) for r in regex.items))
    elif isinstance(regex, ir.Repeat):
        out = ir.Repeat(encode(regex.item, memo), regex.min, regex.max)
    else:
        raise TypeError(f"cannot JSON-encode regex node {type(regex).__name__}")
    memo[regex] = out
    return out


JSON_CHAR = encode_chars(dfa.ANY_RANGES)
ANY_STRING = ir.Seq((QUOTE, ir.Repeat(JSON_CHAR, 0, None), QUOTE))


@functools.lru_cache(maxsize=4096)
def string_lexeme(decoded: ir.Regex) -> ir.Regex:
    """The lexeme (quotes included) of the JSON strings whose value matches ``decoded`` (cached: schemas
    repeat the same string constraints, and regex nodes hash in O(1))."""
    if decoded == ANYSTAR:
        return ANY_STRING
    return ir.Seq((QUOTE, encode(decoded), QUOTE))


def literal_string_lexeme(value: str) -> ir.Regex:
    return ir.Seq((QUOTE, *(encode_chars(((ord(ch), ord(ch)),)) for ch in value), QUOTE))


def not_in_regex(words) -> ir.Regex:
    """Decoded strings that are not one of ``words`` (exact complement of a finite set, via its trie)."""
    return _not_in_regex(tuple(words))


@functools.lru_cache(maxsize=1024)
def _not_in_regex(words: tuple[str, ...]) -> ir.Regex:
    # A string is not a word iff it is a proper prefix of the words' trie that is not a word ("ends"), or
    # it leaves the trie at some character and goes on with anything ("leaves" · ANYSTAR). Written this way
    # ANYSTAR occurs once, so every way out of the trie reaches the same lexer states: the lexer state of a
    # key of an open object is then a small set, and the mask's token slices can prove it takes all text.
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[None] = True

    def alt(parts: list[ir.Regex]) -> ir.Regex | None:
        return None if not parts else parts[0] if len(parts) == 1 else ir.Alt(tuple(parts))

    def build(node: dict) -> tuple[ir.Regex | None, ir.Regex | None]:
        """(ends, leaves) below ``node``. Recursive on the trie depth: keys are short (bounded by the caller)."""
        ends: list[ir.Regex] = [] if None in node else [ir.EPSILON]
        kids = sorted(k for k in node if k is not None)
        other = dfa.r_sub(dfa.ANY_RANGES, ir.normalize_ranges([(ord(k), ord(k)) for k in kids]))
        leaves: list[ir.Regex] = [ir.Chars(other)] if other else []
        for k in kids:
            e, lv = build(node[k])
            if e is not None:
                ends.append(ir.Seq((ir.literal(k), e)))
            if lv is not None:
                leaves.append(ir.Seq((ir.literal(k), lv)))
        return alt(ends), alt(leaves)

    ends, leaves = build(trie)
    parts = [r for r in (ends, None if leaves is None else ir.Seq((leaves, ANYSTAR))) if r is not None]
    return alt(parts) or ir.NOTHING
