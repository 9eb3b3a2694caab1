"""The C++ engine's masks against the brute-force reference (tests/reference.py), step by step.

Random small grammars x random small vocabularies (tokens cut mid-UTF-8, duplicates, raw-byte terminals,
special-token terminals, ignored terminals): at every step of a random walk, the engine's mask, its
acceptance and its forced bytes must equal what the reference computes by feeding every token's bytes.
"""

from __future__ import annotations

import random

import pytest
from reference import Reference, grammar_alphabet, random_grammar, random_vocab, reference_mask

from gdecode import ir
from gdecode.compiler import compile_grammar, trim
from gdecode.errors import GrammarError
from gdecode.matcher import Matcher
from gdecode.tokenizer import TokenizerInfo

SPECIAL_TEXTS = ["<sp0>", "<sp1>"]


def _setup(seed: int):
    rng = random.Random(seed)
    specials = SPECIAL_TEXTS[: rng.choice([0, 0, 1, 2])]
    grammar = random_grammar(rng, special_tokens=specials, raw_bytes=rng.random() < 0.3)
    vocab = random_vocab(rng, grammar_alphabet(grammar))
    # Specials (one more than the grammar names, which must stay disallowed) and EOS at the end.
    token_bytes = vocab + [s.encode() for s in SPECIAL_TEXTS] + [b"<eos>"]
    special_ids = list(range(len(vocab), len(token_bytes)))
    eos = len(token_bytes) - 1
    tok = TokenizerInfo.from_token_bytes(token_bytes, eos_token_ids=[eos], special_ids=special_ids,
                                         vocab_size=len(token_bytes) + rng.choice([0, 5, 40]))
    return rng, grammar, tok, token_bytes, special_ids, eos


def _reference_allowed(walker, token_bytes, special_ids, eos):
    specials = {i: token_bytes[i].decode() for i in special_ids if i != eos}
    return reference_mask(walker, token_bytes, eos_ids=[eos], special_ids=specials)


def _feed(walker, token_bytes, special_ids, eos, t):
    if t in special_ids and t != eos:
        return walker.feed_special(token_bytes[t].decode())
    return walker.feed(token_bytes[t])


@pytest.mark.parametrize("seed", range(int(__import__("os").environ.get("GDECODE_DIFF_SEEDS", "600"))))
def test_random_walk_masks_equal_reference(seed):
    rng, grammar, tok, token_bytes, special_ids, eos = _setup(seed)
    try:
        compiled = compile_grammar(grammar, tok)
    except GrammarError as e:
        assert "matches no string" in str(e)
        return
    # The engine trims rules that derive nothing; the reference interprets that same trimmed grammar.
    ref = Reference(compiled.grammar)
    walker = ref.start()
    matcher = Matcher(compiled)
    history = []
    for step in range(14):
        expected = _reference_allowed(walker, token_bytes, special_ids, eos)
        got = set(matcher.allowed_tokens())
        assert got == expected, f"seed {seed} step {step}: extra {sorted(got - expected)} missing {sorted(expected - got)}"
        assert matcher.is_accepting() == walker.can_end()
        # Every single-token check agrees with the mask.
        for t in rng.sample(range(tok.vocab_size), 8):
            assert matcher.is_token_allowed(t) == (t in expected)
        if not expected:
            break
        t = rng.choice(sorted(expected))
        if t == eos:
            assert matcher.consume_token(t) and matcher.is_terminated()
            assert matcher.allowed_tokens() == [eos]
            break
        # A rejected token leaves the state unchanged.
        bad = [i for i in range(tok.vocab_size) if i not in expected]
        if bad:
            assert not matcher.consume_token(rng.choice(bad))
        assert _feed(walker, token_bytes, special_ids, eos, t)
        history.append((walker.copy(), t))
        assert matcher.consume_token(t)
        # Occasionally roll back and continue from an earlier state.
        if len(history) > 2 and rng.random() < 0.2:
            n = rng.randint(1, len(history) - 1)
            matcher.rollback(n)
            del history[-n:]
            walker = history[-1][0].copy()


@pytest.mark.parametrize("seed", range(40))
def test_fork_is_independent(seed):
    rng, grammar, tok, token_bytes, special_ids, eos = _setup(seed + 10_000)
    try:
        compiled = compile_grammar(grammar, tok)
    except GrammarError:
        return
    m = Matcher(compiled)
    allowed = [t for t in m.allowed_tokens() if t != eos]
    if not allowed:
        return
    before = m.allowed_tokens()
    f = m.fork()
    assert f.consume_token(rng.choice(allowed))
    assert m.allowed_tokens() == before


def test_tokens_ending_mid_character():
    from gdecode import ir

    b = ir.GrammarBuilder()
    b.terminal("E", ir.Repeat(ir.literal("é"), 1, None))
    b.rule("start", [("E",)])
    tok = TokenizerInfo.from_token_bytes([b"\xc3", b"\xa9", "é".encode(), b"e", b"<eos>"], eos_token_ids=[4],
                                         special_ids=[4])
    m = Matcher(compile_grammar(b.build(), tok))
    assert m.allowed_tokens() == [0, 2]
    assert m.consume_token(0)
    assert m.allowed_tokens() == [1]
    assert not m.is_accepting()
    assert m.consume_token(1)
    assert m.allowed_tokens() == [0, 2, 4]


def test_one_prediction_adding_hundreds_of_items():
    # Predicting `item` adds 600 productions at once to a set that had a handful, and stepping over the
    # nullable `opt` then adds more items: the parser's duplicate table must grow for the whole set (a
    # regression: it once grew by one doubling and looped forever).
    from gdecode import ir

    b = ir.GrammarBuilder()
    words = [f"w{i:03d}" for i in range(600)]
    for w in words:
        b.terminal(w.upper(), ir.literal(w))
        b.rule(f"r{w}", [(w.upper(),)])
    b.terminal("COMMA", ir.literal(","))
    b.terminal("UNDERSCORE", ir.literal("_"))
    b.rule("opt", [(), ("UNDERSCORE",)])
    b.rule("item", [("opt", f"r{w}") for w in words])
    b.rule("start", [("item",), ("item", "COMMA", "start")])
    vocab = [w.encode() for w in words[:50]] + [b",", b"w", b"0", b"1", b"5", b"<eos>"]
    tok = TokenizerInfo.from_token_bytes(vocab, eos_token_ids=[len(vocab) - 1], special_ids=[len(vocab) - 1])
    m = Matcher(compile_grammar(b.build(), tok))
    for step in range(3):
        assert m.allowed_tokens() == list(range(50)) + [51]  # every whole word, or "w" to spell one out
        assert m.consume_token(step)
        assert m.allowed_tokens() == [50, len(vocab) - 1]
        assert m.consume_token(50)


@pytest.mark.parametrize("seed", range(150))
def test_forks_diverge_and_each_equals_reference(seed):
    """Forked matchers share scan memos keyed on Earley-set uids: each branch must stay exact."""
    rng, grammar, tok, token_bytes, special_ids, eos = _setup(seed + 20_000)
    try:
        compiled = compile_grammar(grammar, tok)
    except GrammarError:
        return
    ref = Reference(compiled.grammar)
    branches = [(Matcher(compiled), ref.start())]
    for _step in range(10):
        nxt = []
        for m, walker in branches:
            expected = _reference_allowed(walker, token_bytes, special_ids, eos)
            assert set(m.allowed_tokens()) == expected
            choices = sorted(expected - {eos})
            if not choices:
                continue
            if len(branches) < 4 and rng.random() < 0.4:
                f, fw = m.fork(), walker.copy()
                t = rng.choice(choices)
                assert _feed(fw, token_bytes, special_ids, eos, t) and f.consume_token(t)
                nxt.append((f, fw))
            t = rng.choice(choices)
            assert _feed(walker, token_bytes, special_ids, eos, t) and m.consume_token(t)
            nxt.append((m, walker))
        branches = nxt
        if not branches:
            break


@pytest.mark.parametrize("seed", range(60))
def test_many_walks_on_one_grammar_share_the_state_cache(seed):
    """Whole masks are cached per grammar by the chart's structural key: walks that reach equal parse
    states through different histories reuse them, and every mask must still equal the reference."""
    rng, grammar, tok, token_bytes, special_ids, eos = _setup(seed + 30_000)
    try:
        compiled = compile_grammar(grammar, tok)
    except GrammarError:
        return
    ref = Reference(compiled.grammar)
    for _walk in range(12):
        m, walker = Matcher(compiled), ref.start()
        for _step in range(10):
            expected = _reference_allowed(walker, token_bytes, special_ids, eos)
            assert set(m.allowed_tokens()) == expected
            choices = sorted(expected - {eos})
            if not choices:
                break
            t = rng.choice(choices)
            assert _feed(walker, token_bytes, special_ids, eos, t) and m.consume_token(t)


def _productive_by_sweeps(grammar) -> set[str]:
    """The textbook fixpoint (sweep every rule until nothing changes), to check trim's worklist against."""
    productive = {n for n, t in grammar.terminals.items() if t.regex != ir.NOTHING}
    changed = True
    while changed:
        changed = False
        for name, alts in grammar.rules.items():
            if name not in productive and any(all(s in productive for s in alt) for alt in alts):
                productive.add(name)
                changed = True
    return productive


@pytest.mark.parametrize("seed", range(200))
def test_trim_keeps_exactly_the_productive_reachable_rules(seed):
    """trim's linear worklist against the sweeping fixpoint on random grammars with dead rules and cycles:
    kept rules are the productive ones reachable from the start, each keeping its productive alternatives."""
    rng = random.Random(seed)
    b = ir.GrammarBuilder()
    terms = [b.terminal(f"T{i}", ir.NOTHING if i == 0 else ir.literal("ab"[i % 2])) for i in range(3)]
    names = [f"r{i}" for i in range(rng.randint(2, 12))]
    for name in names:
        alts = [tuple(rng.choice(names + terms) for _ in range(rng.randint(0, 3))) for _ in range(rng.randint(1, 3))]
        b.rule(name, [a for a in alts if a] or [(rng.choice(names),)])
    b.rule("start", [(rng.choice(names),)])
    grammar = b.build()
    productive = _productive_by_sweeps(grammar)
    if "start" not in productive:
        with pytest.raises(GrammarError, match="matches no string"):
            trim(grammar, {})
        with pytest.raises(GrammarError, match="matches no string"):  # the core's own trimming
            compile_grammar(grammar, TokenizerInfo.from_token_bytes([b"a", b"<eos>"], eos_token_ids=[1]))
        return
    kept = trim(grammar, {}, {n: t.regex != ir.NOTHING for n, t in grammar.terminals.items()})
    # the core trims by itself (compile_grammar hands it the whole grammar): the same parts
    tok = TokenizerInfo.from_token_bytes([b"a", b"b", b"ab", b"<eos>"], eos_token_ids=[3], special_ids=[3])
    core = compile_grammar(grammar, tok)._core
    assert core.num_productions == sum(len(alts) for alts in kept.rules.values()) + 1  # + S' -> start
    assert [name in kept.terminals for name in grammar.terminals] == core.used_terminals
    assert set(kept.rules) <= productive
    for name, alts in kept.rules.items():
        assert alts == [a for a in grammar.rules[name] if all(s in productive for s in a)]
    reach, stack = {"start"}, ["start"]
    while stack:
        for alt in kept.rules[stack.pop()]:
            for s in alt:
                if s not in reach:
                    reach.add(s)
                    if s in kept.rules:
                        stack.append(s)
    assert set(kept.rules) == {n for n in reach if n in grammar.rules}


@pytest.mark.parametrize("broken, message", [
    ({"rules": {"start": [("A", "missing")]}}, "undefined symbol 'missing'"),
    ({"rules": {"start": [("A",)], "A": [("A",)]}}, "both as terminal and rule"),
    ({"rules": {"other": [("A",)]}}, "start rule 'start' is not defined"),
    ({"rules": {"start": [("A", "WS")]}}, "ignored terminal 'WS'"),
])
def test_compile_grammar_names_what_is_wrong_with_a_grammar(broken, message):
    terminals = {"A": ir.Terminal("A", ir.literal("a")), "WS": ir.Terminal("WS", ir.literal(" "), ignore=True)}
    grammar = ir.Grammar(terminals=terminals, **broken)
    tok = TokenizerInfo.from_token_bytes([b"a", b" ", b"<eos>"], eos_token_ids=[2], special_ids=[2])
    with pytest.raises(GrammarError, match=message):
        compile_grammar(grammar, tok)
