"""HuggingFace transformers integration: a LogitsProcessor that masks logits with gdecode matchers.

Rows are tracked by their generated token prefix, not by position, so beam search (which reorders and
duplicates rows between steps), ``num_return_sequences`` and left padding all work without hooks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor as _HFLogitsProcessor

from gdecode.bitmask import apply_bitmask_inplace
from gdecode.compiler import CompiledGrammar
from gdecode.errors import GDecodeError
from gdecode.matcher import Matcher, allocate_bitmask, fill_bitmasks
from gdecode.samplers.processor import force_token_

log = logging.getLogger(__name__)


class LogitsProcessor(_HFLogitsProcessor):
    """Constrain ``model.generate`` to a grammar.

    ``grammars``: one CompiledGrammar for every row, or one per input prompt (rows of one prompt, from
    ``num_return_sequences`` or beams, are consecutive as in transformers). Call ``reset()`` (or make a
    new processor) between ``generate`` calls.

    ``sampler``: ``"mask"`` (default: mask the logits), ``"awrs"`` or ``"asap"``. The last two choose the
    token inside the processor and force it (:mod:`gdecode.samplers.processor`); they apply
    ``temperature`` / ``top_k`` / ``top_p`` themselves (0 = greedy), so call ``generate`` with
    ``do_sample=False``. ``sampler_options``: ``seed``, ``max_tokens`` (ASAp: the max_new_tokens budget),
    ``estimator``, ``max_rejects`` (AWRS). ASAp tries persist across ``reset()``, keyed by grammar and
    prompt; ``self.chooser.stats`` counts checks and sums AWRS log weights.
    """

    def __init__(self, grammars: CompiledGrammar | Sequence[CompiledGrammar], *, sampler: str = "mask",
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 sampler_options: dict | None = None) -> None:
        from gdecode.samplers.processor import check_sampler, chooser_from_settings

        self.grammars = [grammars] if isinstance(grammars, CompiledGrammar) else list(grammars)
        if not self.grammars:
            raise ValueError("need at least one compiled grammar")
        self.sampler = check_sampler(sampler, processor=True)
        self.chooser = None if sampler == "mask" else chooser_from_settings(
            sampler, sampler_options, temperature=temperature, top_k=top_k, top_p=top_p)
        self.reset()

    def reset(self) -> None:
        self._prompt_len: int | None = None
        self._states: dict[tuple[int, tuple[int, ...]], Matcher] = {}
        self._bitmask = None

    def _grammar_index(self, row: int, batch: int) -> int:
        if len(self.grammars) == 1:
            return 0
        if batch % len(self.grammars):
            raise ValueError(f"batch of {batch} rows cannot be split over {len(self.grammars)} grammars")
        return row // (batch // len(self.grammars))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch = input_ids.shape[0]
        if self._prompt_len is None:
            self._prompt_len = input_ids.shape[1]
        generated = input_ids[:, self._prompt_len:].tolist()
        keys = [(self._grammar_index(r, batch), tuple(generated[r])) for r in range(batch)]

        # Each row continues its parent's matcher (prefix minus the last token). The last row that needs
        # a parent takes it over; the others fork, so a plain batch never copies state.
        uses: dict[tuple[int, tuple[int, ...]], int] = {}
        for g, prefix in keys:
            if prefix:
                uses[(g, prefix[:-1])] = uses.get((g, prefix[:-1]), 0) + 1
        states: dict[tuple[int, tuple[int, ...]], Matcher] = {}
        for key in keys:
            if key in states:
                continue
            g, prefix = key
            if not prefix:
                states[key] = Matcher(self.grammars[g])
                continue
            parent_key = (g, prefix[:-1])
            parent = self._states.get(parent_key)
            if parent is None:
                raise GDecodeError("gdecode LogitsProcessor: unknown row history; call reset() between generate calls")
            uses[parent_key] -= 1
            m = parent if uses[parent_key] == 0 else parent.fork()
            if not m.is_terminated() and not m.consume_token(prefix[-1]):
                # Only possible if the caller sampled a masked token; keep the row alive and finishing.
                log.warning("gdecode: token %d rejected by the grammar; row can only end now", prefix[-1])
            states[key] = m
        self._states = states
        if self.chooser is not None:
            for r, k in enumerate(keys):
                trie_key = (k[0], tuple(input_ids[r, :self._prompt_len].tolist()))
                force_token_(scores[r], self.chooser.choose(scores[r], states[k], k[1], trie_key))
            return scores

        vocab = max(g.vocab_size for g in self.grammars)
        if self._bitmask is None or self._bitmask.shape[0] < batch:
            self._bitmask = allocate_bitmask(batch, max(vocab, scores.shape[-1]))
        bitmask = self._bitmask[:batch]
        # Rows with identical history share one matcher: fill it once (a matcher is not re-entrant).
        first_row: dict[tuple[int, tuple[int, ...]], int] = {}
        for r, k in enumerate(keys):
            first_row.setdefault(k, r)
        fill_bitmasks([states[k] for k in first_row], bitmask, list(first_row.values()))
        for r, k in enumerate(keys):
            if first_row[k] != r:
                bitmask[r] = bitmask[first_row[k]]
        apply_bitmask_inplace(scores, bitmask)
        return scores
