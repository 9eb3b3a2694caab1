"""Matcher: the per-request state that turns a compiled grammar into token masks.

Bitmask layout (shared with vLLM, XGrammar and llguidance): int32 ``[batch, ceil(vocab_size / 32)]``;
token ``t`` is allowed when bit ``t % 32`` of word ``t // 32`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from gdecode import _core
from gdecode.compiler import CompiledGrammar


def bitmask_words(vocab_size: int) -> int:
    return (vocab_size + 31) // 32


def allocate_bitmask(batch_size: int, vocab_size: int, *, backend: str = "torch") -> Any:
    """A zeroed int32 bitmask ``[batch_size, ceil(vocab_size/32)]`` as a torch CPU tensor or numpy array."""
    shape = (batch_size, bitmask_words(vocab_size))
    if backend == "numpy":
        return np.zeros(shape, dtype=np.int32)
    if backend == "torch":
        import torch

        return torch.zeros(shape, dtype=torch.int32)
    raise ValueError(f"backend must be 'torch' or 'numpy', got {backend!r}")


class Matcher:
    """Tracks one generation against a CompiledGrammar.

    After EOS is consumed the matcher is terminated and allows only EOS. ``rollback(n)`` undoes the last
    ``n`` consumed tokens (up to ``Limits.max_rollback``), e.g. for speculative decoding.
    """

    __slots__ = ("grammar", "_m")

    def __init__(self, grammar: CompiledGrammar, *, _core_matcher: _core.Matcher | None = None) -> None:
        if not isinstance(grammar, CompiledGrammar):
            raise TypeError(f"Matcher needs a CompiledGrammar, got {type(grammar).__name__}")
        self.grammar = grammar
        self._m = _core_matcher if _core_matcher is not None else _core.Matcher(grammar._core)

    # ----------------------------------------------------------------------------------------- advancing
    def consume_token(self, token_id: int) -> bool:
        """Advance by one token. Returns False, leaving the state unchanged, if the grammar rejects it."""
        return self._m.consume_token(token_id)

    def consume_tokens(self, token_ids: Sequence[int]) -> int:
        """Advance token by token; stops at the first rejected one. Returns how many were consumed."""
        return self._m.consume_tokens(list(token_ids))

    def consume_bytes(self, data: bytes | str) -> bool:
        """Advance by raw text (not via tokens): for forced prefixes and tests."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        return self._m.consume_bytes(data)

    def validate_tokens(self, token_ids: Sequence[int]) -> int:
        """How many leading tokens would be accepted in order. Does not change the state."""
        return self._m.validate_tokens(list(token_ids))

    def is_token_allowed(self, token_id: int) -> bool:
        """Would this one token be accepted next? Cheap: no mask is computed (AWRS uses this)."""
        return self._m.is_token_allowed(token_id)

    def rollback(self, num_tokens: int) -> None:
        self._m.rollback(num_tokens)

    def reset(self) -> None:
        self._m.reset()

    def fork(self) -> Matcher:
        """An independent copy of this matcher's state (same compiled grammar)."""
        return Matcher(self.grammar, _core_matcher=self._m.fork())

    # ---------------------------------------------------------------------------------------- querying
    def is_accepting(self) -> bool:
        """The text so far is a complete sentence: EOS is allowed now."""
        return self._m.is_accepting()

    def is_terminated(self) -> bool:
        """EOS has been consumed."""
        return self._m.is_terminated()

    def forced_bytes(self) -> bytes:
        """Bytes every valid continuation starts with (empty when there is a choice or EOS is possible)."""
        return self._m.forced_bytes()

    def fill_bitmask(self, bitmask: Any, row: int = 0) -> None:
        """Write this matcher's allowed tokens into row ``row`` of an int32 bitmask (numpy or torch CPU,
        zero-copy). Tokens past the tokenizer (padding up to the logit width) are never allowed."""
        self._m.fill_bitmask(bitmask, row)

    def allowed_tokens(self) -> list[int]:
        """The allowed token ids as a list (convenience for tests and debugging; slower than a bitmask)."""
        bm = allocate_bitmask(1, self.grammar.vocab_size, backend="numpy")
        self.fill_bitmask(bm)
        return bitmask_to_ids(bm[0], self.grammar.vocab_size)


def bitmask_to_ids(row: np.ndarray, vocab_size: int) -> list[int]:
    bits = np.unpackbits(np.ascontiguousarray(row).view(np.uint8), bitorder="little")
    return np.flatnonzero(bits[:vocab_size]).tolist()


def fill_bitmasks(matchers: Sequence[Matcher], bitmask: Any, rows: Sequence[int] | None = None,
                  num_threads: int | None = None) -> None:
    """Fill one bitmask row per matcher, in C++ with the GIL released, on several threads when there are
    several rows. ``rows`` defaults to 0..len(matchers)-1."""
    rows = list(range(len(matchers))) if rows is None else list(rows)
    threads = num_threads if num_threads is not None else min(len(matchers), os.cpu_count() or 1)
    _core.fill_bitmasks([m._m for m in matchers], bitmask, rows, max(1, threads))
