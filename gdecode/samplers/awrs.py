"""AWRS: adaptive weighted rejection sampling (Lipkin et al., COLM 2025), without computing the mask.

Tokens are visited in Plackett–Luce order (sampling without replacement from ``p``); the constraint is
checked only on visited tokens (one C++ call each for a :class:`~gdecode.samplers.base.MatcherConstraint`:
the loop body is the call, nothing else per candidate); the first accepted token is returned. Its law is
exactly ``ℓ = p·1[A]/Z`` (rejected tokens have ``ℓ = 0``). Tokens with ``p = 0`` are never checked, rejected
tokens never twice.

**The order** (:class:`PLOrder`) is built in two stages, so that a typical token costs a few cheap
vectorized passes over the vocabulary (exp, block sums) and ~10 µs per visited token, instead of V random
numbers, logs and divisions:

1. *Sequential draws* (the first ``switch_draws`` = 32 tokens): sampling without replacement by its
   definition. The sums of the unnormalized probabilities ``s`` over blocks of 256 tokens are built once
   (:func:`block_sums`); a draw takes ``u·total`` (``u`` uniform) to a block by binary search in their
   cumulative sum, then to a token by the cumulative sum of that block (inverse CDF in two levels). A
   visited token is *removed*: its weight becomes 0 in a private copy of its block and the block's sum is
   recomputed, so the next draw has probability ``s_x / Σ_{unvisited} s`` exactly and never repeats a
   token. (Redrawing visited tokens instead would be the same law, but the model is often sure of its
   next token, p > 0.99, and the recursive estimator's lookahead would then redraw ~100 times.)
2. *Gumbel stage* (:class:`GumbelOrder`), for the rare long scans: exponential-race keys are drawn for the
   unvisited tokens and the rest of the order is read from them lazily. Conditional on its first ``k``
   tokens, a Plackett–Luce order continues as a Plackett–Luce order of the other tokens, and the switch
   depends only on what was drawn so far, so the whole order has exactly the Plackett–Luce law (the law of
   the Gumbel-key order).

Float details: ``s`` and the sums are float64 whatever the logits' dtype (in float32, tokens below ~1e-7 of
the total would get no interval). A zero-mass token (or block) has an empty interval
(``searchsorted(..., side="right")`` never lands on it), and so has a removed one; block sums are
recomputed, never decremented, so a fully visited block sums to exactly 0 and the remaining total is 0
exactly when every positive-mass token was visited (the order ends). ``u ≤ 1 − 2⁻⁵³`` keeps the rounded
``u·total`` below ``total``; a draw past the end of the array or of a block (a block's sum and its own
cumulative sum may round differently) is drawn again, never indexed. Rounding in the sums moves each
interval's width by about one ulp of the total (``2⁻⁵²·total``): a probability error of that size per draw;
a positive ``s_x`` below it may get an empty interval in stage 1 and stays reachable in stage 2.

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
mask once and finishes *the same trace* with it (same random draws: the sequential stage goes on drawing
and reads the mask, the Gumbel stage takes the first allowed key). The token, and for
``"two_trace"``/``"none"`` the weight, are exactly what ``max_rejects = inf`` would give with the same
random numbers; for ``"recursive"`` the weight becomes the exact ``Z`` (``r·(Z/r)`` in the recursion
above: still properly weighted, zero variance). No allowed token at all ⇒ a *rejected* token (never an
allowed one such as an acceptable EOS) with log weight ``−inf``.

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
_BLOCK = 256              # tokens per block of the two-level cumulative sum (PLOrder)


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


def block_sums(s: np.ndarray) -> np.ndarray:
    """Sums of ``s`` (float64) over blocks of ``_BLOCK`` tokens (the last block may be shorter). The first
    level of a two-level inverse CDF: ``np.cumsum`` over the whole vocabulary is sequential (~4 ns a token,
    ~200 µs at V = 49k), block sums are vectorized (~15 µs), and a draw then sums one block (~3 µs)."""
    n = s.shape[0]
    full = n // _BLOCK
    sums = np.empty(full + (n % _BLOCK > 0))
    s[: full * _BLOCK].reshape(full, _BLOCK).sum(axis=1, out=sums[:full])
    if n % _BLOCK:
        sums[full] = s[full * _BLOCK:].sum()
    return sums


class PLOrder:
    """The positive-mass tokens of ``s`` in Plackett–Luce order: inverse-CDF draws from the unvisited tokens,
    then, after ``switch_draws`` draws, a :class:`GumbelOrder` over the rest (see the module docstring for
    why the law is exact). ``s`` must be float64 and nonnegative (any scale; it is only read); ``sums`` is
    ``block_sums(s)`` when the caller has it (copied); ``excluded`` tokens never appear.

    Positions are materialized on demand: ``ensure(n)`` returns how many exist (``< n``: the order ended),
    ``tokens(a, b)`` reads them."""

    __slots__ = ("s", "rng", "sums", "cum", "blocks", "seq", "excluded", "gumbel", "ended", "switch_draws",
                 "_out")

    def __init__(self, s: np.ndarray, rng: np.random.Generator, excluded: np.ndarray | None = None,
                 switch_draws: int = 32, out: np.ndarray | None = None, sums: np.ndarray | None = None):
        self.s, self.rng = s, rng
        self.sums = block_sums(s) if sums is None else sums.copy()
        self.blocks: dict[int, np.ndarray] = {}      # block -> its weights with the removed tokens at 0
        self.excluded = np.empty(0, dtype=np.int64) if excluded is None else np.asarray(excluded, np.int64)
        ex = self.excluded
        if ex.size:                                   # trace 2: the first trace's rejections, by block
            blk = ex // _BLOCK
            for bi in np.unique(blk).tolist():
                w = self.blocks[bi] = s[bi * _BLOCK: (bi + 1) * _BLOCK].copy()
                w[ex[blk == bi] - bi * _BLOCK] = 0.0
                self.sums[bi] = w.sum()
        self.cum = np.cumsum(self.sums)
        self.seq: list[int] = []                      # tokens of the sequential stage, in order
        self.gumbel: GumbelOrder | None = None        # the rest of the order, once switched
        self.ended = False                            # every token visited in the sequential stage
        self.switch_draws = switch_draws
        self._out = out

    def _weights(self, b: int) -> np.ndarray:
        w = self.blocks.get(b)
        return self.s[b * _BLOCK: (b + 1) * _BLOCK] if w is None else w

    def _remove(self, t: int) -> None:
        """Token ``t`` gets weight 0; its block's sum is recomputed (not decremented: no cancellation)."""
        b, j = divmod(t, _BLOCK)
        w = self.blocks.get(b)
        if w is None:
            w = self.blocks[b] = self.s[b * _BLOCK: (b + 1) * _BLOCK].copy()
        w[j] = 0.0
        self.sums[b] = w.sum()

    def _next(self) -> None:
        """One more sequential token, the switch to the Gumbel stage, or nothing (every token visited)."""
        if len(self.seq) >= self.switch_draws:
            visited = np.concatenate([self.excluded, np.array(self.seq, dtype=np.int64)])
            self.gumbel = GumbelOrder(self.s, self.rng, visited, out=self._out)
            return
        cum = self.cum
        total = float(cum[-1])
        while total > 0.0:                           # 0 exactly once every positive-mass token is removed
            t = self.rng.random() * total
            b = int(cum.searchsorted(t, side="right"))          # the block, then the token inside it
            if b >= cum.shape[0]:
                continue                                         # past the end (defensive): draw again
            if b:
                t -= cum[b - 1]                                  # >= 0: rounding is monotone
            w = self._weights(b)
            j = int(np.cumsum(w).searchsorted(t, side="right"))
            if j >= w.shape[0]:
                continue                                         # rounding past the block's end: again
            i = b * _BLOCK + j
            self.seq.append(i)
            self._remove(i)
            self.cum = np.cumsum(self.sums)
            return
        self.ended = True

    def ensure(self, n: int) -> int:
        while self.gumbel is None and not self.ended and len(self.seq) < n:
            self._next()
        k = len(self.seq)
        if self.gumbel is None:
            return k
        self.gumbel.ensure(n - k)
        return k + self.gumbel.prefix.shape[0]

    def tokens(self, a: int, b: int) -> list[int]:
        """Tokens at positions ``[a, b)`` (materialized by ``ensure`` before)."""
        k = len(self.seq)
        out = self.seq[a:b] if a < k else []
        if b > k:
            out += self.gumbel.prefix[max(a - k, 0): b - k].tolist()
        return out

    def head(self, a: int) -> np.ndarray:
        return np.array(self.tokens(0, a), dtype=np.int64)


class _MaskFinish:
    """Finishes a trace with the full mask, giving exactly what token-by-token checking would give with the
    same random numbers (the sequential stage keeps drawing; the Gumbel stage takes the best allowed key)."""

    def __init__(self, constraint: Constraint) -> None:
        self.mask = constraint.allowed_mask()

    def first_allowed(self, order: PLOrder, start: int) -> tuple[int, np.ndarray]:
        """From position ``start`` on: (accepted token or −1, rejected tokens before it, in order)."""
        mask = self.mask
        rejected: list[int] = []
        pos = start
        while True:                                        # sequential stage: read the mask, no checks
            if pos < len(order.seq):
                y = order.seq[pos]
                if mask[y]:
                    return y, np.array(rejected, dtype=np.int64)
                rejected.append(y)
                pos += 1
            elif order.gumbel is None and not order.ended:
                order.ensure(pos + 1)
            else:
                break
        g = order.gumbel
        if g is None:                                      # every token visited: none allowed
            return -1, np.array(rejected, dtype=np.int64)
        gstart = pos - len(order.seq)
        g.restore()
        keys = g.keys.copy()
        g.ensure(gstart)
        keys[g.prefix[:gstart]] = NEG_INF                  # already visited
        cand = np.where(mask, keys, NEG_INF)
        a = int(np.argmax(cand))
        if cand[a] == NEG_INF:
            a = -1
            rest = np.flatnonzero(keys > NEG_INF)
        else:
            rest = np.flatnonzero((keys > keys[a]) & ~mask)
        rest = rest[np.argsort(-keys[rest], kind="stable")]
        return a, np.concatenate([np.array(rejected, dtype=np.int64), rest])


def _scan(order: PLOrder, start: int, check: Callable[[int], bool], budget: float,
          known_ok: int = -1) -> tuple[int, int, int]:
    """Check tokens from position ``start`` until one is accepted, the order ends or ``budget`` rejections
    happened. Returns (position of the accepted token or −1, position reached, number of checks)."""
    pos = start
    n_checks = 0
    while budget > 0:
        have = order.ensure(pos + 1)
        if have <= pos:
            break
        stop = have if budget >= have - pos else pos + int(budget)
        toks = order.tokens(pos, stop)
        for j, y in enumerate(toks):                       # hot loop: one check per candidate
            if y == known_ok or check(y):
                n_checks += j + (y != known_ok)
                return pos + j, pos + j, n_checks
        n_checks += len(toks)
        budget -= len(toks)
        pos = stop
    return -1, pos, n_checks


def _ended(order: PLOrder, pos: int) -> bool:
    """True if the order has no token at position ``pos`` (every positive-mass token was visited)."""
    return order.ensure(pos + 1) <= pos


class _Scaled:
    """``p = s·inv`` evaluated only where indexed (avoids a V-sized division per step)."""

    __slots__ = ("s", "inv")

    def __init__(self, s: np.ndarray, inv: float) -> None:
        self.s = s
        self.inv = inv

    def __getitem__(self, idx):
        return self.s[idx] * self.inv


def _dead_token(order: PLOrder) -> int:
    """Dead end: return a rejected token (the first in the order), never EOS unless it was rejected."""
    order.ensure(1)
    return order.tokens(0, 1)[0]


class AWRS(TokenSampler):
    """AWRS token sampler. ``estimator``: ``"recursive"`` (default), ``"two_trace"`` or ``"none"``.
    ``max_rejects``: rejections before finishing with the full mask (None = never). ``switch_draws``: tokens
    drawn one by one before the order switches to Gumbel keys (see the module docstring; it changes the
    cost, never the law)."""

    name = "awrs"

    def __init__(self, estimator: str = "recursive", max_rejects: int | None = None, *,
                 switch_draws: int = 32) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if max_rejects is not None and max_rejects < 0:
            raise ValueError("max_rejects must be >= 0")
        if switch_draws < 0:
            raise ValueError("switch_draws must be >= 0")
        self.estimator = estimator
        self.max_rejects = math.inf if max_rejects is None else max_rejects
        self.switch_draws = switch_draws
        self._scratch: np.ndarray | None = None            # per-instance buffers: not thread-safe
        self.last_log_total = 0.0

    # ---------------------------------------------------------------------------------------- public
    def sample_logits(self, logits, constraint: Constraint, rng: np.random.Generator,
                      config: LogitsConfig | None = None) -> TokenSample:
        """Apply temperature / top-k / top-p (:class:`LogitsConfig`) and sample."""
        return self.sample((config or LogitsConfig())(logits), constraint, rng)

    def sample(self, logp: np.ndarray, constraint: Constraint, rng: np.random.Generator) -> TokenSample:
        logp = np.asarray(logp, dtype=np.float64)          # float64: the cumulative sum needs it
        n = logp.shape[0]
        m = float(np.max(logp)) if n else NEG_INF
        if not m > NEG_INF:
            return TokenSample(0, NEG_INF)
        if self._scratch is None or self._scratch.shape[1] != n:
            self._scratch = np.empty((3, n))               # reused: no page faults on big vocabularies
        s = np.subtract(logp, m, out=self._scratch[0])
        np.exp(s, out=s)                                   # unnormalized probabilities, max 1
        sums = block_sums(s)
        total = float(sums.sum())                          # >= 1
        log_total = m + math.log(total)
        self.last_log_total = log_total                    # callers passing raw logits normalize with it
        p = _Scaled(s, 1.0 / total)
        check = token_checker(constraint)
        order = self._order(s, sums, rng, None, 1)
        if self.estimator == "two_trace":
            return self._two_trace(p, order, check, constraint, rng, log_total, sums)
        return self._one_trace(p, order, check, constraint, log_total)

    # ------------------------------------------------------------------------------------- internals
    def _order(self, s, sums, rng, excluded, buf) -> PLOrder:
        return PLOrder(s, rng, excluded, self.switch_draws, self._scratch[buf], sums)

    def _one_trace(self, p, order, check, constraint, log_total) -> TokenSample:
        a, pos, n_evals = _scan(order, 0, check, self.max_rejects)
        if a >= 0:
            x = order.tokens(a, a + 1)[0]
            if self.estimator == "none":
                return TokenSample(x, 0.0, n_evals)
            rem = 1.0 - float(p[order.head(a)].sum())
            if order.ensure(a + 2) >= a + 2:
                n_evals += 1
                z = rem if check(order.tokens(a + 1, a + 2)[0]) else float(p[x])
            else:                                          # x is the last positive-mass token
                z = rem
            return TokenSample(x, log_total + math.log(max(z, 1e-300)), n_evals)
        if _ended(order, pos):                             # every positive-mass token rejected
            return TokenSample(_dead_token(order), NEG_INF, n_evals)
        fin = _MaskFinish(constraint)
        x, _ = fin.first_allowed(order, pos)
        if x < 0:
            return TokenSample(_dead_token(order), NEG_INF, n_evals, 1)
        if self.estimator == "none":
            return TokenSample(x, 0.0, n_evals, 1)
        z = float(p[fin.mask].sum())                       # exact: (1 − ψ)·Z/(1 − ψ)
        return TokenSample(x, log_total + math.log(z), n_evals, 1)

    def _two_trace(self, p, order, check, constraint, rng, log_total, sums) -> TokenSample:
        fin = None
        a, pos, n_evals = _scan(order, 0, check, self.max_rejects)
        if a >= 0:
            x = order.tokens(a, a + 1)[0]
            rejected = order.head(a)
        elif _ended(order, pos):
            return TokenSample(_dead_token(order), NEG_INF, n_evals)
        else:
            fin = _MaskFinish(constraint)
            x, rest = fin.first_allowed(order, pos)
            if x < 0:
                return TokenSample(_dead_token(order), NEG_INF, n_evals, 1)
            rejected = np.concatenate([order.head(pos), rest])
        n0 = int(rejected.shape[0])
        psi0 = float(p[rejected].sum())
        order2 = self._order(p.s, sums, rng, rejected, 2)
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
