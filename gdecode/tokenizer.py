"""What every token id means as bytes: the vocabulary view the rest of gdecode works from.

A :class:`TokenizerInfo` maps each id of the model's **logit width** (``vocab_size``) to the exact byte
string that token adds to the decoded text. Grammars are matched against these bytes, never against
``tokenizer.decode([id])``: single-token decoding strips or merges spaces, replaces partial UTF-8 with
U+FFFD and is slow.

Ids fall in four groups:

* **text tokens**: non-empty bytes; the only ids grammar bytes can match;
* **special tokens** (control, ``<|eot_id|>``, ``<s>`` ...): bytes ``b""``; grammars can name them by text;
* **padding** ids ``>= tokenizer_size`` (logits wider than the tokenizer, e.g. Qwen2's 151,936): ``b""``;
* **holes** (ids the tokenizer never uses, e.g. o200k's gaps, GGUF "unused" tokens): ``b""``.

:meth:`TokenizerInfo.excluded_ids` lists the last three groups plus any empty token: ids that must never
be allowed because of grammar bytes. EOS ids are special tokens and are listed in ``eos_token_ids``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from gdecode.errors import TokenizerError

VOCAB_TYPES = ("byte_level", "byte_fallback", "raw")

# Texts of end-of-sequence tokens, used only when the tokenizer itself does not say which id is EOS
# (a bare ``tokenizers.Tokenizer``, a tiktoken rank file). All of them that exist are taken.
_KNOWN_EOS_TEXTS = (
    "</s>",
    "<eos>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
)

# GGUF token types (llama.cpp's llama_token_type).
_GGUF_NORMAL, _GGUF_UNKNOWN, _GGUF_CONTROL, _GGUF_USER_DEFINED, _GGUF_UNUSED, _GGUF_BYTE = 1, 2, 3, 4, 5, 6

_BYTE_TOKEN = re.compile(r"<0[xX]([0-9A-Fa-f]{2})>")
_SPM_SPACE = "\u2581"  # '▁', SentencePiece's stand-in for a space


# ------------------------------------------------------------------------------------------ byte-level map
def _gpt2_byte_to_char() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD)
    are shifted, in byte order, to U+0100 onwards so that every token is printable text.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table = {b: chr(b) for b in keep}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


_BYTE_TO_CHAR = _gpt2_byte_to_char()

# str.translate table: byte-level char -> the Latin-1 char of its byte, so ``.encode("latin-1")`` yields
# the bytes in one C-level pass. Code points < 256 that are NOT table chars (space, controls, 0x7F-0xA0,
# 0xAD) are sent to a char Latin-1 cannot encode, which forces the slow path for that token (see
# _byte_level_bytes); code points >= 256 outside the table fail the encode by themselves.
_UNENCODABLE = "\U0010ffff"
_BYTE_LEVEL_TRANSLATE: dict[int, str] = {c: _UNENCODABLE for c in range(256)}
_BYTE_LEVEL_TRANSLATE.update({ord(ch): chr(b) for b, ch in _BYTE_TO_CHAR.items()})


def _byte_level_bytes(text: str) -> bytes:
    """Bytes of one byte-level BPE token. Like the HF ByteLevel decoder, a token holding any char outside
    the table is taken as plain UTF-8 text."""
    try:
        return text.translate(_BYTE_LEVEL_TRANSLATE).encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _byte_token_value(text: str) -> int | None:
    """NN for a SentencePiece byte-fallback token ``<0xNN>``; None when ``text`` is not shaped like one;
    TokenizerError when it is shaped like one but NN is not hex (``<0xZZ>``)."""
    if len(text) != 6 or not text.startswith(("<0x", "<0X")) or not text.endswith(">"):
        return None
    m = _BYTE_TOKEN.fullmatch(text)
    if m is None:
        raise TokenizerError(
            f"malformed byte-fallback token {text!r}: expected <0xNN> with NN two hex digits"
        )
    return int(m.group(1), 16)


# --------------------------------------------------------------------------------------------- the class
class TokenizerInfo:
    """Immutable per-id byte view of a tokenizer, padded to the model's logit width.

    Build it with one of the ``from_*`` constructors. Instances are picklable, compare equal when their
    :attr:`fingerprint` is equal, and refuse attribute assignment.
    """

    __slots__ = (
        "_token_bytes",
        "_vocab_size",
        "_tokenizer_size",
        "_eos_token_ids",
        "_special_text",
        "_special_by_text",
        "_special_ids",
        "_vocab_type",
        "_add_prefix_space",
        "_fingerprint",
        "_excluded",
    )

    def __init__(
        self,
        token_bytes: Sequence[bytes],
        *,
        eos_token_ids: int | Iterable[int],
        special_tokens: Mapping[int, str] | None = None,
        vocab_size: int | None = None,
        vocab_type: str = "raw",
        add_prefix_space: bool = False,
    ) -> None:
        """Validate and freeze.

        ``token_bytes`` has one entry per tokenizer id (its length is ``tokenizer_size``); the entries of
        special ids are ignored. ``special_tokens`` maps special ids to their text; EOS ids are always
        special. ``vocab_size`` (default: ``tokenizer_size``) is the logit width.
        """
        if isinstance(token_bytes, (bytes, str)) or not isinstance(token_bytes, Sequence):
            raise TokenizerError(f"token_bytes must be a sequence of bytes, got {type(token_bytes).__name__}")
        n = len(token_bytes)
        if n == 0:
            raise TokenizerError("the vocabulary is empty")
        vsize = _check_vocab_size(vocab_size, n)
        if vocab_type not in VOCAB_TYPES:
            raise TokenizerError(f"vocab_type must be one of {VOCAB_TYPES}, got {vocab_type!r}")

        specials: dict[int, str] = {}
        for i, text in (special_tokens or {}).items():
            i = _check_id(i, n, "special token id")
            if not isinstance(text, str):
                raise TokenizerError(f"special token {i} text must be str, got {type(text).__name__}")
            specials[i] = text
        eos = _normalize_eos(eos_token_ids, n)
        for i in eos:
            if i not in specials:
                specials[i] = _special_text_from_bytes(token_bytes[i])

        out = list(token_bytes)
        for i, b in enumerate(out):
            if type(b) is not bytes:  # noqa: E721 -- exact type check; bytearray/memoryview would be mutable
                if isinstance(b, (bytearray, memoryview)):
                    out[i] = bytes(b)
                else:
                    raise TokenizerError(f"token {i}: expected bytes, got {type(b).__name__}")
        for i in specials:
            out[i] = b""
        out.extend([b""] * (vsize - n))
        self._init(tuple(out), vsize, n, eos, specials, vocab_type, bool(add_prefix_space))

    def _init(self, token_bytes, vsize, n, eos, specials, vocab_type, add_prefix_space) -> None:
        """Set the fields without validation (used by __init__ and unpickling)."""
        setattr_ = object.__setattr__
        setattr_(self, "_token_bytes", token_bytes)
        setattr_(self, "_vocab_size", vsize)
        setattr_(self, "_tokenizer_size", n)
        setattr_(self, "_eos_token_ids", eos)
        setattr_(self, "_special_text", MappingProxyType(dict(sorted(specials.items()))))
        by_text: dict[str, int] = {}
        for i, text in sorted(specials.items()):
            by_text.setdefault(text, i)  # the lowest id wins when two specials share a text
        setattr_(self, "_special_by_text", MappingProxyType(by_text))
        setattr_(self, "_special_ids", frozenset(specials))
        setattr_(self, "_vocab_type", vocab_type)
        setattr_(self, "_add_prefix_space", add_prefix_space)
        setattr_(self, "_fingerprint", None)
        setattr_(self, "_excluded", None)

    # -------------------------------------------------------------------------------------- immutability
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"TokenizerInfo is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"TokenizerInfo is immutable (cannot delete {name!r})")

    def __reduce__(self):
        state = (
            self._token_bytes,
            self._vocab_size,
            self._tokenizer_size,
            self._eos_token_ids,
            dict(self._special_text),
            self._vocab_type,
            self._add_prefix_space,
        )
        return (_restore_tokenizer_info, state)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenizerInfo):
            return NotImplemented
        return self is other or self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return (
            f"TokenizerInfo(vocab_size={self._vocab_size}, tokenizer_size={self._tokenizer_size}, "
            f"vocab_type={self._vocab_type!r}, eos_token_ids={self._eos_token_ids}, "
            f"specials={len(self._special_ids)}, add_prefix_space={self._add_prefix_space})"
        )

    # ------------------------------------------------------------------------------------------ accessors
    @property
    def vocab_size(self) -> int:
        """The model's logit width; ids ``>= tokenizer_size`` are padding and never allowed."""
        return self._vocab_size

    @property
    def tokenizer_size(self) -> int:
        """Number of ids the tokenizer itself defines (max id + 1)."""
        return self._tokenizer_size

    @property
    def vocab_type(self) -> str:
        """How the source spelled token bytes: ``byte_level`` (GPT-2 byte-to-char table), ``byte_fallback``
        (SentencePiece: '▁' is a space, ``<0xNN>`` is one byte) or ``raw`` (text as UTF-8, or raw bytes)."""
        return self._vocab_type

    @property
    def add_prefix_space(self) -> bool:
        """True when encoding prepends a space to the text (SentencePiece's legacy dummy prefix): the first
        token of an encoded text then starts with a space that is not part of the text."""
        return self._add_prefix_space

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """Ids that end generation (all special)."""
        return self._eos_token_ids

    @property
    def special_token_ids(self) -> frozenset[int]:
        """Control and special tokens: their text is never part of grammar bytes."""
        return self._special_ids

    @property
    def special_tokens(self) -> Mapping[str, int]:
        """Special token text -> id (read-only), for grammars that name tokens like ``<|eot_id|>``."""
        return self._special_by_text

    def special_token_text(self, token_id: int) -> str:
        """The text of special token ``token_id``; TokenizerError if it is not special."""
        try:
            return self._special_text[token_id]
        except (KeyError, TypeError):
            raise TokenizerError(f"token {token_id!r} is not a special token") from None

    def special_token_id(self, text: str) -> int:
        """The id of the special token spelled ``text``; TokenizerError if there is none."""
        try:
            return self._special_by_text[text]
        except (KeyError, TypeError):
            raise TokenizerError(f"no special token {text!r} in this vocabulary") from None

    def token_bytes(self, token_id: int) -> bytes:
        """The exact bytes ``token_id`` adds to the decoded text (``b""`` for special, padding, holes)."""
        if type(token_id) is not int:  # noqa: E721 -- fast path for plain ints, checked below otherwise
            token_id = _check_id(token_id, None, "token id")
        if not 0 <= token_id < self._vocab_size:
            raise TokenizerError(f"token id {token_id} out of range [0, {self._vocab_size})")
        return self._token_bytes[token_id]

    @property
    def all_token_bytes(self) -> list[bytes]:
        """A fresh list of every id's bytes, of length ``vocab_size`` (copy: the info stays immutable)."""
        return list(self._token_bytes)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenated bytes of ``ids`` (special and padding ids contribute nothing)."""
        tb, v = self._token_bytes, self._vocab_size
        parts = []
        for i in ids:
            j = i if type(i) is int else _check_id(i, None, "token id")  # noqa: E721
            if not 0 <= j < v:
                raise TokenizerError(f"token id {j} out of range [0, {v})")
            parts.append(tb[j])
        return b"".join(parts)

    def excluded_ids(self) -> tuple[int, ...]:
        """Sorted ids that grammar bytes must never allow: special (incl. EOS), padding, holes, empty."""
        if self._excluded is None:
            tb = self._token_bytes
            ex = tuple(i for i in range(self._vocab_size) if not tb[i] or i in self._special_ids)
            object.__setattr__(self, "_excluded", ex)
        return self._excluded

    @property
    def fingerprint(self) -> str:
        """Stable hex digest of everything a compiled grammar depends on: the bytes of every id, the special
        tokens, the EOS ids and the logit width. Equal for equal vocabularies, whatever the source."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(b"gdecode-tokenizer-v1\0")
            h.update(f"{self._vocab_size},{self._tokenizer_size}\0".encode())
            h.update(json.dumps(list(self._eos_token_ids)).encode() + b"\0")
            h.update(json.dumps(sorted(self._special_text.items())).encode() + b"\0")
            # Length-prefix every token so that (b"ab", b"") and (b"a", b"b") hash differently.
            h.update(b"".join(len(b).to_bytes(4, "little") for b in self._token_bytes))
            h.update(b"".join(self._token_bytes))
            object.__setattr__(self, "_fingerprint", h.hexdigest())
        return self._fingerprint

    # ------------------------------------------------------------------------------------- constructors
    @classmethod
    def from_token_bytes(
        cls,
        token_bytes: Sequence[bytes],
        eos_token_ids: int | Iterable[int],
        special_ids: Iterable[int] = (),
        vocab_size: int | None = None,
    ) -> TokenizerInfo:
        """From explicit per-id bytes. ``special_ids`` (and the EOS ids) become special tokens whose text is
        their entry in ``token_bytes`` decoded as UTF-8; their bytes become ``b""``."""
        if isinstance(token_bytes, (bytes, str)) or not isinstance(token_bytes, Sequence):
            raise TokenizerError(f"token_bytes must be a sequence of bytes, got {type(token_bytes).__name__}")
        n = len(token_bytes)
        if isinstance(special_ids, (str, bytes)) or not isinstance(special_ids, Iterable):
            raise TokenizerError(f"special_ids must be an iterable of ints, got {type(special_ids).__name__}")
        specials = {}
        for i in special_ids:
            i = _check_id(i, n, "special token id")
            specials[i] = _special_text_from_bytes(token_bytes[i])
        return cls(token_bytes, eos_token_ids=eos_token_ids, special_tokens=specials, vocab_size=vocab_size)

    @classmethod
    def from_tiktoken(
        cls,
        ranks: str | os.PathLike | Mapping[bytes, int],
        special_tokens: Mapping[str, int] | None = None,
        vocab_size: int | None = None,
        eos_token_id: int | Iterable[int] | None = None,
    ) -> TokenizerInfo:
        """From tiktoken ranks: a ``.tiktoken`` file (lines ``<base64 token> <rank>``) or a bytes->rank dict.

        The rank is the token id. Ids used by neither a rank nor a special token are holes (``b""``,
        excluded). Without ``eos_token_id``, the EOS ids are the special tokens with a well-known EOS text.
        """
        if isinstance(ranks, (str, os.PathLike)):
            pairs = _read_tiktoken_file(ranks)
        elif isinstance(ranks, Mapping):
            pairs = list(ranks.items())
        else:
            raise TokenizerError(f"ranks must be a path or a dict[bytes, int], got {type(ranks).__name__}")
        by_id: dict[int, bytes] = {}
        for tok, rank in pairs:
            if not isinstance(tok, (bytes, bytearray)):
                raise TokenizerError(f"tiktoken token {tok!r}: expected bytes, got {type(tok).__name__}")
            rank = _check_id(rank, None, f"rank of {bytes(tok)!r}")
            if rank in by_id:
                raise TokenizerError(f"rank {rank} is used by both {by_id[rank]!r} and {bytes(tok)!r}")
            by_id[rank] = bytes(tok)
        specials: dict[int, str] = {}
        for text, i in (special_tokens or {}).items():
            if not isinstance(text, str):
                raise TokenizerError(f"special token {text!r}: text must be str, got {type(text).__name__}")
            i = _check_id(i, None, f"id of special token {text!r}")
            if i in by_id:
                raise TokenizerError(f"special token {text!r} id {i} collides with the rank of {by_id[i]!r}")
            if i in specials:
                raise TokenizerError(f"special tokens {specials[i]!r} and {text!r} share id {i}")
            specials[i] = text
        if not by_id and not specials:
            raise TokenizerError("the tiktoken vocabulary is empty")
        n = max(max(by_id, default=-1), max(specials, default=-1)) + 1
        token_bytes = [b""] * n
        for i, b in by_id.items():
            token_bytes[i] = b
        eos = eos_token_id if eos_token_id is not None else _guess_eos(specials)
        return cls(token_bytes, eos_token_ids=eos, special_tokens=specials, vocab_size=vocab_size)

    @classmethod
    def from_gguf(
        cls,
        path: str | os.PathLike,
        vocab_size: int | None = None,
        eos_token_id: int | Iterable[int] | None = None,
    ) -> TokenizerInfo:
        """From the tokenizer metadata of a GGUF file (a model or a vocab-only file), read with ``gguf``.

        ``tokenizer.ggml.model`` "gpt2" is byte-level BPE; "llama" (and "t5", "bert") spell spaces as '▁'
        and bytes as ``<0xNN>``. EOS ids are eos plus eot/eom when present.
        """
        try:
            import gguf
        except ImportError as e:  # pragma: no cover - gguf is part of the hf extra
            raise TokenizerError("reading GGUF needs the 'gguf' package (pip install gguf)") from e
        try:
            reader = gguf.GGUFReader(os.fspath(path), "r")
        except (OSError, ValueError, KeyError, IndexError) as e:
            raise TokenizerError(f"cannot read GGUF file {os.fspath(path)!r}: {e}") from e

        def field(key: str):
            return reader.fields.get(key)

        def scalar(key: str):
            f = field(key)
            return None if f is None else f.contents()

        model = scalar("tokenizer.ggml.model")
        tokens_field = field("tokenizer.ggml.tokens")
        if model is None or tokens_field is None:
            raise TokenizerError(f"{os.fspath(path)!r} has no tokenizer.ggml.model / tokenizer.ggml.tokens")
        # Raw bytes of each token string, without trusting them to be valid UTF-8.
        raw_tokens = [bytes(tokens_field.parts[i]) for i in tokens_field.data]
        n = len(raw_tokens)
        types_field = field("tokenizer.ggml.token_type")
        if types_field is None:
            types = [_GGUF_NORMAL] * n
        else:
            types = [int(types_field.parts[i][0]) for i in types_field.data]
            if len(types) != n:
                raise TokenizerError(f"GGUF has {n} tokens but {len(types)} token types")

        if model == "gpt2":
            vocab_type, spm = "byte_level", False
        elif model in ("llama", "t5", "bert"):
            spm = True
            vocab_type = "byte_fallback" if _GGUF_BYTE in types else "raw"
        else:
            raise TokenizerError(
                f"unsupported GGUF tokenizer model {model!r} (supported: gpt2, llama, t5, bert)"
            )
        add_prefix = scalar("tokenizer.ggml.add_space_prefix")
        add_prefix_space = bool(add_prefix) if add_prefix is not None else model in ("llama", "t5")

        token_bytes: list[bytes] = [b""] * n
        specials: dict[int, str] = {}
        for i, (raw, ttype) in enumerate(zip(raw_tokens, types, strict=True)):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise TokenizerError(f"GGUF token {i} is not valid UTF-8: {raw!r}") from None
            if ttype in (_GGUF_CONTROL, _GGUF_UNKNOWN):
                specials[i] = text
            elif ttype == _GGUF_UNUSED:
                pass  # a hole: b"" and excluded
            elif ttype == _GGUF_BYTE:
                value = _byte_token_value(text)
                if value is None:
                    raise TokenizerError(f"GGUF byte token {i} is {text!r}, expected <0xNN>")
                token_bytes[i] = bytes((value,))
            elif ttype == _GGUF_USER_DEFINED:
                token_bytes[i] = raw  # llama.cpp copies user-defined tokens verbatim
            elif ttype in (_GGUF_NORMAL, 0):  # 0: undefined, treated as normal like llama.cpp
                token_bytes[i] = text.replace(_SPM_SPACE, " ").encode() if spm else _byte_level_bytes(text)
            else:
                raise TokenizerError(f"GGUF token {i} ({text!r}) has unknown token type {ttype}")

        if eos_token_id is None:
            eos_list = []
            for key in (
                "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.eot_token_id",
                "tokenizer.ggml.eom_token_id",
            ):
                v = scalar(key)
                if v is not None and v not in eos_list:
                    eos_list.append(int(v))
            eos = eos_list or _guess_eos(specials)
        else:
            eos = eos_token_id
        return cls(
            token_bytes,
            eos_token_ids=eos,
            special_tokens=specials,
            vocab_size=vocab_size,
            vocab_type=vocab_type,
            add_prefix_space=add_prefix_space,
        )

    @classmethod
    def from_huggingface(
        cls,
        tokenizer: Any,
        vocab_size: int | None = None,
        eos_token_id: int | Iterable[int] | None = None,
    ) -> TokenizerInfo:
        """From a transformers tokenizer (fast or slow) or a bare ``tokenizers.Tokenizer``.

        ``vocab_size`` is the model's logit width (e.g. ``model.config.vocab_size``); default: the
        tokenizer size. ``eos_token_id`` (int or ids) overrides the tokenizer's EOS; a bare
        ``tokenizers.Tokenizer`` has none, so the special tokens with a well-known EOS text are used.
        """
        backend = _backend_tokenizer(tokenizer)
        if backend is not None:
            parts = _from_backend(backend)
        elif callable(getattr(tokenizer, "get_vocab", None)):
            parts = _from_slow(tokenizer)
        else:
            raise TokenizerError(
                f"expected a transformers tokenizer or a tokenizers.Tokenizer, got {type(tokenizer).__name__}"
            )
        token_bytes, specials, vocab_type, add_prefix_space = parts

        # transformers' own special tokens (bos/eos/unk/pad...) are special even when the tokenizer.json
        # lists them as ordinary vocab entries.
        if backend is not tokenizer:
            for i in _transformers_special_ids(tokenizer):
                if 0 <= i < len(token_bytes) and i not in specials:
                    specials[i] = _special_text_from_bytes(token_bytes[i])

        if eos_token_id is None:
            eos_token_id = getattr(tokenizer, "eos_token_id", None) if backend is not tokenizer else None
            if eos_token_id is None:
                eos_token_id = _guess_eos(specials)
        return cls(
            token_bytes,
            eos_token_ids=eos_token_id,
            special_tokens=specials,
            vocab_size=vocab_size,
            vocab_type=vocab_type,
            add_prefix_space=add_prefix_space,
        )


def _restore_tokenizer_info(
    token_bytes, vsize, n, eos, specials, vocab_type, add_prefix_space
) -> TokenizerInfo:
    info = TokenizerInfo.__new__(TokenizerInfo)
    info._init(token_bytes, vsize, n, eos, specials, vocab_type, add_prefix_space)
    return info


# ----------------------------------------------------------------------------------------- validation
def _as_int(x: Any) -> int:
    """``x`` as an int, accepting numpy/torch integer scalars but not bools, floats or strings."""
    if isinstance(x, bool):
        raise TypeError("bool is not a token id")
    if isinstance(x, int):
        return x
    index = getattr(type(x), "__index__", None)
    if index is None:
        raise TypeError(f"{type(x).__name__} is not an integer")
    return index(x)


def _check_id(i: Any, n: int | None, what: str) -> int:
    try:
        j = _as_int(i)
    except TypeError:
        raise TokenizerError(f"{what} must be an int, got {type(i).__name__}") from None
    if j < 0 or (n is not None and j >= n):
        bound = f"[0, {n})" if n is not None else ">= 0"
        raise TokenizerError(f"{what} {j} out of range {bound}")
    return j


def _check_vocab_size(vocab_size: Any, n: int) -> int:
    if vocab_size is None:
        return n
    try:
        v = _as_int(vocab_size)
    except TypeError:
        raise TokenizerError(f"vocab_size must be an int, got {type(vocab_size).__name__}") from None
    if v < n:
        raise TokenizerError(
            f"vocab_size {v} is smaller than the tokenizer's {n} ids: the model's logit width must cover "
            "every token id (pass the model's config.vocab_size)"
        )
    return v


def _normalize_eos(eos: Any, n: int) -> tuple[int, ...]:
    if eos is None:
        raise TokenizerError("no EOS token id given or found; pass eos_token_id explicitly")
    if isinstance(eos, (str, bytes)):
        raise TokenizerError(f"eos_token_ids must be an int or ints, got {type(eos).__name__}")
    ids = [eos] if not isinstance(eos, Iterable) else list(eos)
    out: list[int] = []
    for i in ids:
        j = _check_id(i, n, "EOS token id")
        if j not in out:
            out.append(j)
    return tuple(out)


def _special_text_from_bytes(b: Any) -> str:
    if isinstance(b, str):
        return b
    if isinstance(b, (bytes, bytearray, memoryview)):
        return bytes(b).decode("utf-8", errors="replace")
    raise TokenizerError(f"expected bytes for a token, got {type(b).__name__}")


def _guess_eos(specials: Mapping[int, str]) -> tuple[int, ...]:
    by_text = {text: i for i, text in sorted(specials.items(), reverse=True)}
    found = tuple(sorted({by_text[t] for t in _KNOWN_EOS_TEXTS if t in by_text}))
    if not found:
        raise TokenizerError(
            "cannot tell which token is EOS (no eos_token_id and no special token named like "
            f"{', '.join(_KNOWN_EOS_TEXTS[:4])}...); pass eos_token_id explicitly"
        )
    return found


def _read_tiktoken_file(path: str | os.PathLike) -> list[tuple[bytes, int]]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TokenizerError(f"cannot read tiktoken file {os.fspath(path)!r}: {e}") from e
    pairs: list[tuple[bytes, int]] = []
    seen: dict[int, int] = {}  # rank -> line number, to report duplicates
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise TokenizerError(
                f"{os.fspath(path)}:{lineno}: expected '<base64 token> <rank>', got {line[:80]!r}"
            )
        try:
            tok = base64.b64decode(fields[0], validate=True)
            rank = int(fields[1])
        except ValueError:  # binascii.Error is a ValueError
            raise TokenizerError(f"{os.fspath(path)}:{lineno}: bad token or rank in {line[:80]!r}") from None
        if rank < 0:
            raise TokenizerError(f"{os.fspath(path)}:{lineno}: negative rank {rank}")
        if rank in seen:
            raise TokenizerError(f"{os.fspath(path)}:{lineno}: rank {rank} already used on line {seen[rank]}")
        seen[rank] = lineno
        pairs.append((tok, rank))  # a token listed twice keeps both ids: duplicates are legal
    if not pairs:
        raise TokenizerError(f"tiktoken file {os.fspath(path)!r} holds no tokens")
    return pairs


# --------------------------------------------------------------------------------- HuggingFace readers
def _backend_tokenizer(tokenizer: Any):
    """The ``tokenizers.Tokenizer`` behind ``tokenizer`` (itself if it is one), or None for slow ones."""
    try:
        import tokenizers
    except ImportError:  # pragma: no cover - without tokenizers only slow tokenizers can exist
        return None
    if isinstance(tokenizer, tokenizers.Tokenizer):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None) if hasattr(tokenizer, "get_vocab") else None
    return backend if isinstance(backend, tokenizers.Tokenizer) else None


def _component_json(component: Any) -> dict | None:
    """The JSON config of a tokenizers pipeline component (decoder, normalizer, pre-tokenizer).

    ``__getstate__`` serialises just that component, so this avoids ``Tokenizer.to_str()``, which would
    serialise the whole vocabulary (30 MB for Gemma) to read a few flags.
    """
    if component is None:
        return None
    try:
        return json.loads(component.__getstate__())
    except Exception as e:  # noqa: BLE001 - any failure here means we cannot interpret the pipeline
        raise TokenizerError(f"cannot read the tokenizer's {type(component).__name__} config: {e}") from e


def _flatten(cfg: dict | None, key: str) -> list[dict]:
    """The leaf steps of a possibly nested ``Sequence`` config."""
    if not cfg:
        return []
    if cfg.get("type") == "Sequence":
        return [leaf for sub in cfg.get(key) or [] for leaf in _flatten(sub, key)]
    return [cfg]


def _analyze_pipeline(
    decoder: dict | None, normalizer: dict | None, pre_tokenizer: dict | None, model_byte_fallback: bool
):
    """(vocab_type, replacements, add_prefix_space) from a tokenizers pipeline.

    The decoder says how token strings become text: ByteLevel (byte-level table), Replace/Metaspace
    (e.g. '▁' -> ' '), ByteFallback (``<0xNN>``). The normalizer and pre-tokenizer say whether encoding
    prepends a space (Prepend '▁', Metaspace prepend_scheme, ByteLevel add_prefix_space).
    """
    byte_level = False
    byte_fallback = model_byte_fallback
    replacements: list[tuple[str, str]] = []
    for step in _flatten(decoder, "decoders"):
        kind = step.get("type")
        if kind == "ByteLevel":
            byte_level = True
        elif kind == "ByteFallback":
            byte_fallback = True
        elif kind == "Replace":
            pattern = step.get("pattern") or {}
            if "String" not in pattern:
                raise TokenizerError(f"unsupported Replace decoder with a regex pattern: {pattern}")
            replacements.append((pattern["String"], step.get("content", "")))
        elif kind == "Metaspace":
            replacements.append((step.get("replacement", _SPM_SPACE), " "))
        # Fuse/Strip act on the whole decoded text (Strip removes the dummy prefix), not on one token;
        # WordPiece/BPEDecoder/CTC token bytes depend on neighbours and are taken as raw text.

    add_prefix_space = False
    for step in _flatten(normalizer, "normalizers"):
        if step.get("type") == "Prepend" and step.get("prepend"):
            add_prefix_space = True
    for step in _flatten(pre_tokenizer, "pretokenizers"):
        kind = step.get("type")
        if kind == "Metaspace":
            scheme = step.get("prepend_scheme")
            if scheme in ("always", "first") or (scheme is None and step.get("add_prefix_space")):
                add_prefix_space = True
        elif kind == "ByteLevel" and step.get("add_prefix_space"):
            add_prefix_space = True

    if byte_level:
        vocab_type = "byte_level"
    elif byte_fallback:
        vocab_type = "byte_fallback"
    else:
        vocab_type = "raw"
    return vocab_type, replacements, add_prefix_space


def _text_to_bytes_fn(vocab_type: str, replacements: list[tuple[str, str]], byte_fallback: bool):
    """The per-token text -> bytes function for one pipeline."""
    if vocab_type == "byte_level":
        return _byte_level_bytes

    def convert(text: str) -> bytes:
        if byte_fallback:
            value = _byte_token_value(text)
            if value is not None:
                return bytes((value,))
        for old, new in replacements:
            text = text.replace(old, new)
        return text.encode("utf-8")

    return convert


def _from_backend(backend: Any):
    """Per-id bytes, specials, vocab type and prefix flag of a ``tokenizers.Tokenizer``."""
    model = backend.model
    decoder = _component_json(backend.decoder)
    normalizer = _component_json(backend.normalizer)
    pre_tokenizer = _component_json(backend.pre_tokenizer)
    model_byte_fallback = bool(getattr(model, "byte_fallback", False))
    vocab_type, replacements, add_prefix_space = _analyze_pipeline(
        decoder, normalizer, pre_tokenizer, model_byte_fallback
    )
    convert = _text_to_bytes_fn(vocab_type, replacements, vocab_type == "byte_fallback")
    vocab = backend.get_vocab(with_added_tokens=True)  # str -> id, one call into Rust
    added = backend.get_added_tokens_decoder()  # id -> AddedToken
    n = max(max(vocab.values(), default=-1), max(added, default=-1)) + 1
    if n <= 0:
        raise TokenizerError("the tokenizer has an empty vocabulary")
    texts: list[str | None] = [None] * n
    for text, i in vocab.items():
        texts[i] = text
    token_bytes = [b"" if t is None else convert(t) for t in texts]

    specials: dict[int, str] = {}
    for i, tok in added.items():
        if tok.special:
            specials[i] = tok.content
        elif model.token_to_id(tok.content) == i:
            # A model token merely re-marked as added (e.g. "é" in a byte-level vocabulary): its meaning
            # is the model's spelling, already converted above.
            pass
        else:
            # A new token, matched on the input text before pre-tokenization: its content is plain text
            # even in a byte-level vocabulary. A "normalized" one is matched on normalized text, i.e. it
            # stands for normalizer(content) read back through the decoder (Llama-2: "a b" -> "▁a▁b"
            # -> " a b").
            content = tok.content
            if tok.normalized and backend.normalizer is not None:
                content = backend.normalizer.normalize_str(content)
                if vocab_type != "byte_level":
                    for old, new in replacements:
                        content = content.replace(old, new)
            token_bytes[i] = content.encode("utf-8")
    return token_bytes, specials, vocab_type, add_prefix_space


def _from_slow(tokenizer: Any):
    """Per-id bytes etc. of a slow (pure Python) transformers tokenizer, from ``get_vocab()``.

    The spelling is inferred from the class: a ``byte_decoder`` means GPT-2 byte-level, an ``sp_model``
    means SentencePiece; ``bytes`` keys (tiktoken-based remote-code tokenizers) are taken as they are.
    """
    try:
        vocab = tokenizer.get_vocab()
    except Exception as e:  # noqa: BLE001 - third-party tokenizers raise anything
        raise TokenizerError(f"{type(tokenizer).__name__}.get_vocab() failed: {e}") from e
    if not isinstance(vocab, Mapping):
        raise TokenizerError(f"get_vocab() returned {type(vocab).__name__}, expected a dict")
    if hasattr(tokenizer, "byte_decoder"):
        vocab_type, replacements = "byte_level", []
        add_prefix_space = bool(getattr(tokenizer, "add_prefix_space", False))
    elif hasattr(tokenizer, "sp_model"):
        vocab_type, replacements = "byte_fallback", [(_SPM_SPACE, " ")]
        add_prefix_space = bool(getattr(tokenizer, "add_dummy_prefix", getattr(tokenizer, "legacy", True)))
    else:
        vocab_type, replacements, add_prefix_space = "raw", [], False
    convert = _text_to_bytes_fn(vocab_type, replacements, vocab_type == "byte_fallback")

    entries = [(key, _check_id(i, None, f"id of token {key!r}")) for key, i in vocab.items()]
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    n = max(max((i for _, i in entries), default=-1), max(added, default=-1)) + 1
    if n <= 0:
        raise TokenizerError("the tokenizer has an empty vocabulary")
    token_bytes = [b""] * n
    for key, i in entries:
        if isinstance(key, bytes):
            token_bytes[i] = key
        elif isinstance(key, str):
            token_bytes[i] = convert(key)
        else:
            raise TokenizerError(f"vocabulary key {key!r} is neither str nor bytes")
    specials: dict[int, str] = {}
    for i, tok in added.items():
        content = getattr(tok, "content", str(tok))
        if getattr(tok, "special", False):
            specials[i] = content
        else:
            token_bytes[i] = content.encode("utf-8")
    return token_bytes, specials, vocab_type, add_prefix_space


def _transformers_special_ids(tokenizer: Any) -> list[int]:
    try:
        ids = list(getattr(tokenizer, "all_special_ids", None) or [])
    except Exception:  # noqa: BLE001 - a broken property must not block reading the vocabulary
        return []
    return [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
