"""Samplers (AWRS, SMC, ASAp) against the exact fixtures of the algorithm reference (algorithms.md §1.5,
§2.5, §3.5, §6). Toy LMs are plain numpy distributions; statistical checks use fixed seeds and tolerances
derived from the sample standard deviation (5σ) or a χ² critical value (Wilson–Hilferty, α = 1e-5)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction as F

import numpy as np
import pytest

from gdecode.samplers import (
    AWRS,
    SMC,
    ASAp,
    ASApTrie,
    FiniteLanguageConstraint,
    LogitsConfig,
    MaskSampler,
    PredicateConstraint,
    get_resampler,
    get_sampler,
    get_token_sampler,
    process_logits,
)
from gdecode.samplers.awrs import recursive_from_order, two_trace_from_orders

EOS = 2
NEG = float("-inf")


# ------------------------------------------------------------------------------------------- helpers
class SetConstraint:
    """A fixed allowed set (one step): counts single-token checks."""

    def __init__(self, allowed, eos=None):
        self.allowed = np.asarray(allowed, dtype=bool)
        self.vocab_size = len(self.allowed)
        self.eos_token_ids = (len(self.allowed) - 1 if eos is None else eos,)
        self.checked: list[int] = []

    def is_allowed(self, t):
        self.checked.append(int(t))
        return bool(self.allowed[t])

    def allowed_mask(self):
        return self.allowed.copy()

    def advance(self, t):
        pass

    def fork(self):
        return SetConstraint(self.allowed, self.eos_token_ids[0])

    def is_complete(self):
        return bool(self.allowed[self.eos_token_ids[0]])


class OrderRng:
    """Fake generator that makes AWRS visit the tokens in the given orders (one order per trace).

    A scalar draw (sequential stage of :class:`PLOrder`) returns the middle of the next token's interval in
    the CDF of the tokens not yet visited (the order's remaining tokens: the others were visited or
    excluded, and have weight 0). A vector draw (Gumbel stage: keys ``log(1 − U)/p``) returns ``U = 1 − exp(−(rank+1)·p·c)``,
    i.e. keys ``−(rank+1)·c`` ranking the order's remaining tokens, and ends the order. With ``end_on``
    (two-trace), an order also ends after its first token with ``end_on[t]`` (the first trace stops at its
    accepted token)."""

    def __init__(self, logp, orders, end_on=None):
        self.p = np.exp(np.asarray(logp, dtype=np.float64))
        self.orders = [list(o) for o in orders]
        self.pos = 0
        self.end_on = end_on

    def _end(self):
        if len(self.orders) > 1:
            self.orders.pop(0)
            self.pos = 0

    def random(self, size=None, out=None):
        order = self.orders[0]
        if size is None:
            t = order[self.pos]
            w = np.zeros_like(self.p)
            w[order[self.pos:]] = self.p[order[self.pos:]]
            cum = np.cumsum(w)
            self.pos += 1
            if self.end_on is not None and self.end_on[t]:
                self._end()
            return float((cum[t] - w[t] / 2) / cum[-1])
        e = np.full(size, 0.5)
        for rank, t in enumerate(order[self.pos:]):
            e[t] = (rank + 1) * self.p[t] * 1e-2
        self._end()
        u = -np.expm1(-e)
        if out is None:
            return u
        out[:] = u
        return out


def pl_prob(order, p):
    """Plackett–Luce probability of a full order of the positive-mass tokens."""
    prob, rem = F(1), F(1)
    total = sum(p[t] for t in order)
    for t in order:
        prob *= (p[t] / total) / rem
        rem -= p[t] / total
    return prob


def exact_awrs(p, allowed, estimator, **switch):
    """Exact law of the real AWRS sampler driven through every visiting order: list of (prob, token, Ẑ,
    evals). ``switch``: AWRS's ``switch_draws`` / ``switch_mass`` (which stage produces which position)."""
    pf = [F(x) for x in p]
    logp = np.log(np.array([float(x) for x in p]))
    toks = [t for t in range(len(p)) if pf[t] > 0]
    out = []
    for o1 in itertools.permutations(toks):
        pr1 = pl_prob(o1, pf)
        if estimator != "two_trace":
            c = SetConstraint(allowed)
            s = AWRS(estimator, **switch).sample(logp, c, OrderRng(logp, [o1]))
            out.append((pr1, s.token, math.exp(s.log_weight), len(c.checked)))
            continue
        k = next(i for i, t in enumerate(o1) if allowed[t])
        rest = [t for t in toks if t not in o1[:k]]
        for o2 in itertools.permutations(rest):
            c = SetConstraint(allowed)
            s = AWRS("two_trace", **switch).sample(logp, c, OrderRng(logp, [o1, o2], end_on=allowed))
            _, z_pure, ev_pure = two_trace_from_orders(o1, o2, [float(x) for x in p], allowed)
            assert s.log_weight == pytest.approx(math.log(z_pure), abs=1e-12)
            out.append((pr1 * pl_prob(o2, pf), s.token, math.exp(s.log_weight), ev_pure))
    assert sum(x[0] for x in out) == 1
    return out


def moments(law):
    ez = sum(float(pr) * z for pr, _, z, _ in law)
    var = sum(float(pr) * z * z for pr, _, z, _ in law) - ez * ez
    ev = sum(float(pr) * e for pr, _, _, e in law)
    return ez, var, ev


# §1.5 table: (p, allowed, Z, ARS evals, Def-2 (E, Var, evals), RAWRS (E, Var, evals))
H, Q = F(1, 2), F(1, 4)
FIXTURES = [
    ([H, Q, Q], [0, 1, 1], F(1, 2), F(3, 2), (F(1, 2), F(3, 32), F(11, 4)), (F(1, 2), F(1, 16), F(5, 2))),
    ([H, H], [0, 1], F(1, 2), F(3, 2), (F(1, 2), F(3, 32), F(11, 4)), (F(1, 2), F(0), F(2))),
    ([F(1, 10), F(2, 10), F(2, 10), F(1, 10), F(4, 10)], [1, 1, 0, 0, 1], F(7, 10), F(97, 72),
     (F(7, 10), F(58541, 648000), F(13631, 5184)), (F(7, 10), F(7, 72), F(169, 72))),
    ([F(7, 10), F(2, 10), F(1, 10)], [0, 0, 1], F(1, 10), F(61, 24),
     (F(1, 10), F(4247, 216000), F(2231, 576)), (F(1, 10), F(0), F(29, 10))),
]


def wilson_hilferty(df, z=4.265):   # z for α = 1e-5
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


# ------------------------------------------------------------------------------------- logits config
def test_process_logits():
    x = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert np.allclose(np.exp(process_logits(x)), [0.5, 0.3, 0.15, 0.05])
    assert np.allclose(np.exp(process_logits(x, top_k=2)), [0.625, 0.375, 0, 0])
    assert np.allclose(np.exp(process_logits(x, top_p=0.8)), [0.625, 0.375, 0, 0])
    assert np.allclose(np.exp(process_logits(x, top_p=0.81)), [0.5, 0.3, 0.15, 0] / np.float64(0.95))
    t = np.exp(process_logits(x, temperature=2.0))
    assert np.allclose(t, np.sqrt([0.5, 0.3, 0.15, 0.05]) / np.sqrt([0.5, 0.3, 0.15, 0.05]).sum())
    with pytest.raises(ValueError):
        process_logits(x, temperature=0)


# ----------------------------------------------------------------------------------- AWRS exact (§1.5)
# sequential draws only, Gumbel keys only, switches after 1 or 2 draws, the default (32)
SWITCHES = [{"switch_draws": 1000}, {"switch_draws": 0}, {"switch_draws": 1}, {"switch_draws": 2}, {}]


@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("row", range(len(FIXTURES)))
def test_awrs_exact_fixture_moments(row, switch):
    p, allowed, z, ars_ev, def2, rawrs = FIXTURES[row]
    zf = float(z)
    pt = {t: float(p[t] * allowed[t] / z) for t in range(len(p))}
    for est, (e, v, ev) in [("recursive", rawrs), ("two_trace", def2), ("none", (None, None, ars_ev))]:
        law = exact_awrs(p, allowed, est, **switch)
        ez, var, evals = moments(law)
        assert evals == pytest.approx(float(ev), abs=1e-12), est
        for a in range(len(p)):                                     # token law = masked distribution
            assert sum(float(pr) for pr, x, _, _ in law if x == a) == pytest.approx(pt[a], abs=1e-12)
        if est == "none":
            assert all(w == 1.0 for _, _, w, _ in law)
            continue
        assert ez == pytest.approx(float(e), abs=1e-12) and ez == pytest.approx(zf, abs=1e-12), est
        assert var == pytest.approx(float(v), abs=1e-12), est
        for a in range(len(p)):                                     # per-token proper weighting
            m = sum(float(pr) * w for pr, x, w, _ in law if x == a)
            assert m == pytest.approx(float(p[a]) * allowed[a], abs=1e-12), (est, a)


def test_pure_recursive_matches_sampler_and_ars_eval_formula():
    rng = np.random.default_rng(5)
    for _ in range(30):
        n = int(rng.integers(2, 6))
        p = [F(int(k)) for k in rng.integers(1, 10, size=n)]
        tot = sum(p)
        p = [x / tot for x in p]
        allowed = rng.random(n) < 0.5
        if not allowed.any():
            allowed[int(rng.integers(n))] = True
        z = sum(x for x, a in zip(p, allowed, strict=True) if a)
        law = exact_awrs(p, allowed, "none")
        formula = 1 + sum(x / (x + z) for x, a in zip(p, allowed, strict=True) if not a)
        assert moments(law)[2] == pytest.approx(float(formula), abs=1e-12)
        assert float(formula) <= min(float(1 / z), 1 + int((~allowed).sum())) + 1e-12
        rec = exact_awrs(p, allowed, "recursive")
        assert moments(rec)[0] == pytest.approx(float(z), abs=1e-12)
        pf = [float(x) for x in p]
        for o in itertools.permutations(range(n)):
            x, zz, _ = recursive_from_order(o, pf, allowed)
            c = SetConstraint(allowed)
            s = AWRS().sample(np.log(pf), c, OrderRng(np.log(pf), [o]))
            assert s.token == x and math.exp(s.log_weight) == pytest.approx(zz, abs=1e-12)


def test_wrs_variance_closed_form_reference_numbers():
    # Var(Ẑ) = Z²(−ln Z)/(1−Z) − Z² for the L = 1 WRS estimator (reference values 0.0926 / 0.0966 / 0.0156)
    for zz, v in [(0.7, 0.0926), (0.5, 0.0966), (0.1, 0.0156)]:
        assert zz * zz * (-math.log(zz)) / (1 - zz) - zz * zz == pytest.approx(v, abs=1e-4)


# ----------------------------------------------------------------------------------- AWRS Monte Carlo
@pytest.mark.parametrize("estimator", ["recursive", "two_trace", "none"])
@pytest.mark.parametrize("max_rejects", [None, 0, 3])
def test_awrs_token_law_and_proper_weighting_mc(estimator, max_rejects):
    rng = np.random.default_rng(123)
    v = 40
    p = rng.dirichlet(np.full(v, 2.0))
    allowed = rng.random(v) < 0.3
    allowed[[3, 17]] = True
    z = float(p[allowed].sum())
    logp = np.log(p) + math.log(3.0)                       # unnormalized: E[w] must be 3·Z
    sampler = AWRS(estimator, max_rejects)
    n = 20000
    toks = np.empty(n, dtype=np.int64)
    ws = np.empty(n)
    c = SetConstraint(allowed)
    for i in range(n):
        s = sampler.sample(logp, c, rng)
        toks[i], ws[i] = s.token, math.exp(s.log_weight)
    assert allowed[toks].all()
    counts = np.bincount(toks, minlength=v)[allowed]
    expected = n * p[allowed] / z
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < wilson_hilferty(int(allowed.sum()) - 1), chi2
    if estimator == "none":
        assert (ws == 1).all()
        return
    assert abs(ws.mean() - 3 * z) < 5 * ws.std() / math.sqrt(n) + 1e-12
    for a in np.flatnonzero(allowed):
        col = ws * (toks == a)
        assert abs(col.mean() - 3 * p[a]) < 5 * col.std() / math.sqrt(n) + 1e-12, a


def test_awrs_max_rejects_is_same_process():
    rng0 = np.random.default_rng(9)
    v = 300
    p = rng0.dirichlet(np.full(v, 0.3))
    allowed = rng0.random(v) < 0.05
    allowed[7] = True
    logp = np.log(p)
    for est in ["two_trace", "none", "recursive"]:
        for seed in range(30):
            ref = AWRS(est).sample(logp, SetConstraint(allowed), np.random.default_rng(seed))
            for mr in [0, 1, 5]:
                s = AWRS(est, mr).sample(logp, SetConstraint(allowed), np.random.default_rng(seed))
                assert s.token == ref.token
                if est == "recursive":
                    assert s.n_masks == 0 or s.log_weight == pytest.approx(math.log(p[allowed].sum()))
                else:
                    assert s.log_weight == pytest.approx(ref.log_weight, abs=1e-12)


def test_awrs_evaluations_and_dead_end():
    p = np.array([0.5, 0.0, 0.3, 0.2])
    allowed = np.array([False, True, False, False])                # only a zero-probability token allowed
    for est in ["recursive", "two_trace", "none"]:
        for mr in [None, 1]:
            c = SetConstraint(allowed)
            with np.errstate(divide="ignore"):
                s = AWRS(est, mr).sample(np.log(p), c, np.random.default_rng(1))
            assert s.log_weight == NEG and not allowed[s.token] and p[s.token] > 0
            assert 1 not in c.checked and len(c.checked) == len(set(c.checked))   # p=0 never, no repeats
    c = SetConstraint([True, True, False, True])
    for seed in range(50):                                          # never re-evaluates a rejected token
        c.checked.clear()
        s = AWRS("two_trace").sample(np.log([0.1, 0.2, 0.6, 0.1]), c, np.random.default_rng(seed))
        assert c.checked.count(2) <= 1 and s.log_weight > NEG


def test_awrs_scale_covariance_and_names():
    p = np.array([0.1, 0.2, 0.2, 0.1, 0.4])
    allowed = [1, 1, 0, 0, 1]
    for est in ["recursive", "two_trace"]:
        a = AWRS(est).sample(np.log(p), SetConstraint(allowed), np.random.default_rng(4))
        b = AWRS(est).sample(np.log(p) + math.log(5), SetConstraint(allowed), np.random.default_rng(4))
        assert a.token == b.token and b.log_weight == pytest.approx(a.log_weight + math.log(5))
    assert get_token_sampler("awrs").estimator == "recursive"
    assert get_token_sampler("awrs-two-trace").estimator == "two_trace"
    assert get_token_sampler("ars").estimator == "none"
    assert isinstance(get_token_sampler("mask"), MaskSampler)
    with pytest.raises(ValueError):
        get_token_sampler("nope")


def test_awrs_logits_config_is_the_target():
    # top-k / temperature define the target: E[w] = allowed mass of the processed distribution
    rng = np.random.default_rng(8)
    logits = np.log([0.35, 0.25, 0.2, 0.1, 0.06, 0.04])
    allowed = np.array([False, True, True, False, True, True])
    cfg = LogitsConfig(temperature=1.5, top_k=4)
    q = np.exp(cfg(logits))
    assert q[4:].sum() == 0
    z = float(q[allowed].sum())
    ws, toks = [], []
    for _ in range(8000):
        s = AWRS("two_trace").sample_logits(logits, SetConstraint(allowed), rng, cfg)
        ws.append(math.exp(s.log_weight))
        toks.append(s.token)
    ws = np.array(ws)
    assert set(toks) <= {1, 2}
    assert abs(ws.mean() - z) < 5 * ws.std() / math.sqrt(len(ws))
    assert abs(np.mean(np.array(toks) == 1) - q[1] / z) < 5 * 0.5 / math.sqrt(len(ws))


def test_awrs_large_vocab_checks_few_tokens():
    rng = np.random.default_rng(0)
    v = 128_000
    logits = rng.normal(size=v) * 3
    allowed = np.zeros(v, dtype=bool)
    allowed[np.argsort(-logits)[:5]] = True                        # the model agrees with the grammar
    c = SetConstraint(allowed)
    cfg = LogitsConfig(temperature=0.7, top_p=0.95)
    for _ in range(20):
        s = AWRS().sample_logits(logits, c, rng, cfg)
        assert allowed[s.token] and s.n_masks == 0
    assert len(c.checked) < 20 * 40


# --------------------------------------------------------------------------------------- resampling
@pytest.mark.parametrize("scheme", ["multinomial", "stratified", "systematic", "residual"])
def test_resampler_expected_copies(scheme):
    rng = np.random.default_rng(2)
    w = np.array([0.42, 0.03, 0.25, 0.0, 0.17, 0.13])
    n, reps = len(w), 20000
    res = get_resampler(scheme)
    counts = np.stack([np.bincount(res(w, rng), minlength=n) for _ in range(reps)])
    assert (counts.sum(1) == n).all() and (counts[:, 3] == 0).all()
    mean, sd = counts.mean(0), counts.std(0)
    assert (np.abs(mean - n * w) <= 5 * sd / math.sqrt(reps) + 1e-9).all(), (mean, n * w)
    if scheme in ("systematic", "residual"):
        assert (counts >= np.floor(n * w) - 1e-9).all()
    if scheme == "systematic":
        assert (counts <= np.ceil(n * w) + 1e-9).all()


# -------------------------------------------------------------------------------------- SMC (§2.5)
class BitLM:
    """5 i.i.d. bits with P(0) = q, then EOS with probability 1. Vocab: 0, 1, EOS=2."""

    def __init__(self, q=0.5, length=5):
        self.row = np.array([math.log(q), math.log(1 - q), NEG])
        self.end = np.array([NEG, NEG, 0.0])
        self.length = length

    def __call__(self, prefixes):
        return np.stack([self.row if len(x) < self.length else self.end for x in prefixes])


def five_bit_constraint():
    lang = [(0,) * 5] + [(1,) + t for t in itertools.product((0, 1), repeat=4)]
    return FiniteLanguageConstraint(lang, 3, EOS)


def ml_check(runs, target):
    m = np.exp(np.array(runs))
    assert abs(m.mean() - target) < 5 * m.std() / math.sqrt(len(m)) + 1e-12, (m.mean(), target)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("sampler", ["mask", "awrs", "awrs-two-trace"])
def test_smc_unbiased_marginal_likelihood(tau, sampler):
    resampling = {"mask": "stratified", "awrs": "multinomial", "awrs-two-trace": "residual"}[sampler]
    smc = SMC(sampler, n_particles=4, ess_threshold=tau, max_tokens=10, resampling=resampling, seed=11)
    lm, c = BitLM(), five_bit_constraint()
    runs = []
    for _ in range(600):
        r = smc.run(lm, c)
        assert all(1 - 1e-9 <= e <= 4 + 1e-9 for e in r.ess_trace)
        assert all(s[-1] == EOS for s in r.sequences)
        runs.append(r.log_ml)
    ml_check(runs, 17 / 32)


def test_smc_exact_weights_and_posterior():
    # mask sampler: 00000 gets W = q^4 = 1/16, every 1xxxx gets W = 1 (exact)
    r = SMC("mask", n_particles=4000, ess_threshold=0.0, max_tokens=6, seed=3).run(BitLM(), five_bit_constraint())
    w = np.exp(r.log_weights)
    zero = np.array([s == (0, 0, 0, 0, 0, EOS) for s in r.sequences])
    assert np.allclose(w[zero], 1 / 16) and np.allclose(w[~zero], 1.0)
    assert abs(zero.mean() - 0.5) < 5 * 0.5 / math.sqrt(4000)        # unweighted LCD frequency = q
    post = r.posterior()
    assert abs(post[(0, 0, 0, 0, 0, EOS)] - 1 / 17) < 0.01
    dec = r.decoded_posterior(lambda toks: "".join(map(str, toks)))
    assert abs(dec["00000"] - 1 / 17) < 0.01 and abs(sum(dec.values()) - 1) < 1e-12
    assert r.ess == pytest.approx(1 / float((r.normalized_weights ** 2).sum()))


@pytest.mark.parametrize("sampler,tau", [("awrs", 0.0), ("awrs", 0.5), ("mask", 0.5)])
def test_smc_weighted_posterior_converges_to_1_17(sampler, tau):
    r = SMC(sampler, n_particles=8000, ess_threshold=tau, max_tokens=6, seed=21).run(BitLM(), five_bit_constraint())
    assert abs(r.posterior().get((0, 0, 0, 0, 0, EOS), 0.0) - 1 / 17) < 0.008     # sd ≈ 0.0015


def test_smc_resampling_resets_weights_and_forced_eos():
    # LM over {0, 1, EOS} = (0.3, 0.3, 0.4) at every step; constraint: no "11"; max_tokens = 3 (EOS counted)
    lm = lambda prefixes: np.tile(np.log([0.3, 0.3, 0.4]), (len(prefixes), 1))   # noqa: E731
    c = PredicateConstraint(3, EOS, lambda t: (1, 1) not in zip(t, t[1:], strict=False), lambda t: True)
    target = 0.0
    for n in range(3):
        for t in itertools.product((0, 1), repeat=n):
            if (1, 1) not in zip(t, t[1:], strict=False):
                target += 0.3 ** n * 0.4
    smc = SMC("awrs", n_particles=3, ess_threshold=1.0, max_tokens=3, seed=8)
    runs = []
    for _ in range(1500):
        r = smc.run(lm, c)
        assert all(len(s) <= 3 and s[-1] == EOS for s in r.sequences)
        runs.append(r.log_ml)
    ml_check(runs, target)
    r = SMC("mask", n_particles=50, ess_threshold=1.0, max_tokens=3, seed=1).run(lm, c)
    assert any(r.resampled)


def test_smc_potential_and_temperature():
    # Φ(y) = 1/2 for strings starting with 1: E[exp(log_ml)] = 1/32 + 16/32·1/2 = 9/32, with or without twists
    def pot(tokens, complete):
        return math.log(0.5) if tokens and tokens[0] == 1 else 0.0

    for tau in [0.0, 0.7]:
        smc = SMC("awrs", n_particles=4, ess_threshold=tau, max_tokens=8, potential=pot, seed=5)
        ml_check([smc.run(BitLM(), five_bit_constraint()).log_ml for _ in range(600)], 9 / 32)
    # temperature 2 on q = 0.8 gives q_T = 2/3: target P_T(L) = q_T^5 + 1 − q_T
    qt = 2 / 3
    smc = SMC("mask", n_particles=4, ess_threshold=0.5, max_tokens=8, logits_config=LogitsConfig(2.0), seed=6)
    ml_check([smc.run(BitLM(0.8), five_bit_constraint()).log_ml for _ in range(600)], qt ** 5 + 1 - qt)


def test_smc_dead_end_particles_dropped():
    # prefix (1,) is viable but has no completion: particles that take it die (log weight −inf)
    c = FiniteLanguageConstraint([(0, 0)], 3, EOS)
    c2 = PredicateConstraint(3, EOS, lambda t: t in {(0,), (0, 0), (1,)}, lambda t: t == (0, 0))
    lm = lambda prefixes: np.tile(np.log([0.5, 0.5, 1e-300]), (len(prefixes), 1))   # noqa: E731
    r = SMC("awrs", n_particles=200, ess_threshold=0.0, max_tokens=5, seed=2).run(lm, c2)
    dead = [s for s, w in zip(r.sequences, r.log_weights, strict=True) if w == NEG]
    assert dead and all(s[0] == 1 for s in dead)
    assert set(r.posterior()) == {(0, 0, EOS)}
    r = SMC("mask", n_particles=10, max_tokens=5, seed=2).run(lm, c)
    assert r.log_ml == pytest.approx(math.log(0.25 * 1e-300), rel=1e-9)


# ------------------------------------------------------------------------------------- ASAp (§3.5)
def asap_5bit(q=0.5):
    return ASAp(BitLM(q), five_bit_constraint(), max_tokens=10, seed=0)


Z5 = (0, 0, 0, 0, 0, EOS)
ONE0 = (1, 0, 0, 0, 0, EOS)
LANG = [tuple(s) + (EOS,) for s in [(0,) * 5] + [(1,) + t for t in itertools.product((0, 1), repeat=4)]]


def test_asap_empty_trie_is_gcd_and_cvalues_after_00000():
    a = asap_5bit()
    assert a.sequence_probability(Z5) == pytest.approx(0.5)             # GCD: P(00000) = q
    assert a.sequence_probability(ONE0) == pytest.approx(1 / 32)
    a.observe(Z5)
    t = a.trie
    assert t.efg((0,)) == pytest.approx(1 / 16) and t.efg((1,)) == 1.0
    assert t.efg(()) == pytest.approx(17 / 32)
    assert t.efg((0, 0, 0, 0)) == pytest.approx(0.5) and t.efg((0, 0, 0, 0, 0)) == 1.0
    assert a.next_token_probs(())[0] == pytest.approx(1 / 17, abs=1e-15)
    assert a.sequence_probability(Z5) == pytest.approx(1 / 17, abs=1e-15)
    b = asap_5bit()
    b.observe((1, 0, 1, 1, 0, EOS))
    assert b.trie.efg(()) == 1.0 and b.trie.efg((1,)) == 1.0 and b.trie.efg((0,)) == 1.0


def test_asap_exact_pk_sequence():
    base = asap_5bit()
    p1 = {s: base.sequence_probability(s) for s in LANG}
    assert sum(p1.values()) == pytest.approx(1.0)
    assert p1[Z5] == pytest.approx(1 / 2)
    p2 = {Z5: 0.0, ONE0: 0.0}
    p3 = {Z5: 0.0, ONE0: 0.0}
    for s1, q1 in p1.items():
        a1 = base.clone()
        a1.observe(s1)
        d2 = {s: a1.sequence_probability(s) for s in LANG}
        assert sum(d2.values()) == pytest.approx(1.0)
        for k in p2:
            p2[k] += q1 * d2[k]
        for s2, q2 in d2.items():
            if q2 == 0:
                continue
            a2 = a1.clone()
            a2.observe(s2)
            for k in p3:
                p3[k] += q1 * q2 * a2.sequence_probability(k)
    assert p2[Z5] == pytest.approx(19 / 68, abs=1e-13)
    assert p3[Z5] == pytest.approx(23 / 136, abs=1e-13)
    assert p2[ONE0] == pytest.approx(49 / 1088, abs=1e-13)
    assert p3[ONE0] == pytest.approx(113 / 2176, abs=1e-13)
    for k in (1, 2, 3):                                                # P_k = 1/17 + (15/34)·2^−(k−1)
        assert [None, 1 / 2, p2[Z5], p3[Z5]][k] == pytest.approx(1 / 17 + 15 / 34 * 2 ** -(k - 1))


def true_efg(prefix, q=0.5):
    """c(prefix) for the 5-bit grammar and i.i.d. bits."""
    total = 0.0
    for s in LANG:
        if s[: len(prefix)] == tuple(prefix):
            rest = s[len(prefix): 5]
            total += math.prod(q if b == 0 else 1 - q for b in rest)
    return total


def test_asap_soundness_monotonicity_convergence_serialization():
    a = ASAp(BitLM(0.6), five_bit_constraint(), max_tokens=10, seed=1)
    prefixes = [t for n in range(6) for t in itertools.product((0, 1), repeat=n) if t[:1] != (0,) or set(t) == {0}]
    prev = {t: a.trie.efg(t) for t in prefixes}
    for _ in range(300):
        s = a.sample()
        assert s.complete and tuple(s.tokens) in LANG
        cur = {t: a.trie.efg(t) for t in prefixes}
        for t in prefixes:
            assert cur[t] <= prev[t] + 1e-12                                # monotone
            assert cur[t] >= true_efg(t, 0.6) - 1e-12                       # sound
        prev = cur
    q5 = 0.6 ** 5
    assert a.trie.efg(()) == pytest.approx(q5 + 0.4)                        # fully explored: exact
    assert a.sequence_probability(Z5) == pytest.approx(q5 / (q5 + 0.4))
    b = ASAp(BitLM(0.6), five_bit_constraint(), max_tokens=10, trie=ASApTrie.from_json(a.trie.to_json()))
    assert len(b.trie) == len(a.trie)
    for t in prefixes:
        assert b.trie.efg(t) == pytest.approx(a.trie.efg(t), abs=1e-15)
    assert get_sampler("asap", BitLM(), five_bit_constraint()).name == "asap"


def test_asap_dead_ends():
    # (1,) is a viable prefix with no completion; (0, 0) is the only string. LM: bits 1/2 each, EOS tiny.
    lm = lambda prefixes: np.tile(np.log([0.5, 0.5, 1e-3]), (len(prefixes), 1))   # noqa: E731
    c = PredicateConstraint(3, EOS, lambda t: t in {(0,), (0, 0), (1,)}, lambda t: t == (0, 0))
    a = ASAp(lm, c, max_tokens=6, seed=0)
    res = a.observe((1,))
    assert not res.complete and a.trie.efg((1,)) == 0.0
    assert a.next_token_probs(())[1] == 0.0
    for _ in range(20):
        assert tuple(a.sample().tokens) == (0, 0, EOS)
    # truncation: at the last position only EOS is allowed; max_tokens=2 leaves (0, 0) no room for EOS
    b = ASAp(lm, c, max_tokens=2, seed=0)
    for _ in range(10):
        assert not b.sample().complete
    assert b.trie.efg((0,)) == 0.0 and b.trie.efg((1,)) == 0.0 and b.trie.efg(()) == 0.0
    assert b.sample().tokens == []                        # the empty language is known: immediate dead end


# ------------------------------------------------------------------------------ gdecode.Matcher adapter
def test_matcher_constraint_5bit():
    gd = pytest.importorskip("gdecode")
    from gdecode.samplers import MatcherConstraint

    tok = gd.TokenizerInfo.from_token_bytes([b"0", b"1", b"<eos>"], eos_token_ids=2)
    m = MatcherConstraint(gd.Matcher(gd.compile_regex("00000|1[01]{4}", tok)))
    toy = five_bit_constraint()
    rng = np.random.default_rng(0)
    for _ in range(20):                                                  # masks agree along random walks
        a, b = m.fork(), toy.fork()
        while True:
            ma, mb = a.allowed_mask(), b.allowed_mask()
            assert (ma == mb).all() and a.is_complete() == b.is_complete()
            assert [a.is_allowed(t) for t in range(3)] == ma.tolist()
            t = int(rng.choice(np.flatnonzero(ma)))
            a.advance(t)
            b.advance(t)
            if t == EOS:
                break
    smc = SMC("awrs", n_particles=4, ess_threshold=0.5, max_tokens=8, seed=4)
    ml_check([smc.run(BitLM(), m).log_ml for _ in range(400)], 17 / 32)
    a = ASAp(BitLM(), m, max_tokens=8, seed=0)
    a.observe(Z5)
    assert a.trie.efg(()) == pytest.approx(17 / 32)


# ------------------------------------------------------------------------------- large vocabularies
def test_gumbel_order_lazy_prefix_is_the_full_order():
    from gdecode.samplers import GumbelOrder

    rng = np.random.default_rng(3)
    v = 50_000
    s = rng.random(v) ** 4
    s[rng.random(v) < 0.3] = 0.0
    for excluded in [None, np.array([1, 5, 9, int(np.argmax(s))])]:
        o = GumbelOrder(s, rng, excluded)
        full = np.argsort(-o.keys, kind="stable")[: o.n_finite]
        live = s > 0
        if excluded is not None:
            live[excluded] = False
        assert o.n_finite == int(live.sum())
        for n in [1, 2, 3, 16, 17, 100, 5000, 20_000, o.n_finite]:
            o.ensure(n)
            assert o.prefix.shape[0] >= n and (o.prefix == full[: o.prefix.shape[0]]).all(), n


@pytest.mark.parametrize("estimator", ["recursive", "two_trace"])
def test_awrs_large_vocab_token_law_and_weight(estimator):
    # V = 20k: many rejections, so the argmax and threshold stages of the lazy order are both exercised
    rng = np.random.default_rng(17)
    v = 20_000
    logits = rng.normal(size=v) * 2
    allowed = np.zeros(v, dtype=bool)
    allowed[np.argsort(-logits)[[5, 30, 80, 200, 400, 900]]] = True
    p = np.exp(logits - logits.max())
    p /= p.sum()
    z = float(p[allowed].sum())
    sampler = AWRS(estimator)
    n = 2000
    toks = np.empty(n, dtype=np.int64)
    ws = np.empty(n)
    c = SetConstraint(allowed)
    for i in range(n):
        smp = sampler.sample(np.log(p), c, rng)
        toks[i], ws[i] = smp.token, math.exp(smp.log_weight)
    idx = np.flatnonzero(allowed)
    counts = np.array([(toks == a).sum() for a in idx])
    expected = n * p[idx] / z
    assert counts.sum() == n
    assert float(((counts - expected) ** 2 / expected).sum()) < wilson_hilferty(len(idx) - 1)
    assert abs(ws.mean() - z) < 5 * ws.std() / math.sqrt(n)


# ------------------------------------------------------------------------ the visiting order (PLOrder)
def pl_prefix_prob(prefix, p):
    """Plackett–Luce probability that an order of ``p`` starts with ``prefix``."""
    prob, rem = 1.0, float(p.sum())
    for t in prefix:
        prob *= p[t] / rem
        rem -= p[t]
    return prob


PL_P = np.array([0.0, 0.3, 0.22, 0.0, 0.16, 0.12, 0.1, 0.06, 0.04, 0.0])   # zero mass inside and at the ends
# the same masses spread over blocks of 256 tokens: block edges, an all-zero block, a short last block
PL_BLOCKS = np.zeros(4 * 256 + 17)
PL_BLOCKS[[0, 255, 256, 511, 900, 1039, 1040]] = PL_P[PL_P > 0]


@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("dist", ["small", "blocks"])
def test_pl_order_law_first_three_positions(switch, dist):
    """χ² over every ordered triple of the first three positions: the sequential draws (visited tokens
    removed from the CDF), the Gumbel stage and every switch point between them give the Plackett–Luce
    law."""
    from gdecode.samplers.awrs import PLOrder

    rng = np.random.default_rng(11)
    p = PL_P if dist == "small" else PL_BLOCKS
    s = p * 7.0                                                     # unnormalized: the law is scale-free
    n = 20000
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(n):
        o = PLOrder(s, rng, None, **switch)
        assert o.ensure(3) >= 3
        key = tuple(o.tokens(0, 3))
        counts[key] = counts.get(key, 0) + 1
    pos = np.flatnonzero(p > 0)
    cells = list(itertools.permutations(pos.tolist(), 3))
    assert set(counts) <= set(cells)                                # zero mass never, no repeats
    expected = np.array([n * pl_prefix_prob(c, p) for c in cells])
    observed = np.array([counts.get(c, 0) for c in cells])
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < wilson_hilferty(len(cells) - 1), chi2


def test_pl_order_full_order_and_exclusions():
    """The whole order is a permutation of the positive-mass tokens minus the excluded ones, whatever the
    switch point; the first position given an exclusion follows s restricted to the rest."""
    from gdecode.samplers.awrs import PLOrder

    rng = np.random.default_rng(12)
    s = PL_BLOCKS.copy()
    live = set(np.flatnonzero(s > 0).tolist())
    for sd in [1000, 0, 1, 3, 32]:
        for excl in [None, np.array([0, 1040])]:
            o = PLOrder(s, rng, excl, sd)
            k = o.ensure(100)
            want = live - set(() if excl is None else excl.tolist())
            assert k == len(want) and sorted(o.tokens(0, k)) == sorted(want), (sd, excl)
    n = 20000
    first = np.zeros(len(s))
    for _ in range(n):
        o = PLOrder(s, rng, np.array([0, 1040]))
        o.ensure(1)
        first[o.tokens(0, 1)[0]] += 1
    q = s.copy()
    q[[0, 1040]] = 0
    idx = np.flatnonzero(q > 0)
    exp = n * q[idx] / q.sum()
    assert first[q == 0].sum() == 0
    assert float(((first[idx] - exp) ** 2 / exp).sum()) < wilson_hilferty(len(idx) - 1)


class EdgeRng:
    """Scalar draws 0.0 (the CDF's start: zero-mass tokens there must be skipped), then 1.0 (outside numpy's
    [0, 1) contract: u·total = total, past the end), then a real generator's."""

    def __init__(self, seed):
        self.inner = np.random.default_rng(seed)
        self.edges = [0.0, 1.0]

    def random(self, size=None, out=None):
        if size is None and self.edges:
            return self.edges.pop(0)
        return self.inner.random(size, out=out) if size is not None else self.inner.random()


def test_awrs_never_checks_zero_mass_tokens_float32():
    """float32 logits with -inf on 90% of a 20k vocabulary (including both ends): no zero-mass token is ever
    checked or returned, for every estimator and switch point; a draw past the end of the CDF is redrawn."""
    rng = np.random.default_rng(13)
    v = 20_000
    logits = (rng.normal(size=v) * 2).astype(np.float32)
    dead = rng.random(v) < 0.9
    dead[[0, v - 1]] = True
    logits[dead] = -np.inf
    live = np.flatnonzero(~dead)
    allowed = dead.copy()                                           # only zero-mass tokens allowed ...
    allowed[live[[3, 50]]] = True                                   # ... and two live ones
    for est in ESTIMATORS_ALL:
        for sw in [{}, {"switch_draws": 0}, {"switch_draws": 3000}]:
            sampler = AWRS(est, **sw)
            for seed in range(20):
                c = SetConstraint(allowed)
                smp = sampler.sample(logits, c, EdgeRng(seed) if seed % 2 else np.random.default_rng(seed))
                assert not dead[c.checked].any() and smp.token in (live[3], live[50]), (est, sw)
    c = SetConstraint(dead)                                         # nothing with mass allowed: dead end
    smp = AWRS(switch_draws=5).sample(logits, c, EdgeRng(1))
    assert smp.log_weight == NEG and not dead[smp.token] and not dead[c.checked].any()
    assert sorted(c.checked) == sorted(live.tolist())              # every live token checked, once


ESTIMATORS_ALL = ["recursive", "two_trace", "none"]
