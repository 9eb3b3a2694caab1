"""SMC over a vLLM engine: an outer driver that steps the particles as requests.

A vLLM logits processor cannot fork, drop or reorder sequences, so SMC runs *outside* the engine.
:class:`VLLMPrefixModel` is the samplers' ``model(prefixes) -> logits`` callable: each call submits one
request per distinct particle prefix (``prompt_ids + prefix`` as token ids, ``max_tokens=1``) and asks for
the raw log-probabilities of the whole vocabulary (``logprobs=-1``, flat format, no detokenization). vLLM's
prefix caching (on by default in V1) keeps the re-submitted prompt and particle prefixes in its KV cache, so
each step is mostly a one-token prefill per particle. The driver then does everything else itself, exactly as
with HF: the token sampler (exact mask weights or AWRS), the grammar state per particle, resampling.

Requirements and costs: the engine must be built with ``max_logprobs=-1`` (full-vocabulary logprobs);
``logprobs_mode`` must stay ``"raw_logprobs"`` (the default: the model's log-softmax before any processor);
vLLM's own structured outputs must not be active on these requests. Moving a 49k-entry logprob row per
particle per step from the engine process costs a few ms; fine for a handful of particles, not a throughput
path. What a faster driver would need from vLLM: a fork/drop API for running sequences (KV blocks shared by
reference), which V1 does not offer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gdecode.samplers.base import LogitsConfig, MatcherConstraint
from gdecode.samplers.smc import SMC, SMCResult


class VLLMPrefixModel:
    """``model(prefixes)`` → ``[len(prefixes), V]`` next-token log-probabilities after ``prompt_ids + prefix``
    from a ``vllm.LLM`` (built with ``max_logprobs=-1``). ``n_requests`` counts submitted requests."""

    def __init__(self, llm: Any, prompt_ids: Sequence[int], vocab_size: int) -> None:
        self.llm = llm
        self.prompt_ids = [int(t) for t in prompt_ids]
        self.vocab_size = int(vocab_size)
        self.n_requests = 0

    def __call__(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        from vllm import SamplingParams

        keys = [tuple(int(t) for t in p) for p in prefixes]
        distinct = list(dict.fromkeys(keys))            # resampled copies share one request
        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=-1, flat_logprobs=True, detokenize=False)
        prompts = [{"prompt_token_ids": self.prompt_ids + list(k)} for k in distinct]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        self.n_requests += len(prompts)
        rows = {}
        for k, o in zip(distinct, outs, strict=True):
            lp = o.outputs[0].logprobs
            if lp is None or not len(lp):
                raise RuntimeError("vLLM returned no logprobs: build the LLM with max_logprobs=-1")
            row = np.full(self.vocab_size, -np.inf)
            if hasattr(lp, "start_indices"):             # FlatLogprobs
                a, b = lp.start_indices[0], lp.end_indices[0]
                row[np.asarray(lp.token_ids[a:b])] = np.asarray(lp.logprobs[a:b])
            else:                                        # list[dict[token, Logprob]]
                for t, v in lp[0].items():
                    row[t] = v.logprob
            rows[k] = row
        return np.stack([rows[k] for k in keys])


def smc_generate_vllm(llm: Any, prompt_ids: Sequence[int], grammar: Any, *, n_particles: int = 8,
                      ess_threshold: float = 0.5, max_tokens: int = 256, token_sampler: str = "mask",
                      resampling: str = "stratified", temperature: float = 1.0, top_k: int | None = None,
                      top_p: float | None = None, seed: int | None = None) -> SMCResult:
    """SMC with a ``vllm.LLM`` (see the module docstring); same arguments and result as
    :func:`gdecode.samplers.hf_driver.smc_generate`. ``grammar`` is compiled for the engine's tokenizer with
    its logit width."""
    from gdecode.matcher import Matcher

    if not temperature > 0:
        raise ValueError("SMC samples: temperature must be > 0")
    smc = SMC(token_sampler, n_particles=n_particles, ess_threshold=ess_threshold, max_tokens=max_tokens,
              resampling=resampling, logits_config=LogitsConfig(temperature, top_k, top_p), seed=seed)
    return smc.run(VLLMPrefixModel(llm, prompt_ids, grammar.vocab_size), MatcherConstraint(Matcher(grammar)))


__all__ = ["VLLMPrefixModel", "smc_generate_vllm"]
