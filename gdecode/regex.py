"""Regex syntax → Grammar IR regex (:mod:`gdecode.ir`).

Two flavors:

* ``"ecma"`` — ECMA-262 as used by JSON Schema ``pattern``, read with the ``u`` flag semantics (the JSON
  Schema spec recommends it): code points, ``\\u{...}``, surrogate-pair escapes combined, ``\\p{...}``.
  ``\\d`` = ``[0-9]``, ``\\w`` = ``[A-Za-z0-9_]``, ``\\s`` = the ECMA WhiteSpace+LineTerminator set,
  ``.`` excludes ``\\n \\r \\u2028 \\u2029``, ``$`` (without ``m``) is the strict end. ``[]`` matches
  nothing and ``[^]`` any character. Annex-B identity escapes of letters are rejected (u-mode), lone braces
  and escaped punctuation are accepted as literals, ``\\A``/``\\Z``/``\\z`` are read as anchors (schemas in
  the wild use them that way), and inline flags ``(?i)``/``(?i:...)`` are accepted.
* ``"python"`` — Python's ``re`` for ``str`` patterns (what Lark terminals use). ``\\d \\w \\s`` are
  Unicode-aware exactly like ``re`` (``\\d`` = decimal digits Nd, ``\\w`` = ``str.isalnum()`` or ``_``,
  ``\\s`` = ``str.isspace()``; computed with ``re`` itself); flag ``a`` (ASCII) restricts them to ASCII.
  ``.`` excludes only ``\\n``; ``$`` (without ``m``) also matches before a final ``\\n``. ``\\p{..}`` is
  accepted as an extension (the ``regex`` module, which Lark can use, has it). Global inline flags are
  accepted anywhere (they apply to the rest of the enclosing group, as in PCRE).

Character sets are over Unicode scalar values (surrogates are never matched). Case-insensitive matching
(flag ``i``) expands every character set with its case equivalents: for ``python`` the closure of simple
lower/upper-case mappings and equal full case folds, which equals ``re`` on every cased code point (the
character-class escapes are not folded, as in ``re``); for ``ecma`` simple case folding
(``scf(a) == scf(b)``), applied to whole classes. General categories (``\\p{L}``, ``\\p{Lu}``,
``\\p{gc=Nd}``, ``\\p{Letter}``, ``\\pL``, ``\\P{..}``, ``\\p{^..}``) and ``Any``/``ASCII``/``Assigned``/
``White_Space``/``ASCII_Hex_Digit`` come from :mod:`unicodedata` (the interpreter's Unicode version); scripts,
blocks and other binary properties raise UnsupportedFeatureError. Tables are built lazily and cached.

Readings of a pattern (see :class:`ParsedRegex`):

* :func:`parse_regex` — the *full-match* language (``re.fullmatch``); lazy quantifiers equal greedy ones.
* :meth:`ParsedRegex.search_regex` — the *search* language (``re.search``, JSON Schema ``pattern``), built
  from the anchoring of each top-level alternative (``anchored_start``/``anchored_end``/``branches``).
* :meth:`ParsedRegex.token_regex` — the *lexer token* language (Lark terminals): lazy quantifiers in the
  terminal's top-level sequence stop at the first closing delimiter, as ``re.match`` does.

Beyond plain regular expressions, compiled away exactly (a small derivative-based DFA construction in
``gdecode._regex_dfa`` builds intersections/complements and converts back by state elimination, bounded by
state, size and time limits): lookaheads and lookbehinds whose inspected text lies inside the match (or,
for whole strings, anywhere after it — e.g. ``^(?=.*\\d)``, ``^((?!foo).)*$``, ``(?!\\s*$)``), anchors
away from the edges (as assertions), and possessive quantifiers where they provably do not change the
language. UnsupportedFeatureError (naming the construct and position) for everything else that cannot be
enforced exactly: backreferences, word boundaries ``\\b \\B``, atomic groups, conditionals, recursion,
branch reset, ``\\G \\K``, class set operations (``&&``, ``--``), POSIX classes, unknown properties, and
lookarounds that are too complex for the bounds. Malformed patterns raise GrammarError with the position;
patterns longer than MAX_PATTERN_LENGTH, repeat counts above MAX_REPEAT and nesting deeper than
MAX_NESTING raise LimitExceededError. Counted repeats stay ``ir.Repeat`` (never unrolled here).
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass

from gdecode import _regex_dfa as dfa
from gdecode import ir
from gdecode.errors import GrammarError, LimitExceededError, UnsupportedFeatureError

__all__ = [
    "MAX_PATTERN_LENGTH",
    "MAX_REPEAT",
    "ParsedRegex",
    "RegexBranch",
    "analyze_regex",
    "literal_regex",
    "parse_regex",
]

MAX_PATTERN_LENGTH = 100_000
MAX_REPEAT = 100_000
MAX_NESTING = 200
_MAX_DFA_WORK = 20_000  # bound on the DFA construction used to compile lookarounds / lazy terminals away
_MAX_BRANCHES = 256

_ANY = dfa.ANY_RANGES
_EPS = ir.EPSILON

# ------------------------------------------------------------------------------------- character tables
_ECMA_SPACE = (
    (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
)  # fmt: skip
_ASCII_DIGIT = ((0x30, 0x39),)
_ASCII_WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_ASCII_SPACE = ((0x09, 0x0D), (0x20, 0x20))  # Python re.ASCII \s: [ \t\n\r\f\v]
_WHITE_SPACE = (
    (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)  # fmt: skip  (Unicode White_Space property)


@functools.cache
def _scalar_strings() -> tuple[tuple[int, str], ...]:
    """All scalar values as two strings (below and above the surrogates), with their first code point."""
    return ((0, "".join(map(chr, range(0xD800)))), (0xE000, "".join(map(chr, range(0xE000, 0x110000)))))


@functools.cache
def _python_class(name: str) -> tuple[tuple[int, int], ...]:
    """Ranges of Python ``re``'s Unicode ``\\d``/``\\w``/``\\s``, computed with ``re`` itself."""
    pat = re.compile({"d": r"\d+", "w": r"\w+", "s": r"\s+"}[name])
    out = []
    for base, text in _scalar_strings():
        for m in pat.finditer(text):
            out.append((base + m.start(), base + m.end() - 1))
    return tuple(out)


@functools.cache
def _general_categories() -> dict[str, tuple[tuple[int, int], ...]]:
    cat = unicodedata.category
    table: dict[str, list] = {}
    start, prev = 0, cat("\0")
    for cp in range(1, 0x110000):
        c = cat(chr(cp))
        if c != prev:
            table.setdefault(prev, []).append((start, cp - 1))
            start, prev = cp, c
    table.setdefault(prev, []).append((start, 0x10FFFF))
    return {k: tuple(v) for k, v in table.items()}


_GC_ALIASES = {
    "L": ("letter",), "LC": ("casedletter",), "Lu": ("uppercaseletter",), "Ll": ("lowercaseletter",),
    "Lt": ("titlecaseletter",), "Lm": ("modifierletter",), "Lo": ("otherletter",),
    "M": ("mark", "combiningmark"), "Mn": ("nonspacingmark",), "Mc": ("spacingmark",),
    "Me": ("enclosingmark",), "N": ("number",), "Nd": ("decimalnumber", "digit"), "Nl": ("letternumber",),
    "No": ("othernumber",), "P": ("punctuation", "punct"), "Pc": ("connectorpunctuation",),
    "Pd": ("dashpunctuation",), "Ps": ("openpunctuation",), "Pe": ("closepunctuation",),
    "Pi": ("initialpunctuation",), "Pf": ("finalpunctuation",), "Po": ("otherpunctuation",),
    "S": ("symbol",), "Sm": ("mathsymbol",), "Sc": ("currencysymbol",), "Sk": ("modifiersymbol",),
    "So": ("othersymbol",), "Z": ("separator",), "Zs": ("spaceseparator",), "Zl": ("lineseparator",),
    "Zp": ("paragraphseparator",), "C": ("other",), "Cc": ("control", "cntrl"), "Cf": ("format",),
    "Cs": ("surrogate",), "Co": ("privateuse",), "Cn": ("unassigned",),
}  # fmt: skip
_GC_LOOKUP = {}
for _abbr, _names in _GC_ALIASES.items():
    _GC_LOOKUP[_abbr.lower()] = _abbr
    for _n in _names:
        _GC_LOOKUP[_n] = _abbr


def _loose(name: str) -> str:
    return name.replace("_", "").replace("-", "").replace(" ", "").lower()


def _gc_ranges(abbr: str) -> tuple[tuple[int, int], ...]:
    table = _general_categories()
    if len(abbr) == 2:
        if abbr == "LC":
            parts = [table.get(k, ()) for k in ("Lu", "Ll", "Lt")]
        else:
            parts = [table.get(abbr, ())]
    else:
        parts = [v for k, v in table.items() if k[0] == abbr]
    return dfa.r_norm([r for p in parts for r in p])


def _property_ranges(body: str) -> tuple[tuple[int, int], ...] | None:
    """Ranges of a ``\\p{body}`` property, or None when unknown/unsupported."""
    if "=" in body:
        key, _, value = body.partition("=")
        if _loose(key) not in ("gc", "generalcategory"):
            return None
        body = value
    low = _loose(body)
    abbr = _GC_LOOKUP.get(low)
    if abbr is not None:
        return _gc_ranges(abbr)
    if low == "any":
        return _ANY
    if low == "ascii":
        return ((0, 0x7F),)
    if low == "assigned":
        return dfa.r_not(_gc_ranges("Cn"))
    if low in ("whitespace", "wspace"):
        return _WHITE_SPACE
    if low in ("asciihexdigit", "ahex"):
        return ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66))
    return None


# ------------------------------------------------------------------------------------------ case folding
def _cased_candidates() -> list[int]:
    out = []
    for base, text in _scalar_strings():
        for i in range(0, len(text), 256):
            chunk = text[i : i + 256]
            if chunk.lower() == chunk and chunk.upper() == chunk and chunk.casefold() == chunk:
                continue
            for j, ch in enumerate(chunk):
                if ch.lower() != ch or ch.upper() != ch or ch.casefold() != ch:
                    out.append(base + i + j)
    return out


def _simple_lower(cp: int) -> int:
    try:
        import _sre  # CPython's own simple lowercase, exactly what `re` uses

        return _sre.unicode_tolower(cp)
    except (ImportError, AttributeError):  # pragma: no cover - other interpreters
        low = chr(cp).lower()
        return ord(low) if len(low) == 1 else cp


@functools.cache
def _case_table(kind: str) -> tuple[list[int], dict[int, tuple[int, ...]]]:
    """(sorted code points with case equivalents, cp -> all equivalents incl. itself)."""
    if kind == "ascii":
        groups = [(c, c + 32) for c in range(0x41, 0x5B)]
    else:
        cands = _cased_candidates()
        if kind == "python":
            parent: dict[int, int] = {}

            def find(x: int) -> int:
                while parent.get(x, x) != x:
                    parent[x] = parent.get(parent[x], parent[x])
                    x = parent[x]
                return x

            def union(a: int, b: int) -> None:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[ra] = rb

            same_fold: dict[str, int] = {}
            for cp in cands:
                union(cp, _simple_lower(cp))
                up = chr(cp).upper()
                if len(up) == 1:
                    union(cp, ord(up))
                folded = chr(cp).casefold()  # e.g. U+0390 ~ U+1FD3, U+FB05 ~ U+FB06 (as re does)
                if folded in same_fold:
                    union(cp, same_fold[folded])
                else:
                    same_fold[folded] = cp
            by: dict[int, list[int]] = {}
            for cp in set(parent) | set(cands):
                by.setdefault(find(cp), []).append(cp)
            groups = list(by.values())
        else:  # ecma: simple case folding, approximated from Python's full folding and lowercase

            def scf(cp: int) -> int:
                ch = chr(cp)
                f = ch.casefold()
                if len(f) == 1:
                    return ord(f)
                low = ch.lower()
                if len(low) == 1 and low != ch:
                    return scf(ord(low))
                return cp

            by = {}
            for cp in cands:
                k = scf(cp)
                by.setdefault(k, {k}).add(cp)
            groups = [sorted(g) for g in by.values()]
    table: dict[int, tuple[int, ...]] = {}
    for g in groups:
        g = tuple(sorted(set(g)))
        if len(g) > 1:
            for cp in g:
                table[cp] = g
    return sorted(table), table


@functools.lru_cache(maxsize=65536)
def _folded_char(cp: int, kind: str) -> ir.Chars:
    if 0xD800 <= cp <= 0xDFFF:
        return ir.Chars(())
    _keys, table = _case_table(kind)
    return ir.Chars(dfa.r_norm((c, c) for c in table.get(cp, (cp,))))


def _case_fold(ranges, kind: str) -> tuple[tuple[int, int], ...]:
    keys, table = _case_table(kind)
    extra = []
    for lo, hi in ranges:
        i = bisect.bisect_left(keys, lo)
        j = bisect.bisect_right(keys, hi)
        for cp in keys[i:j]:
            extra.extend((e, e) for e in table[cp])
    if not extra:
        return tuple(ranges)
    return dfa.r_norm(tuple(ranges) + tuple(extra))


# ----------------------------------------------------------------------------------------- internal AST
@dataclass(frozen=True)
class _Anchor:
    kind: str  # "A" text start, "L^" line start, "Z" text end, "Zn" end or before final \n, "L$" line end
    pos: int


@dataclass(frozen=True)
class _Look:
    behind: bool
    negate: bool
    item: object
    pos: int


@dataclass(frozen=True)
class _Rep:
    """A lazy or possessive quantifier (greedy ones are plain ir.Repeat)."""

    item: object
    min: int
    max: int | None
    mode: str  # "lazy" | "possessive"
    pos: int


@dataclass(frozen=True)
class _MinPF:
    """Shortest-match restriction (the prefix-free part) of ``item``'s language."""

    item: object


_START_KINDS = ("A", "L^")
_END = ((), True, False)  # follow information at the end of the regex: (first chars, may end, zero-width)
_SPECIAL = (_Anchor, _Look, _Rep, _MinPF, dfa.And, dfa.Not, dfa.LookAhead)


def _seq(items):
    return dfa.mk_seq(items)


def _alt(items):
    items = list(items)
    if len(items) == 1:
        return items[0]
    return dfa.mk_alt(items)


def _children(node):
    if isinstance(node, (ir.Seq, ir.Alt, dfa.And)):
        return node.items
    if isinstance(node, (ir.Repeat, _Rep, _Look, _MinPF, dfa.Not, dfa.LookAhead)):
        return (node.item,)
    return ()


def _contains(node, types) -> bool:
    stack = [node]
    while stack:
        x = stack.pop()
        if isinstance(x, types):
            return True
        stack.extend(_children(x))
    return False


def _contains_outside_looks(node, types) -> bool:
    stack = [node]
    while stack:
        x = stack.pop()
        if isinstance(x, types):
            return True
        if not isinstance(x, _Look):
            stack.extend(_children(x))
    return False


def _zero_width(node) -> bool:
    """Only lookarounds (they consume nothing)."""
    if isinstance(node, _Look):
        return True
    if isinstance(node, ir.Seq):
        return all(_zero_width(x) for x in node.items)
    return False


def _nullable(node) -> bool:
    if isinstance(node, ir.Chars):
        return False
    if isinstance(node, ir.Seq):
        return all(_nullable(x) for x in node.items)
    if isinstance(node, ir.Alt):
        return any(_nullable(x) for x in node.items)
    if isinstance(node, (ir.Repeat, _Rep)):
        return node.min == 0 or _nullable(node.item)
    if isinstance(node, (_Look, _Anchor, dfa.LookAhead)):
        return True
    if isinstance(node, _MinPF):
        return _nullable(node.item)
    raise AssertionError(node)


def _first(node) -> tuple[tuple[int, int], ...]:
    """Over-approximation of the set of first characters."""
    if isinstance(node, ir.Chars):
        return node.ranges
    if isinstance(node, ir.Seq):
        out: tuple = ()
        for x in node.items:
            out = dfa.r_or(out, _first(x))
            if not _nullable(x):
                break
        return out
    if isinstance(node, ir.Alt):
        out = ()
        for x in node.items:
            out = dfa.r_or(out, _first(x))
        return out
    if isinstance(node, (ir.Repeat, _Rep)):
        return () if node.max == 0 else _first(node.item)
    if isinstance(node, _MinPF):
        return _first(node.item)
    return ()


_INF = float("inf")


def _min_len(node) -> float:
    if isinstance(node, ir.Chars):
        return 1
    if isinstance(node, ir.Seq):
        return sum(_min_len(x) for x in node.items)
    if isinstance(node, ir.Alt):
        return min((_min_len(x) for x in node.items), default=_INF)
    if isinstance(node, (ir.Repeat, _Rep)):
        return node.min * _min_len(node.item) if node.min else 0
    if isinstance(node, _MinPF):
        return _min_len(node.item)
    if isinstance(node, dfa.And):
        return max(_min_len(x) for x in node.items)
    return 0


def _max_len(node) -> float:
    if isinstance(node, ir.Chars):
        return 1
    if isinstance(node, ir.Seq):
        return sum(_max_len(x) for x in node.items)
    if isinstance(node, ir.Alt):
        return max((_max_len(x) for x in node.items), default=0)
    if isinstance(node, (ir.Repeat, _Rep)):
        m = _max_len(node.item)
        if m == 0:
            return 0
        return _INF if node.max is None else node.max * m
    if isinstance(node, _MinPF):
        return _max_len(node.item)
    if isinstance(node, dfa.And):
        return min(_max_len(x) for x in node.items)
    if isinstance(node, dfa.Not):
        return _INF
    return 0


# ------------------------------------------------------------------------------------------------ parser
_PY_FLAGS = set("aiLmsux")
_ECMA_FLAGS = set("dgimsuvy")
_INLINE_FLAGS = set("aiLmsux")
_PY_WS = " \t\n\r\v\f"


def _isoct(ch: str) -> bool:
    return ch != "" and ch in "01234567"


class _Parser:
    def __init__(self, pattern: str, flavor: str, flags: str) -> None:
        self.p = pattern
        self.n = len(pattern)
        self.i = 0
        self.flavor = flavor
        self.py = flavor == "python"
        allowed = _PY_FLAGS if self.py else _ECMA_FLAGS
        for f in flags:
            if f not in allowed:
                raise GrammarError(f"unknown regex flag {f!r} for flavor {flavor!r}")
        if "L" in flags:
            raise UnsupportedFeatureError("regex flag L (locale-dependent matching) is not supported")
        self.flags = set(flags)
        self.depth = 0
        self.ngroups = 0
        self.features: set[str] = set()

    # -------------------------------------------------------------------------------------- errors
    def _where(self, pos: int) -> str:
        shown = self.p if len(self.p) <= 120 else self.p[:117] + "..."
        return f"at position {pos} in regex {shown!r}"

    def err(self, msg: str, pos: int | None = None) -> GrammarError:
        return GrammarError(f"{msg} {self._where(self.i if pos is None else pos)}")

    def unsupported(self, what: str, pos: int) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(f"{what} is not supported (regex feature) {self._where(pos)}")

    # ------------------------------------------------------------------------------------- helpers
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < self.n else ""

    def skip_verbose(self) -> None:
        if "x" not in self.flags:
            return
        while self.i < self.n:
            c = self.p[self.i]
            if c in _PY_WS:
                self.i += 1
            elif c == "#":
                while self.i < self.n and self.p[self.i] != "\n":
                    self.i += 1
            else:
                break

    def chars(self, ranges, fold: bool = True) -> ir.Chars:
        ranges = dfa.r_norm(ranges)
        if fold and "i" in self.flags:
            ranges = _case_fold(ranges, self.fold_kind())
        return ir.Chars(ranges)

    def fold_kind(self) -> str:
        if self.py:
            return "ascii" if "a" in self.flags else "python"
        return "ecma"

    # -------------------------------------------------------------------------------------- grammar
    def parse(self):
        node = self.alternation()
        if self.i < self.n:
            raise self.err("unbalanced parenthesis")
        return node

    def alternation(self):
        branches = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence())
        return _alt(branches)

    def sequence(self):
        items = []
        while True:
            self.skip_verbose()
            if self.i >= self.n or self.p[self.i] in "|)":
                break
            atom = self.atom()
            if atom is None:
                continue
            items.append(self.quantified(atom))
        return _seq(items)

    def brace(self) -> tuple[int, int | None, int] | None:
        """Parse ``{n}``, ``{n,}``, ``{n,m}`` (and Python's ``{,m}``) at self.i; None if not a quantifier."""
        m = re.compile(r"\{(\d*)(,(\d*))?\}").match(self.p, self.i)
        if not m:
            return None
        lo_s, comma, hi_s = m.group(1), m.group(2), m.group(3)
        if not self.py and not lo_s:
            return None
        if not self.py and comma is None and not lo_s:
            return None
        if self.py and not lo_s and not comma:
            return None  # "{}" is a literal
        lo = int(lo_s) if lo_s else 0
        if comma is None:
            hi: int | None = lo
        else:
            hi = int(hi_s) if hi_s else None
        for v in (lo, hi):
            if v is not None and v > MAX_REPEAT:
                raise LimitExceededError(f"repeat count {v} exceeds the limit {MAX_REPEAT} {self._where(self.i)}")
        if hi is not None and hi < lo:
            raise self.err("min repeat greater than max repeat")
        return lo, hi, m.end()

    def quantifier_here(self) -> tuple[int, int | None, int] | None:
        c = self.peek()
        if c == "*":
            return 0, None, self.i + 1
        if c == "+":
            return 1, None, self.i + 1
        if c == "?":
            return 0, 1, self.i + 1
        if c == "{":
            return self.brace()
        return None

    def quantified(self, atom):
        self.skip_verbose()
        q = self.quantifier_here()
        if q is None:
            return atom
        pos = self.i
        if isinstance(atom, _Anchor):
            if self.p[pos - 1] == ")":
                raise self.unsupported("a quantified anchor", pos)
            raise self.err("nothing to repeat")
        if isinstance(atom, _Look):
            raise self.unsupported("a quantified lookaround", pos)
        lo, hi, self.i = q
        mode = "greedy"
        if self.peek() == "?":
            mode = "lazy"
            self.i += 1
        elif self.peek() == "+":
            mode = "possessive"
            self.i += 1
        self.skip_verbose()
        if self.quantifier_here() is not None:
            raise self.err("multiple repeat")
        if mode == "greedy":
            return dfa.mk_rep(atom, lo, hi) if atom != _EPS else _EPS
        self.features.add(mode)
        return _Rep(atom, lo, hi, mode, pos)

    def atom(self):
        c = self.p[self.i]
        pos = self.i
        if c == "(":
            return self.group()
        if c == "[":
            return self.char_class()
        if c == ".":
            self.i += 1
            if "s" in self.flags:
                return ir.Chars(_ANY)
            excluded = ((0x0A, 0x0A),) if self.py else ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
            return ir.Chars(dfa.r_not(excluded))
        if c == "^":
            self.i += 1
            self.features.add("anchor")
            return _Anchor("L^" if "m" in self.flags else "A", pos)
        if c == "$":
            self.i += 1
            self.features.add("anchor")
            if "m" in self.flags:
                return _Anchor("L$", pos)
            return _Anchor("Zn" if self.py else "Z", pos)
        if c == "\\":
            return self.escape()
        if c in "*+?":
            raise self.err("nothing to repeat")
        if c == "{" and self.brace() is not None:
            raise self.err("nothing to repeat")
        self.i += 1
        return self.chars(((ord(c), ord(c)),))

    # ----------------------------------------------------------------------------------------- groups
    def group(self):
        start = self.i
        self.i += 1
        saved = set(self.flags)
        kind = "capture"
        look = None
        if self.peek() == "?":
            self.i += 1
            c = self.peek()
            if c == "":
                raise self.err("unexpected end of pattern after '(?'", start)
            if c == ":":
                self.i += 1
                kind = "plain"
            elif c == "P":
                nxt = self.peek(1)
                if nxt == "<":
                    self.i += 2
                    self.group_name(">", start)
                elif nxt == "=":
                    raise self.unsupported("a named backreference (?P=...)", start)
                elif nxt == ">":
                    raise self.unsupported("a subroutine call / recursion (?P>...)", start)
                else:
                    raise self.err("unknown extension ?P", start)
            elif c == "<":
                nxt = self.peek(1)
                if nxt in ("=", "!"):
                    self.i += 2
                    look = (True, nxt == "!")
                else:
                    self.i += 1
                    self.group_name(">", start)
            elif c == "'":
                self.i += 1
                self.group_name("'", start)
            elif c in ("=", "!"):
                self.i += 1
                look = (False, c == "!")
            elif c == ">":
                raise self.unsupported("an atomic group (?>...)", start)
            elif c == "#":
                end = self.p.find(")", self.i)
                if end < 0:
                    raise self.err("missing ), unterminated comment", start)
                self.i = end + 1
                return None
            elif c == "(":
                raise self.unsupported("a conditional group (?(...)...)", start)
            elif c == "|":
                raise self.unsupported("a branch-reset group (?|...)", start)
            elif c in "R&+" or c.isdigit() or (c == "-" and self.peek(1).isdigit()):
                raise self.unsupported("a subroutine call / recursion", start)
            elif c in _INLINE_FLAGS or c == "-":
                scoped = self.inline_flags(start)
                if not scoped:
                    return None  # (?i) applies to the rest of the enclosing group
                kind = "plain"
            else:
                raise self.err(f"unknown extension ?{c}", start)
        if kind == "capture" and look is None:
            self.ngroups += 1
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise LimitExceededError(f"regex nesting deeper than {MAX_NESTING} {self._where(start)}")
        body = self.alternation()
        self.depth -= 1
        if self.peek() != ")":
            raise self.err("missing ), unterminated subpattern", start)
        self.i += 1
        self.flags = saved
        if look is not None:
            self.features.add("look")
            return _Look(look[0], look[1], body, start)
        return body

    def group_name(self, close: str, start: int) -> None:
        end = self.p.find(close, self.i)
        if end < 0:
            raise self.err("missing group name terminator", start)
        name = self.p[self.i : end]
        if not name.isidentifier():
            raise self.err(f"bad character in group name {name!r}", start)
        self.i = end + 1
        self.ngroups += 1

    def inline_flags(self, start: int) -> bool:
        """Parse ``(?flags)`` or ``(?flags-flags:``; returns True for the scoped form (body follows)."""
        on, off, neg = set(), set(), False
        while True:
            c = self.peek()
            if c == "":
                raise self.err("missing -, : or )", start)
            if c == "-":
                if neg:
                    raise self.err("bad inline flags", start)
                neg = True
            elif c in _INLINE_FLAGS:
                if c == "L":
                    raise self.unsupported("the L (locale) flag", start)
                (off if neg else on).add(c)
            elif c == ")":
                self.i += 1
                self.flags |= on
                self.flags -= off
                return False
            elif c == ":":
                self.i += 1
                self.flags |= on
                self.flags -= off
                return True
            else:
                raise self.err(f"unknown flag {c!r}", self.i)
            self.i += 1

    # ---------------------------------------------------------------------------------------- escapes
    def hex_digits(self, count: int, what: str, pos: int) -> int:
        s = self.p[self.i : self.i + count]
        if len(s) != count or not all(ch in "0123456789abcdefABCDEF" for ch in s):
            raise self.err(f"incomplete escape {what}", pos)
        self.i += count
        return int(s, 16)

    def code_point_escape(self, c: str, pos: int) -> int | None:
        """Escapes denoting one code point (shared by classes and atoms); self.i is after the letter."""
        simple = {"n": 0x0A, "t": 0x09, "r": 0x0D, "f": 0x0C, "v": 0x0B}
        if c in simple:
            return simple[c]
        if c == "a" and self.py:
            return 0x07
        if c == "x":
            return self.hex_digits(2, "\\x", pos)
        if c == "u":
            if not self.py and self.peek() == "{":
                end = self.p.find("}", self.i)
                digits = self.p[self.i + 1 : end] if end > 0 else ""
                if not digits or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
                    raise self.err("bad \\u{...} escape", pos)
                cp = int(digits, 16)
                if cp > ir.MAX_CODE_POINT:
                    raise self.err("\\u{...} escape beyond U+10FFFF", pos)
                self.i = end + 1
                return cp
            cp = self.hex_digits(4, "\\u", pos)
            if not self.py and 0xD800 <= cp <= 0xDBFF and self.p.startswith("\\u", self.i):
                save = self.i
                self.i += 2
                try:
                    low = self.hex_digits(4, "\\u", pos)
                except GrammarError:
                    low = -1
                if 0xDC00 <= low <= 0xDFFF:
                    return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                self.i = save
            return cp
        if c == "U" and self.py:
            cp = self.hex_digits(8, "\\U", pos)
            if cp > ir.MAX_CODE_POINT:
                raise self.err("bad escape \\U (beyond U+10FFFF)", pos)
            return cp
        if c == "N" and self.py:
            if self.peek() != "{":
                raise self.err("missing { in \\N{...}", pos)
            end = self.p.find("}", self.i)
            if end < 0:
                raise self.err("missing } in \\N{...}", pos)
            name = self.p[self.i + 1 : end]
            try:
                ch = unicodedata.lookup(name)
            except KeyError:
                raise self.err(f"undefined character name {name!r}", pos) from None
            self.i = end + 1
            return ord(ch)
        if c == "c" and not self.py:
            letter = self.peek()
            if not (letter.isascii() and letter.isalpha()):
                raise self.err("bad \\c escape", pos)
            self.i += 1
            return ord(letter) % 32
        return None

    def class_escape_set(self, c: str, pos: int):
        """``\\d \\D \\w \\W \\s \\S \\p \\P`` → (ranges, foldable) or None."""
        if c in "dDwWsS":
            low = c.lower()
            if self.py:
                if "a" in self.flags:
                    base = {"d": _ASCII_DIGIT, "w": _ASCII_WORD, "s": _ASCII_SPACE}[low]
                else:
                    base = _python_class(low)
            else:
                base = {"d": _ASCII_DIGIT, "w": _ASCII_WORD, "s": _ECMA_SPACE}[low]
                if low == "w" and "i" in self.flags:
                    base = dfa.r_or(base, ((0x017F, 0x017F), (0x212A, 0x212A)))  # ſ and K: ECMA /iu
            ranges = dfa.r_not(base) if c.isupper() else dfa.r_norm(base)
            return ranges, not self.py
        if c in "pP":
            if self.peek() == "{":
                end = self.p.find("}", self.i)
                if end < 0:
                    raise self.err("missing } in \\p{...}", pos)
                body = self.p[self.i + 1 : end]
                self.i = end + 1
            elif self.peek().isalpha():
                body = self.peek()
                self.i += 1
            else:
                raise self.err("bad \\p escape", pos)
            negate = c == "P"
            if body.startswith("^"):
                negate, body = not negate, body[1:]
            ranges = _property_ranges(body)
            if ranges is None:
                raise self.unsupported(f"the Unicode property \\{c}{{{body}}}", pos)
            self.features.add("property")
            return (dfa.r_not(ranges) if negate else ranges), not self.py
        return None

    def escape(self):
        pos = self.i
        self.i += 1
        if self.i >= self.n:
            raise self.err("bad escape (end of pattern)", pos)
        c = self.p[self.i]
        self.i += 1
        if c.isdigit():
            if c == "0" or (
                self.py and c in "01234567" and _isoct(self.peek()) and _isoct(self.peek(1))
            ):
                return self.chars(((v := self.octal(c, pos), v),))
            num = c
            if self.py and self.peek().isdigit():
                num += self.peek()
                self.i += 1
            if self.py and int(num) > self.ngroups:
                raise self.err(f"invalid group reference {num}", pos)
            raise self.unsupported(f"a backreference \\{num}", pos)
        s = self.class_escape_set(c, pos)
        if s is not None:
            ranges, foldable = s
            return self.chars(ranges, fold=foldable)
        if c in "bB":
            raise self.unsupported(f"the word boundary \\{c}", pos)
        if c == "A":
            self.features.add("anchor")
            return _Anchor("A", pos)
        if c in "Zz":
            self.features.add("anchor")
            return _Anchor("Z", pos)
        if c == "k":
            raise self.unsupported("a named backreference \\k", pos)
        if c in "gGKQEhHRXCo":
            raise self.unsupported(f"the escape \\{c}", pos)
        cp = self.code_point_escape(c, pos)
        if cp is not None:
            return self.chars(((cp, cp),))
        if c.isascii() and c.isalnum():
            raise self.err(f"bad escape \\{c}", pos)
        return self.chars(((ord(c), ord(c)),))

    def octal(self, first: str, pos: int) -> int:
        digits = first
        while len(digits) < 3 and _isoct(self.peek()):
            digits += self.peek()
            self.i += 1
        v = int(digits, 8)
        if v > 0o377:
            raise self.err(f"octal escape value \\{digits} outside of range 0-0o377", pos)
        return v

    # --------------------------------------------------------------------------------------- classes
    def class_item(self, start: int):
        """One class atom → ("cp", code point) or ("set", ranges, foldable)."""
        c = self.p[self.i]
        if c != "\\":
            self.i += 1
            return ("cp", ord(c))
        pos = self.i
        self.i += 1
        if self.i >= self.n:
            raise self.err("unterminated character set", start)
        c = self.p[self.i]
        self.i += 1
        if c.isdigit():
            if c in "89":
                raise self.err(f"bad escape \\{c}", pos)
            return ("cp", self.octal(c, pos))
        s = self.class_escape_set(c, pos)
        if s is not None:
            return ("set", s[0], s[1])
        if c == "b":
            return ("cp", 0x08)
        if c in "BAZzGk":
            raise self.err(f"bad escape \\{c} inside a character class", pos)
        if c == "-":
            return ("cp", 0x2D)
        cp = self.code_point_escape(c, pos)
        if cp is not None:
            return ("cp", cp)
        if c.isascii() and c.isalnum():
            raise self.err(f"bad escape \\{c}", pos)
        return ("cp", ord(c))

    def char_class(self):
        start = self.i
        self.i += 1
        negate = False
        if self.peek() == "^":
            negate = True
            self.i += 1
        foldable: list = []
        fixed: list = []
        first = True
        while True:
            if self.i >= self.n:
                raise self.err("unterminated character set", start)
            c = self.p[self.i]
            if c == "]" and not (first and self.py):
                self.i += 1
                break
            first = False
            if c == "[" and self.peek(1) in (":", ".", "="):
                close = self.p.find(self.peek(1) + "]", self.i + 2)
                if close > 0:
                    raise self.unsupported(f"the POSIX class {self.p[self.i : close + 2]}", self.i)
            two = self.p[self.i : self.i + 2]
            if two in ("&&", "--", "~~", "||") and (
                self.peek(2) == "[" or self.p.startswith("\\p", self.i + 2) or self.p.startswith("\\P", self.i + 2)
            ):
                raise self.unsupported(f"the character class set operation {two!r}", self.i)
            item_pos = self.i
            lo = self.class_item(start)
            if self.p.startswith("--", self.i) and self.peek(2) in ("[", "\\"):
                raise self.unsupported("the character class set operation '--'", self.i)
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                save = self.i
                self.i += 1
                hi = self.class_item(start)
                if lo[0] == "set" or hi[0] == "set":
                    if self.py:
                        raise self.err("bad character range", item_pos)
                    self.i = save  # ECMA Annex B: the '-' is literal
                    self._add_class_item(lo, foldable, fixed)
                    continue
                if lo[1] > hi[1]:
                    raise self.err("bad character range", item_pos)
                foldable.append((lo[1], hi[1]))
                continue
            self._add_class_item(lo, foldable, fixed)
        folded = self.chars(foldable).ranges if foldable else ()
        if "i" in self.flags:
            extra = [r for rs in fixed if rs[1] for r in rs[0]]
            fixed_r = [r for rs in fixed if not rs[1] for r in rs[0]]
            ranges = dfa.r_or(folded, dfa.r_or(self.chars(extra).ranges if extra else (), dfa.r_norm(fixed_r)))
        else:
            ranges = dfa.r_or(folded, dfa.r_norm([r for rs in fixed for r in rs[0]]))
        if negate:
            ranges = dfa.r_not(ranges)
        return ir.Chars(ranges)

    @staticmethod
    def _add_class_item(item, foldable: list, fixed: list) -> None:
        if item[0] == "cp":
            foldable.append((item[1], item[1]))
        else:
            fixed.append((item[1], item[2]))


# --------------------------------------------------------------------------------------------- lowering
@dataclass(frozen=True)
class RegexBranch:
    """Top-level alternatives that share their anchoring.

    ``start``: None (unanchored), "text" (``^``, ``\\A``) or "line" (``^`` with the m flag).
    ``end``: None, "text" (ECMA ``$``, ``\\Z``), "text_or_final_newline" (Python ``$``) or "line" (m flag).
    """

    start: str | None
    end: str | None
    body: object  # internal AST (may contain lookarounds / lazy quantifiers)


_START_NAMES = {"A": "text", "L^": "line"}
_END_NAMES = {"Z": "text", "Zn": "text_or_final_newline", "L$": "line"}


def _meet_start(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return "A" if "A" in (a, b) else a


def _meet_end(a, b):
    if a is None:
        return b
    if b is None:
        return a
    for k in ("Z", "Zn", "L$"):
        if k in (a, b):
            return k
    return a


class _Lowering:
    def __init__(self, parser: _Parser) -> None:
        self.parser = parser

    def unsupported(self, what: str, pos: int | None) -> UnsupportedFeatureError:
        if pos is None:
            return UnsupportedFeatureError(f"{what} is not supported (regex feature) in {self.parser.p!r}")
        return self.parser.unsupported(what, pos)

    # ----------------------------------------------------------------------------- anchors → branches
    def branches(self, node) -> list[tuple]:
        if not _contains_outside_looks(node, _Anchor):
            return [(None, node, None)]
        if isinstance(node, _Anchor):
            if node.kind in _START_KINDS:
                return [(node.kind, _EPS, None)]
            return [(None, _EPS, node.kind)]
        if isinstance(node, ir.Alt):
            out = []
            for x in node.items:
                out.extend(self.branches(x))
            return out
        if isinstance(node, ir.Seq):
            acc = [(None, _EPS, None)]
            for item in node.items:
                new = []
                for s1, b1, e1 in acc:
                    for s2, b2, e2 in self.branches(item):
                        if s2 is not None and b1 != _EPS and not _zero_width(b1):
                            # text start after something: only the empty reading of it survives
                            if s2 != "A" or _contains(b1, _SPECIAL):
                                raise self.unsupported(
                                    "a start anchor (^ or \\A) not at the start of the pattern", self._anchor_pos(item)
                                )
                            if not _nullable(b1):
                                continue  # this alternative can never match
                            b1 = _EPS
                        if e1 is not None and not (b2 == _EPS and s2 is None):
                            # strict text end followed by something: only its empty reading survives
                            if e1 != "Z" or s2 is not None or _contains(b2, _SPECIAL):
                                raise self.unsupported(
                                    "an end anchor ($ or \\Z) not at the end of the pattern", self._anchor_pos(node)
                                )
                            if not _nullable(b2):
                                continue
                            b2 = _EPS
                        new.append((_meet_start(s1, s2), _seq((b1, b2)), _meet_end(e1, e2)))
                        if len(new) > _MAX_BRANCHES:
                            raise self.unsupported("anchors inside many alternatives", None)
                acc = new
            return acc
        # anchors inside a repetition: zero-width assertions, lowered like lookarounds
        return [(None, self.anchors_to_looks(node), None)]

    def anchors_to_looks(self, node):
        if isinstance(node, _Anchor):
            return _Look(node.kind in _START_KINDS, False, node, node.pos)
        if isinstance(node, ir.Seq):
            return _seq(self.anchors_to_looks(x) for x in node.items)
        if isinstance(node, ir.Alt):
            return _alt(self.anchors_to_looks(x) for x in node.items)
        if isinstance(node, ir.Repeat):
            return ir.Repeat(self.anchors_to_looks(node.item), node.min, node.max)
        if isinstance(node, _Rep):
            return _Rep(self.anchors_to_looks(node.item), node.min, node.max, node.mode, node.pos)
        return node

    @staticmethod
    def _anchor_pos(node) -> int | None:
        stack = [node]
        while stack:
            x = stack.pop()
            if isinstance(x, _Anchor):
                return x.pos
            stack.extend(_children(x))
        return None

    # ---------------------------------------------------------------- pass A: lazy/possessive quantifiers
    def quant(self, node, follow: tuple, token: bool, lazy_stop: bool):
        """Resolve _Rep nodes. ``follow`` = (first chars of the continuation, continuation may be empty).
        In token context with ``lazy_stop``, lazy quantifiers get shortest-match (stop) semantics."""
        if not _contains(node, (_Rep, _Look)):
            return node
        end_only = follow == _END
        if isinstance(node, ir.Seq):
            items = list(node.items)
            if token and lazy_stop and end_only:
                lazies = [k for k, x in enumerate(items) if isinstance(x, _Rep) and x.mode == "lazy"]
                if lazies:
                    return self.lazy_seq(items, lazies[-1])
            out = []
            f = follow
            for x in reversed(items):
                out.append(self.quant(x, f, token, lazy_stop))
                f = self.follow_before(x, f)
            return _seq(reversed(out))
        if isinstance(node, ir.Alt):
            return _alt(self.quant(x, follow, token, lazy_stop) for x in node.items)
        if isinstance(node, ir.Repeat):
            inner = follow if node.max == 1 else self.follow_before(node, follow)
            return dfa.mk_rep(self.quant(node.item, inner, token, lazy_stop), node.min, node.max)
        if isinstance(node, _Look):
            return _Look(node.behind, node.negate, self.quant(node.item, _END, False, False), node.pos)
        if isinstance(node, _Rep):
            if node.mode == "lazy":
                if token and lazy_stop:
                    if end_only:
                        return self.lazy_seq([node], 0)
                    raise self.unsupported(
                        "a lazy quantifier in a lexer terminal outside the terminal's top-level sequence",
                        node.pos,
                    )
                inner = follow if node.max == 1 else self.follow_before(node, follow)
                return dfa.mk_rep(self.quant(node.item, inner, token, lazy_stop), node.min, node.max)
            # possessive: same language as greedy when what follows cannot start like the item
            item = self.quant(node.item, _END, token, lazy_stop)
            # (an unambiguous item whose first characters cannot start the continuation: the greedy
            # match never needs to give an iteration back)
            ok = node.min == node.max or (
                not follow[2]
                and not dfa.r_and(_first(item), follow[0])
                and not _contains(item, _SPECIAL)
                and (isinstance(item, ir.Chars) or dfa.is_prefix_code(item))
            )
            if not ok:
                raise self.unsupported(
                    "a possessive quantifier that can change the matched language", node.pos
                )
            return dfa.mk_rep(item, node.min, node.max)
        return node

    @staticmethod
    def follow_before(x, f):
        """Follow information of the position before ``x``: (first characters, may end, a zero-width
        assertion may come first)."""
        fx = _first(x)
        looks = _contains(x, _Look)
        if _nullable(x):
            return dfa.r_or(fx, f[0]), f[1], f[2] or looks
        return fx, False, looks

    def lazy_seq(self, items: list, k: int):
        """Shortest-match semantics of ``H X*? T1 R`` at the end of a token: the lazy repetition stops at
        the first place where T1 matches; R (greedy, nullable, plain) then extends. → MinPF(H X* T1) R."""
        j = len(items)
        while j > k + 1:
            x = items[j - 1]
            if _contains(x, _SPECIAL) or not _nullable(x):
                break
            j -= 1
        operand_items = items[:j]
        rest = items[j:]
        lazy = items[k]
        body = self.quant(lazy.item, _END, False, False)
        if _contains(body, _SPECIAL) or not dfa.is_prefix_code(body):
            raise self.unsupported(
                "a lazy quantifier in a lexer terminal whose repeated item is ambiguous (one of its "
                "matches is a proper prefix of another, so Python's backtracking order decides the token)",
                lazy.pos,
            )
        operand = self.quant(_seq(operand_items), (_first(_seq(rest)), True, False), False, False)
        return _seq([_MinPF(operand), *rest])

    # ----------------------------------------------------------------------------- pass B: lookarounds
    def looks(self, node, lb: bool, rb: bool, whole: str | None = None, after: float = 0):
        """Lower lookarounds. ``lb``/``rb``: node starts/ends at the string boundary. ``whole``: the regex
        being lowered is complete ("string": a whole string; "token": a lexeme of a longer text), so a
        lookahead may stay as a DFA-native node scoped to the rest of the regex ("token": only when the
        text it inspects lies inside the lexeme). ``after``: minimal length of what follows ``node``."""
        if not _contains(node, _Look):
            return node
        if isinstance(node, ir.Seq):
            return self.looks_seq(list(node.items), lb, rb, whole, after)
        if isinstance(node, _Look):
            return self.looks_seq([node], lb, rb, whole, after)
        if isinstance(node, ir.Alt):
            return _alt(self.looks(x, lb, rb, whole, after) for x in node.items)
        if isinstance(node, ir.Repeat):
            return dfa.mk_rep(self.looks(node.item, False, False, whole, after), node.min, node.max)
        if isinstance(node, _MinPF):
            return _MinPF(self.looks(node.item, lb, False))
        raise AssertionError(node)

    def looks_seq(self, items: list, lb: bool, rb: bool, whole: str | None = None, after: float = 0):
        k = next((i for i, x in enumerate(items) if isinstance(x, _Look)), None)
        if k is None:
            n = len(items)
            out = []
            rest = after
            for i in range(n - 1, -1, -1):
                out.append(self.looks(items[i], lb and i == 0, rb and i == n - 1, whole, rest))
                rest += _min_len(items[i])
            return _seq(reversed(out))
        look = items[k]
        if _contains(look.item, _Look):
            raise self.unsupported("a nested lookaround", look.pos)
        what = "lookbehind" if look.behind else "lookahead"
        anchored = _contains(look.item, _Anchor)
        if anchored and look.behind:
            raise self.unsupported("an anchor inside a lookbehind", look.pos)
        tail_items = items[k + 1 :]
        tail = _seq(tail_items)
        tail_min = _min_len(tail)
        if look.behind:
            head = _seq(items[:k])
            if not (lb or _max_len(look.item) <= _min_len(head)):
                raise self.unsupported(f"a {what} that can inspect text before the match", look.pos)
            cond = _seq((dfa.ANYSTAR, look.item))
            cond = dfa.mk_not(cond) if look.negate else cond
            head_r = self.looks(head, lb, False, whole, tail_min + after)
            tail_r = self.looks_seq(tail_items, False, rb, whole, after)
            return _seq((dfa.And((head_r, cond)), tail_r))
        head_r = self.looks(_seq(items[:k]), lb, False, whole, tail_min + after)
        tail_r = self.looks_seq(tail_items, False, rb, whole, after)
        x_max = _max_len(look.item)
        if anchored:
            if whole != "string":
                raise self.unsupported("an anchor inside a lookahead in a lexer terminal", look.pos)
            cond = self.anchored_lookahead_cond(look, lb and k == 0)
        else:
            cond = _seq((look.item, dfa.ANYSTAR))
        if rb or (not anchored and x_max <= tail_min):
            cond = dfa.mk_not(cond) if look.negate else cond
            return _seq((head_r, dfa.And((cond, tail_r))))
        if whole == "string" or (whole == "token" and x_max <= tail_min + after):
            return _seq((head_r, dfa.LookAhead(cond, look.negate), tail_r))
        raise self.unsupported(f"a {what} that can inspect text after the match", look.pos)

    def anchored_lookahead_cond(self, look: _Look, at_start: bool):
        """``(?=X$)`` and the like: the rest of the string must match X up to the end. A start anchor in X
        is only satisfiable when the lookahead sits at the start of the string (``at_start``)."""
        lt = ir.Chars(((0x0A, 0x0A),)) if self.parser.py else ir.Chars(((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)))
        parts = []
        for s, body, e in self.branches(look.item):
            if s is not None and not at_start:
                raise self.unsupported("a start anchor inside a lookahead that is not at the start", look.pos)
            suffix = {
                None: dfa.ANYSTAR,
                "Z": _EPS,
                "Zn": dfa.mk_rep(ir.Chars(((0x0A, 0x0A),)), 0, 1),
                "L$": dfa.mk_rep(_seq((lt, dfa.ANYSTAR)), 0, 1),
            }[e]
            parts.append(_seq((body, suffix)))
        return _alt(parts) if parts else ir.NOTHING

    # ----------------------------------------------------------------------- pass C: materialize via DFA
    def materialize(self, node):
        if not _contains(node, (_MinPF, dfa.And, dfa.Not)):
            return node
        if isinstance(node, _MinPF):
            return dfa.to_plain_regex(self.strip(node.item), shortest=True, what=f"regex {self.parser.p!r}", max_work=_MAX_DFA_WORK)
        if isinstance(node, (dfa.And, dfa.Not)):
            return dfa.to_plain_regex(self.strip(node), what=f"regex {self.parser.p!r}", max_work=_MAX_DFA_WORK)
        if isinstance(node, ir.Seq):
            return _seq(self.materialize(x) for x in node.items)
        if isinstance(node, ir.Alt):
            return _alt(self.materialize(x) for x in node.items)
        if isinstance(node, ir.Repeat):
            return dfa.mk_rep(self.materialize(node.item), node.min, node.max)
        raise AssertionError(node)

    def whole(self, node):
        """Materialize a complete-string regex; DFA-native lookaheads need the whole regex at once."""
        if _contains(node, dfa.LookAhead):
            return dfa.to_plain_regex(self.strip(node), what=f"regex {self.parser.p!r}", max_work=_MAX_DFA_WORK)
        return self.materialize(node)

    def strip(self, node):
        """Inside a DFA operand, nested MinPF nodes are materialized first."""
        if isinstance(node, _MinPF):
            return self.materialize(node)
        if isinstance(node, ir.Seq):
            return _seq(self.strip(x) for x in node.items)
        if isinstance(node, ir.Alt):
            return _alt(self.strip(x) for x in node.items)
        if isinstance(node, ir.Repeat):
            return dfa.mk_rep(self.strip(node.item), node.min, node.max)
        if isinstance(node, dfa.And):
            return dfa.And(tuple(self.strip(x) for x in node.items))
        if isinstance(node, dfa.Not):
            return dfa.Not(self.strip(node.item))
        if isinstance(node, dfa.LookAhead):
            return dfa.LookAhead(self.strip(node.item), node.negate)
        return node


class ParsedRegex:
    """A parsed pattern: its top-level anchoring and the regexes of its three readings."""

    def __init__(self, pattern: str, flavor: str, parser: _Parser, branches: list[RegexBranch]) -> None:
        self.pattern = pattern
        self.flavor = flavor
        self.features = frozenset(parser.features)
        self.branches = tuple(branches)
        self._low = _Lowering(parser)
        self._lt = ((0x0A, 0x0A),) if flavor == "python" else ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
        self._cache: dict[str, object] = {}

    @property
    def anchored_start(self) -> bool:
        """Every top-level alternative starts with ``^``/``\\A`` (so a search must match at the start)."""
        return all(b.start is not None for b in self.branches)

    @property
    def anchored_end(self) -> bool:
        return all(b.end is not None for b in self.branches)

    @property
    def has_anchors(self) -> bool:
        return any(b.start is not None or b.end is not None for b in self.branches)

    def _simple(self, body) -> bool:
        return not _contains(body, _SPECIAL)

    def fullmatch_regex(self):
        """Language of ``re.fullmatch`` (anchors at the edges are satisfied trivially)."""
        if "full" not in self._cache:
            low = self._low
            parts = []
            for b in self.branches:
                body = b.body
                if not self._simple(body):
                    body = low.quant(body, _END, token=False, lazy_stop=False)
                    body = low.whole(low.looks(body, True, True, "string"))
                parts.append(body)
            self._cache["full"] = _alt(parts) if parts else ir.NOTHING
        return self._cache["full"]

    def search_regex(self):
        """Language of strings ``s`` with ``re.search(pattern, s)`` — JSON Schema ``pattern`` semantics."""
        if "search" not in self._cache:
            low = self._low
            any_star = dfa.ANYSTAR
            lt = ir.Chars(self._lt)
            parts = []
            for b in self.branches:
                body = b.body
                if not self._simple(body):
                    body = low.quant(body, _END, token=False, lazy_stop=False)
                start = b.start
                end = b.end
                pre = {
                    None: any_star,
                    "text": _EPS,
                    "line": dfa.mk_rep(_seq((any_star, lt)), 0, 1),
                }[start]
                post = {
                    None: any_star,
                    "text": _EPS,
                    "text_or_final_newline": dfa.mk_rep(ir.Chars(((0x0A, 0x0A),)), 0, 1),
                    "line": dfa.mk_rep(_seq((lt, any_star)), 0, 1),
                }[end]
                whole = _seq((pre, body, post))
                if _contains(whole, _Look):
                    items = list(whole.items) if isinstance(whole, ir.Seq) else [whole]
                    whole = low.whole(low.looks_seq(items, True, True, "string"))
                parts.append(whole)
            self._cache["search"] = _alt(parts) if parts else ir.NOTHING
        return self._cache["search"]

    def token_regex(self):
        """Language of a lexer terminal (Lark): the match is a token inside a longer text, so anchors are
        unsupported, lookarounds must stay inside the token, and lazy quantifiers in the terminal's
        top-level sequence get shortest-match semantics (``"/*" .*? "*/"`` stops at the first ``*/``)."""
        if "token" not in self._cache:
            if self.has_anchors:
                pos = _Lowering._anchor_pos(self.branches[0].body)
                raise UnsupportedFeatureError(
                    f"anchors (^, $, \\A, \\Z) in a lexer terminal are not supported (regex feature) "
                    f"in {self.pattern!r}" + (f" at position {pos}" if pos is not None else "")
                )
            low = self._low
            body = _alt([b.body for b in self.branches])
            if not self._simple(body):
                body = low.quant(body, _END, token=True, lazy_stop=True)
                body = low.whole(low.looks(body, False, False, "token"))
            self._cache["token"] = body
        return self._cache["token"]


def literal_regex(text: str, *, ignore_case: bool = False, flavor: str = "python"):
    """The regex of the literal ``text`` (case-insensitive with the flavor's case folding)."""
    if not ignore_case:
        return ir.literal(text)
    kind = "python" if flavor == "python" else "ecma"
    items = tuple(_folded_char(ord(c), kind) for c in text)
    return items[0] if len(items) == 1 else ir.Seq(items)


def analyze_regex(pattern: str, *, flavor: str = "ecma", flags: str = "") -> ParsedRegex:
    """Parse ``pattern`` (see the module doc) and split it by top-level anchoring."""
    if flavor not in ("ecma", "python"):
        raise ValueError(f"unknown regex flavor {flavor!r} (expected 'ecma' or 'python')")
    if not isinstance(pattern, str):
        raise GrammarError(f"regex pattern must be a string, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise LimitExceededError(f"regex pattern longer than {MAX_PATTERN_LENGTH} characters")
    parser = _Parser(pattern, flavor, flags)
    node = parser.parse()
    low = _Lowering(parser)
    raw = low.branches(node)
    merged: dict[tuple, list] = {}
    for s, body, e in raw:
        merged.setdefault((s, e), []).append(body)
    branches = [
        RegexBranch(_START_NAMES.get(s), _END_NAMES.get(e), _alt(bodies)) for (s, e), bodies in merged.items()
    ]
    return ParsedRegex(pattern, flavor, parser, branches)


def parse_regex(pattern: str, *, flavor: str = "ecma", flags: str = ""):
    """The full-match language of ``pattern`` as an IR regex (``re.fullmatch`` semantics)."""
    return analyze_regex(pattern, flavor=flavor, flags=flags).fullmatch_regex()
