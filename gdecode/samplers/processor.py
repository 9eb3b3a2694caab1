"""Samplers inside a logits processor (HF and vLLM): choose the token, then force it.

A logits processor sees one row of logits and must return logits. For AWRS and ASAp the processor draws the
token itself (:class:`TokenChooser`) and returns a row that is ``-inf`` everywhere except the chosen token
(:func:`force_token_`). Whatever the engine does afterwards (temperature, top-k, top-p, greedy argmax or
sampling) then returns that token, so the output follows the sampler's law exactly. The engine's own
sampling parameters therefore do not shape the distribution: the chooser applies temperature / top-k /
top-p itself (:class:`~gdecode.samplers.base.LogitsConfig`), and ``temperature = 0`` means greedy.

* ``"awrs"``: AWRS (:mod:`gdecode.samplers.awrs`) checks only the tokens it visits (one C++
  ``is_token_allowed`` call each); greedy visits tokens by decreasing logit and takes the first allowed one
  (the masked argmax, usually after one or two checks). The per-token log weight ``log Ẑ`` is summed in
  ``stats`` (the log importance weight of the whole sequence with respect to the grammar-conditioned model).
* ``"asap"``: one step of ASAp (:mod:`gdecode.samplers.asap`) with a trie that persists across samples of
  the same request kind (the processor keys tries by grammar and prompt).
* ``"mask"`` stays the processors' plain bitmask path; ``"smc"`` needs a driver that can fork and drop
  sequences (:mod:`gdecode.samplers.hf_driver`), which a logits processor cannot do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gdecode.samplers.asap import ASAp, ASApTrie
from gdecode.samplers.awrs import AWRS
from gdecode.samplers.base import LogitsConfig, MaskSampler, MatcherConstraint, process_logits, to_numpy

SAMPLERS = ("mask", "awrs", "smc", "asap")
PROCESSOR_SAMPLERS = ("mask", "awrs", "asap")       # what a logits processor can run by itself


def check_sampler(name: Any, *, processor: bool = False) -> str:
    """The sampler name, or ValueError naming the choices (``processor``: only what a processor can run)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from {list(SAMPLERS)}")
    if processor and name not in PROCESSOR_SAMPLERS:
        raise ValueError(f"sampler {name!r} cannot run inside a logits processor: SMC must fork and drop "
                         "sequences. Use gdecode.generate(..., sampler='smc') or "
                         "gdecode.samplers.hf_driver.smc_generate with a HF model")
    return name


def force_token_(row: torch.Tensor, token: int) -> None:
    """In place: ``-inf`` everywhere except ``token`` (0)."""
    row.fill_(float("-inf"))
    row[token] = 0.0


@dataclass
class ChooserStats:
    tokens: int = 0
    checks: int = 0          # single-token constraint checks (AWRS)
    masks: int = 0           # full masks computed (ASAp; AWRS past max_rejects)
    log_weight: float = 0.0  # Σ log Ẑ over AWRS tokens (−inf after a dead end)
    seconds: float = 0.0     # time spent choosing
    dead_ends: int = 0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class TokenChooser:
    """Chooses tokens for ``"awrs"`` / ``"asap"`` rows. ``temperature = 0``: greedy. ``max_tokens`` (ASAp):
    the generation budget, so the trie learns that the last position allows only EOS. One instance per
    processor (not thread-safe: AWRS reuses buffers)."""

    sampler: str
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    estimator: str = "recursive"
    max_rejects: int | None = None
    tries: dict[Any, ASApTrie] = field(default_factory=dict)
    stats: ChooserStats = field(default_factory=ChooserStats)

    def __post_init__(self) -> None:
        if self.sampler not in ("awrs", "asap"):
            raise ValueError(f"TokenChooser runs 'awrs' or 'asap', not {self.sampler!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        self.rng = np.random.default_rng(self.seed)
        self.awrs = AWRS(self.estimator, self.max_rejects)
        self.config = LogitsConfig(self.temperature or 1.0, self.top_k, self.top_p)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def trie(self, key: Any) -> ASApTrie:
        t = self.tries.get(key)
        if t is None:
            t = self.tries[key] = ASApTrie()
        return t

    def choose(self, logits: Any, matcher: Any, prefix: Sequence[int], trie_key: Any = None) -> int:
        """The token for one row: ``logits`` of the row (any width ≥ the grammar's vocab), ``matcher`` the
        grammar state after ``prefix`` (the tokens this sample generated so far)."""
        import time

        t0 = time.perf_counter()
        c = MatcherConstraint(matcher)
        eos = c.eos_token_ids[0]
        if matcher.is_terminated():
            tok = eos
        elif self.sampler == "awrs":
            tok = self._awrs(logits, c)
        else:
            tok = self._asap(logits, c, prefix, trie_key)
        if tok < 0:
            # Dead end for the sampler (ASAp at its token budget, AWRS when the processed distribution puts
            # no mass on any allowed token): fall back to the grammar mask over the raw logits. Forcing EOS
            # here would hand the caller incomplete text that looks finished; this way the row goes on under
            # the grammar (and is cut by the caller's length limit, visibly). EOS only if the grammar allows
            # nothing else.
            self.stats.dead_ends += 1
            tok = self._masked_fallback(logits, c)
            if tok < 0:
                tok = eos
        self.stats.tokens += 1
        self.stats.seconds += time.perf_counter() - t0
        return tok

    # --------------------------------------------------------------------------------------- samplers
    def _awrs(self, logits: Any, c: MatcherConstraint) -> int:
        x = to_numpy(logits).reshape(-1)[: c.vocab_size]
        if self.greedy:
            return self._greedy_first_allowed(x, c)
        plain = self.temperature == 1.0 and not self.top_k and (self.top_p is None or self.top_p >= 1.0)
        if plain and not np.isnan(x).any():
            # raw logits: AWRS normalizes itself, which saves a pass over the vocabulary
            s = self.awrs.sample(x, c, self.rng)
            log_weight = s.log_weight - self.awrs.last_log_total
        else:
            s = self.awrs.sample(process_logits(x, self.temperature, self.top_k, self.top_p), c, self.rng)
            log_weight = s.log_weight
        self.stats.checks += s.n_evals
        self.stats.masks += s.n_masks
        self.stats.log_weight += log_weight
        return s.token if s.log_weight > -math.inf else -1

    def _masked_fallback(self, logits: Any, c: MatcherConstraint) -> int:
        """A grammar-allowed token from the raw logits (argmax when greedy), or −1 if none is allowed."""
        x = np.asarray(to_numpy(logits), dtype=np.float64).reshape(-1)[: c.vocab_size]
        x = np.where(np.isnan(x), -np.inf, x)
        if not self.greedy:
            s = MaskSampler().sample(x, c, self.rng)
            if s.log_weight > -math.inf:
                return s.token
        allowed = np.flatnonzero(c.allowed_mask())  # greedy, or the model gives no allowed token any mass
        return int(allowed[int(np.argmax(x[allowed]))]) if allowed.size else -1

    def _greedy_first_allowed(self, x: np.ndarray, c: MatcherConstraint) -> int:
        """Masked argmax by checking tokens in decreasing logit order (chunks of 8, then 64, ...)."""
        check = c.fast_checker()
        x = np.where(np.isnan(x), -np.inf, x)
        done, chunk = 0, 8
        n = x.shape[0]
        order = np.empty(0, dtype=np.int64)
        while done < n:
            k = min(n, done + chunk)
            if k < n:
                top = np.argpartition(-x, k - 1)[:k]
                order = top[np.argsort(-x[top], kind="stable")]
            else:
                order = np.argsort(-x, kind="stable")
            for t in order[done:k].tolist():
                if x[t] == -np.inf:
                    return -1
                self.stats.checks += 1
                if check(t):
                    return int(t)
            done, chunk = k, chunk * 8
        return -1

    def _asap(self, logits: Any, c: MatcherConstraint, prefix: Sequence[int], trie_key: Any) -> int:
        x = to_numpy(logits).reshape(-1)[: c.vocab_size]
        logp = self.config(x)
        asap = ASAp(None, c, max_tokens=self.max_tokens or 2**62, logits_config=self.config,
                    trie=self.trie(trie_key))
        self.stats.masks += 1
        return asap.step(prefix, logp, c, self.rng, greedy=self.greedy)


def chooser_from_settings(sampler: str, settings: Mapping[str, Any] | None = None, **defaults: Any) -> TokenChooser:
    """A TokenChooser from a sampler name plus optional settings (``estimator``, ``max_rejects``, ``seed``,
    ``temperature``, ``top_k``, ``top_p``, ``max_tokens``); ``defaults`` fill what settings omit."""
    kw = dict(defaults)
    for k, v in (settings or {}).items():
        if k not in ("estimator", "max_rejects", "seed", "temperature", "top_k", "top_p", "max_tokens"):
            raise ValueError(f"unknown sampler setting {k!r}")
        kw[k] = v
    return TokenChooser(sampler, **kw)


__all__ = ["PROCESSOR_SAMPLERS", "SAMPLERS", "ChooserStats", "TokenChooser", "check_sampler",
           "chooser_from_settings", "force_token_"]
