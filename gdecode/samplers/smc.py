"""Sequential Monte Carlo over constrained generations (Lew et al. 2023; Loula et al. 2025).

Target over complete strings: ``π(y) ∝ p(y)·φ(y)·Φ(y)`` with ``p`` the processed model distribution, ``φ``
the constraint (folded into the proposal: each step draws from ``p·1[A]/Z``) and ``Φ`` an optional
*potential* hook (critic). Each particle's incremental weight is the token sampler's log weight: exact
``log Z`` (``"mask"``) or an AWRS estimate (``"awrs"``). After each step, if
``ESS < ess_threshold·N`` the particles are resampled and every log weight is reset to the log average
weight, which keeps ``exp(log_ml)`` an unbiased estimate of the normalizer (``P(φ)`` without potential).

* Forced EOS: at the last allowed position (``max_tokens`` counts EOS) the particle takes EOS with the
  IS correction ``log p(EOS)`` if EOS is allowed (else −inf): the target becomes ``π(y | |y| ≤ max_tokens)``.
* Potential: ``potential(tokens, complete) -> log weight``. With ``complete=True`` (after EOS, tokens
  without EOS) it enters the final weight. With ``complete=False`` it is a twist, only when
  ``ess_threshold > 0``: added for resampling decisions and removed at the next step.
* Dead ends (log weight −inf) are finished and never chosen again at resampling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gdecode.samplers.base import (
    NEG_INF,
    Constraint,
    LogitsConfig,
    MaskSampler,
    Model,
    TokenSampler,
    logsumexp,
    to_numpy,
)
from gdecode.samplers.resampling import get_resampler

Potential = Callable[[Sequence[int], bool], float]


@dataclass
class SMCResult:
    sequences: list[tuple[int, ...]]          # token ids, EOS included when the particle finished with it
    log_weights: np.ndarray
    eos_token_ids: tuple[int, ...]
    ess_trace: list[float] = field(default_factory=list)    # ESS after each step (before resampling)
    resampled: list[bool] = field(default_factory=list)
    n_evals: int = 0
    n_masks: int = 0

    @property
    def log_ml(self) -> float:
        """log of the unbiased estimate of the normalizer: log mean_i exp(logw_i)."""
        return logsumexp(self.log_weights) - math.log(len(self.log_weights))

    @property
    def normalized_weights(self) -> np.ndarray:
        lz = logsumexp(self.log_weights)
        if lz == NEG_INF:
            return np.zeros(len(self.log_weights))
        return np.exp(self.log_weights - lz)

    @property
    def ess(self) -> float:
        w = self.normalized_weights
        s = float(np.sum(w * w))
        return 1.0 / s if s > 0 else 0.0

    def posterior(self) -> dict[tuple[int, ...], float]:
        """Normalized weight per distinct sequence (duplicates summed, zero-weight ones dropped)."""
        out: dict[tuple[int, ...], float] = {}
        for seq, w in zip(self.sequences, self.normalized_weights, strict=True):
            if w > 0:
                out[seq] = out.get(seq, 0.0) + float(w)
        return out

    def decoded_posterior(self, decode: Callable[[Sequence[int]], bytes | str]) -> dict[str, float]:
        """Posterior over decoded strings: only EOS-terminated sequences whose decoding (``decode`` of the
        tokens without EOS; bytes must be valid UTF-8) succeeds, renormalized."""
        out: dict[str, float] = {}
        for seq, w in self.posterior().items():
            if not seq or seq[-1] not in self.eos_token_ids:
                continue
            try:
                text = decode(seq[:-1])
                if isinstance(text, bytes):
                    text = text.decode("utf-8")
            except (UnicodeDecodeError, ValueError):
                continue
            out[text] = out.get(text, 0.0) + w
        total = sum(out.values())
        return {k: v / total for k, v in out.items()} if total > 0 else {}


class _Particle:
    __slots__ = ("tokens", "constraint", "logw", "twist", "done")

    def __init__(self, tokens, constraint, logw=0.0, twist=0.0, done=False):
        self.tokens = tokens
        self.constraint = constraint
        self.logw = logw
        self.twist = twist
        self.done = done

    def copy(self, fork: bool) -> _Particle:
        return _Particle(list(self.tokens), self.constraint.fork() if fork else self.constraint,
                         self.logw, self.twist, self.done)


class SMC:
    """``SMC(token_sampler="awrs", n_particles=8, ess_threshold=0.5, max_tokens=256).run(model, constraint)``.

    ``token_sampler``: a :class:`TokenSampler` or a name (``"mask"``, ``"awrs"``, ``"awrs-two-trace"``,
    ``"ars"``); ``resampling``: ``"multinomial"``, ``"stratified"`` (default), ``"systematic"``,
    ``"residual"``. ``constraint`` is the state at the start (it is forked, not modified)."""

    name = "smc"

    def __init__(self, token_sampler: TokenSampler | str = "mask", n_particles: int = 8,
                 ess_threshold: float = 0.5, max_tokens: int = 256, resampling: str = "stratified",
                 potential: Potential | None = None, logits_config: LogitsConfig | None = None,
                 seed: int | None = None) -> None:
        from gdecode.samplers import get_token_sampler

        if n_particles < 1 or max_tokens < 1:
            raise ValueError("n_particles and max_tokens must be >= 1")
        if not 0.0 <= ess_threshold <= 1.0:
            raise ValueError("ess_threshold must be in [0, 1]")
        self.token_sampler = (get_token_sampler(token_sampler) if isinstance(token_sampler, str)
                              else token_sampler or MaskSampler())
        self.n_particles = n_particles
        self.ess_threshold = ess_threshold
        self.max_tokens = max_tokens
        self.resampling = resampling
        self._resample = get_resampler(resampling)
        self.potential = potential
        self.logits_config = logits_config or LogitsConfig()
        self.rng = np.random.default_rng(seed)

    def run(self, model: Model, constraint: Constraint) -> SMCResult:
        n = self.n_particles
        eos = tuple(constraint.eos_token_ids)
        parts = [_Particle([], constraint.fork()) for _ in range(n)]
        result = SMCResult([], np.zeros(n), eos)
        twisting = self.potential is not None and self.ess_threshold > 0
        if self.potential is not None:
            w0 = float(self.potential([], False))
            if w0 == NEG_INF:
                raise ValueError("the potential rejects the empty prefix")
        while True:
            active = [q for q in parts if not q.done]
            if not active:
                break
            logits = to_numpy(model([q.tokens for q in active]))
            for row, q in enumerate(active):
                q.logw -= q.twist
                q.twist = 0.0
                logp = self.logits_config(logits[row])
                c = q.constraint
                if self.max_tokens - len(q.tokens) <= 1:          # forced EOS
                    x = eos[0]
                    lw = logsumexp(logp[list(eos)]) if c.is_complete() else NEG_INF
                else:
                    s = self.token_sampler.sample(logp, c, self.rng)
                    x, lw = s.token, s.log_weight
                    result.n_evals += s.n_evals
                    result.n_masks += s.n_masks
                q.logw += lw
                q.tokens.append(x)
                if q.logw == NEG_INF:
                    q.done = True
                    continue
                c.advance(x)
                if x in eos:
                    q.done = True
                    if self.potential is not None:
                        q.logw += float(self.potential(q.tokens[:-1], True))
                elif twisting:
                    s_tw = float(self.potential(q.tokens, False))
                    if s_tw == NEG_INF:
                        q.logw = NEG_INF
                        q.done = True
                    else:
                        q.logw += s_tw
                        q.twist = s_tw
            logw = np.array([q.logw for q in parts])
            lz = logsumexp(logw)
            if lz == NEG_INF:
                result.ess_trace.append(0.0)
                result.resampled.append(False)
                continue
            w = np.exp(logw - lz)
            ess = 1.0 / float(np.sum(w * w))
            result.ess_trace.append(ess)
            do = ess < self.ess_threshold * n
            result.resampled.append(do)
            if do:
                anc = self._resample(w, self.rng)
                used: set[int] = set()
                new = []
                for a in anc.tolist():
                    new.append(parts[a].copy(fork=a in used))
                    used.add(a)
                parts = new
                avg = lz - math.log(n)
                for q in parts:
                    q.logw = avg
        result.sequences = [tuple(q.tokens) for q in parts]
        result.log_weights = np.array([q.logw - q.twist for q in parts])
        return result
