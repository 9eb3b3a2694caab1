"""Property tests over random regexes, grammars, schemas and vocabularies (issue 8).

Fast by default (derandomized, a few dozen examples each). For a long randomized run:

    GDECODE_FUZZ_EXAMPLES=2000 python -m pytest -q tests/test_fuzz_props.py -p no:cacheprovider

Properties: front ends raise only gdecode errors on arbitrary text; compiled regexes accept exactly what
Python's ``re.fullmatch`` accepts; a mask bit is set exactly when the token is consumable (random
vocabularies with duplicates, empty tokens and cut UTF-8); rollback and fork reproduce masks; random walks
on a compiled JSON Schema only ever produce valid documents.
"""

from __future__ import annotations

import json
import os
import random
import re

import jsonschema
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdecode as gd
from gdecode.errors import GDecodeError, UnsupportedFeatureError
from gdecode.tokenizer import TokenizerInfo

N = int(os.environ.get("GDECODE_FUZZ_EXAMPLES", "0"))
FAST = N == 0
settings.register_profile("gdecode", deadline=None, derandomize=FAST, database=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile("gdecode")


def examples(n: int) -> settings:
    return settings(max_examples=N or n)


# ------------------------------------------------------------------------------------------ strategies
ALPHABET = "ab\u00e9\u4e2d"


def _regex_strategy() -> st.SearchStrategy[str]:
    atom = st.one_of(
        st.sampled_from(["a", "b", "\u00e9", "\u4e2d", ".", "[ab]", "[^a]", "[a-\u00e9]", r"\w", r"\d"]),
    )

    def extend(inner):
        return st.one_of(
            st.tuples(inner, inner).map(lambda t: t[0] + t[1]),
            st.tuples(inner, inner).map(lambda t: f"(?:{t[0]}|{t[1]})"),
            st.tuples(inner, st.sampled_from(["*", "+", "?", "{2}", "{0,3}", "{1,}"])).map(
                lambda t: f"(?:{t[0]}){t[1]}"),
        )

    return st.recursive(atom, extend, max_leaves=8)


def _vocab(rng: random.Random) -> TokenizerInfo:
    """Random tokens over the alphabet's UTF-8 bytes: duplicates, an empty token, cut characters."""
    pieces = [c.encode() for c in ALPHABET] + [b"\xc3", b"\xa9", b"\xe4\xb8", b"\xad", b"1", b"_"]
    toks = list(pieces)
    for _ in range(rng.randrange(10, 60)):
        toks.append(b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 4))))
    toks += [toks[rng.randrange(len(toks))], b"", b"<eos>"]
    width = len(toks) + rng.randrange(0, 40)
    return TokenizerInfo.from_token_bytes(toks, eos_token_ids=[len(toks) - 1], vocab_size=width)


def _mask(m: gd.Matcher, width: int) -> np.ndarray:
    bm = gd.allocate_bitmask(1, width, backend="numpy")
    m.fill_bitmask(bm)
    return bm[0].copy()


def _allowed(row: np.ndarray, width: int) -> list[int]:
    return [t for t in range(width) if (int(row[t >> 5]) >> (t & 31)) & 1]


def _check_walk(g, seed: int, steps: int = 25) -> None:
    """At each step: mask == is_token_allowed for every id; a fork gives the same mask; then a random
    allowed token is consumed. At the end, rolling back reproduces each earlier mask."""
    rng = random.Random(seed)
    width = g.vocab_size
    m = gd.Matcher(g)
    before = []  # the mask before each consumed token
    for _ in range(steps):
        row = _mask(m, width)
        allowed = _allowed(row, width)
        assert allowed == [t for t in range(width) if m.is_token_allowed(t)]
        np.testing.assert_array_equal(_mask(m.fork(), width), row)
        if not allowed or m.is_terminated():
            break
        assert m.consume_token(rng.choice(allowed))
        before.append(row)
    assert m._m.history_size == len(before)
    for row in reversed(before):
        m.rollback(1)
        np.testing.assert_array_equal(_mask(m, width), row)


# ------------------------------------------------------------------------------ robustness on any text
@examples(150)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("()[]{}|*+?.\\^$-,0123456789"),
               max_size=30))
def test_any_regex_text_compiles_or_raises_a_gdecode_error(pattern):
    tok = _vocab(random.Random(0))
    try:
        g = gd.compile_regex(pattern, tok)
    except GDecodeError:
        return
    _check_walk(g, seed=len(pattern), steps=5)


LARK_PIECES = ["start", ":", "|", '"a"', '"b"', "x", "y", "/[a-c]+/", "A", "B", "?", "*", "+", "(", ")",
               "\n", " ", "%ignore", "%import common.WS", '"é"', "->", "~", "2", "..", "[", "]", "_", ":"]


@examples(150)
@given(st.lists(st.sampled_from(LARK_PIECES), max_size=25).map(" ".join))
def test_any_lark_text_compiles_or_raises_a_gdecode_error(text):
    tok = _vocab(random.Random(1))
    try:
        g = gd.compile_lark("start: x\n" + text if "start" not in text else text, tok)
    except GDecodeError:
        return
    _check_walk(g, seed=len(text), steps=5)


_item = st.tuples(st.sampled_from(['"a"', '"b"', '"ab"', '"\u00e9"', "A", "B", "r1", "r2", "r3"]),
                  st.sampled_from(["", "", "?", "*", "+"])).map("".join)
_alt = st.lists(_item, max_size=3).map(" ".join)
_rule = st.lists(_alt, min_size=1, max_size=3).map(" | ".join)


@st.composite
def _lark_grammar(draw) -> str:
    rules = [f"r{k}: {draw(_rule)}" for k in range(4)]
    ignore = draw(st.sampled_from(["", '%ignore " "']))
    return "\n".join(["start: r0", *rules, 'A: /[ab]+/', 'B: "b" | "\u00e9"', ignore])


@examples(80)
@given(_lark_grammar(), st.integers(0, 10**6))
def test_random_lark_grammars_masks_equal_token_checks(text, seed):
    # Ambiguity, nullable rules, left/right recursion, overlapping terminals, cut UTF-8 tokens.
    tok = _vocab(random.Random(seed))
    try:
        g = gd.compile_lark(text, tok)
    except gd.GrammarError as e:  # empty languages and empty terminals are refused by name
        assert str(e)
        return
    _check_walk(g, seed)


GBNF_PIECES = ["root", "::=", "x", "y", "|", '"a"', '"b"', "[a-c]", "[^a]", "*", "+", "?", "(", ")", "\n",
               '"\\u00e9"', "{2}", "{1,3}", "."]


@examples(100)
@given(st.lists(st.sampled_from(GBNF_PIECES), max_size=20).map(" ".join))
def test_any_gbnf_text_compiles_or_raises_a_gdecode_error(text):
    tok = _vocab(random.Random(2))
    try:
        g = gd.compile_gbnf(text, tok)
    except GDecodeError:
        return
    _check_walk(g, seed=len(text), steps=5)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet="abcdefimnprstuy$#/", max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "enum", "const", "properties", "items", "required", "minimum", "maximum",
                         "minLength", "maxLength", "pattern", "anyOf", "allOf", "oneOf", "not", "$ref",
                         "minItems", "maxItems", "additionalProperties", "prefixItems", "a", "b"]),
        inner, max_size=4),
    max_leaves=12)


@examples(200)
@given(_json)
def test_any_json_value_as_schema_compiles_or_raises_a_gdecode_error(schema):
    tok = _vocab(random.Random(3))
    try:
        g = gd.compile_json_schema(schema, tok)
    except GDecodeError:
        return
    _check_walk(g, seed=7, steps=5)


# ------------------------------------------------------------------------------------- exact semantics
@examples(120)
@given(_regex_strategy(), st.lists(st.text(alphabet=ALPHABET + "1_", max_size=6), min_size=1, max_size=6))
def test_regex_accepts_exactly_what_re_fullmatch_accepts(pattern, texts):
    tok = _vocab(random.Random(4))
    try:
        g = gd.compile_regex(pattern, tok)
    except gd.GrammarError as e:  # only a language without non-empty strings is refused
        assert "matches no string" in str(e)
        assert not any(t and re.fullmatch(pattern, t) for t in texts)
        return
    for text in texts:
        m = gd.Matcher(g)
        got = m.consume_bytes(text.encode()) and m.is_accepting()
        want = re.fullmatch(pattern, text) is not None and text != ""  # the empty output is never a match
        assert got == want, (pattern, text)


@examples(60)
@given(_regex_strategy(), st.integers(0, 10**6))
def test_regex_masks_equal_token_checks_on_random_vocabularies(pattern, seed):
    tok = _vocab(random.Random(seed))
    try:
        g = gd.compile_regex(pattern, tok)
    except gd.GrammarError as e:  # only the empty language is refused
        assert "matches no string" in str(e)
        return
    _check_walk(g, seed)


_schema = st.deferred(lambda: st.one_of(
    st.just({"type": "integer"}),
    st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
              st.integers(-1000, 1000), st.integers(0, 5000)),
    st.builds(lambda lo, span: {"type": "string", "minLength": lo, "maxLength": lo + span},
              st.integers(0, 3), st.integers(0, 4)),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.builds(lambda vs: {"enum": vs}, st.lists(st.sampled_from(["x", 1, None, True, "é", [1], {"a": 2}]),
                                                min_size=1, max_size=4, unique_by=json.dumps)),
    st.builds(lambda it, lo, span: {"type": "array", "items": it, "minItems": lo, "maxItems": lo + span},
              _schema, st.integers(0, 2), st.integers(0, 2)),
    st.builds(lambda props, req: {"type": "object", "properties": props,
                                  "required": [k for k in props if k in req], "additionalProperties": False},
              st.dictionaries(st.sampled_from(["a", "b", "c"]), _schema, max_size=3),
              st.sets(st.sampled_from(["a", "b", "c"]))),
    st.builds(lambda a, b: {"anyOf": [a, b]}, _schema, _schema),
))


@examples(60)
@given(_schema, st.integers(0, 10**6))
def test_random_walks_on_a_schema_produce_only_valid_documents(schema, seed):
    toks = [bytes([b]) for b in range(32, 127)] + ["é".encode(), b'{"', b'":', b"true", b"null", b"<eos>"]
    tok = TokenizerInfo.from_token_bytes(toks, eos_token_ids=[len(toks) - 1])
    try:
        g = gd.compile_json_schema(schema, tok, whitespace="compact")
    except UnsupportedFeatureError:
        return
    rng = random.Random(seed)
    m = gd.Matcher(g)
    out = b""
    eos = len(toks) - 1
    for _ in range(300):
        allowed = _allowed(_mask(m, tok.vocab_size), tok.vocab_size)
        assert allowed, f"dead end after {out!r}"
        if eos in allowed and (len(allowed) == 1 or rng.random() < 0.3):
            break
        choice = rng.choice([t for t in allowed if t != eos])
        assert m.consume_token(choice)
        out += tok.token_bytes(choice)
    else:
        return  # a long document: fine, but not complete
    assert m.is_accepting()
    jsonschema.validate(json.loads(out), schema)
