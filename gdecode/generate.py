"""``gdecode.generate``: constrained generation with a HuggingFace model in one call."""

from __future__ import annotations

import weakref
from typing import Any

import torch

from gdecode.compiler import CompiledGrammar, compile_gbnf, compile_lark, compile_regex
from gdecode.tokenizer import TokenizerInfo

_INFO_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tokenizer_info_for(tokenizer: Any, vocab_size: int | None = None) -> TokenizerInfo:
    """TokenizerInfo of a HF tokenizer for a model with logit width ``vocab_size``, cached per tokenizer."""
    per_tok = _INFO_CACHE.setdefault(tokenizer, {})
    info = per_tok.get(vocab_size)
    if info is None:
        info = per_tok[vocab_size] = TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    return info


def logit_width(model: Any) -> int:
    emb = model.get_output_embeddings()
    if emb is not None and getattr(emb, "weight", None) is not None:
        return int(emb.weight.shape[0])
    return int(model.config.vocab_size)


def resolve_grammar(info: TokenizerInfo, *, grammar: str | CompiledGrammar | None = None,
                    grammar_format: str = "lark", regex: str | None = None, schema: Any = None) -> CompiledGrammar:
    if sum(x is not None for x in (grammar, regex, schema)) != 1:
        raise ValueError("give exactly one of grammar=, regex= or schema=")
    if isinstance(grammar, CompiledGrammar):
        return grammar
    if regex is not None:
        return compile_regex(regex, info)
    if schema is not None:
        from gdecode.json_schema import compile_json_schema

        return compile_json_schema(schema, info)
    if grammar_format == "lark":
        return compile_lark(grammar, info)
    if grammar_format == "gbnf":
        return compile_gbnf(grammar, info)
    raise ValueError(f"grammar_format must be 'lark' or 'gbnf', got {grammar_format!r}")


def generate(model: Any, tokenizer: Any, prompt: str, *, grammar: str | CompiledGrammar | None = None,
             grammar_format: str = "lark", regex: str | None = None, schema: Any = None, sampler: str = "mask",
             max_new_tokens: int = 256, temperature: float = 0.0, seed: int | None = None) -> str:
    """Generate text for ``prompt`` (plain text, e.g. after the chat template) that matches the grammar.

    Give one of ``grammar`` (Lark/GBNF text or a CompiledGrammar), ``regex`` or ``schema`` (a JSON Schema:
    dict, JSON text or Pydantic model class). ``temperature=0`` is greedy decoding. Returns only the generated
    text (prompt excluded).
    """
    from gdecode.integrations.hf import LogitsProcessor

    if sampler != "mask":
        raise ValueError(f"sampler {sampler!r} is not available yet; only 'mask' is implemented")
    info = tokenizer_info_for(tokenizer, logit_width(model))
    compiled = resolve_grammar(info, grammar=grammar, grammar_format=grammar_format, regex=regex, schema=schema)
    processor = LogitsProcessor(compiled)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    if seed is not None:
        torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "logits_processor": [processor]}
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
    eos = list(info.eos_token_ids)
    kwargs["eos_token_id"] = eos
    kwargs["pad_token_id"] = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    with torch.no_grad():
        out = model.generate(**inputs, **kwargs)
    new_ids = [t for t in out[0, inputs["input_ids"].shape[1]:].tolist() if t not in info.special_token_ids]
    return info.decode_bytes(new_ids).decode("utf-8", errors="replace")
