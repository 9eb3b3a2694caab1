"""The derivative toolkit's shortcuts (gdecode._regex_dfa) against brute force over short strings.

The JSON Schema compiler uses them to skip product automata: a plain complement of ``S{lo,hi}``, words
taken out of a regex, products with a finite prefix or suffix, and the words of a small finite regex; and
the core's byte DFAs for ASCII-only intersections."""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

import pytest

from gdecode import _regex_dfa as dfa
from gdecode import ir
from gdecode.regex import parse_regex

sys.path.insert(0, str(Path(__file__).parent))
import ir_match  # noqa: E402

ALPHABET = "ab-\u00e9"


def _strings(max_len: int):
    for n in range(max_len + 1):
        for t in itertools.product(ALPHABET, repeat=n):
            yield "".join(t)


@pytest.mark.parametrize("chars, lo, hi", [("[ab]", 1, 3), ("[ab]", 2, None), ("[ab]", 0, None), ("a", 0, 2),
                                          ("[^a]", 1, 2), ("[\\s\\S]", 1, 2), ("[ab]", 0, 0), (None, 1, 2),
                                          (None, 0, None)])
def test_complement_of_a_counted_class_is_plain_and_exact(chars, lo, hi):
    r = ir.Repeat(ir.Chars(()) if chars is None else parse_regex(chars, flavor="python"), lo, hi)
    neg = dfa.mk_not(r)
    assert not dfa.has_bool(neg)
    for s in _strings(5):
        assert ir_match.fullmatch(neg, s) != ir_match.fullmatch(r, s), (r, s)


@pytest.mark.parametrize("pattern, words", [
    ("https?://", {"http://", "https://"}),
    ("(a|bc){0,2}", {"", "a", "bc", "aa", "abc", "bca", "bcbc"}),
    ("[ab]x", {"ax", "bx"}),
])
def test_finite_words(pattern, words):
    assert set(dfa.finite_words(parse_regex(pattern, flavor="python"), limit=16)) == words


@pytest.mark.parametrize("pattern", ["a*", "[a-z]x", "(ab|cd){3,9}", "[ab]{5}"])
def test_finite_words_gives_up_over_the_limit(pattern):
    assert dfa.finite_words(parse_regex(pattern, flavor="python"), limit=16) is None


def _random_plain(rng: random.Random, depth: int) -> ir.Regex:
    kind = rng.randrange(5 if depth else 1)
    if kind == 0:
        return ir.char_set([(ord(c), ord(c)) for c in rng.sample("ab", rng.randint(1, 2))])
    kids = tuple(_random_plain(rng, depth - 1) for _ in range(rng.randint(0, 3)))
    if kind == 1:
        return ir.Seq(kids)
    if kind == 2:
        return ir.Alt(kids)
    lo = rng.randint(0, 2)
    return ir.Repeat(_random_plain(rng, depth - 1), lo, None if kind == 3 else lo + rng.randint(0, 2))


def test_finite_words_on_random_regexes_matches_brute_force():
    rng = random.Random(7)
    checked = 0
    for _ in range(400):
        r = _random_plain(rng, 3)
        words = dfa.finite_words(r, limit=20)
        if words is None:
            continue
        checked += 1
        assert all(ir_match.fullmatch(r, w) for w in words)
        short = {s for n in range(7) for s in map("".join, itertools.product("ab", repeat=n))}
        assert {s for s in short if ir_match.fullmatch(r, s)} == {w for w in words if len(w) <= 6}
    assert checked > 50


@pytest.mark.parametrize("pattern", ["[ab]+", "(a|b-)*\u00e9?", "a[ab]{0,3}", "[^a]*"])
def test_minus_words_removes_exactly_the_words(pattern):
    r = parse_regex(pattern, flavor="python")
    words = {"", "a", "ab", "abb", "b-", "bb", "\u00e9", "-", "zz"}
    out = dfa.minus_words(r, words)
    assert not dfa.has_bool(out)
    for s in _strings(4):
        assert ir_match.fullmatch(out, s) == (ir_match.fullmatch(r, s) and s not in words), (pattern, s)


def test_matches_agrees_with_brute_force_also_through_and_not():
    r = dfa.mk_and((parse_regex("[ab]+", flavor="python"), dfa.Not(parse_regex("a*", flavor="python"))))
    for s in _strings(4):
        want = bool(s) and set(s) <= {"a", "b"} and "b" in s
        assert dfa.matches(r, s) == want, s


def _dfa_accepts(d: dfa.DFA, s: str) -> bool:
    q = 0
    for ch in s:
        q = next((t for rs, t in d.edges[q] if any(lo <= ord(ch) <= hi for lo, hi in rs)), None)
        if q is None:
            return False
    return q in d.accepting


def test_core_dfa_of_ascii_intersections_matches_brute_force():
    """build_dfa hands plain ASCII-only conjuncts (number ranges) to the core's minimal byte DFA."""
    rng = random.Random(11)
    short = [s for n in range(6) for s in map("".join, itertools.product("ab", repeat=n))]
    used = 0
    for _ in range(150):
        parts = [_random_plain(rng, 3) for _ in range(rng.randint(1, 3))]
        regex = dfa.mk_and(parts)
        if dfa._ascii_plain_parts(regex) is None:
            continue
        used += 1
        d = dfa.build_dfa(regex)
        for s in short:
            assert _dfa_accepts(d, s) == all(ir_match.fullmatch(p, s) for p in parts), (parts, s)
        # minimal and without dead states: no two states with the same rows and acceptance, every state live
        rows = {(tuple(sorted(map(repr, d.edges[q]))), q in d.accepting) for q in range(len(d.edges))}
        assert len(rows) == len(d.edges) or len(d.edges) == 1
    assert used > 100


def test_core_dfa_state_bound_is_an_unsupported_feature():
    from gdecode.errors import UnsupportedFeatureError

    with pytest.raises(UnsupportedFeatureError, match="more than 10 automaton states"):
        dfa.build_dfa(parse_regex("[ab]*a[ab]{8}", flavor="python"), max_states=10, what="test")


def test_prefix_product_and_reverse_match_brute_force():
    rng = random.Random(5)
    short = [s for n in range(6) for s in map("".join, itertools.product("ab", repeat=n))]
    done = 0
    for _ in range(200):
        prefix, r = _random_plain(rng, 2), _random_plain(rng, 3)
        rev = dfa.reverse(r)
        for s in short:
            assert ir_match.fullmatch(rev, s) == ir_match.fullmatch(r, s[::-1]), (r, s)
        out = dfa.prefix_product(prefix, r)
        if out is None:  # an infinite prefix language
            continue
        done += 1
        assert not dfa.has_bool(out)
        for s in short:
            want = ir_match.fullmatch(r, s) and any(ir_match.fullmatch(prefix, s[:k]) for k in range(len(s) + 1))
            assert ir_match.fullmatch(out, s) == want, (prefix, r, s)
    assert done > 50


@pytest.mark.parametrize("pattern", ["^https?://", "^[a-z]{2}-", "\\.json$", "[0-9]{2}$", "^(a|b)"])
def test_pattern_anchored_at_one_end_beside_a_format_is_exact(pattern):
    """What the JSON Schema compiler builds for ``format`` + a pattern anchored at one end only (the
    derivative shortcut) matches exactly both constraints."""
    from gdecode.json_schema import formats
    from gdecode.json_schema.compile import _affix_intersection
    from gdecode.regex import analyze_regex

    fmt = formats.format_regex("uri-reference")
    pat = analyze_regex(pattern, flavor="ecma").search_regex()
    out = _affix_intersection(dfa.mk_and((pat, fmt)))
    assert out is not None and not dfa.has_bool(out)
    texts = ["http://a.b/c", "https://x.org/", "ab-cd", "x/y.json", "a.json", "12", "path/99", "a:b", "bx",
             "ab-", "https:", "q.jso", "9", ""]
    for t in texts:
        assert ir_match.fullmatch(out, t) == (ir_match.fullmatch(pat, t) and formats.check("uri-reference", t)), t
