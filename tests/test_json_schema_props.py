"""Property tests (hypothesis) of the JSON Schema compiler, both directions:

* soundness: texts sampled from a compiled grammar (random walks over the tokens its masks allow, ended
  when the matcher accepts) are JSON that ``jsonschema`` finds valid;
* exactness: for random JSON values drawn from the schemas' own vocabulary, the grammar accepts
  ``json.dumps(value)`` (and its ``indent=2`` form) exactly when ``jsonschema`` finds the value valid. With
  ``key_order="any"``, since drawn objects come in any key order.

Schemas are drawn from the keywords the compiler enforces; those it refuses are filtered out. Values avoid
the documented completeness gaps by construction: floats are never integral (``1.0`` is not an integer
lexeme) and have few digits (no exponent notation), and formats are not drawn. (``hypothesis-jsonschema``
0.23 does not run with this hypothesis version, hence the value strategy of our own.)

A byte-level vocabulary (256 bytes plus a few JSON words) keeps masks cheap.
"""

from __future__ import annotations

import json
import random

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import gdecode as gd
from gdecode.errors import GDecodeError
from gdecode.json_schema.resolve import format_checker

WORDS = [b'"a"', b'"b"', b'":', b'", "', b"null", b"true", b"false", b"[]", b"{}", b", ", b": ", b"\n  "]


@pytest.fixture(scope="module")
def tok():
    return gd.TokenizerInfo.from_token_bytes([bytes([i]) for i in range(256)] + WORDS + [b"<eos>"],
                                             eos_token_ids=256 + len(WORDS))


NAMES = ["a", "b", "c"]


def leaf() -> st.SearchStrategy:
    ints = st.integers(-20, 20)
    return st.one_of(
        st.just({}),
        st.builds(lambda t: {"type": t}, st.sampled_from(["string", "integer", "number", "boolean", "null"])),
        st.builds(lambda lo, hi: {"type": "integer", "minimum": min(lo, hi), "maximum": max(lo, hi)}, ints, ints),
        st.builds(lambda lo, span, ex: {"type": "number", "minimum" if not ex else "exclusiveMinimum": lo / 4,
                                        "maximum": lo / 4 + span / 2}, ints, st.integers(0, 20), st.booleans()),
        st.builds(lambda lo, n: {"type": "string", "minLength": lo, "maxLength": lo + n}, st.integers(0, 3),
                  st.integers(0, 4)),
        st.builds(lambda p: {"type": "string", "pattern": p}, st.sampled_from(["^[a-c]+$", "^x", "^(ab|c)*$"])),
        st.builds(lambda vs: {"enum": vs}, st.lists(st.sampled_from([1, "a", None, True, 2.5, "b", [1]]),
                                                    min_size=1, max_size=4, unique_by=json.dumps)),
        st.builds(lambda v: {"const": v}, st.sampled_from([0, "x", False, {"k": 1}])),
        st.builds(lambda m, lo: {"type": "integer", "multipleOf": m, "minimum": lo}, st.integers(2, 7), ints),
    )


def schemas() -> st.SearchStrategy:
    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        props = st.dictionaries(st.sampled_from(NAMES), children, max_size=3)
        return st.one_of(
            st.builds(lambda p, req, add: {"type": "object", "properties": p, "required": sorted(set(req) & set(p)),
                                           **({} if add is None else {"additionalProperties": add})},
                      props, st.lists(st.sampled_from(NAMES), max_size=2), st.one_of(st.none(), st.just(False),
                                                                                     children)),
            st.builds(lambda it, lo, n: {"type": "array", "items": it, "minItems": lo, "maxItems": lo + n},
                      children, st.integers(0, 2), st.integers(0, 3)),
            st.builds(lambda pre, it: {"type": "array", "prefixItems": pre, "items": it},
                      st.lists(children, min_size=1, max_size=2), st.one_of(st.just(False), children)),
            st.builds(lambda xs: {"anyOf": xs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda xs: {"allOf": xs}, st.lists(children, min_size=1, max_size=2)),
            st.just({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
            st.builds(lambda c: {"not": c}, st.sampled_from([{"type": "string"}, {"type": ["integer", "null"]},
                                                             {"required": ["a"]}, {"minimum": 3}])),
            st.builds(lambda c, t, e: {"if": c, "then": t, "else": e},
                      st.sampled_from([{"type": "string"}, {"minimum": 0}, {"required": ["a"]}]), children, children),
            st.builds(lambda vs: {"type": "array", "items": {"enum": vs}, "uniqueItems": True},
                      st.lists(st.sampled_from([1, 2, "a", None]), min_size=1, max_size=4, unique=True)),
        )

    return st.recursive(leaf(), extend, max_leaves=6)


def compile_or_none(schema, tok, **kw):
    try:
        return gd.compile_json_schema(schema, tok, **kw)
    except GDecodeError:
        return None


def validator(schema):
    return jsonschema.Draft202012Validator(schema, format_checker=format_checker())


def random_walk(g, rng: random.Random, max_tokens: int = 120) -> bytes | None:
    """Random allowed tokens, short ones preferred; once the matcher accepts, stop with rising probability.
    None when the walk did not end within ``max_tokens``."""
    tok = g.tokenizer
    m = gd.Matcher(g)
    eos = set(tok.eos_token_ids)
    out = b""
    for step in range(max_tokens):
        allowed = m.allowed_tokens()
        assert allowed, "dead end: a reachable state with no allowed token"
        if m.is_accepting() and rng.random() < 0.2 + step / max_tokens:
            return out
        non_eos = [t for t in allowed if t not in eos]
        if not non_eos:
            return out
        short = [t for t in non_eos if len(tok.token_bytes(t)) <= 2]
        closers = [t for t in non_eos if tok.token_bytes(t) in (b'"', b"}", b"]")]
        pool = closers if closers and step > max_tokens // 3 and rng.random() < 0.6 else (short or non_eos)
        t = rng.choice(pool)
        assert m.consume_token(t)
        out += tok.token_bytes(t)
    return None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=schemas(), seed=st.integers(0, 2**32 - 1))
def test_sampled_texts_validate(tok, schema, seed):
    g = compile_or_none(schema, tok, max_whitespace=2)
    assume(g is not None)
    rng = random.Random(seed)
    v = validator(schema)
    for _ in range(3):
        text = random_walk(g, rng)
        if text is None:
            continue
        value = json.loads(text.decode("utf-8"))
        assert v.is_valid(value), (schema, text)


def values() -> st.SearchStrategy:
    """JSON values from the schemas' vocabulary: keys a/b/c, small ints, quarter floats, short strings."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-25, 25),
        st.builds(lambda n, q: n + q, st.integers(-6, 6), st.sampled_from([0.25, 0.5, 0.75])),
        st.text(alphabet="abcx\"\\é\n", max_size=5), st.sampled_from(["a", "b", "ab", "x", "cab", "xab"]),
    )
    return st.recursive(scalars, lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(st.sampled_from(NAMES + ["k", "ab"]), kids, max_size=4)), max_leaves=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=schemas(), value=values())
def test_accepts_exactly_the_valid_values(tok, schema, value):
    g = compile_or_none(schema, tok, key_order="any")
    assume(g is not None)
    valid = validator(schema).is_valid(value)
    for text in (json.dumps(value, ensure_ascii=False), json.dumps(value, ensure_ascii=False, indent=2)):
        m = gd.Matcher(g)
        got = m.consume_bytes(text.encode("utf-8")) and m.is_accepting()
        assert got == valid, (schema, text, "false accept" if got else "false reject")
