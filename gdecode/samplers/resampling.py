"""Resampling schemes for SMC. Each takes normalized weights ``w`` (length N) and returns N ancestor indices
with ``E[#copies of i] = N·w_i``. The CDF's last entry is set to exactly 1 against round-off overruns."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _cdf(w: np.ndarray) -> np.ndarray:
    c = np.cumsum(w)
    c[-1] = 1.0
    return c


def _inverse_cdf(w: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(_cdf(w), u, side="right"), len(w) - 1)


def multinomial(w: np.ndarray, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """N i.i.d. draws from ``w``."""
    n = len(w) if n is None else n
    return _inverse_cdf(w, np.sort(rng.random(n)))


def stratified(w: np.ndarray, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """``u_i = (i + U_i)/N`` with independent ``U_i``."""
    n = len(w) if n is None else n
    return _inverse_cdf(w, (np.arange(n) + rng.random(n)) / n)


def systematic(w: np.ndarray, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """``u_i = (i + U)/N`` with one shared ``U``: index i gets ⌊N·w_i⌋ or ⌈N·w_i⌉ copies."""
    n = len(w) if n is None else n
    return _inverse_cdf(w, (np.arange(n) + rng.random()) / n)


def residual(w: np.ndarray, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """⌊N·w_i⌋ deterministic copies, the remaining slots multinomial on the normalized residuals."""
    n = len(w) if n is None else n
    nw = n * np.asarray(w, dtype=np.float64)
    base = np.floor(nw).astype(np.int64)
    out = np.repeat(np.arange(len(w)), base)
    r = n - int(base.sum())
    if r > 0:
        res = nw - base
        res = res / res.sum()
        out = np.concatenate([out, multinomial(res, rng, r)])
    return np.sort(out)


RESAMPLERS: dict[str, Callable[..., np.ndarray]] = {
    "multinomial": multinomial,
    "stratified": stratified,
    "systematic": systematic,
    "residual": residual,
}


def get_resampler(name: str) -> Callable[..., np.ndarray]:
    try:
        return RESAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown resampling scheme {name!r}; choose from {sorted(RESAMPLERS)}") from None
