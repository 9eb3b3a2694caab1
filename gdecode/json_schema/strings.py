"""JSON string lexemes: a regex over *decoded* characters becomes the regex of its JSON encodings.

The encoding is a homomorphism applied to every character set of the decoded regex, so constraints
written on the string value (``pattern``, lengths, formats, "key not in this set") stay exact: with the
``"standard"`` escape policy a character is written literally, except ``"`` and ``\\`` (always escaped),
``/`` (literal or ``\\/``) and control characters U+0000..U+001F (``\\b \\f \\n \\r \\t`` or ``\\u00XX``,
hex digits in either case). Every encoding decodes to exactly one character, so lengths are preserved.
"""

from __future__ import annotations

import functools
import re

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
    """The regex of the JSON encodings (without quotes) of the strings ``regex`` matches.

    Iterative and bottom-up: regexes from patterns can nest hundreds of levels deep (``[a-z]{1,255}`` after
    state elimination), past Python's recursion limit (regex nodes hash and compare iteratively too)."""
    memo = {} if memo is None else memo  # structural: equal subtrees built apart are encoded once
    done: dict[int, ir.Regex] = {}  # id(node) -> encoding, for the nodes of this tree (alive meanwhile)
    stack: list[tuple[ir.Regex, bool]] = [(regex, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in done:
            continue
        if not ready:
            hit = memo.get(node)  # a structurally equal subtree encoded before ends the descent
            if hit is not None:
                done[id(node)] = hit
                continue
            if not isinstance(node, (ir.Chars, ir.Seq, ir.Alt, ir.Repeat)):
                raise TypeError(f"cannot JSON-encode regex node {type(node).__name__}")
            stack.append((node, True))
            stack.extend((k, False) for k in ir.children(node) if id(k) not in done)
            continue
        out = memo.get(node)
        if out is None:
            if isinstance(node, ir.Chars):
                out = encode_chars(tuple(node.ranges))
            elif isinstance(node, ir.Seq):
                out = ir.Seq(tuple(done[id(c)] for c in node.items))
            elif isinstance(node, ir.Alt):
                out = ir.Alt(tuple(done[id(c)] for c in node.items))
            else:
                out = ir.Repeat(done[id(node.item)], node.min, node.max)
            memo[node] = out
        done[id(node)] = out
    return done[id(regex)]


JSON_CHAR = encode_chars(dfa.ANY_RANGES)
ANY_BODY = ir.Repeat(JSON_CHAR, 0, None)
ANY_STRING = ir.Seq((QUOTE, ANY_BODY, QUOTE))


# The caches of whole lexemes are small on purpose: what they keep alive stays in the process, and every
# full garbage collection of the caller's process walks it (hundreds of thousands of regex nodes with a
# few thousand entries). Reuse happens mostly within one schema, which a few hundred entries cover.
@functools.lru_cache(maxsize=256)
def string_lexeme(decoded: ir.Regex) -> ir.Regex:
    """The lexeme (quotes included) of the JSON strings whose value matches ``decoded`` (cached: schemas
    repeat the same string constraints, and regex nodes hash in O(1))."""
    if decoded == ANYSTAR:
        return ANY_STRING
    return ir.Seq((QUOTE, encode(decoded), QUOTE))


def literal_string_lexeme(value: str) -> ir.Regex:
    """The lexeme of the JSON string ``value`` (every encoding of each character)."""
    get = _ONE_CHAR.get
    items = [QUOTE]
    for ch in value:
        enc = get(ch)
        if enc is None:
            enc = _ONE_CHAR[ch] = encode_chars(((ord(ch), ord(ch)),))
        items.append(enc)
    items.append(QUOTE)
    return ir.Seq(tuple(items))


# character -> its encodings: every JSON key is written this way, and the lru_cache's key tuples cost more
# than the lookup (at most one entry per code point in use)
_ONE_CHAR: dict[str, ir.Regex] = {}


def not_in_regex(words) -> ir.Regex:
    """Decoded strings that are not one of ``words`` (exact complement of a finite set, via its trie)."""
    return _not_in_regex(tuple(words), False)


def not_in_lexeme(words) -> ir.Regex:
    """``string_lexeme(not_in_regex(words))``: the keys of open objects. Any JSON string body minus every
    JSON encoding of the words, as one :class:`ir.Minus` node the core builds (a trie regex per object was a
    large part of the schema walk and of flattening). Words with too many encodings (many escapes) or that
    are not valid Unicode text keep the regex form."""
    encoded: list[str] = []
    for w in words:
        if _PLAIN_WORD.fullmatch(w):  # the common case: one encoding, the word itself
            encoded.append(w)
            continue
        forms = _encodings(w)
        if forms is None:
            return ir.Seq((QUOTE, _not_in_regex(tuple(words), True), QUOTE))
        encoded += forms
    return ir.Seq((QUOTE, ir.Minus(ANY_BODY, tuple(sorted(set(encoded)))), QUOTE))


_MAX_ENCODINGS = 64  # per word; "/" alone has two, a control character up to five
_PLAIN_WORD = re.compile(r'[^"\\/\x00-\x1f\ud800-\udfff]*')  # written only as themselves


def _encodings(word: str) -> list[str] | None:
    """Every JSON encoding of ``word`` (what ``encode`` allows), or None past _MAX_ENCODINGS or for lone
    surrogates (not UTF-8 text)."""
    out = [""]
    for ch in word:
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return None
        forms = _char_encodings(ch)
        if not forms or len(out) * len(forms) > _MAX_ENCODINGS:
            return None
        out = [a + b for a in out for b in forms]
    return out


@functools.lru_cache(maxsize=4096)
def _char_encodings(ch: str) -> tuple[str, ...]:
    """The encodings of one character (empty if they could not be listed: the caller falls back)."""
    if ch.isalnum() or ch in "_-.: ":
        return (ch,)
    return tuple(dfa.finite_words(encode_chars(((ord(ch), ord(ch)),)), limit=_MAX_ENCODINGS) or ())


_ASCII = ((0, 0x7F),)
_HIGH = dfa.r_sub(dfa.ANY_RANGES, _ASCII)  # every non-ASCII scalar value
# Above this many trie nodes (~250 lexer states the per-node way) the shared exit pays: grammars with many
# such objects filled the lexer past the room the slice proof needs (Github_ultra/o7578).
_SHARED_EXIT_MIN_NODES = 24


@functools.lru_cache(maxsize=4096)
def _char(k: str, encoded: bool) -> ir.Regex:
    return (encode_chars if encoded else ir.Chars)(((ord(k), ord(k)),))


@functools.lru_cache(maxsize=4096)
def _exit_set(kids: str, plain: bool, encoded: bool) -> ir.Regex | None:
    """The characters that leave a trie node with children ``kids`` (only ASCII ones when ``plain``: its
    non-ASCII exit is shared), or None. Cached: most nodes have one child, and names share letters."""
    other = dfa.r_sub(dfa.ANY_RANGES, ir.normalize_ranges([(ord(k), ord(k)) for k in kids]))
    if plain:
        other = dfa.r_and(other, _ASCII)
    return ((encode_chars if encoded else ir.Chars)(other)) if other else None


@functools.lru_cache(maxsize=128)
def _not_in_regex(words: tuple[str, ...], encoded: bool) -> ir.Regex:
    # A string is not a word iff it is a proper prefix of the words' trie that is not a word ("ends"), or
    # it leaves the trie at some character and goes on with anything ("leaves" · ANYSTAR). Written this way
    # ANYSTAR occurs once, so every way out of the trie reaches the same lexer states: the lexer state of a
    # key of an open object is then a small set, and the mask's token slices can prove it takes all text.
    # In big tries, leaving by a non-ASCII character is written once for all nodes without non-ASCII
    # children ("plain": the prefixes that reach them · any non-ASCII character): a character class per
    # node gives every node its own UTF-8 continuation states, about ten lexer states per node instead of
    # one, and the slice proof of the key state runs out of budget. Small tries keep the cheaper form.
    # ``encoded``: every character set is written as its JSON encodings (what `encode` would make of it).
    chars = encode_chars if encoded else ir.Chars

    trie: dict = {}
    size = 0
    for w in words:
        node = trie
        for ch in w:
            if ch not in node:
                size += 1
                node[ch] = {}
            node = node[ch]
        node[None] = True
    shared_exit = size > _SHARED_EXIT_MIN_NODES

    def alt(parts: list[ir.Regex]) -> ir.Regex | None:
        return None if not parts else parts[0] if len(parts) == 1 else ir.Alt(tuple(parts))

    def build(node: dict) -> tuple[ir.Regex | None, ir.Regex | None, ir.Regex | None]:
        """(ends, leaves, plain prefixes) below ``node``. Recursive on the trie depth: keys are short
        (bounded by the caller)."""
        ends: list[ir.Regex] = [] if None in node else [ir.EPSILON]
        kids = "".join(sorted(k for k in node if k is not None))
        plain = shared_exit and kids.isascii()
        exit_set = _exit_set(kids, plain, encoded)
        leaves: list[ir.Regex] = [exit_set] if exit_set is not None else []
        prefixes: list[ir.Regex] = [ir.EPSILON] if plain else []
        for k in kids:
            e, lv, pf = build(node[k])
            if e is not None or lv is not None or pf is not None:
                char = _char(k, encoded)
                if e is not None:
                    ends.append(ir.Seq((char, e)))
                if lv is not None:
                    leaves.append(ir.Seq((char, lv)))
                if pf is not None:
                    prefixes.append(ir.Seq((char, pf)))
        return alt(ends), alt(leaves), alt(prefixes)

    ends, leaves, prefixes = build(trie)
    if prefixes is not None:
        high = ir.Seq((prefixes, chars(_HIGH)))
        leaves = high if leaves is None else ir.Alt((leaves, high))
    anystar = ir.Repeat(JSON_CHAR, 0, None) if encoded else ANYSTAR
    parts = [r for r in (ends, None if leaves is None else ir.Seq((leaves, anystar))) if r is not None]
    return alt(parts) or ir.NOTHING
