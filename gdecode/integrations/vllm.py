"""vLLM V1 integration: a logits processor that constrains requests to gdecode grammars.

The processor is registered under the ``vllm.logits_processors`` entry point, so an installed gdecode is
loaded by every vLLM engine of the environment; it can also be given explicitly::

    llm = LLM(model=..., logits_processors=[GDecodeLogitsProcessor])        # or the string below
    llm = LLM(model=..., logits_processors=["gdecode.integrations.vllm:GDecodeLogitsProcessor"])
    # server: --logits-processors gdecode.integrations.vllm:GDecodeLogitsProcessor

Per request, the settings travel in ``SamplingParams.extra_args["gdecode"]``::

    SamplingParams(extra_args={"gdecode": {"grammar": lark_text}})
    SamplingParams(extra_args=gdecode_extra_args(regex=r"\\d{3}-\\d{4}"))

Over HTTP they go in the body's ``vllm_xargs``, whose values vLLM restricts to strings, numbers and lists:
use flat keys, ``"vllm_xargs": {"gdecode_regex": "[0-9]+"}`` or ``{"gdecode_json": "<schema as JSON text>"}``
(options likewise: ``gdecode_flavor``, ``gdecode_options`` as JSON text), or the whole object as JSON text,
``{"gdecode": "{\\"grammar\\": ...}"}``.

Exactly one of ``grammar`` (Lark), ``gbnf``, ``regex`` or ``json`` (a JSON Schema, as an object or as JSON
text) is given, plus optional settings: ``start`` and ``lexer`` for ``grammar``; ``start`` for ``gbnf``;
``flavor`` and ``flags`` for ``regex``; ``options`` (a dict of :class:`gdecode.json_schema.Options` fields)
for ``json``. Requests without a ``gdecode`` entry are not touched.

How it works: one processor per engine lives in the worker. ``update_state`` keeps a table from
persistent-batch row to request state (a :class:`~gdecode.Matcher` and the request's live list of output
token ids), following vLLM's ``BatchUpdate`` (removed, then added, then moved/swapped rows). ``apply``
first feeds each constrained row's new output tokens to its matcher (token history is read here, never in
``update_state``: with async scheduling the list may still hold placeholders there), then fills the bitmask
rows of the constrained requests and masks only those rows with :func:`gdecode.apply_bitmask_inplace`.
Masking changes the argmax, so :meth:`is_argmax_invariant` is False (vLLM then also runs the processor for
greedy requests, before temperature).

Compiled grammars are cached per process, keyed by the grammar text and settings and the tokenizer's
fingerprint, so repeated requests compile once. The tokenizer is loaded on the first constrained request,
so engines that never use gdecode pay nothing.

Failure policy: an invalid grammar is rejected up front by :meth:`validate_params` (HTTP 400 on the server).
A grammar that still fails in the worker (e.g. a compile limit) cannot be reported to the client, and
raising there would stop the whole engine; that request is logged and allowed only EOS, so it ends at
once with empty output. A token the grammar rejects (only possible when something else forced it) is
logged and the request is likewise steered to EOS.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gdecode.bitmask import apply_bitmask_inplace
from gdecode.compiler import CompiledGrammar
from gdecode.errors import GDecodeError
from gdecode.matcher import Matcher, allocate_bitmask, bitmask_words, fill_bitmasks
from gdecode.samplers.processor import force_token_
from gdecode.tokenizer import TokenizerInfo

try:  # vLLM is optional: without it the class below still runs on duck-typed inputs (unit tests)
    from vllm.v1.sample.logits_processor import LogitsProcessor as _VllmLogitsProcessor
except ModuleNotFoundError as _e:  # pragma: no cover - depends on the environment
    if not (_e.name or "").startswith("vllm"):
        raise
    _VllmLogitsProcessor = object

log = logging.getLogger(__name__)

EXTRA_ARGS_KEY = "gdecode"
ENTRY_POINT = "gdecode.integrations.vllm:GDecodeLogitsProcessor"
_FLAT_PREFIX = EXTRA_ARGS_KEY + "_"
_SAMPLER_KEYS = ("sampler", "sampler_options")   # per-request sampler choice (gdecode.samplers.processor)

# Settings key -> grammar kind, and the optional settings each kind accepts.
_KINDS = {"grammar": "lark", "gbnf": "gbnf", "regex": "regex", "json": "json"}
_OPTIONS = {
    "lark": {"start": str, "lexer": str},
    "gbnf": {"start": str},
    "regex": {"flavor": str, "flags": str},
    "json": {"options": dict},
}


# ------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class GrammarSpec:
    """One request's grammar: kind (``lark``/``gbnf``/``regex``/``json``), canonical text and settings."""

    kind: str
    text: str
    options: tuple[tuple[str, Any], ...] = ()

    def option_dict(self) -> dict[str, Any]:
        return {k: json.loads(v) if k == "options" else v for k, v in self.options}


def _raw_settings(extra_args: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The request's gdecode settings object (from the nested, JSON-text or flat form), or None."""
    if not extra_args:
        return None
    settings = extra_args.get(EXTRA_ARGS_KEY)
    if isinstance(settings, str):  # a JSON-encoded object
        try:
            settings = json.loads(settings)
        except ValueError as e:
            raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}] is a string but not JSON: {e}") from None
    if settings is not None and not isinstance(settings, Mapping):
        raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}] must be an object, got {type(settings).__name__}")
    # Flat form for HTTP: vllm_xargs values cannot be objects, so {"gdecode_regex": "..."} is accepted too.
    flat = {k[len(_FLAT_PREFIX):]: v for k, v in extra_args.items()
            if isinstance(k, str) and k.startswith(_FLAT_PREFIX)}
    if flat:
        if settings is not None:
            raise ValueError(f"give either extra_args[{EXTRA_ARGS_KEY!r}] or {_FLAT_PREFIX}* keys, not both")
        settings = flat
    return settings


def sampler_settings(extra_args: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(sampler name, sampler options) of a request: ``"sampler"`` (``"mask"`` when absent; ``"awrs"`` or
    ``"asap"``) and ``"sampler_options"`` (an object or its JSON text: ``estimator``, ``max_rejects``).
    Raises ValueError for an unknown name, ``"smc"`` (needs an outer driver) or bad options."""
    from gdecode.samplers.processor import check_sampler

    settings = _raw_settings(extra_args) or {}
    name = check_sampler(settings.get("sampler", "mask"), processor=True)
    opts = settings.get("sampler_options") or {}
    if isinstance(opts, str):
        try:
            opts = json.loads(opts)
        except ValueError as e:
            raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}]['sampler_options'] is not valid JSON: {e}") from None
    if not isinstance(opts, Mapping) or set(opts) - {"estimator", "max_rejects"}:
        raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}]['sampler_options'] must be an object with "
                         f"'estimator' and/or 'max_rejects', got {opts!r}")
    return name, dict(opts)


def parse_settings(extra_args: Mapping[str, Any] | None) -> GrammarSpec | None:
    """The GrammarSpec of a request's ``extra_args``, or None when it has no ``gdecode`` entry.

    Raises ValueError naming the problem for malformed settings (vLLM turns it into an HTTP 400).
    """
    settings = _raw_settings(extra_args)
    if settings is None:
        return None
    given = [k for k in _KINDS if settings.get(k) is not None]
    if len(given) != 1:
        raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}] needs exactly one of {sorted(_KINDS)}, "
                         f"got {given or 'none'}")
    key = given[0]
    kind = _KINDS[key]
    allowed = _OPTIONS[kind]
    unknown = sorted(k for k in settings if k not in _KINDS and k not in allowed and k not in _SAMPLER_KEYS)
    extra_kinds = sorted(k for k in _KINDS if k != key and k in settings)  # present but None
    if unknown or extra_kinds:
        raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}]: unknown or misplaced settings "
                         f"{unknown + extra_kinds} for {key!r} (allowed: {sorted(allowed)})")
    options = []
    for name, typ in allowed.items():
        if settings.get(name) is None:
            continue
        value = settings[name]
        if typ is dict and isinstance(value, str):  # JSON text (flat form)
            try:
                value = json.loads(value)
            except ValueError as e:
                raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}][{name!r}] is not valid JSON: {e}") from None
        if not isinstance(value, typ):
            raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}][{name!r}] must be a {typ.__name__}, "
                             f"got {type(value).__name__}")
        options.append((name, json.dumps(value, sort_keys=True) if typ is dict else value))
    spec = settings[key]
    if kind == "json":
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except ValueError as e:
                raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}]['json'] is not valid JSON: {e}") from None
        if not isinstance(spec, (dict, bool)):
            raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}]['json'] must be a JSON Schema (object or "
                             f"boolean, or its JSON text), got {type(spec).__name__}")
        # Keys keep their order: gdecode emits listed properties in ``properties`` order, so sorting them
        # here would change the grammar (and the output) compared with the HF path.
        text = json.dumps(spec, separators=(",", ":"))
    else:
        if not isinstance(spec, str):
            raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}][{key!r}] must be a string, "
                             f"got {type(spec).__name__}")
        text = spec
    return GrammarSpec(kind, text, tuple(options))


def gdecode_extra_args(*, grammar: str | None = None, gbnf: str | None = None, regex: str | None = None,
                       json: Any = None, **settings: Any) -> dict[str, Any]:
    """``extra_args`` for ``SamplingParams`` (or the body's ``vllm_xargs`` over HTTP) that constrain a
    request: ``gdecode_extra_args(grammar=lark_text)``, ``(regex=r"...", flavor="ecma")``,
    ``(json=schema, options={"whitespace": "compact"})``. Checked here, so mistakes fail early."""
    entry = {k: v for k, v in (("grammar", grammar), ("gbnf", gbnf), ("regex", regex), ("json", json))
             if v is not None}
    entry.update(settings)
    out = {EXTRA_ARGS_KEY: entry}
    parse_settings(out)
    return out


def _json_schema_compiler() -> Callable[..., CompiledGrammar]:
    try:
        from gdecode.json_schema import compile_json_schema
    except ImportError as e:
        raise GDecodeError(f"this gdecode has no JSON Schema compiler (gdecode.compile_json_schema: {e}); "
                           "use 'grammar', 'gbnf' or 'regex'") from None
    return compile_json_schema


def check_spec(spec: GrammarSpec) -> None:
    """Parse the grammar without a tokenizer (syntax and unsupported features). Raises GDecodeError."""
    opts = spec.option_dict()
    if spec.kind == "lark":
        from gdecode.frontends.lark import lark_to_ir

        lexer = opts.get("lexer", "contextual")
        if lexer not in ("contextual", "dynamic"):
            raise GDecodeError(f"lexer must be 'contextual' or 'dynamic', got {lexer!r}")
        lark_to_ir(spec.text, start=opts.get("start", "start"))
    elif spec.kind == "gbnf":
        from gdecode.frontends.gbnf import gbnf_to_ir

        gbnf_to_ir(spec.text, start=opts.get("start", "root"))
    elif spec.kind == "regex":
        from gdecode.regex import parse_regex

        parse_regex(spec.text, flavor=opts.get("flavor", "python"), flags=opts.get("flags", ""))
    else:
        _json_schema_compiler()
        from gdecode.json_schema import schema_to_ir

        schema_to_ir(json.loads(spec.text), **opts.get("options", {}))


def compile_spec(spec: GrammarSpec, info: TokenizerInfo) -> CompiledGrammar:
    """Compile a GrammarSpec for a tokenizer (uncached; see :class:`GrammarCache`)."""
    from gdecode.compiler import compile_gbnf, compile_lark, compile_regex

    opts = spec.option_dict()
    if spec.kind == "lark":
        return compile_lark(spec.text, info, **opts)
    if spec.kind == "gbnf":
        return compile_gbnf(spec.text, info, **opts)
    if spec.kind == "regex":
        return compile_regex(spec.text, info, **opts)
    return _json_schema_compiler()(json.loads(spec.text), info, **opts.get("options", {}))


class GrammarCache:
    """LRU of compiled grammars keyed by (GrammarSpec, tokenizer fingerprint); thread-safe."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._items: collections.OrderedDict[tuple[GrammarSpec, str], CompiledGrammar] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, spec: GrammarSpec, info: TokenizerInfo) -> CompiledGrammar:
        key = (spec, info.fingerprint)
        with self._lock:
            g = self._items.get(key)
            if g is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return g
            self.misses += 1
        g = compile_spec(spec, info)  # outside the lock: compiling can take a while
        with self._lock:
            self._items[key] = g
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return g

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


GRAMMAR_CACHE = GrammarCache()


# ----------------------------------------------------------------------------------- batch bookkeeping


def _is_swap(direction: Any) -> bool:
    """vLLM's ``MoveDirectionality.SWAP`` (compared by name, so tests need no vLLM)."""
    return getattr(direction, "name", direction) == "SWAP"


class RequestTable:
    """Persistent-batch row -> per-request state, kept in step with vLLM's ``BatchUpdate``.

    Pure Python, no vLLM: ``update(batch_update, make_state)`` applies ``removed``, then ``added`` (which
    may overwrite a row; ``make_state(params, prompt_ids, output_ids)`` returns the state, or None for a
    request this table does not track), then ``moved`` (``UNIDIRECTIONAL``: a's state goes to b and a is
    left empty; ``SWAP``: a and b exchange).
    """

    def __init__(self) -> None:
        self.rows: dict[int, Any] = {}

    def update(self, batch_update: Any, make_state: Callable[[Any, Any, Any], Any]) -> None:
        if batch_update is None:
            return
        rows = self.rows
        for index in batch_update.removed:
            rows.pop(index, None)
        for index, params, prompt_ids, output_ids in batch_update.added:
            state = make_state(params, prompt_ids, output_ids)
            if state is None:
                rows.pop(index, None)
            else:
                rows[index] = state
        for a, b, direction in batch_update.moved:
            sa = rows.pop(a, None)
            sb = rows.pop(b, None)
            if sa is not None:
                rows[b] = sa
            if _is_swap(direction) and sb is not None:
                rows[a] = sb

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, row: int) -> bool:
        return row in self.rows

    def get(self, row: int) -> Any:
        return self.rows.get(row)

    def items(self) -> Iterable[tuple[int, Any]]:
        return self.rows.items()


class RequestState:
    """One constrained request: its matcher and the live list of its output token ids.

    ``sync()`` feeds the matcher the tokens generated since the last call. A list that shrank or whose
    last seen token changed (not expected in vLLM without speculative decoding) is replayed from scratch.
    Negative ids (async-scheduling placeholders) stop the sync until the real ids are written.
    """

    __slots__ = ("matcher", "output_ids", "consumed", "last", "failed", "chooser", "trie_key")

    def __init__(self, matcher: Matcher | None, output_ids: list[int] | None) -> None:
        self.matcher = matcher
        self.output_ids = output_ids if output_ids is not None else []
        self.consumed = 0
        self.last = -1
        self.failed = matcher is None  # failed requests are steered to EOS
        self.chooser = None            # a TokenChooser for "awrs" / "asap" requests (None: mask)
        self.trie_key: Any = None

    def sync(self) -> None:
        if self.failed:
            return
        out, m = self.output_ids, self.matcher
        n = len(out)
        if n < self.consumed or (self.consumed and out[self.consumed - 1] != self.last):
            m.reset()
            self.consumed, self.last = 0, -1
        i = self.consumed
        while i < n:
            t = out[i]
            if t < 0:
                break
            if not m.consume_token(t):
                log.warning("gdecode: the grammar rejects generated token %d at position %d; "
                            "the request is steered to EOS", t, i)
                self.failed = True
                break
            i += 1
        if i > self.consumed:
            self.consumed, self.last = i, out[i - 1]


# ------------------------------------------------------------------------------------------ processor


def _model_eos_ids(model_config: Any) -> list[int]:
    """EOS ids of the model's HF config (besides the tokenizer's own), when given."""
    out: list[int] = []
    for cfg in (getattr(model_config, "hf_config", None),):
        eos = getattr(cfg, "eos_token_id", None) if cfg is not None else None
        if isinstance(eos, int):
            out.append(eos)
        elif isinstance(eos, (list, tuple)):
            out.extend(int(x) for x in eos)
    return out


def tokenizer_info_from_vllm_config(vllm_config: Any) -> TokenizerInfo:
    """TokenizerInfo of the engine's tokenizer, sized to the model's logit width."""
    from transformers import AutoTokenizer

    mc = vllm_config.model_config
    tok = AutoTokenizer.from_pretrained(
        mc.tokenizer,
        revision=getattr(mc, "tokenizer_revision", None),
        trust_remote_code=bool(getattr(mc, "trust_remote_code", False)),
    )
    vocab = int(mc.get_vocab_size())
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    eos += [i for i in _model_eos_ids(mc) if i not in eos and 0 <= i < vocab]
    # The logit width can exceed the tokenizer (padding); never the other way round in practice, but a
    # tokenizer with extra added tokens must still fit.
    return TokenizerInfo.from_huggingface(tok, vocab_size=max(vocab, len(tok)), eos_token_id=eos or None)


_INSTANCES: dict[int, weakref.ref] = {}  # id(vllm_config) -> the active processor of that engine
_INSTANCES_LOCK = threading.Lock()


class GDecodeLogitsProcessor(_VllmLogitsProcessor):
    """vLLM V1 logits processor: masks the rows of requests that carry ``extra_args["gdecode"]``.

    vLLM builds it as ``cls(vllm_config, device, is_pin_memory)``. ``tokenizer_info`` (tests, custom
    setups) skips loading the engine's tokenizer.
    """

    def __init__(self, vllm_config: Any, device: Any = None, is_pin_memory: bool = False, *,
                 tokenizer_info: TokenizerInfo | None = None, cache: GrammarCache | None = None) -> None:
        self.vllm_config = vllm_config
        self.device = device
        self.table = RequestTable()
        self.cache = GRAMMAR_CACHE if cache is None else cache
        self._info = tokenizer_info
        self._info_lock = threading.Lock()
        self._info_error: str | None = None
        self._bitmask: torch.Tensor | None = None
        self._asap_tries: dict[Any, Any] = {}  # ASAp tries, shared by requests of one kind (see _chooser)
        # vLLM does not deduplicate: with the entry point installed and the class also given explicitly,
        # it builds two instances for one engine. The later ones stay inert so rows are masked once.
        with _INSTANCES_LOCK:
            other = _INSTANCES.get(id(vllm_config))
            other = other() if other is not None else None
            self._inert = other is not None and other.vllm_config is vllm_config and vllm_config is not None
            if not self._inert:
                _INSTANCES[id(vllm_config)] = weakref.ref(self)

    # ---------------------------------------------------------------------------------- vLLM interface
    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """Reject malformed gdecode settings and grammars with syntax errors before the request is queued."""
        spec = parse_settings(getattr(sampling_params, "extra_args", None))
        if spec is None:
            return
        sampler_settings(sampling_params.extra_args)
        try:
            check_spec(spec)
        except GDecodeError as e:
            raise ValueError(f"gdecode: invalid {spec.kind} grammar: {e}") from None

    def is_argmax_invariant(self) -> bool:
        return False  # masking changes the argmax

    def update_state(self, batch_update: Any) -> None:
        if not self._inert:
            self.table.update(batch_update, self._new_request)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not len(self.table):
            return logits
        num_rows, width = logits.shape
        rows: list[int] = []
        matchers: list[Matcher] = []
        failed: list[int] = []
        for row, state in self.table.items():
            if row >= num_rows:
                continue
            state.sync()
            if state.failed:
                failed.append(row)
            elif state.chooser is not None:  # the sampler picks the token; the row is forced to it
                prefix = state.output_ids[:state.consumed]
                force_token_(logits[row], state.chooser.choose(logits[row], state.matcher, prefix, state.trie_key))
            else:
                rows.append(row)
                matchers.append(state.matcher)
        if not rows and not failed:
            return logits  # (rows forced by a sampler are done already)
        bitmask = self._bitmask_for(num_rows, width)
        if matchers:
            fill_bitmasks(matchers, bitmask, rows)
        if failed:
            self._fill_eos_only(bitmask, failed)
        apply_bitmask_inplace(logits, bitmask, np.asarray(rows + failed, dtype=np.int64))
        return logits

    # ---------------------------------------------------------------------------------------- internals
    def tokenizer_info(self) -> TokenizerInfo:
        """The engine's TokenizerInfo, loaded on first use. Raises GDecodeError when it cannot be loaded
        (remembered: later calls fail at once)."""
        if self._info is None:
            with self._info_lock:
                if self._info is None:
                    if self._info_error is not None:
                        raise GDecodeError(self._info_error)
                    try:
                        self._info = tokenizer_info_from_vllm_config(self.vllm_config)
                    except Exception as e:
                        self._info_error = (f"cannot load the engine's tokenizer for gdecode "
                                            f"({type(e).__name__}: {e})")
                        raise GDecodeError(self._info_error) from e
        return self._info

    def _eos_ids(self) -> tuple[int, ...]:
        if self._info is not None:
            return self._info.eos_token_ids
        return tuple(_model_eos_ids(getattr(self.vllm_config, "model_config", None)))

    def _new_request(self, params: Any, prompt_ids: Any, output_ids: Any) -> RequestState | None:
        try:
            spec = parse_settings(getattr(params, "extra_args", None))
        except ValueError as e:  # validate_params normally rejects these first
            log.error("gdecode: %s; the request is steered to EOS", e)
            return RequestState(None, output_ids)
        if spec is None:
            return None
        try:
            grammar = self.cache.get(spec, self.tokenizer_info())
        except Exception as e:  # raising here would stop the engine and every other request
            log.error("gdecode: compiling the request's %s grammar failed (%s: %s); the request is steered "
                      "to EOS", spec.kind, type(e).__name__, e)
            return RequestState(None, output_ids)
        state = RequestState(Matcher(grammar), output_ids)
        try:
            name, opts = sampler_settings(params.extra_args)
        except ValueError as e:  # validate_params normally rejects these first
            log.error("gdecode: %s; the request is steered to EOS", e)
            return RequestState(None, output_ids)
        if name != "mask":
            state.chooser, state.trie_key = self._chooser(name, opts, params, spec, prompt_ids)
        return state

    def _chooser(self, name: str, opts: dict[str, Any], params: Any, spec: GrammarSpec, prompt_ids: Any):
        """A request's TokenChooser: the request's temperature / top-k / top-p / seed / max_tokens are applied
        by the chooser itself (the forced row makes vLLM's own sampling irrelevant). ASAp tries are shared
        by requests with the same grammar, prompt and sampling parameters."""
        from gdecode.samplers.processor import chooser_from_settings

        top_k = getattr(params, "top_k", None)
        top_p = getattr(params, "top_p", None)
        sampling = (float(getattr(params, "temperature", 1.0) or 0.0), top_k if top_k and top_k > 0 else None,
                    top_p if top_p is not None and top_p < 1.0 else None)
        chooser = chooser_from_settings(name, opts, temperature=sampling[0], top_k=sampling[1], top_p=sampling[2],
                                        seed=getattr(params, "seed", None),
                                        max_tokens=getattr(params, "max_tokens", None))
        chooser.tries = self._asap_tries
        return chooser, (spec, tuple(prompt_ids or ()), sampling)

    def _bitmask_for(self, num_rows: int, width: int) -> torch.Tensor:
        vocab = self._info.vocab_size if self._info is not None else width
        words = max(bitmask_words(width), bitmask_words(vocab))
        bm = self._bitmask
        if bm is None or bm.shape[0] < num_rows or bm.shape[1] != words:
            bm = self._bitmask = allocate_bitmask(max(num_rows, 8), words * 32)
        return bm

    def _fill_eos_only(self, bitmask: torch.Tensor, rows: list[int]) -> None:
        eos = [t for t in self._eos_ids() if 0 <= t < bitmask.shape[1] * 32]
        view = bitmask.numpy().view(np.uint32)
        for row in rows:
            if not eos:  # nothing known to end with (no tokenizer, no model EOS): leave the row free
                view[row] = 0xFFFFFFFF
                continue
            view[row] = 0
            for t in eos:
                view[row, t >> 5] |= np.uint32(1 << (t & 31))
