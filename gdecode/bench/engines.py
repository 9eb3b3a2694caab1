"""One adapter per engine behind a small common interface, for the mask and model benchmarks.

``Engine(hf_tokenizer, vocab_size)`` does the per-tokenizer setup (not timed: every engine does it once per
tokenizer). ``engine.compile(schema)`` compiles a JSON Schema with the engine's **default** options and
raises on anything the engine refuses; the result is shared by ``engine.matcher(compiled)``, a fresh
per-request state with ``fill_mask()`` (into ``matcher.bitmask``, a numpy int32 ``[1, ceil(V/32)]``),
``allowed(token)`` (a bit of the last filled mask), ``consume(token) -> bool`` and ``is_accepting()``.
``engine.hf_processor(compiled)`` is a transformers LogitsProcessor for one generation.

Engines: ``gdecode`` (``compile_json_schema`` + ``Matcher``), ``llguidance`` (``LLMatcher``; a compiled
grammar is a matcher that each request ``deep_copy``s, since the constructor is where llguidance compiles),
``xgrammar`` (``GrammarCompiler.compile_json_schema`` with its defaults, which include
``strict_mode=True``: no properties beyond the listed ones unless the schema allows them explicitly) and
``outlines-core`` (``build_regex_from_schema`` + ``Index``, the whole token automaton built at compile time).
outlines-core's ``Vocabulary.from_pretrained`` needs the hub, so its vocabulary is built from gdecode's exact
token bytes (all non-special ids; EOS given separately).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

ENGINES = ("gdecode", "llguidance", "xgrammar", "outlines-core")


def _bit(bm: np.ndarray, t: int) -> bool:
    return bool((int(bm[0, t >> 5]) >> (t & 31)) & 1)


def _words(v: int) -> int:
    return (v + 31) // 32


class Engine:
    name = "?"

    def __init__(self, hf_tokenizer: Any, vocab_size: int | None = None) -> None:
        self.hf = hf_tokenizer
        self.vocab_size = int(vocab_size or len(hf_tokenizer))

    def version(self) -> str:
        from importlib.metadata import version

        return version(self.name)

    def compile(self, schema: Any) -> Any:
        raise NotImplementedError

    def matcher(self, compiled: Any) -> Any:
        raise NotImplementedError

    def hf_processor(self, compiled: Any) -> Any:
        return _MaskProcessor(self.matcher(compiled))


class _MaskProcessor:
    """A LogitsProcessor over any adapter matcher (for engines without an HF processor of their own)."""

    def __init__(self, matcher: Any) -> None:
        self.m, self.start = matcher, None

    def __call__(self, input_ids, scores):
        import torch

        if self.start is None:
            self.start = input_ids.shape[1]
        elif input_ids.shape[1] > self.start:
            self.m.consume(int(input_ids[0, -1]))
        self.m.fill_mask()
        bits = torch.from_numpy(np.unpackbits(self.m.bitmask[0].view(np.uint8), bitorder="little").astype(bool))
        width = scores.shape[-1]
        allowed = torch.zeros(width, dtype=torch.bool)
        n = min(width, bits.numel())
        allowed[:n] = bits[:n]
        return scores.masked_fill(~allowed, float("-inf"))


# ------------------------------------------------------------------------------------------------- gdecode
class GDecodeEngine(Engine):
    name = "gdecode"

    def __init__(self, hf_tokenizer: Any, vocab_size: int | None = None) -> None:
        super().__init__(hf_tokenizer, vocab_size)
        import gdecode as gd
        from gdecode.compiler import core_vocabulary

        self.gd = gd
        self.info = gd.TokenizerInfo.from_huggingface(hf_tokenizer, vocab_size=self.vocab_size)
        core_vocabulary(self.info)  # the per-tokenizer trie, built once like the peers' tokenizer info

    def compile(self, schema: Any) -> Any:
        return self.gd.compile_json_schema(schema, self.info)

    def matcher(self, compiled: Any) -> Any:
        return _GDecodeMatcher(self.gd.Matcher(compiled), self.vocab_size)

    def hf_processor(self, compiled: Any) -> Any:
        from gdecode.integrations.hf import LogitsProcessor

        return LogitsProcessor(compiled)


class _GDecodeMatcher:
    def __init__(self, m: Any, v: int) -> None:
        self.m, self.bitmask = m, np.zeros((1, _words(v)), dtype=np.int32)

    def fill_mask(self) -> None:
        self.m.fill_bitmask(self.bitmask)

    def allowed(self, t: int) -> bool:
        return _bit(self.bitmask, t)

    def consume(self, t: int) -> bool:
        return self.m.consume_token(t)

    def is_accepting(self) -> bool:
        return self.m.is_accepting()


# ---------------------------------------------------------------------------------------------- llguidance
class LLGuidanceEngine(Engine):
    name = "llguidance"

    def __init__(self, hf_tokenizer: Any, vocab_size: int | None = None) -> None:
        super().__init__(hf_tokenizer, vocab_size)
        import llguidance
        import llguidance.hf
        import llguidance.numpy as lnp

        self.llg, self.lnp = llguidance, lnp
        self.tok = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=self.vocab_size)

    def compile(self, schema: Any) -> Any:
        text = schema if isinstance(schema, str) else json.dumps(schema)
        m = self.llg.LLMatcher(self.tok, self.llg.LLMatcher.grammar_from_json_schema(text))
        if m.is_error():
            raise RuntimeError(m.get_error())
        return m

    def matcher(self, compiled: Any) -> Any:
        return _LLGMatcher(compiled.deep_copy(), self.lnp, self.vocab_size)

    def hf_processor(self, compiled: Any) -> Any:
        return _LLGProcessor(compiled.deep_copy(), self.vocab_size)


class _LLGMatcher:
    def __init__(self, m: Any, lnp: Any, v: int) -> None:
        self.m, self.lnp = m, lnp
        self.bitmask = lnp.allocate_token_bitmask(1, v)

    def fill_mask(self) -> None:
        self.lnp.fill_next_token_bitmask(self.m, self.bitmask, 0)

    def allowed(self, t: int) -> bool:
        return _bit(self.bitmask, t)

    def consume(self, t: int) -> bool:
        return bool(self.m.consume_token(t)) and not self.m.is_error()

    def is_accepting(self) -> bool:
        return self.m.is_accepting()


class _LLGProcessor:
    """llguidance's own torch helpers; it has no HF processor of its own."""

    def __init__(self, m: Any, v: int) -> None:
        import llguidance.torch as llt

        self.m, self.llt, self.start = m, llt, None
        self.bitmask = llt.allocate_token_bitmask(1, v)

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        elif input_ids.shape[1] > self.start:
            self.m.consume_token(int(input_ids[0, -1]))
        self.llt.fill_next_token_bitmask(self.m, self.bitmask, 0)
        self.llt.apply_token_bitmask_inplace(scores, self.bitmask)
        return scores


# ------------------------------------------------------------------------------------------------ xgrammar
class XGrammarEngine(Engine):
    name = "xgrammar"

    def __init__(self, hf_tokenizer: Any, vocab_size: int | None = None) -> None:
        super().__init__(hf_tokenizer, vocab_size)
        import xgrammar as xgr

        self.xgr = xgr
        self.info = xgr.TokenizerInfo.from_huggingface(hf_tokenizer, vocab_size=self.vocab_size)
        # One thread: the machine's cores are shared, and every engine is measured single-threaded.
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)

    def compile(self, schema: Any) -> Any:
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return self.compiler.compile_json_schema(text)

    def matcher(self, compiled: Any) -> Any:
        return _XGRMatcher(self.xgr.GrammarMatcher(compiled), self.vocab_size)

    def hf_processor(self, compiled: Any) -> Any:
        import xgrammar.contrib.hf

        return xgrammar.contrib.hf.LogitsProcessor(compiled)


class _XGRMatcher:
    def __init__(self, m: Any, v: int) -> None:
        import torch

        self.m = m
        self._t = torch.zeros((1, _words(v)), dtype=torch.int32)
        self.bitmask = self._t.numpy()  # shares memory with the tensor xgrammar writes

    def fill_mask(self) -> None:
        self.m.fill_next_token_bitmask(self._t)

    def allowed(self, t: int) -> bool:
        return _bit(self.bitmask, t)

    def consume(self, t: int) -> bool:
        return bool(self.m.accept_token(t))

    def is_accepting(self) -> bool:
        # Accepting = a stop token is allowed now (xgrammar has no side-effect-free query for it).
        self.fill_mask()
        return any(_bit(self.bitmask, s) for s in self.m.stop_token_ids)


# ------------------------------------------------------------------------------------------- outlines-core
class OutlinesCoreEngine(Engine):
    name = "outlines-core"

    def __init__(self, hf_tokenizer: Any, vocab_size: int | None = None) -> None:
        super().__init__(hf_tokenizer, vocab_size)
        from outlines_core import Vocabulary

        import gdecode as gd

        info = gd.TokenizerInfo.from_huggingface(hf_tokenizer, vocab_size=self.vocab_size)
        special = set(info.special_token_ids)
        by_bytes: dict[bytes, list[int]] = {}
        for i in range(info.tokenizer_size):
            if i not in special:
                b = info.token_bytes(i)
                if b:
                    by_bytes.setdefault(b, []).append(i)
        self.eos = int(info.eos_token_ids[0])
        self.vocab = Vocabulary(self.eos, by_bytes)

    def compile(self, schema: Any) -> Any:
        from outlines_core import Index
        from outlines_core.json_schema import build_regex_from_schema

        text = schema if isinstance(schema, str) else json.dumps(schema)
        return Index(build_regex_from_schema(text), self.vocab)

    def matcher(self, compiled: Any) -> Any:
        from outlines_core import Guide

        return _OutlinesMatcher(Guide(compiled), self.vocab_size)


class _OutlinesMatcher:
    def __init__(self, g: Any, v: int) -> None:
        self.g = g
        self.bitmask = np.zeros((1, _words(v)), dtype=np.int32)

    def fill_mask(self) -> None:
        self.g.write_mask_into(self.bitmask.ctypes.data, self.bitmask.size, 4)

    def allowed(self, t: int) -> bool:
        return _bit(self.bitmask, t)

    def consume(self, t: int) -> bool:
        try:
            self.g.advance(t)
        except Exception:  # outlines-core raises on a token that is not allowed
            return False
        return True

    def is_accepting(self) -> bool:
        return bool(self.g.is_finished())


_CLASSES = {c.name: c for c in (GDecodeEngine, LLGuidanceEngine, XGrammarEngine, OutlinesCoreEngine)}


def make_engine(name: str, hf_tokenizer: Any, vocab_size: int | None = None) -> Engine:
    if name not in _CLASSES:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    return _CLASSES[name](hf_tokenizer, vocab_size)


def installed_engines(names: tuple[str, ...] | list[str] = ENGINES) -> list[str]:
    """The engines whose package can be imported (gdecode always)."""
    import importlib.util

    module = {"gdecode": "gdecode", "llguidance": "llguidance", "xgrammar": "xgrammar",
              "outlines-core": "outlines_core"}
    return [n for n in names if importlib.util.find_spec(module[n]) is not None]
