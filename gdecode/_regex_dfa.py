"""Private helpers for gdecode.regex: character-range set operations and a small derivative-based DFA
toolkit over the regex IR extended with intersection (:class:`And`) and complement (:class:`Not`).

The regex frontend uses it to lower constructs the IR cannot express directly (lookarounds contained in a
match, shortest-match "lazy" lexer terminals) into a plain IR regex: build the DFA of the extended regex
(symbolic derivatives, one transition per class of characters that behave alike), optionally make it
prefix-free, and turn it back into a regex by state elimination. The JSON Schema compiler uses it for
string constraints, with shortcuts that avoid product automata (``matches``, ``minus_words``,
``prefix_product``, ``reverse``); regexes whose conjuncts are all plain and ASCII-only get their DFA from
the core instead. Everything is bounded; over the bounds the caller gets UnsupportedFeatureError.
"""

from __future__ import annotations

from dataclasses import dataclass

from gdecode import _core, deadline, ir
from gdecode.errors import LimitExceededError, UnsupportedFeatureError

Ranges = tuple[tuple[int, int], ...]

ANY_RANGES: Ranges = ((0, 0xD7FF), (0xE000, ir.MAX_CODE_POINT))  # Unicode scalar values
ANY = ir.Chars(ANY_RANGES)
ANYSTAR = ir.Repeat(ANY, 0, None)
EPS = ir.EPSILON
NOTHING = ir.NOTHING


# ------------------------------------------------------------------------------------------- range sets
def r_norm(ranges) -> Ranges:
    """Sorted, merged, restricted to scalar values (no surrogates)."""
    return r_and(ir.normalize_ranges(ranges), ANY_RANGES)


def r_and(a: Ranges, b: Ranges) -> Ranges:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def r_or(a: Ranges, b: Ranges) -> Ranges:
    if not a:
        return b
    if not b:
        return a
    return ir.normalize_ranges(a + b)


def r_not(a: Ranges) -> Ranges:
    """Complement within scalar values."""
    out, nxt = [], 0
    for lo, hi in a:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= ir.MAX_CODE_POINT:
        out.append((nxt, ir.MAX_CODE_POINT))
    return r_and(tuple(out), ANY_RANGES)


def r_sub(a: Ranges, b: Ranges) -> Ranges:
    return r_and(a, r_not(b)) if b else a


# ------------------------------------------------------------------------------------- extended nodes
@dataclass(frozen=True)
class And:
    """Intersection of the languages of ``items`` (internal to the regex frontend)."""

    _TAG = 6
    __hash__ = ir._cached_hash
    __eq__ = ir._fast_eq

    items: tuple


@dataclass(frozen=True)
class Not:
    """Complement (within all strings of scalar values) of ``item``'s language (internal)."""

    _TAG = 7
    __hash__ = ir._cached_hash
    __eq__ = ir._fast_eq

    item: object


@dataclass(frozen=True)
class LookAhead:
    """Zero-width assertion that the rest of the string is in ``cond``'s language (``(?=X)``: cond = XΣ*;
    ``(?=X$)``: cond = X), or not in it when ``negate``. Its scope is everything after it, so it is only
    meaningful when the DFA is built for a complete string language."""

    _TAG = 8
    __hash__ = ir._cached_hash
    __eq__ = ir._fast_eq

    item: object
    negate: bool


def _la_cond(la: LookAhead):
    return mk_not(la.item) if la.negate else la.item


def _key(node) -> int:
    return hash(node)


def mk_seq(items) -> object:
    out = []
    for it in items:
        if isinstance(it, ir.Seq):
            out.extend(it.items)
        elif it == NOTHING:
            return NOTHING
        else:
            out.append(it)
    if any(it == NOTHING for it in out):
        return NOTHING
    if len(out) == 1:
        return out[0]
    return ir.Seq(tuple(out))


def mk_alt(items, canonical: bool = False) -> object:
    flat: list = []
    for it in items:
        if isinstance(it, ir.Alt):
            flat.extend(it.items)
        else:
            flat.append(it)
    chars: list = []
    rest: list = []
    seen = set()
    first_chars_at = None
    for it in flat:
        if isinstance(it, ir.Chars):
            if first_chars_at is None:
                first_chars_at = len(rest)
            chars.extend(it.ranges)
            continue
        if canonical and it == ANYSTAR:
            return ANYSTAR
        if it in seen:
            continue
        seen.add(it)
        rest.append(it)
    if chars:
        merged = ir.Chars(ir.normalize_ranges(chars))
        if merged.ranges:
            rest.insert(first_chars_at, merged)
    if canonical:
        rest.sort(key=_key)
    if len(rest) == 1:
        return rest[0]
    return ir.Alt(tuple(rest))


def mk_and(items) -> object:
    flat: list = []
    for it in items:
        if isinstance(it, And):
            flat.extend(it.items)
        else:
            flat.append(it)
    out = []
    seen = set()
    for it in flat:
        if it == NOTHING:
            return NOTHING
        if it == ANYSTAR or it in seen:
            continue
        seen.add(it)
        out.append(it)
    if not out:
        return ANYSTAR
    if len(out) == 1:
        return out[0]
    # distribute over alternations (small ones), so that nested And/Alt terms stay in a normal form and
    # the derivatives of lookahead-heavy regexes remain finitely many
    alts = [x for x in out if isinstance(x, ir.Alt) and has_bool(x)]
    if alts:
        width = 1
        for a in alts:
            width *= len(a.items)
        if width <= 64:
            a = alts[0]
            others = [x for x in out if x is not a]
            return mk_alt([mk_and([b, *others]) for b in a.items], canonical=True)
    out.sort(key=_key)
    return And(tuple(out))


def has_bool(node) -> bool:
    stack = [node]
    while stack:
        x = stack.pop()
        if isinstance(x, (And, Not, LookAhead)):
            return True
        if isinstance(x, (ir.Seq, ir.Alt)):
            stack.extend(x.items)
        elif isinstance(x, ir.Repeat):
            stack.append(x.item)
    return False


def mk_not(item) -> object:
    if isinstance(item, Not):
        return item.item
    if item == NOTHING:
        return ANYSTAR
    if item == ANYSTAR:
        return NOTHING
    if isinstance(item, ir.Repeat) and isinstance(item.item, ir.Chars):
        # Not(S{lo,hi}), common from patterns like ^[a-z0-9_-]{1,255}$, in plain form: too few or too many
        # characters of S, or a character outside S somewhere (at the first one: S* ¬S ANY*)
        chars = r_and(item.item.ranges, ANY_RANGES)
        outside = r_not(chars)
        parts = []
        if item.min > 0:
            parts.append(mk_rep(ir.Chars(chars), 0, item.min - 1))
        if item.max is not None:
            parts.append(mk_rep(ir.Chars(chars), item.max + 1, None))
        if outside:
            parts.append(mk_seq((mk_rep(ir.Chars(chars), 0, None), ir.Chars(outside), ANYSTAR)))
        return mk_alt(parts, canonical=True) if parts else NOTHING
    return Not(item)


def mk_rep(item, lo: int, hi: int | None) -> object:
    if hi == 0 or item == EPS:
        return EPS
    if item == NOTHING:
        return EPS if lo == 0 else NOTHING
    if lo == 1 and hi == 1:
        return item
    if lo == 0 and hi is None and isinstance(item, ir.Repeat) and item.min in (0, 1) and item.max is None:
        return ir.Repeat(item.item, 0, None)
    return ir.Repeat(item, lo, hi)


# ----------------------------------------------------------------------------------------- derivatives
class _Deriv:
    """Symbolic derivatives with memo tables (one instance per DFA construction)."""

    def __init__(self) -> None:
        self._nullable: dict = {}
        self._trans: dict = {}
        self._has_la: dict = {}
        self._active: set = set()
        self._stack: list = []
        self._tainted: set = set()
        self.steps = 0

    def has_la(self, r) -> bool:
        v = self._has_la.get(r)
        if v is not None:
            return v
        if isinstance(r, LookAhead):
            v = True
        elif isinstance(r, (ir.Seq, ir.Alt, And)):
            v = any(self.has_la(x) for x in r.items)
        elif isinstance(r, (ir.Repeat, Not)):
            v = self.has_la(r.item)
        else:
            v = False
        self._has_la[r] = v
        return v

    def nullable(self, r) -> bool:
        v = self._nullable.get(r)
        if v is not None:
            return v
        if isinstance(r, ir.Chars):
            v = False
        elif isinstance(r, ir.Seq):
            v = all(self.nullable(x) for x in r.items)
        elif isinstance(r, ir.Alt):
            v = any(self.nullable(x) for x in r.items)
        elif isinstance(r, ir.Repeat):
            v = r.min == 0 or self.nullable(r.item)
        elif isinstance(r, And):
            v = all(self.nullable(x) for x in r.items)
        elif isinstance(r, Not):
            v = not self.nullable(r.item)
        elif isinstance(r, LookAhead):
            v = self.nullable(r.item) != r.negate
        else:
            raise UnsupportedFeatureError(f"regex node {type(r).__name__} in a DFA construction")
        self._nullable[r] = v
        return v

    def trans(self, r) -> list:
        """[(ranges, derivative)] with disjoint ranges; characters not covered lead to NOTHING."""
        v = self._trans.get(r)
        if v is not None:
            return v
        if r in self._active:
            # Re-entered through empty iterations of a repetition whose item contains a lookahead (and
            # may match the empty string): an empty iteration only adds a constraint and consumes
            # nothing, so this path adds no string; cut it, and do not memoize the frames inside the cycle.
            i = self._stack.index(r)
            for fr in self._stack[i + 1 :]:
                self._tainted.add(fr)
            return []
        self._active.add(r)
        self._stack.append(r)
        try:
            v = self._trans_uncached(r)
        finally:
            self._active.discard(r)
            self._stack.pop()
        if r in self._tainted:
            self._tainted.discard(r)
        else:
            self._trans[r] = v
        return v

    def step(self, r, cp: int):
        """The derivative of ``r`` by the character ``cp`` (NOTHING when no string goes on with it)."""
        return next((t for rs, t in self.trans(r) if any(lo <= cp <= hi for lo, hi in rs)), NOTHING)

    def _trans_uncached(self, r) -> list:
        self.steps += 1
        if isinstance(r, ir.Chars):
            rng = r_and(r.ranges, ANY_RANGES)
            v = [(rng, EPS)] if rng else []
        elif isinstance(r, ir.Seq):
            if not r.items:
                v = []
            else:
                head, rest = r.items[0], mk_seq(r.items[1:])
                if self.has_la(head):
                    v = self.trans(self._expose(head, rest))
                else:
                    v = [(c, mk_seq((d, rest))) for c, d in self.trans(head)]
                    if self.nullable(head):
                        t2 = self.trans(rest)
                        self.steps += len(v) * len(t2)
                        v = _union(v, t2)
        elif isinstance(r, ir.Alt):
            v = []
            for x in r.items:
                t2 = self.trans(x)
                self.steps += len(v) * len(t2)
                v = _union(v, t2)
        elif isinstance(r, ir.Repeat):
            if r.max == 0:
                v = []
            elif self.has_la(r.item):
                v = self.trans(self._expose(r, EPS))
            else:
                rest = mk_rep(r.item, max(r.min - 1, 0), None if r.max is None else r.max - 1)
                v = [(c, mk_seq((d, rest))) for c, d in self.trans(r.item)]
        elif isinstance(r, And):
            v = self.trans(r.items[0])
            for x in r.items[1:]:
                t2 = self.trans(x)
                self.steps += len(v) * len(t2)
                v = _intersect(v, t2)
        elif isinstance(r, LookAhead):  # the assertion, then the end of the string
            v = self.trans(mk_and((_la_cond(r), EPS)))
        elif isinstance(r, Not):
            inner = self.trans(r.item)
            covered: Ranges = ()
            v = []
            for c, d in inner:
                covered = r_or(covered, c)
                v.append((c, mk_not(d)))
            rest_c = r_not(covered)
            if rest_c:
                v.append((rest_c, ANYSTAR))
        else:
            raise UnsupportedFeatureError(f"regex node {type(r).__name__} in a DFA construction")
        return _merge_targets(v)


    def _expose(self, head, rest):
        """Rewrite ``head rest`` so that a lookahead in ``head`` sees all of ``rest`` (its true scope)."""
        if isinstance(head, LookAhead):
            return mk_and((_la_cond(head), rest))
        if isinstance(head, ir.Alt):
            return mk_alt([mk_seq((x, rest)) for x in head.items], canonical=True)
        if isinstance(head, ir.Repeat):
            if head.max == 0:
                return rest
            more = mk_seq((head.item, mk_rep(head.item, max(head.min - 1, 0), None if head.max is None else head.max - 1), rest))
            return mk_alt([more, rest], canonical=True) if head.min == 0 else more
        raise UnsupportedFeatureError("a lookahead inside an intersection or complement")


def _union(t1: list, t2: list) -> list:
    if not t1:
        return t2
    if not t2:
        return t1
    out = []
    all2: Ranges = ()
    for c2, _ in t2:
        all2 = r_or(all2, c2)
    all1: Ranges = ()
    for c1, d1 in t1:
        all1 = r_or(all1, c1)
        for c2, d2 in t2:
            both = r_and(c1, c2)
            if both:
                out.append((both, mk_alt((d1, d2), canonical=True)))
        only1 = r_sub(c1, all2)
        if only1:
            out.append((only1, d1))
    for c2, d2 in t2:
        only2 = r_sub(c2, all1)
        if only2:
            out.append((only2, d2))
    return out


def _intersect(t1: list, t2: list) -> list:
    out = []
    for c1, d1 in t1:
        for c2, d2 in t2:
            both = r_and(c1, c2)
            if both:
                d = mk_and((d1, d2))
                if d != NOTHING:
                    out.append((both, d))
    return out


def _merge_targets(t: list) -> list:
    by: dict = {}
    for c, d in t:
        if d == NOTHING or not c:
            continue
        by[d] = r_or(by[d], c) if d in by else c
    return [(c, d) for d, c in by.items()]


def matches(regex, text: str, _d: _Deriv | None = None) -> bool:
    """Whether ``regex`` (And/Not allowed) matches all of ``text``: one derivative per character."""
    d = _Deriv() if _d is None else _d
    for ch in text:
        regex = d.step(regex, ord(ch))
        if regex == NOTHING:
            return False
    return d.nullable(regex)


def minus_words(regex, words) -> object:
    """The strings of a plain ``regex`` that are not in the finite set ``words``, as a plain regex: the
    first-character transitions of ``regex`` are unfolded along the trie of the words it matches (the others
    change nothing). Size about the trie's times the fan-out of ``regex``; no automaton is built. Recursive
    on the words' length: words longer than 256 characters are refused (ValueError)."""
    if any(len(w) > 256 for w in words):
        raise ValueError("minus_words: a word longer than 256 characters")
    d = _Deriv()

    def minus(r, ws: set[str]):
        if not ws:
            return r
        first: dict[int, set[str]] = {}
        for w in ws:
            if w:
                first.setdefault(ord(w[0]), set()).add(w[1:])
        parts = [EPS] if d.nullable(r) and "" not in ws else []
        cps = sorted(first)
        for ranges, target in d.trans(r):
            inside = [cp for cp in cps if any(lo <= cp <= hi for lo, hi in ranges)]
            rest = r_sub(ranges, tuple((cp, cp) for cp in inside))
            if rest:
                parts.append(mk_seq((ir.Chars(rest), target)))
            for cp in inside:
                parts.append(mk_seq((ir.Chars(((cp, cp),)), minus(target, first[cp]))))
        return mk_alt(parts) if parts else NOTHING

    return minus(regex, {w for w in words if matches(regex, w, d)})


def prefix_product(prefix, regex, max_pairs: int = 2_000):
    """The strings of the plain ``regex`` that begin with a string of ``prefix`` (plain, finite: no unbounded
    repetition), as a plain regex: derivatives of both taken together until ``prefix`` may end, then the rest
    of ``regex`` as it is. ``^https?://`` beside a format costs a few derivatives instead of the product
    automaton. None when ``prefix`` is infinite or the pairs visited exceed ``max_pairs``."""
    stack = [prefix]
    while stack:
        x = stack.pop()
        if isinstance(x, ir.Repeat) and x.max is None or isinstance(x, (And, Not, LookAhead)):
            return None
        stack.extend(ir.children(x))
    d = _Deriv()
    memo: dict = {}
    budget = [max_pairs]

    def product(p, r, depth: int):
        if d.nullable(p):
            return r
        hit = memo.get((p, r))
        if hit is not None:
            return hit
        budget[0] -= 1
        if budget[0] < 0 or depth > 400:
            raise _Overflow
        parts = []
        for c1, p2 in d.trans(p):
            for c2, r2 in d.trans(r):
                both = r_and(c1, c2)
                if both:
                    rest = product(p2, r2, depth + 1)
                    if rest != NOTHING:
                        parts.append(mk_seq((ir.Chars(both), rest)))
        out = mk_alt(parts) if parts else NOTHING
        memo[(p, r)] = out
        return out

    try:
        return product(prefix, regex, 0)
    except _Overflow:
        return None


class _Overflow(Exception):
    pass


def reverse(regex):
    """The plain regex of the reversed strings of a plain ``regex`` (None when nested too deep)."""
    memo: dict[int, object] = {}

    def rev(r, depth: int):
        if depth > 400:
            raise _Overflow
        out = memo.get(id(r))
        if out is None:
            if isinstance(r, (ir.Chars, ir.Bytes)):
                out = r
            elif isinstance(r, ir.Seq):
                out = ir.Seq(tuple(rev(x, depth + 1) for x in reversed(r.items)))
            elif isinstance(r, ir.Alt):
                out = ir.Alt(tuple(rev(x, depth + 1) for x in r.items))
            elif isinstance(r, ir.Repeat):
                out = ir.Repeat(rev(r.item, depth + 1), r.min, r.max)
            else:
                raise _Overflow
            memo[id(r)] = out
        return out

    try:
        return rev(regex, 0)
    except _Overflow:
        return None


def finite_words(regex, limit: int) -> list[str] | None:
    """Every string of a plain ``regex`` when it has at most ``limit`` of them (duplicates possible), else
    None (also for regexes nested too deep to be worth expanding)."""

    def words(r, depth: int) -> list[str] | None:
        if depth > 64:
            return None
        if isinstance(r, ir.Chars):
            ranges = r_and(r.ranges, ANY_RANGES)
            if sum(hi - lo + 1 for lo, hi in ranges) > limit:
                return None
            return [chr(c) for lo, hi in ranges for c in range(lo, hi + 1)]
        if isinstance(r, ir.Seq):
            out = [""]
            for x in r.items:
                tail = words(x, depth + 1)
                if tail is None or len(out) * len(tail) > limit:
                    return None
                out = [a + b for a in out for b in tail]
            return out
        if isinstance(r, ir.Alt):
            out = []
            for x in r.items:
                more = words(x, depth + 1)
                if more is None or len(out) + len(more) > limit:
                    return None
                out += more
            return out
        if isinstance(r, ir.Repeat) and r.max is not None:
            one = words(r.item, depth + 1)
            if one is None:
                return None
            out, layer = [], [""]
            for k in range(r.max + 1):
                if k >= r.min:
                    out += layer
                if len(out) > limit:
                    return None
                if k < r.max:
                    layer = [a + b for a in layer for b in one]
                    if len(layer) > limit:  # layers never shrink (unless empty): the last one is bigger
                        return None
            return out
        return None

    return words(regex, 0)


# ------------------------------------------------------------------------------------------------- DFA
@dataclass
class DFA:
    """States 0..n-1, start 0; ``edges[s]`` = [(ranges, target)] with disjoint ranges."""

    edges: list
    accepting: set


def build_dfa(regex, *, max_states: int = 2000, what: str = "regex", max_work: int = 1_000_000,
              max_total_size: int = 10**9) -> DFA:
    """DFA of ``regex`` by symbolic derivatives. Bounded deterministically: at most ``max_states`` states
    and ``max_work`` derivative computations, and the states' regexes hold fewer than ``max_total_size``
    distinct nodes in all (UnsupportedFeatureError beyond)."""
    parts = _ascii_plain_parts(regex)
    if parts is not None:
        return _core_dfa(parts, max_states, what)
    d = _Deriv()
    total_size = 0
    counted: set[int] = set()  # ids of the nodes counted (states share subtrees: each counts once)
    index = {regex: 0}
    states = [regex]
    edges: list = []
    accepting: set = set()
    i = 0
    while i < len(states):
        deadline.check(f"building the DFA of {what}")
        r = states[i]
        if d.nullable(r):
            accepting.add(i)
        row = []
        for c, nxt in d.trans(r):
            j = index.get(nxt)
            if j is None:
                j = len(states)
                total_size += _new_nodes(nxt, counted)
                if total_size > max_total_size:
                    raise UnsupportedFeatureError(f"{what} is too complex to express as a plain regex (size bound)")
                if j >= max_states:
                    raise UnsupportedFeatureError(
                        f"{what} needs more than {max_states} automaton states to express as a plain regex"
                    )
                index[nxt] = j
                states.append(nxt)
            row.append((c, j))
        edges.append(row)
        i += 1
        if d.steps > max_work:
            raise UnsupportedFeatureError(f"{what} is too complex to express as a plain regex (work bound)")
    return DFA(edges, accepting)


def _ascii_plain_parts(regex) -> list | None:
    """The conjuncts of ``regex`` when each is a plain regex over ASCII characters only (number ranges and
    their bounds): then the core's byte DFA is the character DFA, built in microseconds instead of
    milliseconds of derivatives. None otherwise."""
    parts = list(regex.items) if isinstance(regex, And) else [regex]
    stack = list(parts)
    while stack:
        x = stack.pop()
        if isinstance(x, ir.Chars):
            if x.ranges and x.ranges[-1][1] > 0x7F:
                return None
        elif isinstance(x, (ir.Seq, ir.Alt)):
            stack.extend(x.items)
        elif isinstance(x, ir.Repeat):
            stack.append(x.item)
        else:  # And/Not/LookAhead inside, raw bytes, ...
            return None
    return parts


def _core_dfa(parts: list, max_states: int, what: str) -> DFA:
    try:
        rows, accepting = _core.intersection_dfa(parts, max_states)
    except LimitExceededError:
        raise UnsupportedFeatureError(f"{what} needs more than {max_states} automaton states to express as a "
                                      "plain regex") from None
    edges = []
    for row in rows:
        by: dict[int, list] = {}
        for lo, hi, t in row:
            by.setdefault(t, []).append((lo, hi))
        edges.append([(tuple(r), t) for t, r in by.items()])
    return DFA(edges, {s for s, a in enumerate(accepting) if a})


def prefix_free(dfa: DFA) -> DFA:
    """Keep only the strings with no proper prefix in the language (shortest-match semantics)."""
    return DFA([[] if s in dfa.accepting else list(row) for s, row in enumerate(dfa.edges)], set(dfa.accepting))


def _new_nodes(r, counted: set[int]) -> int:
    """How many nodes of ``r`` are not in ``counted`` (adding them). Each node of all states is visited
    once: walking every state's whole tree counted shared subtrees again and again (a tenth of some
    compiles)."""
    n, stack = 0, [r]
    while stack:
        x = stack.pop()
        if id(x) in counted:
            continue
        counted.add(id(x))
        n += 1
        if isinstance(x, (ir.Seq, ir.Alt, And)):
            stack.extend(x.items)
        elif isinstance(x, (ir.Repeat, Not, LookAhead)):
            stack.append(x.item)
    return n


def _fast_alt(a, b):
    """Alternation without hashing (state elimination builds big terms; equality checks would be slow)."""
    if isinstance(a, ir.Chars) and isinstance(b, ir.Chars):
        return ir.Chars(r_or(a.ranges, b.ranges))
    items = (a.items if isinstance(a, ir.Alt) else (a,)) + (b.items if isinstance(b, ir.Alt) else (b,))
    return ir.Alt(items)


def _fast_seq(parts):
    items: list = []
    for p in parts:
        if isinstance(p, ir.Seq):
            items.extend(p.items)
        else:
            items.append(p)
    return items[0] if len(items) == 1 else ir.Seq(tuple(items))


def dfa_to_regex(dfa: DFA, *, max_size: int = 20000, max_work: int = 500_000, what: str = "regex"):
    """State elimination. Raises UnsupportedFeatureError when the result would be too large (an edge label
    over ``max_size`` nodes, or more than ``max_work`` edge updates)."""
    n = len(dfa.edges)
    # trim: reachable from 0 and co-reachable to an accepting state
    fwd = {0}
    stack = [0]
    while stack:
        s = stack.pop()
        for _, t in dfa.edges[s]:
            if t not in fwd:
                fwd.add(t)
                stack.append(t)
    rev: dict[int, set] = {}
    for s in range(n):
        for _, t in dfa.edges[s]:
            rev.setdefault(t, set()).add(s)
    live = set(dfa.accepting)
    stack = list(live)
    while stack:
        s = stack.pop()
        for p in rev.get(s, ()):
            if p not in live:
                live.add(p)
                stack.append(p)
    keep = fwd & live
    if 0 not in keep:
        return NOTHING
    too_big = UnsupportedFeatureError(f"{what} is too complex to express as a plain regex")
    start, final = -1, -2
    # edge label: (regex, size, is_epsilon)
    out_e: dict[int, dict[int, tuple]] = {s: {} for s in keep}
    out_e[start] = {0: (EPS, 1)}
    in_e: dict[int, dict[int, tuple]] = {s: {} for s in keep}
    in_e[final] = {}
    in_e[0][start] = out_e[start][0]

    def add(a: int, b: int, r, size: int) -> None:
        old = out_e[a].get(b)
        if old is not None:
            if old[0] == EPS and r == EPS:
                return
            r, size = _fast_alt(old[0], r), old[1] + size + 1
        if size > max_size:
            raise too_big
        out_e[a][b] = in_e[b][a] = (r, size)

    for s in keep:
        for c, t in dfa.edges[s]:
            if t in keep:
                add(s, t, ir.Chars(c), 1)
        if s in dfa.accepting:
            add(s, final, EPS, 1)
    work = 0
    remaining = set(keep)
    while remaining:
        k = min(remaining, key=lambda s: (len(in_e[s]) - (s in in_e[s])) * (len(out_e[s]) - (s in out_e[s])))
        remaining.discard(k)
        loop = out_e[k].pop(k, None)
        in_e[k].pop(k, None)
        ins = list(in_e[k].items())
        outs = list(out_e[k].items())
        for a, _ra in ins:
            del out_e[a][k]
        for b, _rb in outs:
            del in_e[b][k]
        work += len(ins) * len(outs)
        if work > max_work:
            raise UnsupportedFeatureError(f"{what} is too complex to express as a plain regex (work bound)")
        for a, (ra, sa) in ins:
            for b, (rb, sb) in outs:
                parts = [x for x in (ra,) if x != EPS]
                size = sa + sb
                if loop is not None:
                    parts.append(mk_rep(loop[0], 0, None))
                    size += loop[1] + 1
                parts.extend(x for x in (rb,) if x != EPS)
                add(a, b, _fast_seq(parts) if parts else EPS, size)
        del in_e[k], out_e[k]
    result = out_e[start].get(final)
    return NOTHING if result is None else result[0]


def is_prefix_code(regex, max_states: int = 2000, max_work: int = 50_000) -> bool:
    """True when no string of the language is a proper prefix of another one (and ε is not in it)."""
    longer = mk_and((regex, mk_seq((regex, ANY, ANYSTAR))))
    d = build_dfa(longer, max_states=max_states, what="lazy repetition", max_work=max_work)
    if d.accepting:
        return False
    return not _Deriv().nullable(regex)


def to_plain_regex(regex, *, shortest: bool = False, what: str = "regex", max_states: int = 2000,
                   max_work: int = 1_000_000):
    """Regex over Chars/Seq/Alt/Repeat/And/Not/LookAhead → equivalent plain IR regex (its prefix-free part
    if ``shortest``). Bounded by ``max_states`` and ``max_work`` (UnsupportedFeatureError beyond)."""
    dfa = build_dfa(regex, max_states=max_states, what=what, max_work=max_work)
    if shortest:
        dfa = prefix_free(dfa)
    return dfa_to_regex(dfa, what=what)
