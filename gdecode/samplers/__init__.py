"""Samplers that correct token masking's distortion: AWRS (token level), SMC and ASAp (sequence level).

Select by name: ``get_token_sampler("awrs")`` / ``"awrs-two-trace"`` / ``"ars"`` / ``"mask"`` and
``get_sampler("smc", **kw)`` / ``get_sampler("asap", model, constraint, **kw)``. See ``base`` for the
model / constraint interface.
"""

from __future__ import annotations

from typing import Any

from gdecode.samplers.asap import ASAp, ASApSample, ASApTrie
from gdecode.samplers.awrs import AWRS, GumbelOrder
from gdecode.samplers.base import (
    Constraint,
    FiniteLanguageConstraint,
    LogitsConfig,
    MaskSampler,
    MatcherConstraint,
    PredicateConstraint,
    TokenSample,
    TokenSampler,
    process_logits,
)
from gdecode.samplers.resampling import RESAMPLERS, get_resampler
from gdecode.samplers.smc import SMC, SMCResult

TOKEN_SAMPLERS = {
    "mask": lambda **kw: MaskSampler(**kw),
    "awrs": lambda **kw: AWRS(**kw),
    "awrs-two-trace": lambda **kw: AWRS(estimator="two_trace", **kw),
    "ars": lambda **kw: AWRS(estimator="none", **kw),
}

SEQUENCE_SAMPLERS = {"smc": SMC, "asap": ASAp}


def get_token_sampler(name: str, **kwargs: Any) -> TokenSampler:
    try:
        return TOKEN_SAMPLERS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown token sampler {name!r}; choose from {sorted(TOKEN_SAMPLERS)}") from None


def get_sampler(name: str, *args: Any, **kwargs: Any) -> Any:
    """A sequence sampler (``"smc"``, ``"asap"``) or, for a token-sampler name, that token sampler."""
    if name in SEQUENCE_SAMPLERS:
        return SEQUENCE_SAMPLERS[name](*args, **kwargs)
    return get_token_sampler(name, **kwargs)


__all__ = [
    "ASAp", "ASApSample", "ASApTrie", "AWRS", "Constraint", "FiniteLanguageConstraint", "GumbelOrder",
    "LogitsConfig", "MaskSampler", "MatcherConstraint", "PredicateConstraint", "RESAMPLERS", "SMC",
    "SMCResult", "TokenSample", "TokenSampler", "get_resampler", "get_sampler", "get_token_sampler",
    "process_logits",
]
