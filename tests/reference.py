"""Slow, deliberately simple reference semantics for gdecode (test helper, not part of the package).

The C++ engine (byte-level lexer DFA + Earley parser + token-trie mask) must agree with this module on
every byte prefix. Nothing here is optimised beyond memoising pure functions; every piece is written
to be checked by reading it.

Building blocks
---------------
* **Terminal matcher** (:class:`_Matcher`): Antimirov-style partial derivatives over *bytes*. A matcher
  state is a set of "configurations"; a configuration is the tuple of regex pieces still to be matched,
  in order, whose head is an atom (``Chars``, ``Bytes`` or ``_Partial`` = "inside one UTF-8 character")
  or the empty tuple (= a complete match). ``Chars`` is matched on the UTF-8 encoding of its code points
  by decoding the bits of the bytes seen so far (:func:`utf8_step`), so a prefix may end mid-character.
* **Parser** (:class:`_Earley`): textbook Earley recogniser over lexemes, with the Aycock-Horspool fix
  for nullable rules (predicting a nullable rule also advances over it).
* **Lexer** (:class:`Walker`): Lark-style contextual lexer with longest match, driven byte by byte.

Semantics (this is the spec the engine must equal)
-------------------------------------------------
1. Input is bytes. ``Chars`` ranges match UTF-8 encodings of their code points; surrogates
   (U+D800..U+DFFF), code points above U+10FFFF, overlong forms and other invalid UTF-8 never match.
   ``Bytes`` ranges match raw bytes (so a byte terminal can match invalid UTF-8).
2. At the start of a lexeme the allowed set is ``A = {byte terminals the parser can scan next} ∪
   {ignore terminals}``; ``A`` stays fixed for the whole lexeme (computed once, from the parser state at
   the lexeme start). Special-token terminals never take part in byte lexing.
3. A terminal is *live* on the lexeme bytes ``S`` iff ``S`` can still be extended to a complete match
   (co-reachability, not mere "some NFA state is active": ``Seq(a, NOTHING)`` is never live).
4. Longest match without backtracking: byte ``b`` extends the lexeme whenever some terminal of ``A`` is
   live on ``S+b``, even when ``S`` is already complete. Otherwise ``S`` must be non-empty and complete
   for a set ``M`` of terminals, or the input is rejected. Consequence: with terminals ``"a"`` and
   ``"abc"`` both allowed, ``"abd"`` is rejected (no fallback to the shorter ``"a"``).
5. Ties are kept: the lexeme is scanned with *all* non-ignore terminals in ``M`` at once (an Earley scan
   with a set). The lexeme is dropped only when every terminal in ``M`` is an ignore terminal; a lexeme
   completing both an ignore terminal and a parser terminal goes to the parser. ``Terminal.priority``
   is ignored.
6. Ignore lexemes may appear anywhere (before the first lexeme, at the end, after the start rule is
   complete) and never change the parser state.
7. Empty lexemes never occur: a terminal whose regex only matches ``""`` can never be lexed, and one
   whose regex accepts ``""`` still needs at least one byte.
8. End of input (:meth:`Walker.can_end`): if ``S`` is empty, accept iff the parser is accepting; else
   ``S`` must be complete for some terminals of ``A`` and, after scanning (or dropping) it, the parser
   must be accepting. The parser accepts iff an item ``start -> alpha .`` with origin 0 is in the last
   Earley set (so the empty input is accepted iff the start rule is nullable).
9. Special token event (:meth:`Walker.feed_special`): the pending lexeme ``S`` is first ended (it must be
   empty or complete, as in 4-5), then the parser must be able to scan at least one non-ignored
   special-token terminal whose ``special_token`` equals the text; all such terminals are scanned
   together. Ignored special terminals can never be accepted (they cannot appear in rules).
10. Viability is online: a byte prefix is viable iff processing it never rejected. It does not check
    that some complete sentence is still reachable (``start: A A`` with ``A = /a+/`` accepts nothing,
    yet ``"a"`` is viable).
11. Any rejection makes a walker dead for good: later ``feed``/``feed_special`` return False and
    ``can_end`` is False. Use :meth:`Walker.copy` to probe.
12. Token masks (:func:`reference_mask`): a normal token is allowed iff its bytes are non-empty and
    feeding them succeeds; ids listed as special are *never* treated as byte tokens and are allowed only
    through rule 9; an EOS id is allowed iff :meth:`Walker.can_end` (or, if it is also a special id,
    through rule 9); ``None``/empty/excluded entries are never allowed.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gdecode.ir import (
    MAX_CODE_POINT,
    Alt,
    Bytes,
    Chars,
    Grammar,
    Minus,
    Repeat,
    Seq,
    Terminal,
    byte_literal,
    char_set,
    literal,
    negate_chars,
)

# ============================================================================================ UTF-8
_UTF8_BOUNDS = {1: (0x00, 0x7F), 2: (0x80, 0x7FF), 3: (0x800, 0xFFFF), 4: (0x10000, 0x10FFFF)}
_LEAD_BITS = {1: 0x7F, 2: 0x1F, 3: 0x0F, 4: 0x07}
_SURROGATES = (0xD800, 0xDFFF)


def _utf8_length(lead: int) -> int | None:
    """Sequence length announced by a lead byte (None for continuation bytes and 0xF8..0xFF)."""
    if lead < 0x80:
        return 1
    if 0xC0 <= lead < 0xE0:
        return 2
    if 0xE0 <= lead < 0xF0:
        return 3
    if 0xF0 <= lead < 0xF8:
        return 4
    return None


def utf8_candidates(prefix: bytes) -> tuple[int, int, bool] | None:
    """Code points whose UTF-8 encoding starts with ``prefix`` (1..4 bytes): an interval ``(lo, hi)``
    (which may still contain surrogates) and whether ``prefix`` is a whole encoding; None if none."""
    n = _utf8_length(prefix[0])
    if n is None or len(prefix) > n:
        return None
    value = prefix[0] & _LEAD_BITS[n]
    for c in prefix[1:]:
        if not 0x80 <= c <= 0xBF:
            return None
        value = (value << 6) | (c & 0x3F)
    missing = n - len(prefix)
    lo = value << (6 * missing)
    hi = lo + (1 << (6 * missing)) - 1
    lo, hi = max(lo, _UTF8_BOUNDS[n][0]), min(hi, _UTF8_BOUNDS[n][1])  # drops overlong / too large
    if lo > hi:
        return None
    return lo, hi, missing == 0


def _has_scalar(ranges: Iterable[tuple[int, int]], lo: int, hi: int) -> bool:
    """Is some Unicode scalar value (not a surrogate) in ``[lo, hi]`` and in one of ``ranges``?"""
    for a, b in ranges:
        a, b = max(a, lo, 0), min(b, hi, MAX_CODE_POINT)
        if a <= b and (a < _SURROGATES[0] or b > _SURROGATES[1]):
            return True
    return False


def utf8_step(ranges: Iterable[tuple[int, int]], prefix: bytes) -> str | None:
    """``"complete"`` if ``prefix`` is the UTF-8 encoding of a code point in ``ranges``, ``"partial"`` if it
    is a proper prefix of one, else None."""
    cand = utf8_candidates(prefix)
    if cand is None or not _has_scalar(ranges, cand[0], cand[1]):
        return None
    return "complete" if cand[2] else "partial"


# ================================================================================ terminal matcher
@dataclass(frozen=True)
class _Partial:
    """Inside one character of a ``Chars`` class, after the UTF-8 bytes ``prefix`` (1..3 bytes)."""

    ranges: tuple[tuple[int, int], ...]
    prefix: bytes


_ATOMS = (Chars, Bytes, _Partial)
Config = tuple  # tuple of regex pieces still to match; () = complete


def _is_empty(r) -> bool:
    """Does regex ``r`` match no string at all?"""
    if isinstance(r, Chars):
        return not _has_scalar(r.ranges, 0, MAX_CODE_POINT)
    if isinstance(r, Bytes):
        return not any(max(lo, 0) <= min(hi, 255) for lo, hi in r.ranges)
    if isinstance(r, _Partial):
        return False  # only ever built when a completion exists
    if isinstance(r, Seq):
        return any(_is_empty(x) for x in r.items)
    if isinstance(r, Alt):
        return all(_is_empty(x) for x in r.items)
    if isinstance(r, Repeat):
        return (r.max is not None and r.max < r.min) or (r.min > 0 and _is_empty(r.item))
    if isinstance(r, Minus):
        return _is_empty(_minus_as_plain(r))
    raise TypeError(f"not a regex: {r!r}")


def _closure(configs: Iterable[Config]) -> frozenset:
    """Unfold Seq/Alt/Repeat heads (epsilon moves) until every configuration starts with an atom or is
    complete; drop configurations that can no longer reach a complete match."""
    seen: set = set()
    out = []
    stack = list(configs)
    while stack:
        c = stack.pop()
        if c in seen:
            continue
        seen.add(c)
        if not c or isinstance(c[0], _ATOMS):
            out.append(c)
            continue
        head, rest = c[0], c[1:]
        if isinstance(head, Seq):
            stack.append(head.items + rest)
        elif isinstance(head, Alt):
            stack.extend((item,) + rest for item in head.items)
        elif isinstance(head, Repeat):
            lo, hi = head.min, head.max
            if hi is not None and hi < lo:
                continue
            if lo == 0:
                stack.append(rest)  # zero more copies
            if hi is None or hi > 0:  # one more copy, then the remaining count
                again = Repeat(head.item, max(lo - 1, 0), None if hi is None else hi - 1)
                stack.append((head.item, again) + rest)
        elif isinstance(head, Minus):  # the same language as a plain regex (built the slow way)
            stack.append((_minus_as_plain(head),) + rest)
        else:
            raise TypeError(f"not a regex: {head!r}")
    return frozenset(c for c in out if not any(_is_empty(x) for x in c))


@functools.lru_cache(maxsize=256)
def _minus_as_plain(node):
    from gdecode import _regex_dfa

    return _regex_dfa.minus_words(node.item, node.words)


class _Matcher:
    """Byte-level matcher of one terminal regex. States are frozensets of configurations; the empty
    state means dead (no completion possible)."""

    def __init__(self, regex) -> None:
        self.initial = _closure([(regex,)])
        self._cache: dict = {}

    @staticmethod
    def complete(state: frozenset) -> bool:
        return () in state

    def step(self, state: frozenset, b: int) -> frozenset:
        key = (state, b)
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = _closure(self._step(state, b))
        return got

    @staticmethod
    def _step(state: frozenset, b: int):
        for c in state:
            if not c:
                continue
            head, rest = c[0], c[1:]
            if isinstance(head, Bytes):
                if any(lo <= b <= hi for lo, hi in head.ranges):
                    yield rest
                continue
            ranges = head.ranges
            prefix = (head.prefix if isinstance(head, _Partial) else b"") + bytes([b])
            kind = utf8_step(ranges, prefix)
            if kind == "complete":
                yield rest
            elif kind == "partial":
                yield (_Partial(ranges, prefix),) + rest


# =========================================================================================== Earley
Item = tuple  # (lhs, alternative index, dot, origin)


@dataclass(frozen=True, eq=False)
class _EarleySet:
    items: frozenset
    waiting: Mapping  # symbol -> items whose next symbol it is
    accepting: bool


def nullable_rules(rules: Mapping[str, Sequence[tuple[str, ...]]]) -> frozenset[str]:
    """Rules deriving the empty sequence (terminals never do: a lexeme always has bytes, a special
    token is one event)."""
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, alts in rules.items():
            if name not in nullable and any(all(s in nullable for s in alt) for alt in alts):
                nullable.add(name)
                changed = True
    return frozenset(nullable)


class _Earley:
    def __init__(self, grammar: Grammar) -> None:
        self.rules = {name: [tuple(a) for a in alts] for name, alts in grammar.rules.items()}
        self.start = grammar.start
        self.nullable = nullable_rules(self.rules)

    def initial(self) -> list[_EarleySet]:
        kernel = [(self.start, i, 0, 0) for i in range(len(self.rules[self.start]))]
        return [self._make_set(kernel, [])]

    def scannable(self, eset: _EarleySet) -> frozenset[str]:
        return frozenset(s for s in eset.waiting if s not in self.rules)

    def scan(self, chart: list[_EarleySet], terminals: Iterable[str]) -> _EarleySet:
        """The Earley set after one lexeme read as any of ``terminals`` (empty items if none fits)."""
        last = chart[-1]
        kernel = [
            (lhs, alt, dot + 1, origin)
            for t in set(terminals)
            for (lhs, alt, dot, origin) in last.waiting.get(t, ())
        ]
        return self._make_set(kernel, chart)

    def _make_set(self, kernel: Iterable[Item], chart: list[_EarleySet]) -> _EarleySet:
        k = len(chart)  # index of the set being built
        rules = self.rules
        items: set = set()
        work: list = []

        def add(item):
            if item not in items:
                items.add(item)
                work.append(item)

        for item in kernel:
            add(item)
        while work:
            lhs, alt, dot, origin = work.pop()
            body = rules[lhs][alt]
            if dot < len(body):
                sym = body[dot]
                if sym in rules:  # predict
                    for i in range(len(rules[sym])):
                        add((sym, i, 0, k))
                    if sym in self.nullable:  # Aycock-Horspool
                        add((lhs, alt, dot + 1, origin))
            else:  # complete
                if origin == k:
                    parents = [it for it in list(items) if _next_symbol(rules, it) == lhs]
                else:
                    parents = chart[origin].waiting.get(lhs, ())
                for plhs, palt, pdot, porigin in parents:
                    add((plhs, palt, pdot + 1, porigin))
        waiting: dict = {}
        for item in items:
            sym = _next_symbol(rules, item)
            if sym is not None:
                waiting.setdefault(sym, []).append(item)
        accepting = any(
            lhs == self.start and origin == 0 and dot == len(rules[lhs][alt])
            for lhs, alt, dot, origin in items
        )
        return _EarleySet(frozenset(items), {s: tuple(v) for s, v in waiting.items()}, accepting)


def _next_symbol(rules, item) -> str | None:
    lhs, alt, dot, _ = item
    body = rules[lhs][alt]
    return body[dot] if dot < len(body) else None


# ============================================================================================ lexer
@dataclass(frozen=True)
class Special:
    """A special-token event in an event list (see :meth:`Reference.accepts_events`)."""

    text: str


class Reference:
    """The reference recogniser of one grammar. Cheap to query repeatedly (matcher steps are memoised)."""

    def __init__(self, grammar: Grammar) -> None:
        grammar.validate()
        self.grammar = grammar
        self.parser = _Earley(grammar)
        terms = grammar.terminals
        self.byte_terminals = frozenset(n for n, t in terms.items() if t.special_token is None)
        self.ignore = frozenset(n for n in self.byte_terminals if terms[n].ignore)
        self.matchers = {n: _Matcher(terms[n].regex) for n in self.byte_terminals}
        self.specials: dict[str, frozenset[str]] = {}
        for n, t in terms.items():
            if t.special_token is not None and not t.ignore:
                self.specials[t.special_token] = self.specials.get(t.special_token, frozenset()) | {n}
        self._initial_chart = self.parser.initial()

    def allowed(self, eset: _EarleySet) -> frozenset[str]:
        """The terminal set A a lexeme may start with, in parser state ``eset``."""
        return (self.parser.scannable(eset) & self.byte_terminals) | self.ignore

    def start(self) -> Walker:
        return Walker(self, list(self._initial_chart))

    def viable(self, data: bytes) -> bool:
        return self.start().feed(data)

    def accepts(self, data: bytes) -> bool:
        w = self.start()
        return w.feed(data) and w.can_end()

    def accepts_events(self, events: Iterable[bytes | Special]) -> bool:
        w = self.start()
        return w.feed_events(events) and w.can_end()

    def recognize_tokens(self, token_sets: Iterable[Iterable[str]]) -> tuple[bool, bool]:
        """Parser only: feed lexemes given as terminal sets. Returns (every scan succeeded, accepting)."""
        chart = list(self._initial_chart)
        for ts in token_sets:
            nxt = self.parser.scan(chart, ts)
            if not nxt.items:
                return False, False
            chart.append(nxt)
        return True, chart[-1].accepting


class Walker:
    """Incremental state: the Earley chart plus the pending lexeme (its bytes and live matcher states)."""

    __slots__ = ("ref", "chart", "lexeme", "live", "dead")

    def __init__(self, ref: Reference, chart: list[_EarleySet]) -> None:
        self.ref = ref
        self.chart = chart
        self.lexeme = b""  # S
        self.live: dict[str, frozenset] = {}  # terminal -> matcher state on S (only live ones)
        self.dead = False

    def copy(self) -> Walker:
        w = Walker(self.ref, list(self.chart))
        w.lexeme, w.live, w.dead = self.lexeme, dict(self.live), self.dead
        return w

    def allowed(self) -> frozenset[str]:
        """A for a lexeme starting now (meaningful when no lexeme is pending)."""
        return self.ref.allowed(self.chart[-1])

    # ---------------------------------------------------------------------------------------- bytes
    def feed(self, data: bytes) -> bool:
        for b in data:
            if not self._feed_byte(b):
                self.dead = True
                return False
        return not self.dead

    def _feed_byte(self, b: int) -> bool:
        if self.dead:
            return False
        if self.lexeme:
            nxt = self._advance(self.live, b)
            if nxt:  # greedy: continue the lexeme while any terminal is live
                self.live, self.lexeme = nxt, self.lexeme + bytes([b])
                return True
            if not self._end_lexeme():
                return False
        # start a new lexeme with b
        matchers = self.ref.matchers
        nxt = self._advance({t: matchers[t].initial for t in self.allowed()}, b)
        if not nxt:
            return False
        self.live, self.lexeme = nxt, bytes([b])
        return True

    def _advance(self, states: Mapping[str, frozenset], b: int) -> dict[str, frozenset]:
        out = {}
        for t, st in states.items():
            st2 = self.ref.matchers[t].step(st, b)
            if st2:
                out[t] = st2
        return out

    def _end_lexeme(self) -> bool:
        """End the pending lexeme S (S may be empty: nothing to do). False if S is not complete."""
        if not self.lexeme:
            return True
        done = {t for t, st in self.live.items() if _Matcher.complete(st)}
        if not done:
            return False
        to_parser = done - self.ref.ignore
        if to_parser:
            nxt = self.ref.parser.scan(self.chart, to_parser)
            assert nxt.items, "a terminal in A must be scannable"
            self.chart.append(nxt)
        self.lexeme, self.live = b"", {}
        return True

    # -------------------------------------------------------------------------------- other events
    def feed_special(self, text: str) -> bool:
        if self.dead or not self._end_lexeme():
            self.dead = True
            return False
        names = self.ref.specials.get(text, frozenset()) & self.ref.parser.scannable(self.chart[-1])
        if not names:
            self.dead = True
            return False
        self.chart.append(self.ref.parser.scan(self.chart, names))
        return True

    def feed_events(self, events: Iterable[bytes | Special]) -> bool:
        for ev in events:
            ok = self.feed_special(ev.text) if isinstance(ev, Special) else self.feed(ev)
            if not ok:
                return False
        return not self.dead

    def can_end(self) -> bool:
        if self.dead:
            return False
        w = self.copy()
        return w._end_lexeme() and w.chart[-1].accepting

    def __repr__(self) -> str:
        state = (
            "dead"
            if self.dead
            else f"lexemes={len(self.chart) - 1} pending={self.lexeme!r} live={sorted(self.live)}"
        )
        return f"<Walker {state}>"


def reference_mask(
    walker: Walker,
    token_bytes: Sequence[bytes | None],
    eos_ids: Iterable[int] = (),
    special_ids: Mapping[int, str] | Iterable[int] | None = None,
    excluded: Iterable[int] = (),
) -> set[int]:
    """Brute-force token mask. ``special_ids`` maps token id -> special token text, or is a collection of
    ids whose text is ``token_bytes[id]`` decoded as UTF-8."""
    if special_ids is None:
        special_ids = {}
    if not isinstance(special_ids, Mapping):
        special_ids = {i: token_bytes[i].decode("utf-8") for i in special_ids}
    eos = set(eos_ids)
    excluded = set(excluded)
    allowed: set[int] = set()
    can_end = walker.can_end()
    for i, tok in enumerate(token_bytes):
        if i in excluded:
            continue
        if i in eos and can_end:
            allowed.add(i)
        elif i in special_ids:
            if walker.copy().feed_special(special_ids[i]):
                allowed.add(i)
        elif i not in eos and tok and walker.copy().feed(tok):
            allowed.add(i)
    return allowed


# ====================================================================================== generators
_MULTIBYTE = ("é", "€", "𝄞")  # 2, 3 and 4 UTF-8 bytes


def _random_literal(rng: random.Random, alphabet: str, first: str | None = None, max_len: int = 3):
    text = (first or rng.choice(alphabet)) + "".join(
        rng.choice(alphabet) for _ in range(rng.randint(0, max_len - 1))
    )
    return literal(text)


def _random_class(rng: random.Random, alphabet: str, negate_ok: bool = True) -> Chars:
    chars = rng.sample(alphabet, rng.randint(1, max(1, len(alphabet) - 1)))
    cls = char_set((ord(c), ord(c)) for c in chars)
    if negate_ok and rng.random() < 0.1:
        cls = negate_chars(cls)  # huge class: everything but a few chars
    return cls


def _random_counts(rng: random.Random, bounded: bool, min_lo: int = 0) -> tuple[int, int | None]:
    lo = rng.randint(min_lo, 2)
    hi = None if (not bounded and rng.random() < 0.35) else lo + rng.randint(0, 2)
    if hi == 0:
        hi = 1
    return lo, hi


def _random_regex(rng: random.Random, alphabet: str, bounded: bool, raw_bytes: bool, negate: bool = True):
    """A terminal regex that can match some non-empty string (it may also match "")."""
    lit = lambda: _random_literal(rng, alphabet)  # noqa: E731
    cls = lambda: _random_class(rng, alphabet, negate)  # noqa: E731
    rep = lambda x: Repeat(x, *_random_counts(rng, bounded))  # noqa: E731
    if raw_bytes and rng.random() < 0.25:
        multi = [c for c in alphabet if len(c.encode()) > 1]
        if multi:
            enc = rng.choice(multi).encode()
            return rng.choice(
                [byte_literal(enc[:1]), Bytes(((0x80, 0xBF),)), Repeat(Bytes(((0x80, 0xBF),)), 1, 2)]
            )
    kind = rng.randrange(9)
    if kind == 0:
        return lit()
    if kind == 1:
        return cls()
    if kind == 2:
        return rep(cls())
    if kind == 3:
        return rep(lit())
    if kind == 4:
        return Seq((lit(), rep(cls())))
    if kind == 5:
        return Alt((lit(), rng.choice([lit, cls])()))
    if kind == 6:
        return Seq((cls(), lit()))
    if kind == 7:
        return Alt((rep(cls()), lit()))
    return Seq((rep(cls()), cls()))


def random_grammar(
    rng: random.Random,
    *,
    n_rules: int | None = None,
    n_terminals: int | None = None,
    alphabet: str | None = None,
    ignore: bool | None = None,
    recursive: bool = True,
    bounded: bool = False,
    lark_compatible: bool = False,
    special_tokens: Sequence[str] = (),
    raw_bytes: bool = False,
    negated_classes: bool = True,
) -> Grammar:
    """A small random grammar (rules ``r0..``, start ``r0``; terminals ``T0..``, ignore ``WS``, special
    terminals ``SP0..``). Every rule is productive (its first alternative only uses terminals and
    later rules). Features: nullable rules, left recursion, ambiguity, multi-byte characters, terminals
    accepting "" (they still need a byte), an ignore terminal (' ' based) that may overlap others.

    * ``recursive=False``: rule i only uses rules j > i (finite language); ``bounded=True``: no
      unbounded repeats. Both together: finitely many sentences and lexemes (brute-force oracles).
    * ``lark_compatible=True``: terminals are ``lit``, ``[cls]{m,n}`` (m >= 1) or ``lit[cls]{m,n}`` and no
      two terminals (ignore included) can start with the same character, so lexing is context-free and
      unambiguous and Python-``re`` greedy matching equals longest match: lark must agree exactly.
    * ``raw_bytes=True``: sometimes a ``Bytes`` terminal (lead byte or continuation bytes).
    * ``negated_classes=False``: no ``[^...]`` classes (keeps terminal languages small for brute force).
    """
    if alphabet is None:
        alphabet = (
            "abcd" + "".join(rng.sample(_MULTIBYTE, 2)) if lark_compatible else "abc" + rng.choice(_MULTIBYTE)
        )
    n_rules = n_rules or rng.randint(2, 6)
    n_terminals = n_terminals or rng.randint(2, 6)
    if ignore is None:
        ignore = rng.random() < 0.3
    g = Grammar(start="r0")
    if lark_compatible:
        firsts = list(alphabet)
        rng.shuffle(firsts)
        n_terminals = min(n_terminals, len(firsts))
        spare = firsts[n_terminals:]
        for i in range(n_terminals):
            first = firsts[i]
            kind = rng.randrange(3)
            if kind == 0:
                regex = _random_literal(rng, alphabet, first)
            elif kind == 1:
                chars = [first] + ([spare.pop()] if spare and rng.random() < 0.5 else [])
                regex = Repeat(char_set((ord(c), ord(c)) for c in chars), *_random_counts(rng, bounded, 1))
            else:
                tail = Repeat(_random_class(rng, alphabet, negate_ok=False), *_random_counts(rng, bounded))
                regex = Seq((_random_literal(rng, alphabet, first, 2), tail))
            g.terminals[f"T{i}"] = Terminal(f"T{i}", regex)
        if ignore:
            g.terminals["WS"] = Terminal("WS", Repeat(literal(" "), 1, 2 if bounded else None), ignore=True)
    else:
        for i in range(n_terminals):
            g.terminals[f"T{i}"] = Terminal(
                f"T{i}", _random_regex(rng, alphabet, bounded, raw_bytes, negated_classes)
            )
        if ignore:
            ws = literal(" ")
            choices = [ws, Repeat(ws, 1, 2), Alt((ws, literal(rng.choice(alphabet))))]
            if not bounded:
                choices.append(Repeat(ws, 1, None))
            g.terminals["WS"] = Terminal("WS", rng.choice(choices), ignore=True)
    for j, text in enumerate(special_tokens):
        g.terminals[f"SP{j}"] = Terminal(f"SP{j}", Seq(()), special_token=text)

    symbols = [n for n, t in g.terminals.items() if not t.ignore]
    names = [f"r{i}" for i in range(n_rules)]

    def symbol(i: int, any_rule: bool) -> str:
        later = names[i + 1 :]
        if rng.random() < 0.55 or not (any_rule or later):
            return rng.choice(symbols)
        return rng.choice(names if any_rule else later)

    for i, name in enumerate(names):
        alts = []
        for j in range(rng.randint(1, 3)):
            any_rule = recursive and j > 0
            length = rng.choice([0, 1, 1, 2, 2, 3]) if j else rng.choice([0, 1, 2, 2, 3])
            alts.append(tuple(symbol(i, any_rule) for _ in range(length)))
        if recursive and rng.random() < 0.3:  # explicit left recursion
            alts.append((name,) + tuple(symbol(i, True) for _ in range(rng.randint(1, 2))))
        g.rules[name] = alts
    g.validate()
    return g


def grammar_alphabet(grammar: Grammar, max_class: int = 64) -> str:
    """The characters named by small ``Chars`` ranges of the grammar's terminals (for building vocabs)."""
    found: set[str] = set()

    def visit(r) -> None:
        if isinstance(r, Chars):
            for lo, hi in r.ranges:
                if hi - lo < max_class:
                    found.update(
                        chr(c) for c in range(lo, hi + 1) if not _SURROGATES[0] <= c <= _SURROGATES[1]
                    )
        elif isinstance(r, Seq | Alt):
            for x in r.items:
                visit(x)
        elif isinstance(r, Repeat):
            visit(r.item)

    for t in grammar.terminals.values():
        if t.special_token is None:
            visit(t.regex)
    return "".join(sorted(found))


def random_vocab(rng: random.Random, alphabet: str, size: int | None = None, max_len: int = 4) -> list[bytes]:
    """A shuffled vocabulary of short byte strings over ``alphabet``'s UTF-8 bytes: every character, every
    single byte (so partial UTF-8), random byte slices of random text (often cut mid-character), and
    duplicates. At least ``size`` (default 20..60) entries. An empty alphabet means "abc"."""
    size = size or rng.randint(20, 60)
    alphabet = alphabet or "abc"
    text = "".join(rng.choice(alphabet) for _ in range(300)).encode()
    vocab = [c.encode() for c in alphabet]
    vocab += [bytes([b]) for b in sorted(set(text)) if bytes([b]) not in vocab]
    while len(vocab) < size:
        if rng.random() < 0.15:
            vocab.append(rng.choice(vocab))
        else:
            n = rng.randint(1, max_len)
            s = rng.randrange(len(text) - n)
            vocab.append(text[s : s + n])
    rng.shuffle(vocab)
    return vocab


def random_string(regex, rng: random.Random, alphabet: str = "", max_extra: int = 3) -> bytes | None:
    """A random member of the regex's language (None if the language is empty). Repeats take at most
    ``max_extra`` copies beyond their minimum; characters from ``alphabet`` are preferred."""
    if _is_empty(regex):
        return None
    if isinstance(regex, Chars):
        pref = [c for c in alphabet if _has_scalar(regex.ranges, ord(c), ord(c))]
        if pref and rng.random() < 0.9:
            return rng.choice(pref).encode()
        while True:
            lo, hi = rng.choice(regex.ranges)
            cp = rng.randint(max(lo, 0), min(hi, MAX_CODE_POINT))
            if _has_scalar(((cp, cp),), 0, MAX_CODE_POINT):
                return chr(cp).encode()
    if isinstance(regex, Bytes):
        lo, hi = rng.choice([r for r in regex.ranges if max(r[0], 0) <= min(r[1], 255)])
        return bytes([rng.randint(max(lo, 0), min(hi, 255))])
    if isinstance(regex, Seq):
        return b"".join(random_string(x, rng, alphabet, max_extra) for x in regex.items)
    if isinstance(regex, Alt):
        return random_string(
            rng.choice([x for x in regex.items if not _is_empty(x)]), rng, alphabet, max_extra
        )
    if isinstance(regex, Repeat):
        hi = regex.min + max_extra if regex.max is None else min(regex.max, regex.min + max_extra)
        n = rng.randint(regex.min, hi) if not _is_empty(regex.item) else 0
        return b"".join(random_string(regex.item, rng, alphabet, max_extra) for _ in range(n))
    raise TypeError(f"not a regex: {regex!r}")


def sample_events(
    grammar: Grammar,
    rng: random.Random,
    max_len: int = 40,
    *,
    ref: Reference | None = None,
    tries: int = 50,
    specials: bool = True,
    ignore_prob: float = 0.2,
) -> list[bytes | Special] | None:
    """A random accepted event list (byte chunks, one per lexeme, and :class:`Special` events), built by a
    random derivation with random lexemes (ignore lexemes inserted at random) and checked with
    :meth:`Reference.accepts_events`; None if ``tries`` attempts fail. ``max_len`` bounds the bytes."""
    ref = ref or Reference(grammar)
    terms, rules = grammar.terminals, grammar.rules
    alphabet = grammar_alphabet(grammar)
    height: dict[str, float] = {}
    for n, t in terms.items():
        if t.ignore:
            continue
        usable = (specials and t.special_token is not None) or (
            t.special_token is None and not _is_empty(t.regex)
        )
        height[n] = 0 if usable else float("inf")
    for n in rules:
        height[n] = float("inf")
    changed = True
    while changed:  # minimal derivation height of every rule
        changed = False
        for n, alts in rules.items():
            h = min((1 + max((height[s] for s in alt), default=0) for alt in alts), default=float("inf"))
            if h < height[n]:
                height[n], changed = h, True
    if height[grammar.start] == float("inf"):
        return None
    ignores = [t for t in terms.values() if t.ignore and t.special_token is None and not _is_empty(t.regex)]

    def lexeme(t: Terminal) -> bytes | None:
        for _ in range(20):
            s = random_string(t.regex, rng, alphabet)
            if s:
                return s
        return None

    for _ in range(tries):
        events: list[bytes | Special] = []
        size = 0
        stack = [(grammar.start, 0)]
        ok = True
        while stack and ok:
            sym, depth = stack.pop()
            if ignores and rng.random() < ignore_prob:
                s = lexeme(rng.choice(ignores))
                if s:
                    events.append(s)
                    size += len(s)
            if sym in terms:
                t = terms[sym]
                if t.special_token is not None:
                    events.append(Special(t.special_token))
                    continue
                s = lexeme(t)
                if s is None:
                    ok = False
                    break
                events.append(s)
                size += len(s)
                continue
            alts = [a for a in rules[sym] if all(height[s] < float("inf") for s in a)]
            if depth > 6 or size > max_len // 2:  # steer towards termination
                best = min(1 + max((height[s] for s in a), default=0) for a in alts)
                alts = [a for a in alts if 1 + max((height[s] for s in a), default=0) == best]
            alt = rng.choice(alts)
            stack.extend((s, depth + 1) for s in reversed(alt))
        if ok and size <= max_len and ref.accepts_events(events):
            return events
    return None


def sample_sentence(
    grammar: Grammar,
    rng: random.Random,
    max_len: int = 40,
    *,
    ref: Reference | None = None,
    tries: int = 50,
    min_len: int = 0,
) -> bytes | None:
    """A random accepted byte string (no special tokens) of ``min_len..max_len`` bytes, or None."""
    ref = ref or Reference(grammar)
    for _ in range(tries):
        events = sample_events(grammar, rng, max_len, ref=ref, tries=1, specials=False)
        if events is not None and len(data := b"".join(events)) >= min_len:
            return data
    return None
