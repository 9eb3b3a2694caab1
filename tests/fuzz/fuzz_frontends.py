"""Coverage-guided fuzzer (atheris / libFuzzer) for the Python front ends: regex (both flavours), Lark, GBNF
and JSON Schema text -> IR -> compiled grammar -> a short walk with masks.

Contract: only gdecode errors escape (GDecodeError and its subclasses, never IndexError, KeyError,
RecursionError, ...), and every compiled grammar's mask agrees with is_token_allowed.

    pip install atheris
    python tests/fuzz/fuzz_frontends.py build/fuzz/run/frontends build/fuzz/corpus/frontends \
        -max_total_time=600 -rss_limit_mb=3072 -timeout=60
    python tests/fuzz/fuzz_frontends.py --seed-corpus build/fuzz/corpus/frontends   # from ../shared/datasets

The first input byte picks the front end; the rest is the text (UTF-8, invalid bytes replaced).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402, F401  (imported first: too big to instrument, and not under test)

# enable_loader_override=False: gdecode is an editable install, whose import loader atheris' default
# hook does not handle (no coverage at all otherwise).
with atheris.instrument_imports(include=["gdecode", "lark", "interegular", "jsonschema"],
                                enable_loader_override=False):
    import gdecode as gd
    from gdecode.compiler import Limits
    from gdecode.errors import GDecodeError
    from gdecode.frontends import gbnf, lark  # noqa: F401  (loaded now so they are instrumented)
    from gdecode.json_schema import compile as _js  # noqa: F401
    from gdecode.tokenizer import TokenizerInfo

KINDS = ["regex-python", "regex-ecma", "lark", "gbnf", "json-schema"]
LIMITS = Limits(max_nfa_states=50_000, max_dfa_states=2_000, max_chart_items=200_000, max_compile_seconds=20)
_rng = random.Random(0)
_TOKS = [bytes([b]) for b in range(32, 127)] + [c.encode() for c in "é中😀"] + [b"\xc3", b"\xa9", b"", b"ab",
                                                                               b"ab", b"<eos>"]
TOK = TokenizerInfo.from_token_bytes(_TOKS, eos_token_ids=[len(_TOKS) - 1], vocab_size=len(_TOKS) + 5)


def compile_text(kind: str, text: str):
    if kind == "regex-python":
        return gd.compile_regex(text, TOK, flavor="python", limits=LIMITS)
    if kind == "regex-ecma":
        return gd.compile_regex(text, TOK, flavor="ecma", limits=LIMITS)
    if kind == "lark":
        return gd.compile_lark(text, TOK, limits=LIMITS)
    if kind == "gbnf":
        return gd.compile_gbnf(text, TOK, limits=LIMITS)
    return gd.compile_json_schema(text, TOK, limits=LIMITS)


def walk(g, seed: int) -> None:
    rng = random.Random(seed)
    m = gd.Matcher(g)
    width = g.vocab_size
    bm = gd.allocate_bitmask(1, width, backend="numpy")
    for _ in range(4):
        m.fill_bitmask(bm)
        allowed = [t for t in range(width) if (int(bm[0, t >> 5]) >> (t & 31)) & 1]
        if allowed != [t for t in range(width) if m.is_token_allowed(t)]:
            raise AssertionError("mask != is_token_allowed")
        if not allowed or m.is_terminated():
            return
        if not m.consume_token(rng.choice(allowed)):
            raise AssertionError("an allowed token was rejected")


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    kind = KINDS[data[0] % len(KINDS)]
    text = data[1:].decode("utf-8", "replace")
    try:
        g = compile_text(kind, text)
    except GDecodeError:
        return
    try:
        walk(g, len(data))
    except GDecodeError as e:  # a matching limit (DFA states, chart items) is documented behaviour
        if "max_" not in str(e):
            raise


def seed_corpus(out: Path, datasets: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    seeds: list[bytes] = []
    for line in (datasets / "regex" / "genlm_pattern_matching.jsonl").read_text().split("\n"):
        if line.strip():
            pat = json.loads(line)["pattern"].encode()
            seeds += [bytes([0]) + pat, bytes([1]) + pat]
    for path in sorted((datasets / "grammars").rglob("*.lark"))[:40]:
        seeds.append(bytes([2]) + path.read_bytes())
    for path in sorted((datasets / "grammars").rglob("*.gbnf")):
        seeds.append(bytes([3]) + path.read_bytes())
    rows = (datasets / "jsonschemabench" / "Github_easy.jsonl").read_text().split("\n")
    for line in rows[:300]:
        if line.strip():
            seeds.append(bytes([4]) + json.dumps(json.loads(line)["schema"]).encode())
    for k, s in enumerate(seeds):
        (out / f"seed{k:05d}").write_bytes(s)
    print(f"{len(seeds)} seeds in {out}")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--seed-corpus":
        seed_corpus(Path(sys.argv[2]), ROOT.parent / "shared" / "datasets")
    else:
        sys.setrecursionlimit(10_000)
        atheris.Setup(sys.argv, TestOneInput)
        atheris.Fuzz()
