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
             max_new_tokens: int = 256, temperature: float | None = None, seed: int | None = None,
             sampler_options: dict[str, Any] | None = None) -> str:
    """Generate text for ``prompt`` (plain text, e.g. after the chat template) that matches the grammar.

    Give one of ``grammar`` (Lark/GBNF text or a CompiledGrammar), ``regex`` or ``schema`` (a JSON Schema:
    dict, JSON text or Pydantic model class). ``temperature=0`` is greedy decoding; the default is 0 for the
    ``"mask"`` and ``"awrs"`` samplers and 1 for ``"smc"`` and ``"asap"``. Returns only the generated text
    (prompt excluded).

    ``sampler``: ``"mask"`` (token masking), ``"awrs"`` (adaptive weighted rejection sampling: same law as
    masking, checks only the tokens it draws), ``"asap"`` (grammar-aligned sampling; pass a
    ``sampler_options={"trie": ASApTrie}`` to keep its trie across calls) or ``"smc"`` (sequential Monte
    Carlo over ``n_particles`` particles; returns one particle drawn by weight). ``sampler_options``:
    ``n_particles``, ``ess_threshold``, ``resampling``, ``token_sampler`` (SMC); ``estimator``,
    ``max_rejects`` (AWRS); ``trie`` (ASAp); ``top_k``, ``top_p``.
    """
    from gdecode.integrations.hf import LogitsProcessor
    from gdecode.samplers.processor import check_sampler

    check_sampler(sampler)
    opts = dict(sampler_options or {})
    if temperature is None:
        temperature = 1.0 if sampler in ("smc", "asap") else 0.0
    info = tokenizer_info_for(tokenizer, logit_width(model))
    compiled = resolve_grammar(info, grammar=grammar, grammar_format=grammar_format, regex=regex, schema=schema)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    if seed is not None:
        torch.manual_seed(seed)
    eos = list(info.eos_token_ids)
    if sampler == "smc":
        return _generate_smc(model, info, inputs["input_ids"][0].tolist(), compiled, max_new_tokens,
                             temperature, seed, opts)
    top_k, top_p = opts.pop("top_k", None), opts.pop("top_p", None)
    if sampler == "mask":
        if opts:
            raise ValueError(f"sampler 'mask' takes no sampler_options, got {sorted(opts)}")
        processor = LogitsProcessor(compiled)
    else:
        trie = opts.pop("trie", None)
        opts.setdefault("seed", seed)
        if sampler == "asap":
            opts.setdefault("max_tokens", max_new_tokens)
        processor = LogitsProcessor(compiled, sampler=sampler, temperature=temperature, top_k=top_k,
                                    top_p=top_p, sampler_options=opts)
        if trie is not None:                      # the caller's trie serves this prompt
            processor.chooser.tries[(0, tuple(inputs["input_ids"][0].tolist()))] = trie
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "logits_processor": [processor]}
    if temperature > 0 and sampler == "mask":
        kwargs.update(do_sample=True, temperature=temperature, top_k=top_k or 0, top_p=top_p or 1.0)
    else:   # greedy, or the processor forces its own choice: the engine must not add randomness
        kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
    kwargs["eos_token_id"] = eos
    kwargs["pad_token_id"] = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    with torch.no_grad():
        out = model.generate(**inputs, **kwargs)
    new_ids = [t for t in out[0, inputs["input_ids"].shape[1]:].tolist() if t not in info.special_token_ids]
    return info.decode_bytes(new_ids).decode("utf-8", errors="replace")


def _generate_smc(model: Any, info: TokenizerInfo, prompt_ids: list[int], compiled: CompiledGrammar,
                  max_new_tokens: int, temperature: float, seed: int | None, opts: dict[str, Any]) -> str:
    import numpy as np

    from gdecode.samplers.hf_driver import smc_generate

    allowed = {"n_particles", "ess_threshold", "resampling", "token_sampler", "top_k", "top_p"}
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise ValueError(f"unknown sampler_options for 'smc': {unknown} (allowed: {sorted(allowed)})")
    res = smc_generate(model, prompt_ids, compiled, max_tokens=max_new_tokens, temperature=temperature,
                       seed=seed, **opts)
    w = res.normalized_weights
    if not w.sum() > 0:        # every particle hit a dead end: nothing valid to return
        from gdecode.errors import GDecodeError

        raise GDecodeError("SMC: every particle reached a dead end (no valid completion within max_new_tokens)")
    pick = int(np.random.default_rng(seed).choice(len(w), p=w / w.sum()))
    ids = [t for t in res.sequences[pick] if t not in info.special_token_ids]
    return info.decode_bytes(ids).decode("utf-8", errors="replace")
