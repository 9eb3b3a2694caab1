"""Shared interface of the samplers: a next-token distribution, a constraint, and token samplers.

* A **model** is a batched callable ``model(prefixes) -> array [len(prefixes), V]`` of next-token logits (or
  log-probabilities; both are fine, they are normalized here). ``V`` covers the vocabulary and the EOS ids.
* :func:`process_logits` turns one row into the distribution every sampler targets: ``softmax(logits / T)``,
  then top-k, then top-p truncation, renormalized. Sampling, importance weights, SMC marginal likelihoods
  and ASAp's stored probabilities all refer to this same processed distribution.
* A **constraint** (:class:`Constraint`) is the boolean side: ``is_allowed(t)`` (one cheap check, AWRS),
  ``allowed_mask()`` (the exact allowed set, i.e. exact ``Z``), ``advance(t)``, ``fork()``,
  ``is_complete()`` (EOS is allowed now). EOS is allowed iff the prefix is complete.
* A **token sampler** (:class:`TokenSampler`) draws one token from ``p·1[A]/Z`` and returns a log weight
  whose conditional expectation is properly weighted: ``E[w·1{x=a}] = p(a)·1[a∈A]`` (so ``E[w] = Z``).
  :class:`MaskSampler` is the exact baseline (full mask, ``w = Z``); ``awrs.AWRS`` avoids the mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

NEG_INF = float("-inf")

Model = Callable[[Sequence[Sequence[int]]], Any]
"""``model(prefixes) -> [len(prefixes), V]`` next-token logits (numpy, torch or nested lists)."""


# ---------------------------------------------------------------------------------------- numerics
def logsumexp(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return NEG_INF
    m = float(np.max(x))
    if m == NEG_INF:
        return NEG_INF
    return m + math.log(float(np.sum(np.exp(x - m))))


def to_numpy(logits: Any) -> np.ndarray:
    """float64 numpy copy of a numpy array / torch tensor / list."""
    if hasattr(logits, "detach"):
        import torch

        t = logits.detach()
        if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64):
            t = t.to("cpu", torch.float32)
        logits = t.numpy()        # numpy makes the float64 copy: torch's small ops are slow on busy CPUs
    return np.array(logits, dtype=np.float64, copy=True)


def process_logits(logits: Any, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> np.ndarray:
    """Normalized float64 log-probabilities of ``softmax(logits / temperature)`` after top-k, then top-p
    truncation (removed tokens get ``-inf``). ``top_k`` None/0 and ``top_p`` None/1 disable truncation.
    ``nan`` logits are treated as ``-inf``."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x = to_numpy(logits).reshape(-1)
    x[np.isnan(x)] = NEG_INF
    if temperature != 1.0:
        x /= temperature
    x -= logsumexp(x)
    n = x.shape[0]
    if top_k is not None and 0 < top_k < n:
        cut = np.argpartition(-x, top_k - 1)[top_k:]
        x[cut] = NEG_INF
        x -= logsumexp(x)
    if top_p is not None and top_p < 1.0:
        if not top_p > 0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        order = np.argsort(-x, kind="stable")
        cum = np.cumsum(np.exp(x[order]))
        keep = int(np.searchsorted(cum, top_p, side="left")) + 1   # smallest prefix with mass >= top_p
        x[order[keep:]] = NEG_INF
        x -= logsumexp(x)
    return x


@dataclass(frozen=True)
class LogitsConfig:
    """Temperature / top-k / top-p applied identically by every sampler (see :func:`process_logits`)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __call__(self, logits: Any) -> np.ndarray:
        return process_logits(logits, self.temperature, self.top_k, self.top_p)


# -------------------------------------------------------------------------------------- constraints
@runtime_checkable
class Constraint(Protocol):
    vocab_size: int
    eos_token_ids: tuple[int, ...]

    def is_allowed(self, token: int) -> bool: ...
    def allowed_mask(self) -> np.ndarray: ...
    def advance(self, token: int) -> None: ...
    def fork(self) -> Constraint: ...
    def is_complete(self) -> bool: ...


def token_checker(constraint: Constraint) -> Callable[[int], bool]:
    """The fastest ``token -> bool`` the constraint offers (for MatcherConstraint: the C++ method itself)."""
    fast = getattr(constraint, "fast_checker", None)
    return fast() if fast is not None else constraint.is_allowed


class MatcherConstraint:
    """A :class:`Constraint` over a :class:`gdecode.Matcher`. EOS ids (the tokenizer's) are allowed iff the
    matcher is accepting, which is what the C++ core already does for masks and ``is_token_allowed``."""

    __slots__ = ("matcher", "vocab_size", "eos_token_ids", "_bm")

    def __init__(self, matcher: Any, eos_token_ids: Iterable[int] | None = None) -> None:
        self.matcher = matcher
        tok = matcher.grammar.tokenizer
        self.vocab_size = int(matcher.grammar.vocab_size)
        self.eos_token_ids = tuple(eos_token_ids if eos_token_ids is not None else tok.eos_token_ids)
        if not self.eos_token_ids or not set(self.eos_token_ids) <= set(tok.eos_token_ids):
            raise ValueError("MatcherConstraint EOS ids must be (a subset of) the tokenizer's EOS ids")
        self._bm = None

    def fast_checker(self) -> Callable[[int], bool]:
        return self.matcher._m.is_token_allowed   # one C++ call per candidate, no Python wrapper

    def is_allowed(self, token: int) -> bool:
        return bool(self.matcher._m.is_token_allowed(int(token)))

    def allowed_mask(self) -> np.ndarray:
        from gdecode.matcher import allocate_bitmask

        if self._bm is None:
            self._bm = allocate_bitmask(1, self.vocab_size, backend="numpy")
        self.matcher.fill_bitmask(self._bm, 0)
        bits = np.unpackbits(self._bm[0].view(np.uint8), bitorder="little")[: self.vocab_size]
        return bits.astype(bool)

    def advance(self, token: int) -> None:
        if not self.matcher.consume_token(int(token)):
            raise ValueError(f"token {token} is not allowed by the grammar here")

    def fork(self) -> MatcherConstraint:
        return MatcherConstraint(self.matcher.fork(), self.eos_token_ids)

    def is_complete(self) -> bool:
        return bool(self.matcher.is_accepting())


class PredicateConstraint:
    """A toy constraint from two predicates on token tuples (EOS excluded): ``prefix_ok(tokens)`` (a viable
    prefix) and ``complete_ok(tokens)`` (a complete string; EOS allowed). After EOS only EOS is allowed."""

    def __init__(self, vocab_size: int, eos_token_id: int, prefix_ok: Callable[[tuple[int, ...]], bool],
                 complete_ok: Callable[[tuple[int, ...]], bool], tokens: tuple[int, ...] = ()) -> None:
        self.vocab_size = vocab_size
        self.eos_token_ids = (eos_token_id,)
        self.prefix_ok = prefix_ok
        self.complete_ok = complete_ok
        self.tokens = tokens
        self.finished = False
        self.n_checks = 0

    def is_allowed(self, token: int) -> bool:
        self.n_checks += 1
        if token == self.eos_token_ids[0]:
            return self.finished or bool(self.complete_ok(self.tokens))
        return not self.finished and bool(self.prefix_ok(self.tokens + (int(token),)))

    def allowed_mask(self) -> np.ndarray:
        n = self.n_checks
        m = np.array([self.is_allowed(t) for t in range(self.vocab_size)], dtype=bool)
        self.n_checks = n
        return m

    def advance(self, token: int) -> None:
        if not self.is_allowed(token):
            raise ValueError(f"token {token} is not allowed after {self.tokens}")
        if token == self.eos_token_ids[0]:
            self.finished = True
        else:
            self.tokens = self.tokens + (int(token),)

    def fork(self) -> PredicateConstraint:
        c = PredicateConstraint(self.vocab_size, self.eos_token_ids[0], self.prefix_ok, self.complete_ok,
                                self.tokens)
        c.finished = self.finished
        return c

    def is_complete(self) -> bool:
        return self.finished or bool(self.complete_ok(self.tokens))


class FiniteLanguageConstraint(PredicateConstraint):
    """The toy constraint ``L = strings`` (token tuples, without EOS)."""

    def __init__(self, strings: Iterable[Sequence[int]], vocab_size: int, eos_token_id: int) -> None:
        lang = {tuple(s) for s in strings}
        prefixes = {s[:i] for s in lang for i in range(len(s) + 1)}
        super().__init__(vocab_size, eos_token_id, prefixes.__contains__, lang.__contains__)


# ------------------------------------------------------------------------------------ token samplers
@dataclass
class TokenSample:
    token: int
    log_weight: float      # log of a properly weighted estimate of Z (−inf: dead end, token was rejected)
    n_evals: int = 0       # single-token constraint checks
    n_masks: int = 0       # full-mask computations


class TokenSampler:
    """Draws one token from ``p·1[A]/Z``; ``logp`` are (possibly unnormalized) log-probabilities and the
    log weight includes their log total, so scaling ``p`` by ``c`` scales ``E[w]`` by ``c``."""

    name = "base"

    def sample(self, logp: np.ndarray, constraint: Constraint, rng: np.random.Generator) -> TokenSample:
        raise NotImplementedError


class MaskSampler(TokenSampler):
    """Exact token masking: computes the full allowed mask; weight = exact ``Z`` (zero variance)."""

    name = "mask"

    def sample(self, logp: np.ndarray, constraint: Constraint, rng: np.random.Generator) -> TokenSample:
        mask = constraint.allowed_mask()
        masked = np.where(mask, logp, NEG_INF)
        log_z = logsumexp(masked)
        if log_z == NEG_INF:
            finite = np.flatnonzero(np.isfinite(logp))
            tok = int(finite[0]) if finite.size else 0
            return TokenSample(tok, NEG_INF, 0, 1)
        tok = int(np.argmax(masked + rng.gumbel(size=masked.shape[0])))
        return TokenSample(tok, log_z, 0, 1)


def masked_log_z(logp: np.ndarray, mask: np.ndarray) -> float:
    return logsumexp(np.where(mask, logp, NEG_INF))
