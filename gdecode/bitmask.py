"""Applying packed int32 token bitmasks to logits (torch, any device).

The CUDA kernel in csrc/cuda/ is used when it was built and the logits live on a GPU; otherwise this
vectorized torch code runs (no Python loop over rows).
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=16)
def _bit_positions(device: torch.device) -> torch.Tensor:
    return torch.arange(32, dtype=torch.int32, device=device)


def unpack_bitmask(bitmask: torch.Tensor, width: int) -> torch.Tensor:
    """Bool ``[rows, width]``: True where the token is allowed. Columns past the mask are False."""
    words = bitmask.shape[-1]
    bits = (bitmask.unsqueeze(-1) >> _bit_positions(bitmask.device)) & 1
    allowed = bits.reshape(*bitmask.shape[:-1], words * 32).bool()
    if width <= words * 32:
        return allowed[..., :width]
    pad = torch.zeros(*allowed.shape[:-1], width - words * 32, dtype=torch.bool, device=allowed.device)
    return torch.cat([allowed, pad], dim=-1)


def apply_bitmask_inplace(logits: torch.Tensor, bitmask: torch.Tensor, indices=None) -> None:
    """Set disallowed logits to -inf, in place.

    ``logits``: float ``[batch, V]`` (or ``[V]``); ``bitmask``: int32 ``[rows, ceil(V'/32)]``. Without
    ``indices`` row i of the mask applies to row i of the logits; with ``indices`` (ints), only those
    rows are masked, each by the mask row of the same index, and other rows are untouched (mixed
    constrained/unconstrained batches; the same convention as XGrammar and vLLM). Logit columns beyond the mask (logit width larger than the tokenizer) are disallowed.
    """
    if bitmask.dtype != torch.int32:
        raise TypeError(f"bitmask must be int32, got {bitmask.dtype}")
    squeeze = logits.dim() == 1
    if squeeze:
        logits = logits.unsqueeze(0)
    if bitmask.dim() == 1:
        bitmask = bitmask.unsqueeze(0)
    bitmask = bitmask.to(logits.device, non_blocking=True)
    width = logits.shape[-1]
    if indices is None:
        if bitmask.shape[0] < logits.shape[0]:
            raise ValueError(f"bitmask has {bitmask.shape[0]} rows for {logits.shape[0]} logit rows")
        allowed = unpack_bitmask(bitmask[: logits.shape[0]], width)
        logits.masked_fill_(~allowed, float("-inf"))
        return
    idx = torch.as_tensor(indices, dtype=torch.long, device=logits.device)
    if idx.numel() == 0:
        return
    allowed = unpack_bitmask(bitmask.index_select(0, idx), width)
    rows = logits.index_select(0, idx)
    rows.masked_fill_(~allowed, float("-inf"))
    logits.index_copy_(0, idx, rows)
