"""HuggingFace integration (gdecode/integrations/hf.py, gdecode/generate.py) with ``model.generate``.

Fast tests use a tiny random Llama over a toy vocabulary, with a logit width larger than the vocabulary
(padding columns, as in real models): one grammar for all rows or one per prompt, left padding,
``num_return_sequences``, beam search, ``reset()`` between generations, rows that finish early. The slow ones
(``model``) run the real SmolLM2-135M-Instruct on JSONSchemaBench schemas, greedy and sampled, and validate
every output with ``jsonschema``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

import gdecode as gd
from gdecode.errors import GDecodeError
from gdecode.integrations.hf import LogitsProcessor

transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
import schema_cases  # noqa: E402

# ------------------------------------------------------------------------------------ tiny random model

CHARS = list("0123456789abcdefghijklmnopqrstuvwxyz-{}\":, ")
TOKENS = [c.encode() for c in CHARS] + [b"ab", b"12", b"xyz", b"<eos>", b"<pad>"]
EOS, PAD = len(TOKENS) - 2, len(TOKENS) - 1
V = len(TOKENS)
WIDTH = V + 19  # the model's logit width exceeds the vocabulary, like padded embedding matrices


@pytest.fixture(scope="module")
def info():
    return gd.TokenizerInfo.from_token_bytes(TOKENS, eos_token_ids=[EOS], vocab_size=WIDTH)


@pytest.fixture(scope="module")
def model():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=WIDTH, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=0, eos_token_id=EOS, pad_token_id=PAD, tie_word_embeddings=False)
    torch.manual_seed(0)
    m = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # sharper random logits, so greedy and sampled runs differ between rows
        m.lm_head.weight.mul_(20)
    return m


def decode(info, ids: list[int]) -> str:
    return info.decode_bytes([t for t in ids if t not in (EOS, PAD)]).decode()


def left_padded(prompts: list[list[int]]) -> dict[str, torch.Tensor]:
    n = max(map(len, prompts))
    ids = torch.tensor([[PAD] * (n - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (n - len(p)) + [1] * len(p) for p in prompts])
    return {"input_ids": ids, "attention_mask": mask}


def run(model, inputs, processor, **kw):
    kw.setdefault("max_new_tokens", 24)
    with torch.no_grad():
        return model.generate(**inputs, logits_processor=[processor], eos_token_id=EOS, pad_token_id=PAD, **kw)


def outputs(info, inputs, out) -> list[str]:
    n = inputs["input_ids"].shape[1]
    return [decode(info, row[n:].tolist()) for row in out]


def ended(inputs, out) -> list[bool]:
    n = inputs["input_ids"].shape[1]
    return [EOS in row[n:].tolist() for row in out]


PATTERNS = ["[a-c]{2,5}-[0-9]{1,3}", "(ab|12|xyz){1,4}", "x[0-9]{2}y", "[0-9]{1,6}"]
PROMPTS = [[1, 2, 3, 4, 5], [7], [9, 9, 2], [3, 3, 3, 3, 3, 3, 3, 3]]  # uneven: left padding


@pytest.mark.parametrize("sample", [False, True])
def test_one_grammar_all_rows_left_padding(model, info, sample):
    g = gd.compile_regex(PATTERNS[0], info)
    inputs = left_padded(PROMPTS)
    torch.manual_seed(1)
    out = run(model, inputs, LogitsProcessor(g), do_sample=sample, top_k=0 if sample else None)
    for text, done in zip(outputs(info, inputs, out), ended(inputs, out), strict=True):
        assert done and re.fullmatch(PATTERNS[0], text), text


@pytest.mark.parametrize("sample", [False, True])
def test_one_grammar_per_row(model, info, sample):
    grammars = [gd.compile_regex(p, info) for p in PATTERNS]
    inputs = left_padded(PROMPTS)
    torch.manual_seed(2)
    out = run(model, inputs, LogitsProcessor(grammars), do_sample=sample, top_k=0 if sample else None)
    texts = outputs(info, inputs, out)
    for pat, text, done in zip(PATTERNS, texts, ended(inputs, out), strict=True):
        assert done and re.fullmatch(pat, text), (pat, text)


def test_num_return_sequences(model, info):
    """Rows of one prompt are consecutive: with 2 prompts x 3 sequences, rows 0-2 follow grammar 0."""
    grammars = [gd.compile_regex(p, info) for p in PATTERNS[:2]]
    inputs = left_padded(PROMPTS[:2])
    torch.manual_seed(3)
    out = run(model, inputs, LogitsProcessor(grammars), do_sample=True, top_k=0, num_return_sequences=3)
    texts = outputs(info, inputs, out)
    assert len(texts) == 6
    for i, text in enumerate(texts):
        assert re.fullmatch(PATTERNS[i // 3], text), (i, text)
    assert len(set(texts[:3])) > 1 or len(set(texts[3:])) > 1  # really sampled, not one row copied


def test_beam_search(model, info):
    """Beam search reorders and duplicates rows between steps; every returned beam is in the language."""
    grammars = [gd.compile_regex(p, info) for p in PATTERNS[:2]]
    inputs = left_padded(PROMPTS[:2])
    out = run(model, inputs, LogitsProcessor(grammars), do_sample=False, num_beams=4, num_return_sequences=2,
              max_new_tokens=12)
    texts = outputs(info, inputs, out)
    assert len(texts) == 4
    for i, text in enumerate(texts):
        assert re.fullmatch(PATTERNS[i // 2], text), (i, text)


def test_beam_search_sampled(model, info):
    g = gd.compile_regex("(ab|12|xyz|[a-c]){1,3}-[0-9]", info)
    inputs = left_padded(PROMPTS[:1])
    torch.manual_seed(4)
    out = run(model, inputs, LogitsProcessor(g), do_sample=True, num_beams=3, num_return_sequences=3,
              max_new_tokens=12)
    for text in outputs(info, inputs, out):
        assert re.fullmatch("(ab|12|xyz|[a-c]){1,3}-[0-9]", text), text


def test_reset_between_generations(model, info):
    g = gd.compile_regex(PATTERNS[1], info)
    p = LogitsProcessor(g)
    first = left_padded(PROMPTS[:2])
    a = outputs(info, first, run(model, first, p, do_sample=False))
    # a second generate call with the same processor: without reset() its stored history cannot match
    second = left_padded(PROMPTS[2:])
    with pytest.raises(GDecodeError, match="reset"):
        run(model, second, p, do_sample=False)
    p.reset()
    b = outputs(info, second, run(model, second, p, do_sample=False))
    fresh = outputs(info, second, run(model, second, LogitsProcessor(g), do_sample=False))
    assert b == fresh
    p.reset()
    assert outputs(info, first, run(model, first, p, do_sample=False)) == a
    for text in a + b:
        assert re.fullmatch(PATTERNS[1], text), text


def test_padding_columns_and_early_finish(model, info):
    """Logit columns past the vocabulary are never allowed; a row that ends early gets pad tokens (not in
    the grammar) appended while the others continue, and stays EOS-only."""
    g = gd.compile_regex("(7|[a-z]{6,9})", info)
    scores = torch.zeros(2, WIDTH)
    LogitsProcessor(g)(torch.tensor([[1], [2]]), scores)
    assert torch.isinf(scores[:, V:]).all() and torch.isinf(scores[:, EOS]).all()
    inputs = left_padded(PROMPTS)
    torch.manual_seed(5)
    out = run(model, inputs, LogitsProcessor(g), do_sample=True, top_k=0, max_new_tokens=16)
    n = inputs["input_ids"].shape[1]
    assert out[:, n:].max() < V
    for text in outputs(info, inputs, out):
        assert re.fullmatch("(7|[a-z]{6,9})", text), text


def test_processor_grammar_count_mismatch(info):
    p = LogitsProcessor([gd.compile_regex(x, info) for x in PATTERNS[:3]])
    with pytest.raises(ValueError, match="cannot be split"):
        p(torch.zeros(4, 1, dtype=torch.long), torch.zeros(4, WIDTH))
    with pytest.raises(ValueError, match="at least one"):
        LogitsProcessor([])


def test_generate_helper_with_wider_model(model, info):
    """gdecode.generate sizes the tokenizer to the model's logit width (here wider than the tokenizer)."""
    from gdecode.generate import logit_width

    assert logit_width(model) == WIDTH


# ------------------------------------------------------------------------------------ real model: schemas


@pytest.fixture(scope="module")
def smollm():
    from gdecode.assets import load_default_model

    return load_default_model()


@pytest.fixture(scope="module")
def jsb_cases():
    return schema_cases.load_schemas_or_skip()


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.parametrize("sample", [False, True], ids=["greedy", "sampled"])
def test_real_model_jsonschemabench(smollm, jsb_cases, sample):
    """SmolLM2-135M-Instruct, all schemas of schema_cases in one left-padded batch (one grammar per row):
    every output parses and validates against its schema."""
    from gdecode.generate import logit_width, tokenizer_info_for

    model, tok = smollm
    info = tokenizer_info_for(tok, logit_width(model))
    grammars = [gd.compile_json_schema(schema, info, **schema_cases.options_for(case_id))
                for case_id, schema, _ in jsb_cases]
    prompts = [tok.apply_chat_template([{"role": "user", "content": schema_cases.user_message(schema, example)}],
                                       tokenize=False, add_generation_prompt=True)
               for _, schema, example in jsb_cases]
    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    n = max(map(len, encoded))
    pad = tok.pad_token_id if tok.pad_token_id is not None else info.eos_token_ids[0]
    inputs = {"input_ids": torch.tensor([[pad] * (n - len(e)) + e for e in encoded]),
              "attention_mask": torch.tensor([[0] * (n - len(e)) + [1] * len(e) for e in encoded])}
    kw = ({"do_sample": True, "temperature": schema_cases.SAMPLE_TEMPERATURE, "top_k": 0, "top_p": 1.0}
          if sample else {"do_sample": False})
    torch.manual_seed(1234)
    with torch.no_grad():
        out = model.generate(**inputs, logits_processor=[LogitsProcessor(grammars)],
                             max_new_tokens=schema_cases.MAX_NEW_TOKENS, eos_token_id=list(info.eos_token_ids),
                             pad_token_id=pad, **kw)
    failures = {}
    for (case_id, schema, _), row in zip(jsb_cases, out[:, n:].tolist(), strict=True):
        text = info.decode_bytes([t for t in row if t not in info.special_token_ids]).decode()
        reason = schema_cases.check_output(schema, text)
        if reason is None and not any(t in info.eos_token_ids for t in row):
            reason = "no EOS"  # unreachable for valid JSON of a closed grammar, kept as a guard
        if reason:
            failures[case_id] = (reason, text[-200:])
    assert not failures, json.dumps(failures, indent=1)


@pytest.mark.slow
@pytest.mark.model
def test_real_model_generate_helper(smollm, jsb_cases):
    """gdecode.generate, one call per schema (single row), for a few schemas, greedy and seeded sampling."""
    from gdecode.generate import logit_width, tokenizer_info_for

    model, tok = smollm
    for case_id, schema, example in jsb_cases[::8]:
        prompt = tok.apply_chat_template([{"role": "user", "content": schema_cases.user_message(schema, example)}],
                                         tokenize=False, add_generation_prompt=True)
        info = tokenizer_info_for(tok, logit_width(model))
        grammar = gd.compile_json_schema(schema, info, **schema_cases.options_for(case_id))
        for temperature in (0.0, schema_cases.SAMPLE_TEMPERATURE):
            text = gd.generate(model, tok, prompt, grammar=grammar, max_new_tokens=schema_cases.MAX_NEW_TOKENS,
                               temperature=temperature, seed=7)
            assert schema_cases.check_output(schema, text) is None, (case_id, temperature, text)
