"""Running the sequence samplers (SMC) with a HuggingFace causal LM.

:class:`HFPrefixModel` turns a HF model into the samplers' batched ``model(prefixes) -> logits`` callable
with an incremental KV cache: every call's prefixes must extend the previous call's prefixes by one token
(the empty prefix is the prompt itself). Rows are matched to their parent prefix and the cache is reordered
with ``Cache.reorder_cache(index)`` (an ``index_select`` on the batch axis), which covers what SMC does
between steps: particles that finished disappear, resampled particles are duplicated. So the N particles
run as one batch of N rows, one forward step per token, with no recomputation.

:func:`smc_generate` runs :class:`~gdecode.samplers.smc.SMC` on a prompt and a compiled grammar and
returns the :class:`~gdecode.samplers.smc.SMCResult` (weighted particles, ``log_ml``, posterior).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from gdecode.samplers.base import LogitsConfig, MatcherConstraint
from gdecode.samplers.smc import SMC, SMCResult


class HFPrefixModel:
    """``model(prefixes)`` → next-token logits ``[len(prefixes), V]`` (float32, CPU) after ``prompt_ids +
    prefix``, reusing and reordering one KV cache. ``n_forward`` counts forward passes."""

    def __init__(self, model: Any, prompt_ids: Sequence[int]) -> None:
        if not len(prompt_ids):
            raise ValueError("HFPrefixModel needs a non-empty prompt")
        self.model = model
        self.prompt_ids = [int(t) for t in prompt_ids]
        self.device = next(model.parameters()).device
        self._prompt: tuple[Any, torch.Tensor] | None = None   # (cache after the prompt, its last logits)
        self._cache: Any = None
        self._rows: dict[tuple[int, ...], int] = {}             # prefix -> row of the cache
        self._logits: torch.Tensor | None = None                # last logits per cache row
        self.n_forward = 0

    @torch.no_grad()
    def _run_prompt(self) -> None:
        ids = torch.tensor([self.prompt_ids], device=self.device)
        out = self.model(input_ids=ids, use_cache=True)
        self.n_forward += 1
        self._prompt = (out.past_key_values, out.logits[:, -1, :].float())

    @torch.no_grad()
    def __call__(self, prefixes: Sequence[Sequence[int]]) -> torch.Tensor:
        keys = [tuple(int(t) for t in p) for p in prefixes]
        if all(not k for k in keys):                          # a fresh start: the prompt's cache
            if self._prompt is None:
                self._run_prompt()
            cache, logits = self._prompt
            self._cache = None                                # built lazily at the next step
            self._rows = {(): 0}
            self._logits = logits
            return logits.expand(len(keys), -1).cpu()
        if any(len(k) != len(keys[0]) for k in keys):
            raise ValueError("HFPrefixModel: all prefixes of one call must have the same length")
        try:
            parents = [self._rows[k[:-1]] for k in keys]
        except KeyError:
            raise ValueError("HFPrefixModel: a prefix does not extend the previous call's prefixes") from None
        index = torch.tensor(parents, device=self.device)
        if self._cache is None:                               # first step after the prompt: copy its cache
            import copy

            self._cache = copy.deepcopy(self._prompt[0])
        self._cache.reorder_cache(index)
        last = torch.tensor([[k[-1]] for k in keys], device=self.device)
        out = self.model(input_ids=last, past_key_values=self._cache, use_cache=True)
        self.n_forward += 1
        self._cache = out.past_key_values
        self._logits = out.logits[:, -1, :].float()
        self._rows = {}
        for i, k in enumerate(keys):
            self._rows.setdefault(k, i)
        return self._logits.cpu()


def smc_generate(model: Any, prompt_ids: Sequence[int], grammar: Any, *, n_particles: int = 8,
                 ess_threshold: float = 0.5, max_tokens: int = 256, token_sampler: str = "mask",
                 resampling: str = "stratified", temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None, potential: Any = None) -> SMCResult:
    """SMC over a HF causal LM constrained by ``grammar`` (a CompiledGrammar). ``token_sampler``: ``"mask"``
    (exact incremental weights ``Z``) or ``"awrs"`` (AWRS estimates). ``max_tokens`` counts EOS (a particle
    still running at the last position takes EOS with the IS correction, see :class:`SMC`)."""
    from gdecode.matcher import Matcher

    if not temperature > 0:
        raise ValueError("SMC samples: temperature must be > 0")
    smc = SMC(token_sampler, n_particles=n_particles, ess_threshold=ess_threshold, max_tokens=max_tokens,
              resampling=resampling, potential=potential, logits_config=LogitsConfig(temperature, top_k, top_p),
              seed=seed)
    return smc.run(HFPrefixModel(model, prompt_ids), MatcherConstraint(Matcher(grammar)))


__all__ = ["HFPrefixModel", "smc_generate"]
