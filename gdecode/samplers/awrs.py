"""AWRS: adaptive weighted rejection sampling (Lipkin et al., COLM 2025), without computing the mask.

Tokens are visited in descending Gumbel-key order ``log p(x) + G_x`` (Plackett–Luce order = sampling
without replacement); the constraint is checked only on visited tokens (one C++ call each for a
:class:`~gdecode.samplers.base.MatcherConstraint`: the loop body is the call, nothing else per candidate);
the first accepted token is returned. Its law is exactly ``ℓ = p·1[A]/Z`` (rejected tokens have
``ℓ = 0``). The keys are drawn for the whole vocabulary in one vectorized numpy draw and the order is
materialized lazily (:class:`GumbelOrder`: repeated argmax for the first 16 candidates, then a key
threshold + sort of the few tokens above it). Tokens with ``p = 0`` are never checked, rejected tokens
never twice.

Estimators of ``Z`` (the log weight; all properly weighted, ``E[w·1{x=a}] = p(a)·1[a∈A]``, ``E[w] = Z``):

* ``"recursive"`` (**default**). Along the order, ``Z_k = q_k·1[y_k∈A] + (1−q_k)·Z_{k+1}`` with ``q_k``
  the probability of ``y_k`` under the renormalized remainder. At the first accepted ``x`` the tail is
  estimated by one indicator on the next token in the order: ``Ẑ = p(x) + 1[next ∈ A]·(r − p(x))`` with
  ``r = 1 − (rejected mass)`` (``Ẑ = r`` if ``x`` is the last positive-mass token). At most one extra
  check; zero variance when a single token (or all but one) is allowed. Default because it needs fewer
  checks than ``"two_trace"`` on every reference fixture and usually has lower variance (not always: on
  the reference's 5-token fixture its variance is 7/72 ≈ 0.097 vs 0.090).
* ``"two_trace"``: the paper's Definition 2. A second fresh trace over the tokens not rejected by the first
  (the accepted token stays available, and is not re-checked): ``Ẑ = (1 − ψ0) / (n0 + n1 + 1)``.
* ``"none"``: plain ARS (LCD semantics): log weight 0 when a token is accepted.

``max_rejects``: after that many rejections the sampler stops checking tokens one by one, computes the full
mask once and finishes *the same trace* with it (same keys: the first allowed token among the unvisited
ones and the rejected ones before it). The token, and for ``"two_trace"``/``"none"`` the weight, are
exactly what ``max_rejects = inf`` would give; for ``"recursive"`` the weight becomes the exact ``Z``
(``r·(Z/r)`` in the recursion above: still properly weighted, zero variance). No allowed token at all ⇒ a
*rejected* token (never an allowed one such as an acceptable EOS) with log weight ``−inf``.

An ``AWRS`` instance reuses scratch buffers between calls (no page faults on 128k vocabularies): use one
instance per thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gdecode.samplers.base import (
    NEG_INF,
    Constraint,
    LogitsConfig,
    TokenSample,
    TokenSampler,
    token_checker,
)

ESTIMATORS = ("recursive", "two_trace", "none")
_ARGMAX_STEPS = 16        # the first candidates come from repeated argmax (O(V) each, no sort)
_SMALL_VOCAB = 4096       # below this, sort everything at once


class GumbelOrder:
    """The positive-mass tokens in Plackett–Luce order (sampling without replacement from ``s``).

    Keys are the exponential-race form of Gumbel keys: ``key_x = log(1 − U_x) / s_x = −E_x / s_x``
    (``E_x ~ Exp(1)``), so descending keys = ascending arrival times ``E_x/s_x`` = descending
    ``log s_x + G_x`` with ``G_x = −log E_x`` Gumbel. One vectorized draw for the whole vocabulary; the
    order is materialized lazily: ``ensure(n)`` sorts at least the first ``n`` tokens (``prefix``), by
    repeated argmax for the first few, then by a key threshold + sort of the tokens above it.
    ``s`` must be nonnegative (any scale); ``excluded`` tokens get key −inf."""

    __slots__ = ("keys", "n_finite", "prefix", "_taken")

    def __init__(self, s: np.ndarray, rng: np.random.Generator, excluded: np.ndarray | None = None,
                 n_positive: int | None = None, out: np.ndarray | None = None):
        n = s.shape[0]
        keys = rng.random(n, out=out) if out is not None else rng.random(n)
        np.subtract(1.0, keys, out=keys)                   # U in (0, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log(keys, out=keys)
            np.divide(keys, s, out=keys)
        if n_positive is None:
            n_positive = int(np.count_nonzero(s > 0))
        if n_positive < n:
            keys[~(s > 0)] = NEG_INF
        if excluded is not None and len(excluded):
            keys[excluded] = NEG_INF
            n_positive = int(np.count_nonzero(keys > NEG_INF))
        self.keys = keys
        self.n_finite = n_positive
        self.prefix = np.empty(0, dtype=np.int64)
        self._taken: list[float] = []      # keys temporarily set to −inf by the argmax stage

    def restore(self) -> None:
        """Undo the argmax stage's in-place removals (``keys`` is complete again)."""
        if self._taken:
            self.keys[self.prefix[: len(self._taken)]] = self._taken
            self._taken = []

    def ensure(self, n: int) -> None:
        have = self.prefix.shape[0]
        if n <= have or have >= self.n_finite:
            return
        keys = self.keys
        if n <= _ARGMAX_STEPS and self.n_finite > _SMALL_VOCAB:
            got = self.prefix.tolist()
            while len(got) < n:
                t = int(np.argmax(keys))
                got.append(t)
                self._taken.append(float(keys[t]))
                keys[t] = NEG_INF
            self.prefix = np.array(got, dtype=np.int64)
            return
        self.restore()
        want = min(max(n, 8 * have, 64), self.n_finite)
        if want * 4 >= self.n_finite or self.n_finite <= _SMALL_VOCAB:
            cand = np.flatnonzero(keys > NEG_INF)
        else:
            stride = max(1, keys.shape[0] // 4096)
            sub = keys[::stride]
            frac = want / self.n_finite
            while True:
                m = min(sub.shape[0] - 1, int(frac * sub.shape[0] * 2) + 2)
                thr = np.partition(sub, sub.shape[0] - 1 - m)[sub.shape[0] - 1 - m]
                cand = np.flatnonzero(keys >= thr) if thr > NEG_INF else np.flatnonzero(keys > NEG_INF)
                if cand.shape[0] >= n or thr == NEG_INF:
                    break
                frac *= 4
        self.prefix = cand[np.argsort(-keys[cand], kind="stable")]


class _MaskFinish:
    """Finishes a trace with the full mask, reproducing exactly what token-by-token checking would give."""

    def __init__(self, constraint: Constraint) -> None:
        self.mask = constraint.allowed_mask()

    def first_allowed(self, order: GumbelOrder, start: int, skip: np.ndarray | None = None):
        """From position ``start`` on: (accepted token or −1, rejected tokens before it as an array)."""
        order.restore()
        keys = order.keys.copy()
        order.ensure(start)
        keys[order.prefix[:start]] = NEG_INF               # already visited
        if skip is not None and len(skip):
            keys[skip] = NEG_INF
        cand = np.where(self.mask, keys, NEG_INF)
        a = int(np.argmax(cand))
        if cand[a] == NEG_INF:
            rejected = np.flatnonzero(keys > NEG_INF)
            return -1, rejected[np.argsort(-keys[rejected], kind="stable")]
        rejected = np.flatnonzero((keys > keys[a]) & ~self.mask)
        return a, rejected[np.argsort(-keys[rejected], kind="stable")]


def _scan(order: GumbelOrder, start: int, check: Callable[[int], bool], budget: float,
          known_ok: int = -1) -> tuple[int, int, int]:
    """Check tokens from position ``start`` until one is accepted or ``budget`` rejections happened.
    Returns (position of the accepted token or −1, position reached, number of checks)."""
    pos = start
    n_checks = 0
    while pos < order.n_finite and budget > 0:
        order.ensure(pos + 1)
        stop = order.prefix.shape[0]
        if budget < stop - pos:
            stop = pos + int(budget)
        toks = order.prefix[pos:stop].tolist()
        for j, y in enumerate(toks):                       # hot loop: one check per candidate
            if y == known_ok or check(y):
                n_checks += j + (y != known_ok)
                return pos + j, pos + j, n_checks
        n_checks += len(toks)
        budget -= len(toks)
        pos = stop
    return -1, pos, n_checks


class _Scaled:
    """``p = s·inv`` evaluated only where indexed (avoids a V-sized division per step)."""

    __slots__ = ("s", "inv")

    def __init__(self, s: np.ndarray, inv: float) -> None:
        self.s = s
        self.inv = inv

    def __getitem__(self, idx):
        return self.s[idx] * self.inv


def _dead_token(order: GumbelOrder) -> int:
    """Dead end: return a rejected token (the first in the order), never EOS unless it was rejected."""
    order.ensure(1)
    return int(order.prefix[0])


class AWRS(TokenSampler):
    """AWRS token sampler. ``estimator``: ``"recursive"`` (default), ``"two_trace"`` or ``"none"``.
    ``max_rejects``: rejections before finishing with the full mask (None = never)."""

    name = "awrs"

    def __init__(self, estimator: str = "recursive", max_rejects: int | None = None) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if max_rejects is not None and max_rejects < 0:
            raise ValueError("max_rejects must be >= 0")
        self.estimator = estimator
        self.max_rejects = math.inf if max_rejects is None else max_rejects
        self._scratch: np.ndarray | None = None            # per-instance buffers: not thread-safe
        self.last_log_total = 0.0

    # ---------------------------------------------------------------------------------------- public
    def sample_logits(self, logits, constraint: Constraint, rng: np.random.Generator,
                      config: LogitsConfig | None = None) -> TokenSample:
        """Apply temperature / top-k / top-p (:class:`LogitsConfig`) and sample."""
        return self.sample((config or LogitsConfig())(logits), constraint, rng)

    def sample(self, logp: np.ndarray, constraint: Constraint, rng: np.random.Generator) -> TokenSample:
        logp = np.asarray(logp, dtype=np.float64)
        n = logp.shape[0]
        m = float(np.max(logp)) if n else NEG_INF
        if not m > NEG_INF:
            return TokenSample(0, NEG_INF)
        if self._scratch is None or self._scratch.shape[1] != n:
            self._scratch = np.empty((3, n))               # reused: no page faults on big vocabularies
        s = np.subtract(logp, m, out=self._scratch[0])
        np.exp(s, out=s)                                   # unnormalized probabilities, max 1
        total = float(s.sum())
        log_total = m + math.log(total)
        self.last_log_total = log_total                    # callers passing raw logits normalize with it
        p = _Scaled(s, 1.0 / total)
        check = token_checker(constraint)
        order = GumbelOrder(s, rng, out=self._scratch[1])
        if self.estimator == "two_trace":
            return self._two_trace(p, order, check, constraint, rng, log_total)
        return self._one_trace(p, order, check, constraint, log_total)

    # ------------------------------------------------------------------------------------- internals
    def _one_trace(self, p, order, check, constraint, log_total) -> TokenSample:
        a, pos, n_evals = _scan(order, 0, check, self.max_rejects)
        if a >= 0:
            x = int(order.prefix[a])
            if self.estimator == "none":
                return TokenSample(x, 0.0, n_evals)
            rem = 1.0 - float(p[order.prefix[:a]].sum())
            if a + 1 < order.n_finite:
                order.ensure(a + 2)
                n_evals += 1
                z = rem if check(int(order.prefix[a + 1])) else float(p[x])
            else:
                z = rem
            return TokenSample(x, log_total + math.log(max(z, 1e-300)), n_evals)
        if pos >= order.n_finite:                          # every positive-mass token rejected
            return TokenSample(_dead_token(order), NEG_INF, n_evals)
        fin = _MaskFinish(constraint)
        x, _ = fin.first_allowed(order, pos)
        if x < 0:
            return TokenSample(_dead_token(order), NEG_INF, n_evals, 1)
        if self.estimator == "none":
            return TokenSample(x, 0.0, n_evals, 1)
        z = float(p[fin.mask].sum())                       # exact: (1 − ψ)·Z/(1 − ψ)
        return TokenSample(x, log_total + math.log(z), n_evals, 1)

    def _two_trace(self, p, order, check, constraint, rng, log_total) -> TokenSample:
        fin = None
        a, pos, n_evals = _scan(order, 0, check, self.max_rejects)
        if a >= 0:
            x = int(order.prefix[a])
            rejected = order.prefix[:a]
        elif pos >= order.n_finite:
            return TokenSample(_dead_token(order), NEG_INF, n_evals)
        else:
            fin = _MaskFinish(constraint)
            x, rest = fin.first_allowed(order, pos)
            if x < 0:
                return TokenSample(_dead_token(order), NEG_INF, n_evals, 1)
            rejected = np.concatenate([order.prefix[:pos], rest])
        n0 = int(rejected.shape[0])
        psi0 = float(p[rejected].sum())
        order2 = GumbelOrder(p.s, rng, excluded=rejected, out=self._scratch[2])
        b, pos2, ev2 = _scan(order2, 0, check, self.max_rejects - n0, known_ok=x)
        n_evals += ev2
        if b >= 0:
            n1 = b
        else:                                              # budget exhausted: finish trace 2 with the mask
            if fin is None:
                fin = _MaskFinish(constraint)
            _, rest2 = fin.first_allowed(order2, pos2)
            n1 = pos2 + int(rest2.shape[0])
        z = max(1.0 - psi0, 0.0) / (n0 + n1 + 1)
        return TokenSample(x, log_total + math.log(max(z, 1e-300)), n_evals, 0 if fin is None else 1)


# ------------------------------------------------------------------- pure versions for exact analysis
def recursive_from_order(order, p, allowed) -> tuple[int, float, int]:
    """The recursive estimator for an explicit visiting order (tests enumerate all orders).
    Returns (token or −1, Ẑ, number of checks)."""
    rem = 1.0
    for k, y in enumerate(order):
        if allowed[y]:
            if k + 1 < len(order):
                z = p[y] + (rem - p[y]) * bool(allowed[order[k + 1]])
                return y, z, k + 2
            return y, rem, k + 1
        rem -= p[y]
    return -1, 0.0, len(order)


def two_trace_from_orders(order1, order2, p, allowed) -> tuple[int, float, int]:
    """Definition 2 for explicit orders: ``order2`` is the second trace's order over the tokens not
    rejected by the first. Returns (token or −1, Ẑ, number of checks, the accepted token counted again)."""
    n0 = 0
    psi0 = 0.0
    x = -1
    for y in order1:
        if allowed[y]:
            x = y
            break
        n0 += 1
        psi0 += p[y]
    if x < 0:
        return -1, 0.0, n0
    n1 = 0
    for y in order2:
        if allowed[y]:
            break
        n1 += 1
    return x, (1.0 - psi0) / (n0 + n1 + 1), n0 + n1 + 2
