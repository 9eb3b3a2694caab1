"""Token slices (csrc/core/token_slices.hpp): lexer states that keep every plain-text token alive take those
tokens' bits at once and walk only the other tokens. These tests check the slice membership rule against
Python's UTF-8 decoder, and that masks in string states (free, maxLength counters near each slice cap,
patterns, Lark's escaped strings) still equal the brute-force reference, probing mostly the tokens the
slices leave to the walk (quotes, backslashes, control bytes, partial UTF-8, long tokens)."""

from __future__ import annotations

import random

import pytest
from reference import Reference, reference_mask
from test_grammars import tokenizer

import gdecode as gd
from gdecode import _core

SLICE_CAPS = (16, 8, 4)


def python_char_count(b: bytes) -> int:
    try:
        s = b.decode("utf-8")  # strict: rejects overlongs, surrogates, truncated sequences
    except UnicodeDecodeError:
        return -1
    if not s or any(c in '"\\\x7f' or ord(c) < 0x20 for c in s):
        return -1
    return len(s)


EDGE_CASES = [
    b"", b"a", b'"', b"\\", b"\x7f", b"\x1f", b" ", b"~", b"\xc2\x80", b"\xc1\xbf", b"\xe0\x9f\xbf",
    b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xed\xa0\x80", b"\xef\xbf\xbf", b"\xf0\x8f\xbf\xbf", b"\xf0\x90\x80\x80",
    b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xe2\x82", b"\x80", b"ab\xc3", "héllo wörld".encode(),
    "日本語テキスト".encode(), "🙂🙂".encode(), b'say "hi"', b"tab\there",
]


@pytest.mark.parametrize("tok_name", ["gpt2", "llama2"])
def test_slice_char_count_matches_python_utf8(tok_name):
    _, info = tokenizer(tok_name)
    tokens = [info.token_bytes(i) for i in range(info.tokenizer_size)] + EDGE_CASES
    got = [_core.slice_char_count(b) for b in tokens]
    want = [python_char_count(b) for b in tokens]
    bad = [(b, g, w) for b, g, w in zip(tokens, got, want, strict=True) if g != w]
    assert not bad, bad[:10]
    assert sum(g > 0 for g in got) > len(tokens) // 2  # most of a vocabulary is slice text


def _probe(info, engine: list[int], rng: random.Random, rest: list[int], long: list[int]) -> set[int]:
    """Ids compared at one step: what the walk covers (not-slice and long tokens), allowed ones, random."""
    return (set(rng.sample(rest, min(400, len(rest)))) | set(rng.sample(long, min(200, len(long))))
            | set(rng.sample(engine, min(200, len(engine)))) | set(rng.sample(range(info.vocab_size), 200)))


def _walk_equals_reference(g: gd.CompiledGrammar, info, seed: str, steps: int, prefer: bytes = b"") -> None:
    rng = random.Random(seed)
    token_bytes = [info.token_bytes(i) for i in range(info.vocab_size)]
    counts = [_core.slice_char_count(b) for b in token_bytes]
    rest = [i for i, c in enumerate(counts) if c < 0 and token_bytes[i]]
    long = [i for i, c in enumerate(counts) if c > 4]
    excluded = info.special_token_ids - set(info.eos_token_ids)
    ref = Reference(g.grammar)
    m, walker = gd.Matcher(g), ref.start()
    for _ in range(steps):
        engine = m.allowed_tokens()
        probe = _probe(info, engine, rng, rest, long)
        probe_bytes = [token_bytes[i] if i in probe else b"" for i in range(info.vocab_size)]
        expected = reference_mask(walker, probe_bytes, eos_ids=info.eos_token_ids, excluded=excluded)
        assert {i for i in engine if i in probe} == {i for i in expected if i in probe}
        choices = [t for t in engine if t not in info.eos_token_ids]
        if not choices:
            break
        # Stay inside strings most of the time: that is where the slices apply.
        inside = [t for t in choices if prefer and prefer not in token_bytes[t]]
        t = rng.choice(inside if inside and rng.random() < 0.85 else choices)
        assert walker.feed(token_bytes[t]) and m.consume_token(t)


STRING_SCHEMAS = [
    {"type": "string"},
    {"type": "string", "maxLength": 21},   # counters that cross every slice cap (16, 8, 4) while walking
    {"type": "string", "minLength": 5, "maxLength": 9},
    {"type": "string", "maxLength": 3},
    {"type": "string", "pattern": "^[^,]{2,30}$"},
    {"type": "object", "properties": {"a": {"type": "string", "maxLength": 17}, "b": {"type": "string"}},
     "required": ["a", "b"], "additionalProperties": False},
    # Open object: keys are "a listed name or any other string", a state that tracks the names' prefixes
    # (the wider slice search and its memory of proven states).
    {"type": "object", "properties": {"twitter:card": {"type": "string"}, "twitter:site": {"type": "integer"},
                                      "title": {"type": "boolean"}, "tags": {"type": "array"}}},
    # Names with non-ASCII characters: those trie nodes leave by their own character class.
    {"type": "object", "properties": {"größe": {"type": "string"}, "grün": {"type": "integer"},
                                      "gr": {"type": "boolean"}, "日本": {"type": "string"}}},
]


@pytest.mark.parametrize("tok_name", ["gpt2", "llama2"])
@pytest.mark.parametrize("k", range(len(STRING_SCHEMAS)))
def test_string_state_masks_equal_reference(k, tok_name):
    _, info = tokenizer(tok_name)
    g = gd.compile_json_schema(STRING_SCHEMAS[k], info)
    for seed in range(3):
        _walk_equals_reference(g, info, f"{k}-{tok_name}-{seed}", steps=12, prefer=b'"')


def test_open_object_key_states_stay_small():
    """Keys of an open object leave the listed names by any non-ASCII character through one shared branch,
    not one character class per trie node (each with its own UTF-8 continuation states): the first key mask
    of an object with 60 names builds about one lexer state per name character (about ten before), so the
    slice search fits its budget and later key positions take the slice instead of walking the vocabulary."""
    _, info = tokenizer("gpt2")
    names = [f"property_{i:03d}_{'xyz'[i % 3]}" for i in range(60)]
    g = gd.compile_json_schema({"type": "object", "properties": {n: {"type": "integer"} for n in names}}, info)
    m = gd.Matcher(g)
    assert m.consume_bytes('{"')
    m.fill_bitmask(gd.allocate_bitmask(1, info.vocab_size), row=0)
    assert g._core.num_lexer_states < sum(map(len, names))


def test_lark_escaped_string_masks_equal_reference():
    _, info = tokenizer("gpt2")
    g = gd.compile_lark('start: "[" ESCAPED_STRING ("," ESCAPED_STRING)* "]"\n%import common.ESCAPED_STRING', info)
    for seed in range(3):
        _walk_equals_reference(g, info, f"lark-{seed}", steps=15)
