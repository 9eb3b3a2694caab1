"""One compiled grammar shared by many threads (as in a server's thread pool): lazily built lexer states,
mask caches and the state cache must give every thread exactly the single-threaded masks."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import numpy as np

import gdecode as gd
from gdecode.assets import load_hf_tokenizer

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    '{"name": "Ada Lovelace", "age": 36, "tags": ["math", "poetry"], "ok": true}',
    '[1, -2.5e3, {"k": null}, "caf\u00e9 \U0001F600", false]',
    '{"a": {"b": {"c": [[], {}, "x\\n\\u0041"]}}, "n": 0}',
]


def _walks(hf, info):
    return [hf.encode(d, add_special_tokens=False) for d in DOCS]


def _masks(grammar, ids):
    m = gd.Matcher(grammar)
    bm = gd.allocate_bitmask(1, grammar.vocab_size, backend="numpy")
    out = []
    for t in ids:
        m.fill_bitmask(bm)
        out.append(bm[0].copy())
        assert m.consume_token(t)
    return out


def test_threads_share_one_grammar_and_get_identical_masks():
    hf = load_hf_tokenizer("llama3")
    info = gd.TokenizerInfo.from_huggingface(hf)
    text = (ROOT / "grammars" / "json.lark").read_text()
    walks = _walks(hf, info)
    expected = [_masks(gd.compile_lark(text, info), ids) for ids in walks]  # each on a fresh grammar

    shared = gd.compile_lark(text, info)  # cold: every thread races to build lexer states and caches
    errors: list[BaseException] = []
    results: dict[tuple[int, int], list[np.ndarray]] = {}

    def worker(k: int) -> None:
        try:
            order = list(range(len(walks)))
            random.Random(k).shuffle(order)
            for w in order:
                results[(k, w)] = _masks(shared, walks[w])
        except BaseException as e:  # surfaced in the main thread below
            errors.append(e)

    _run_threads(worker, 8)
    assert not errors, errors
    for (_k, w), masks in results.items():
        assert len(masks) == len(expected[w])
        for got, want in zip(masks, expected[w], strict=True):
            np.testing.assert_array_equal(got, want)


def test_batch_fill_with_threads_equals_row_by_row():
    hf = load_hf_tokenizer("llama3")
    info = gd.TokenizerInfo.from_huggingface(hf)
    g = gd.compile_lark((ROOT / "grammars" / "json.lark").read_text(), info)
    matchers = []
    for k, ids in enumerate(_walks(hf, info) * 4):
        m = gd.Matcher(g)
        m.consume_tokens(ids[: 3 + 2 * k])
        matchers.append(m)
    batch = gd.allocate_bitmask(len(matchers), info.vocab_size, backend="numpy")
    gd.fill_bitmasks(matchers, batch, num_threads=4)
    for row, m in enumerate(matchers):
        one = gd.allocate_bitmask(1, info.vocab_size, backend="numpy")
        m.fill_bitmask(one)
        np.testing.assert_array_equal(batch[row], one[0])


def test_threads_compile_and_mask_concurrently_with_identical_results():
    # As in a server's thread pool: requests compile their grammars (regex, JSON Schema, Lark; the same
    # ones repeatedly, racing on the vocabulary cache) while others mask, fork and roll back.
    hf = load_hf_tokenizer("llama3")
    info = gd.TokenizerInfo.from_huggingface(hf)
    specs = [
        ("regex", r"[a-z]{2,8}(-[0-9]{1,4})?"),
        ("schema", {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
                    "required": ["n"], "additionalProperties": False}),
        ("lark", (ROOT / "grammars" / "json.lark").read_text()),
    ]
    texts = ["abc-12", '{"n": 5, "s": "x"}', '{"k": [1, {"z": null}]}']

    def compile_one(kind, spec):
        if kind == "regex":
            return gd.compile_regex(spec, info)
        if kind == "schema":
            return gd.compile_json_schema(spec, info)
        return gd.compile_lark(spec, info)

    def run(kind, spec, text):
        g = compile_one(kind, spec)
        ids = hf.encode(text, add_special_tokens=False)
        masks = _masks(g, ids)
        m = gd.Matcher(g)
        m.consume_tokens(ids)
        fork = m.fork()
        m.rollback(len(ids))
        bm = gd.allocate_bitmask(1, g.vocab_size, backend="numpy")
        m.fill_bitmask(bm)
        np.testing.assert_array_equal(bm[0], masks[0])  # rolled all the way back
        return masks, fork.is_accepting()

    expected = [run(k, s, t) for (k, s), t in zip(specs, texts, strict=True)]
    errors: list[BaseException] = []
    got: list[tuple[int, tuple]] = []

    def worker(seed: int) -> None:
        try:
            rng = random.Random(seed)
            for _ in range(2):
                i = rng.randrange(len(specs))
                got.append((i, run(*specs[i], texts[i])))
        except BaseException as e:  # surfaced below
            errors.append(e)

    _run_threads(worker, 8)
    assert not errors, errors
    assert len(got) == 16
    for i, (masks, accepting) in got:
        assert accepting == expected[i][1]
        for a, b in zip(masks, expected[i][0], strict=True):
            np.testing.assert_array_equal(a, b)


def _run_threads(worker, n: int) -> None:
    """Runs worker(0) ... worker(n - 1) on n threads at once and waits for all of them."""
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
