"""The Grammar IR every frontend produces and the C++ compiler consumes.

A grammar is context-free **rules** over **terminals**; each terminal is a regular expression over Unicode
characters (or raw bytes). Lexing follows Lark's *contextual lexer*: at each point only the terminals the
parser can accept next are tried, each lexeme is the longest match (maximal munch), and when several
terminals match the same lexeme the parser receives all of them (the Earley parser keeps every reading).
Terminals marked ``ignore`` (like Lark's ``%ignore``) may appear between any two lexemes and are dropped.

Regexes here are a small algebraic AST, already parsed; frontends turn their own regex syntax into it
(see ``gdecode.regex``): character and byte sets, sequence, alternation, bounded or unbounded repetition,
and :class:`Minus` (a regex except a finite set of words, which the core builds as an automaton product).
Rule bodies are plain BNF: sequences of symbol names. EBNF operators are expanded by
:class:`GrammarBuilder` helpers into extra rules.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from gdecode.errors import GrammarError

MAX_CODE_POINT = 0x10FFFF


# --------------------------------------------------------------------------------------------- regex AST
def _cached_hash(self) -> int:
    """Regex trees are memo keys everywhere; a frozen dataclass would rehash the whole tree on every lookup.
    The hash mixes only ints/tuples/None (deterministic across processes), so a pickled cache stays valid."""
    h = self.__dict__.get("_hash")
    if h is None:
        _hash_bottom_up(self)
        h = self.__dict__["_hash"]
    return h


def _hash_bottom_up(root) -> None:
    """Caches the hashes of ``root`` and its unhashed descendants, children first. No recursion: regexes from
    patterns nest hundreds of levels deep (``[a-z]{1,255}`` after state elimination)."""
    stack = [root]
    while stack:
        node = stack[-1]
        d = node.__dict__
        if "_hash" in d:  # a shared subtree can be on the stack twice
            stack.pop()
            continue
        ready = True
        for k in children(node):
            if type(k).__hash__ is _cached_hash and "_hash" not in k.__dict__:
                stack.append(k)
                ready = False
        if ready:
            stack.pop()
            object.__setattr__(node, "_hash", hash((node._TAG, *[d[f] for f in node.__dataclass_fields__])))


def _fast_eq(self, other) -> bool:
    """Structural equality that compares the cached hashes first (unequal trees differ almost at once).
    Iterative, for the same reason as hashing: equal deep trees built apart compare node by node."""
    if self is other:
        return True
    if other.__class__ is not self.__class__:
        return NotImplemented
    stack = [(self, other)]
    while stack:
        a, b = stack.pop()
        if a is b:
            continue
        if a.__class__ is not b.__class__:
            return False
        if type(a).__hash__ is not _cached_hash:  # not a regex node (a parser's marker): its own equality
            if a != b:
                return False
            continue
        if hash(a) != hash(b):
            return False
        for f in a.__dataclass_fields__:
            x, y = getattr(a, f), getattr(b, f)
            if f == "items":
                if len(x) != len(y):
                    return False
                stack.extend(zip(x, y, strict=True))
            elif f == "item":
                stack.append((x, y))
            elif x != y:
                return False
    return True


@dataclass(frozen=True)
class Chars:
    """One character out of a set of inclusive code point ranges (sorted, non-overlapping)."""

    _TAG = 1
    __hash__ = _cached_hash
    __eq__ = _fast_eq

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Bytes:
    """One raw byte out of inclusive byte ranges (0..255): for byte-level terminals, not UTF-8 text."""

    _TAG = 2
    __hash__ = _cached_hash
    __eq__ = _fast_eq

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Seq:
    """Concatenation; the empty sequence matches the empty string."""

    _TAG = 3
    __hash__ = _cached_hash
    __eq__ = _fast_eq

    items: tuple[Regex, ...]


@dataclass(frozen=True)
class Alt:
    """Alternation; the empty alternation matches nothing."""

    _TAG = 4
    __hash__ = _cached_hash
    __eq__ = _fast_eq

    items: tuple[Regex, ...]


@dataclass(frozen=True)
class Repeat:
    """``item`` repeated between ``min`` and ``max`` times (``max=None``: unbounded)."""

    _TAG = 5
    __hash__ = _cached_hash
    __eq__ = _fast_eq

    item: Regex
    min: int
    max: int | None


@dataclass(frozen=True)
class Minus:
    """The strings of ``item`` except the finite set ``words``. The keys of an open JSON object are "any
    string but the listed names": written as a regex that is a trie of the names, hundreds of nodes; the
    core builds it as the item's automaton times the names' trie instead."""

    _TAG = 6
    __hash__ = _cached_hash
    __eq__ = _fast_eq

    item: Regex
    words: tuple[str, ...]


Regex = Chars | Bytes | Seq | Alt | Repeat | Minus

EPSILON = Seq(())
NOTHING = Alt(())


def children(node: Regex) -> tuple[Regex, ...]:
    """The direct parts of a regex node, here or in the regex frontend (``items`` or ``item``; none for
    character and byte sets)."""
    d = node.__dict__
    if "items" in d:
        return d["items"]
    return (d["item"],) if "item" in d else ()


def normalize_ranges(ranges) -> tuple[tuple[int, int], ...]:
    """Sort and merge overlapping or adjacent ranges."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def char_set(ranges) -> Chars:
    return Chars(normalize_ranges(ranges))


def negate_chars(c: Chars) -> Chars:
    """Complement within all Unicode scalar values (surrogates excluded: they are not valid UTF-8)."""
    out, nxt = [], 0
    for lo, hi in c.ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_CODE_POINT:
        out.append((nxt, MAX_CODE_POINT))
    return char_set(_without_surrogates(out))


def _without_surrogates(ranges):
    for lo, hi in ranges:
        if hi < 0xD800 or lo > 0xDFFF:
            yield (lo, hi)
            continue
        if lo < 0xD800:
            yield (lo, 0xD7FF)
        if hi > 0xDFFF:
            yield (0xE000, hi)


def literal(text: str) -> Regex:
    """The regex matching exactly ``text``."""
    if len(text) == 1:
        return Chars(((ord(text), ord(text)),))
    return Seq(tuple(Chars(((ord(ch), ord(ch)),)) for ch in text))


def byte_literal(data: bytes) -> Regex:
    return Seq(tuple(Bytes(((b, b),)) for b in data))


# ------------------------------------------------------------------------------------------------ grammar
@dataclass
class Terminal:
    """A lexeme class. ``special_token`` makes it match one tokenizer special token (e.g. ``<|eot_id|>``)
    by id instead of by bytes; then ``regex`` is ignored."""

    name: str
    regex: Regex
    ignore: bool = False
    priority: int = 0
    special_token: str | None = None


@dataclass
class Grammar:
    """Terminals, rules and a start rule. Terminal and rule names share one namespace."""

    terminals: dict[str, Terminal] = field(default_factory=dict)
    rules: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    start: str = "start"

    def validate(self) -> None:
        """Raise GrammarError for undefined symbols, name clashes or a missing start rule."""
        clash = set(self.terminals) & set(self.rules)
        if clash:
            raise GrammarError(f"names used both as terminal and rule: {sorted(clash)[:5]}")
        if self.start not in self.rules:
            raise GrammarError(f"start rule {self.start!r} is not defined")
        for name, alternatives in self.rules.items():
            for alt in alternatives:
                for sym in alt:
                    if sym not in self.rules and sym not in self.terminals:
                        raise GrammarError(f"rule {name!r} uses undefined symbol {sym!r}")
                    if sym in self.terminals and self.terminals[sym].ignore:
                        raise GrammarError(f"rule {name!r} uses ignored terminal {sym!r}")


class GrammarBuilder:
    """Helps frontends build a Grammar: interns anonymous literal terminals, makes fresh rule names,
    expands EBNF repetition into BNF rules."""

    def __init__(self, start: str = "start") -> None:
        self.grammar = Grammar(start=start)
        self._literal_names: dict[Regex, str] = {}
        self._keyed_names: dict[Hashable, str] = {}
        self._counter = 0

    def fresh(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}~{self._counter}"

    def terminal(self, name: str, regex: Regex, *, ignore: bool = False, priority: int = 0) -> str:
        if name in self.grammar.terminals or name in self.grammar.rules:
            raise GrammarError(f"symbol {name!r} defined twice")
        self.grammar.terminals[name] = Terminal(name, regex, ignore=ignore, priority=priority)
        return name

    def anonymous_terminal(self, regex: Regex, hint: str = "LIT") -> str:
        """One terminal per distinct regex, so equal literals share a lexeme class."""
        name = self._literal_names.get(regex)
        if name is None:
            name = self.fresh(hint)
            self.grammar.terminals[name] = Terminal(name, regex)
            self._literal_names[regex] = name
        return name

    def keyed_terminal(self, key: Hashable, make: Callable[[], Regex], hint: str = "LIT") -> str:
        """One terminal per distinct ``key``, its regex built by ``make()`` the first time only and never
        hashed: for big trees a caller can name cheaply (a JSON key by its text), hashing every new node was
        a good part of a schema walk. (An equal regex reached without the key gets a terminal of its own:
        the same language twice, which is harmless.)"""
        name = self._keyed_names.get(key)
        if name is None:
            name = self._keyed_names[key] = self.fresh(hint)
            self.grammar.terminals[name] = Terminal(name, make())
        return name

    def literal_terminal(self, text: str, hint: str = "LIT") -> str:
        """The terminal of the literal ``text``, keyed by the text (a literal's regex is a fresh tree that
        interning by regex would hash)."""
        return self.keyed_terminal(("literal", text), lambda: literal(text), hint)

    def special_terminal(self, token_text: str) -> str:
        name = f"<special {token_text}>"
        if name not in self.grammar.terminals:
            self.grammar.terminals[name] = Terminal(name, EPSILON, special_token=token_text)
        return name

    def rule(self, name: str, alternatives: list[tuple[str, ...]] | list[list[str]]) -> str:
        alts = [tuple(a) for a in alternatives]
        if name in self.grammar.terminals:
            raise GrammarError(f"symbol {name!r} defined as both terminal and rule")
        self.grammar.rules.setdefault(name, []).extend(alts)
        return name

    def repeat(self, body: tuple[str, ...], min_count: int, max_count: int | None, hint: str = "rep") -> str:
        """A fresh rule matching ``body`` repeated min..max times (max None = unbounded), without blowup
        for large bounds: bounded parts are built from doubling chunks, O(log max) rules."""
        if max_count is not None and max_count < min_count:
            raise GrammarError(f"repeat range {{{min_count},{max_count}}} is empty")
        name = self.fresh(hint)
        parts: list[str] = []
        if min_count:
            parts.append(self._exactly(body, min_count, hint))
        if max_count is None:
            star = self.fresh(hint)
            self.rule(star, [(), (star, *body)])  # left recursion: Earley handles it in linear time
            parts.append(star)
        elif max_count > min_count:
            parts.append(self._up_to(body, max_count - min_count, hint))
        self.rule(name, [tuple(parts)])
        return name

    def _exactly(self, body: tuple[str, ...], n: int, hint: str) -> str:
        name = self.fresh(hint)
        if n == 1:
            return self.rule(name, [body])
        half = self._exactly(body, n // 2, hint)
        self.rule(name, [(half, half) + (body if n % 2 else ())])
        return name

    def _up_to(self, body: tuple[str, ...], n: int, hint: str) -> str:
        """0..n copies. up_to(n) = up_to(n//2) up_to(n - n//2), sharing rules for equal halves."""
        name = self.fresh(hint)
        if n == 1:
            return self.rule(name, [(), body])
        a, b = n // 2, n - n // 2
        ra = self._up_to(body, a, hint)
        rb = ra if b == a else self._up_to(body, b, hint)
        self.rule(name, [(ra, rb)])
        return name

    def build(self) -> Grammar:
        self.grammar.validate()
        return self.grammar
