"""Pathological-input catalog (issue 8): every entry either raises a clear gdecode error naming the problem,
or succeeds within a time bound (generous: CI machines are shared) and a memory bound.

Bounds are checked around the whole case: compile plus a short walk with masks where the case is about
matching. A case that hangs shows up as a time-bound failure, a crash takes pytest down (and the
sanitizer build reports it).
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import time

import numpy as np
import pytest

import gdecode as gd
from gdecode import _core
from gdecode.compiler import Limits, core_vocabulary
from gdecode.errors import (
    GDecodeError,
    GrammarError,
    LimitExceededError,
    SchemaError,
    TokenizerError,
    UnsupportedFeatureError,
)
from gdecode.tokenizer import TokenizerInfo


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# Under `make test-asan` everything native is a few times slower and shadow memory inflates RSS.
SLACK = 4.0 if os.environ.get("GDECODE_SANITIZED") else 1.0


@contextlib.contextmanager
def bounded(seconds: float = 30.0, mb: float = 1024.0):
    """Wall time and resident-memory growth of the block must stay under the bounds."""
    seconds, mb = seconds * SLACK, mb * SLACK
    t0, m0 = time.perf_counter(), _rss_mb()
    yield
    took, grew = time.perf_counter() - t0, _rss_mb() - m0
    assert took <= seconds, f"took {took:.1f} s > {seconds} s"
    assert grew <= mb, f"resident memory grew by {grew:.0f} MB > {mb} MB"


@functools.lru_cache(maxsize=1)
def _tok() -> TokenizerInfo:
    """Every single byte plus 2,000 multi-byte ASCII tokens and EOS: realistic trie depth, fast to build."""
    rng = random.Random(8)
    toks = [bytes([b]) for b in range(256)]
    toks += [bytes(rng.randrange(32, 127) for _ in range(rng.randrange(2, 8))) for _ in range(2000)]
    toks.append(b"<eos>")
    return TokenizerInfo.from_token_bytes(toks, eos_token_ids=[len(toks) - 1])


def _walk(g, text: bytes, *, masks: bool = True) -> gd.Matcher:
    """Feeds `text` byte by byte (single-byte token ids), checking each byte is in the mask first."""
    m = gd.Matcher(g)
    bm = gd.allocate_bitmask(1, g.vocab_size, backend="numpy")
    for i, b in enumerate(text):
        if masks:
            m.fill_bitmask(bm)
            assert (int(bm[0, b >> 5]) >> (b & 31)) & 1, f"byte {i} ({bytes([b])!r}) not in the mask"
        assert m.consume_token(b), f"byte {i} ({bytes([b])!r}) rejected"
    return m


def _raises(exc, pattern: str, fn, seconds: float = 30.0):
    with bounded(seconds), pytest.raises(exc, match=pattern):
        fn()


# --------------------------------------------------------------------------------------------- regex
@pytest.mark.parametrize("pattern, text", [
    (r"(a+)+$", b"a" * 2000),
    (r"(a|aa)+", b"a" * 2000),
    (r"(a|a?)+b", b"a" * 2000 + b"b"),
    (r"^(([a-z])+.)+[A-Z]([a-z])+$", b"ab" * 500 + b"Xyz"),
    (r"(\w+\s?)+$", b"word " * 300 + b"end"),
    (r"(x+x+)+y", b"x" * 1500 + b"y"),
])
def test_redos_patterns_compile_and_match_in_linear_time(pattern, text):
    # Catastrophic backtracking patterns: a DFA-based lexer has no backtracking to blow up.
    with bounded(30):
        m = _walk(gd.compile_regex(pattern, _tok()), text)
        assert m.is_accepting()


def test_large_bounded_repeat_succeeds_within_bounds():
    with bounded(30, mb=512):
        m = _walk(gd.compile_regex(r"a{0,100000}", _tok()), b"a" * 500)
        assert m.is_accepting()


@pytest.mark.parametrize("pattern", [r"(a{0,1000}){0,1000}", r".{0,100000}", r"(ab{0,1000}c){0,1000}"])
def test_repeat_blowup_hits_the_nfa_limit(pattern):
    _raises(LimitExceededError, "max_nfa_states", lambda: gd.compile_regex(pattern, _tok()))


def test_word_exclusion_with_a_huge_finite_item_is_a_clear_limit():
    """ir.Minus checks whether its item has strings beyond the words by enumerating a finite item: a product
    of two large character sets is refused by name, in bounded time and memory."""
    from gdecode import ir

    big = ir.Chars(((0x4E00, 0x4E00 + 4999),))
    words = tuple(f"w{i}" for i in range(5000))
    with bounded(30, mb=512):
        _raises(LimitExceededError, "too many strings", lambda: _core.flatten_regexes([ir.Minus(ir.Seq((big, big)),
                                                                                               words)]))


def test_absurd_repeat_count_is_rejected_by_name():
    _raises(LimitExceededError, "repeat count", lambda: gd.compile_regex(r"x{1000000000}", _tok()))


def test_deeply_nested_regex_is_rejected_not_a_stack_overflow():
    for pattern in ("(" * 5000 + "a" + ")" * 5000, "(?:" * 3000 + "a" + ")*" * 3000, "[" * 10000):
        with bounded(30), pytest.raises(GDecodeError):
            gd.compile_regex(pattern, _tok())


def test_deep_regex_trees_hash_and_compare_without_recursion():
    """Regex nodes hash and compare iteratively: equal trees nested far past Python's recursion limit, built
    apart and never hashed on the way, are equal with equal hashes; a difference at the bottom is seen."""
    from gdecode import ir

    def chain(depth: int, last: str) -> ir.Regex:
        node = ir.literal(last)
        for i in range(depth):
            node = ir.Alt((ir.EPSILON, ir.Seq((ir.literal("ab"[i % 2]), ir.Repeat(node, 0, 1)))))
        return node

    a, b, c = chain(5000, "z"), chain(5000, "z"), chain(5000, "y")
    assert hash(a) == hash(b) and a == b and a is not b
    assert a != c


def test_regex_with_10k_alternatives_succeeds():
    pattern = "|".join(f"w{i}" for i in range(10_000))
    with bounded(120, mb=1024):
        m = _walk(gd.compile_regex(pattern, _tok()), b"w9999")
        assert m.is_accepting()


@pytest.mark.parametrize("pattern", ["a\ud800b", "[\udc00-\udfff]", "\udfff"])
def test_lone_surrogates_in_patterns_fail_clearly(pattern):
    # Lone surrogates cannot be encoded as UTF-8: no byte string matches them.
    _raises(GrammarError, "surrogate|matches no string", lambda: gd.compile_regex(pattern, _tok()))


@pytest.mark.parametrize("pattern", ["(", "a)", "[z-a]", "a{3,1}", "*a", "(?P<x>a)(?P=y)", "\\"])
def test_malformed_regexes_name_the_problem(pattern):
    with bounded(10), pytest.raises(GrammarError) as info:
        gd.compile_regex(pattern, _tok())
    assert str(info.value), "empty error message"


# ---------------------------------------------------------------------------------------- JSON Schema
def _schema(schema, **kw):
    return gd.compile_json_schema(schema, _tok(), **kw)


def test_enum_with_10k_values_succeeds():
    values = [f"v{i}" for i in range(10_000)]
    with bounded(120, mb=1024):
        m = _walk(_schema({"enum": values}), b'"v9999"')
        assert m.is_accepting()


def test_huge_max_length_is_capped_by_name_and_huge_min_length_refused():
    # A maxLength beyond Options.max_string_length is lowered to it with a warning naming the keyword (a
    # subset of the valid strings, never an invalid one); a minLength beyond it cannot be honoured and is
    # refused by name. Either way no 100k-state counter is built.
    with bounded(30):
        g = _schema({"type": "string", "maxLength": 100_000})
    assert any("maxLength" in w for w in g.warnings), g.warnings
    _raises(LimitExceededError, "minLength|max_string_length",
            lambda: _schema({"type": "string", "minLength": 100_000}))
    with bounded(30):
        _schema({"type": "string", "maxLength": 1000})


def test_min_items_100000_compiles_and_masks_stay_fast():
    with bounded(60, mb=512):
        g = _schema({"type": "array", "minItems": 100_000, "items": {"type": "integer"}})
        m = _walk(g, b"[" + b"1," * 500)
        assert not m.is_accepting()


def test_fifty_level_ref_chain_succeeds():
    defs = {f"d{i}": {"$ref": f"#/$defs/d{i + 1}"} for i in range(50)}
    defs["d50"] = {"type": "integer"}
    with bounded(30):
        m = _walk(_schema({"$defs": defs, "$ref": "#/$defs/d0"}), b"42")
        assert m.is_accepting()


def test_recursive_ref_without_base_case_fails_clearly():
    # Every object must contain another: no finite JSON value matches.
    _raises(GrammarError, "matches no string",
            lambda: _schema({"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}))
    _raises(GrammarError, "\\$ref", lambda: _schema({"$ref": "#"}))


def test_recursive_ref_with_base_case_matches_deep_input():
    tree = {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}},
            "additionalProperties": False}
    with bounded(60):
        text = b'{"kids":[' * 60 + b"{}" + b"]}" * 60
        m = _walk(_schema(tree, whitespace="compact"), text)
        assert m.is_accepting()


@pytest.mark.parametrize("schema", [
    {"type": "integer", "multipleOf": 7, "minimum": 0, "maximum": 10**15},
    {"type": "number", "multipleOf": 1e-9},
    {"type": "integer", "multipleOf": 10**20},
])
def test_multiple_of_ranges_fail_closed_or_compile(schema):
    with bounded(30):
        try:
            g = _schema(schema)
        except UnsupportedFeatureError as e:
            assert "multipleOf" in str(e)
        else:
            assert g.vocab_size == _tok().vocab_size


def test_huge_integer_ranges_compile():
    with bounded(30):
        g = _schema({"type": "integer", "minimum": -10**30, "maximum": 10**30})
        assert _walk(g, b"-" + b"9" * 30).is_accepting()
        m = gd.Matcher(g)
        assert not m.consume_bytes(b"1" + b"0" * 31)


def test_deeply_nested_schema_is_a_limit_not_a_crash():
    schema = functools.reduce(lambda a, _: {"type": "array", "items": a}, range(5000), {"type": "integer"})
    _raises(LimitExceededError, "nested|deep", lambda: _schema(schema), seconds=60)


@pytest.mark.parametrize("schema", [{"enum": ["a\ud800"]}, {"type": "string", "pattern": "a\ud800"},
                                    {"const": "\udfff"}])
def test_lone_surrogates_in_schemas_fail_clearly(schema):
    _raises(GrammarError, "surrogate|matches no string", lambda: _schema(schema))


@pytest.mark.parametrize("schema", [{"type": 5}, {"minimum": "x"}, {"required": "a"}, {"enum": 3},
                                    {"properties": []}, "5", "null", "[1]", "{", b"\xff", 5, None,
                                    {"$schema": ["x"]}, {"$schema": 3}, {"$schema": "http://a[b"},
                                    {"$id": "http://a[b", "type": "integer"},
                                    {"$ref": "http://x[y/#"},
                                    {"$schema": "http://json-schema.org/draft-03/schema#", "type": "object",
                                     "properties": {"a": {"type": "bo\ufffdlean"}}, "required": ["a"]}])
def test_invalid_schemas_raise_schema_error(schema):
    _raises(SchemaError, ".", lambda: _schema(schema), seconds=10)


# ------------------------------------------------------------------------------------------ grammars
def test_lark_rule_with_10k_alternatives_succeeds():
    text = "start: " + " | ".join(f'"k{i}"' for i in range(10_000))
    with bounded(120, mb=1024):
        assert _walk(gd.compile_lark(text, _tok()), b"k9876").is_accepting()


@pytest.mark.parametrize("text, pattern", [
    ("", "start|rule|empty|grammar"),
    ("start: missing", "missing"),
    ("start: start", "derives nothing|matches no string"),
    ('start: "a" start', "derives nothing|matches no string"),
    ("start: /a(?=b)/", "lookahead|lookaround|supported|(?=b)"),
])
def test_bad_lark_grammars_name_the_problem(text, pattern):
    with bounded(10), pytest.raises(GrammarError, match=pattern):
        gd.compile_lark(text, _tok())


@pytest.mark.parametrize("text", ["root ::= root", 'root ::= "a" root', "root ::= undefined", "root ::= [", ""])
def test_bad_gbnf_grammars_raise_grammar_error(text):
    with bounded(10), pytest.raises(GrammarError):
        gd.compile_gbnf(text, _tok())


def test_highly_ambiguous_grammar_is_bounded():
    # S -> S S | a: Catalan-many parses; Earley sets stay polynomial and masks are cached by state.
    with bounded(60, mb=1024):
        assert _walk(gd.compile_lark('start: start start | "a"', _tok()), b"a" * 120).is_accepting()


def test_deeply_nested_json_input_while_matching():
    g = gd.compile_lark(open(_json_lark()).read(), _tok())
    with bounded(60, mb=1024):
        m = _walk(g, b"[" * 20_000, masks=False)
        _walk(g, b"[" * 500)
        bm = gd.allocate_bitmask(1, g.vocab_size, backend="numpy")
        m.fill_bitmask(bm)
        assert (int(bm[0, ord("]") >> 5]) >> (ord("]") & 31)) & 1


def _json_lark() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[1] / "grammars" / "json.lark")


# --------------------------------------------------------------------------------------- vocabularies
def test_duplicate_and_empty_tokens():
    toks = [b"a", b"b", b"a", b"", b"ab", b"a", b"", b"<eos>"]
    tok = TokenizerInfo.from_token_bytes(toks, eos_token_ids=[7])
    g = gd.compile_regex("a+b?", tok)
    m = gd.Matcher(g)
    bm = gd.allocate_bitmask(1, tok.vocab_size, backend="numpy")
    m.fill_bitmask(bm)
    allowed = {t for t in range(tok.vocab_size) if (int(bm[0, t >> 5]) >> (t & 31)) & 1}
    assert allowed == {0, 2, 4, 5}  # every duplicate of "a", never the empty tokens
    assert not m.consume_token(3) and not m.consume_token(6)
    assert m.consume_token(2) and m.consume_token(5) and m.is_accepting()


def test_logit_width_smaller_than_tokenizer_is_rejected():
    with pytest.raises(TokenizerError, match="vocab_size 3 is smaller"):
        TokenizerInfo.from_token_bytes([b"a", b"b", b"c", b"<eos>"], eos_token_ids=[3], vocab_size=3)


def test_logit_width_larger_than_tokenizer_never_allows_the_padding():
    tok = TokenizerInfo.from_token_bytes([b"a", b"<eos>"], eos_token_ids=[1], vocab_size=100)
    g = gd.compile_regex("a+", tok)
    m = gd.Matcher(g)
    assert m.consume_token(0)
    bm = np.full((1, 4), -1, dtype=np.int32)
    m.fill_bitmask(bm)
    assert int(bm[0, 0]) & 0b11 == 0b11 and not (int(bm[0, 0]) >> 2) and not bm[0, 1:].any()


@pytest.mark.parametrize("kwargs, pattern", [
    ({"token_bytes": [], "eos_token_ids": [0]}, "empty"),
    ({"token_bytes": [b"a"], "eos_token_ids": [5]}, "EOS token id 5"),
    ({"token_bytes": [b"a", "b"], "eos_token_ids": [0]}, "expected bytes"),
    ({"token_bytes": [b"a"], "eos_token_ids": [0], "vocab_size": -1}, "smaller"),
])
def test_malformed_vocabularies(kwargs, pattern):
    with pytest.raises(TokenizerError, match=pattern):
        TokenizerInfo.from_token_bytes(**kwargs)


def test_matcher_rejects_out_of_range_ids_and_bad_bitmasks():
    g = gd.compile_regex("a+", _tok())
    m = gd.Matcher(g)
    v = g.vocab_size
    for t in (v, v + 1, 2**31):
        assert not m.consume_token(t) and not m.is_token_allowed(t)
    with pytest.raises((TypeError, OverflowError, ValueError)):
        m.consume_token(-1)
    with pytest.raises((TypeError, ValueError)):
        m.fill_bitmask(np.zeros((1, 3), dtype=np.int32))  # too narrow
    # A wrong dtype or a strided view must raise: an implicit converted copy would take the mask and be
    # dropped, leaving the caller's array stale (a silently unconstrained mask).
    with pytest.raises((TypeError, ValueError)):
        m.fill_bitmask(np.full((1, 100), -1, dtype=np.int64))
    with pytest.raises((TypeError, ValueError)):
        m.fill_bitmask(np.full((1, 200), -1, dtype=np.int32)[:, ::2])
    with pytest.raises((TypeError, ValueError)):
        gd.fill_bitmasks([m], np.full((1, 100), -1, dtype=np.int64))
    with pytest.raises((IndexError, ValueError)):
        m.fill_bitmask(gd.allocate_bitmask(1, v, backend="numpy"), row=1)
    assert m._m.history_size == 0


# ------------------------------------------------------------------------------------------ limits
def test_limits_validate_their_values():
    with pytest.raises(ValueError, match="max_rollback"):
        Limits(max_rollback=-1)
    with pytest.raises(TypeError, match="max_dfa_states"):
        Limits(max_dfa_states="many")


def test_rollback_depth_is_bounded():
    tok = _tok()
    g = gd.compile_regex("a*", tok, limits=Limits(max_rollback=4))
    m = gd.Matcher(g)
    assert m.consume_tokens([ord("a")] * 10) == 10
    with pytest.raises(LimitExceededError, match="max_rollback=4"):
        m.rollback(5)
    m.rollback(4)
    assert m._m.history_size == 0


def test_compile_time_budget_in_python():
    values = [f"value{i}" for i in range(3000)]
    _raises(LimitExceededError, "max_compile_seconds",
            lambda: _schema({"enum": values}, limits=Limits(max_compile_seconds=1e-6)), seconds=30)
    _raises(LimitExceededError, "max_compile_seconds",
            lambda: gd.compile_regex("|".join(values), _tok(), limits=Limits(max_compile_seconds=1e-6)))


def test_compile_time_budget_in_the_core():
    # Repeat(Chars 'a', 0, 50000) built by the C++ core with a budget that is already spent.
    lim = Limits().to_core()
    lim.max_compile_seconds = 1e-9
    flat = [0, 1, 97, 97, 4, 0, 0, 50_000]
    with pytest.raises(LimitExceededError, match=r"max_compile_seconds.*lexer NFA"):
        _core.CompiledGrammar(core_vocabulary(_tok()), flat, [1], [0], [[]], 1, [1], [[0]], 1, lim)


def test_chart_limit_during_matching_leaves_the_matcher_unchanged():
    g = gd.compile_lark('start: start start | "a"', _tok(), limits=Limits(max_chart_items=2_000))
    m = gd.Matcher(g)
    bm = gd.allocate_bitmask(1, g.vocab_size, backend="numpy")
    consumed = 0
    with pytest.raises(LimitExceededError, match="max_chart_items"):
        for _ in range(10_000):
            m.fill_bitmask(bm)
            before = bm.copy()
            assert m.consume_token(ord("a"))
            consumed += 1
    # The failing call changed nothing: same history, same mask, and rollback still works.
    assert m._m.history_size == min(consumed, 1024)
    try:
        m.fill_bitmask(bm)
        np.testing.assert_array_equal(bm, before if m._m.history_size == consumed else bm)
    except LimitExceededError:
        pass
    m.rollback(min(5, m._m.history_size))
    m.fill_bitmask(bm)


def test_dfa_state_limit_during_matching_is_an_error_and_recoverable():
    # (a|b)*a(a|b){12}: the lazily built DFA needs 2^13 states; allow 64.
    g = gd.compile_regex(r"[ab]*a[ab]{12}", _tok(), limits=Limits(max_dfa_states=64))
    m = gd.Matcher(g)
    rng = random.Random(1)
    with pytest.raises(LimitExceededError, match="max_dfa_states=64"):
        for _ in range(5000):
            h = m._m.history_size
            tok = rng.choice(b"ab")
            assert m.consume_token(tok)
            assert m._m.history_size == h + 1
    h = m._m.history_size
    with contextlib.suppress(LimitExceededError):
        m.consume_token(ord("a"))
    assert m._m.history_size in (h, h + 1)
    m.rollback(m._m.history_size)
    assert m.consume_token(ord("a"))  # states built before the limit are still usable


def test_mask_cache_budget_keeps_masks_correct():
    text = open(_json_lark()).read()
    small = gd.compile_lark(text, _tok(), limits=Limits(mask_cache_bytes=0, state_cache_bytes=0))
    big = gd.compile_lark(text, _tok())
    doc = b'{"a": [1, 2.5, {"b": null}], "c": "x"}'
    a, b = gd.Matcher(small), gd.Matcher(big)
    ba, bb = (gd.allocate_bitmask(1, small.vocab_size, backend="numpy") for _ in range(2))
    for byte in doc:
        a.fill_bitmask(ba)
        b.fill_bitmask(bb)
        np.testing.assert_array_equal(ba, bb)
        assert a.consume_token(byte) and b.consume_token(byte)


def test_error_messages_are_not_empty():
    # A sample of the cases above: every message says what went wrong.
    for fn in (lambda: gd.compile_regex("(", _tok()), lambda: _schema({"type": 5}),
               lambda: gd.compile_regex(r"(a{0,1000}){0,1000}", _tok())):
        with pytest.raises(GDecodeError) as info:
            fn()
        assert re.search(r"\w{3,}", str(info.value))


def test_derivative_automata_bound_the_distinct_nodes_of_their_states():
    """build_dfa counts each node of its states once (states share subtrees) against max_total_size."""
    from gdecode import _regex_dfa as dfa
    from gdecode.errors import UnsupportedFeatureError
    from gdecode.regex import parse_regex

    r = dfa.mk_and((parse_regex("[a-z]{0,40}x", flavor="python"), parse_regex(".*[aeiou].*", flavor="python")))
    counted: set[int] = set()
    shared = dfa.mk_seq((r, r))
    assert dfa._new_nodes(shared, counted) == dfa._new_nodes(shared, set()) and dfa._new_nodes(shared, counted) == 0
    d = dfa.build_dfa(r)
    assert len(d.edges) > 40
    with pytest.raises(UnsupportedFeatureError, match="size bound"):
        dfa.build_dfa(r, max_total_size=200)
