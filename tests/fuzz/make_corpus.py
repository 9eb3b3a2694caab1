"""Seeds the fuzzers' corpora from ../shared/datasets (grammars, regexes, JSON Schemas).

Each real grammar goes through gdecode's own front ends (Lark, GBNF, regex, JSON Schema) and compiler
passes (trim, regex flattening), then is written in the fuzzers' input encoding (tests/fuzz/fuzz_input.hpp)
with a small vocabulary and a random op script. The fuzzers then mutate from realistic specs instead of
from nothing.

    python tests/fuzz/make_corpus.py build/fuzz/corpus [--datasets ../shared/datasets] [--max-schemas 300]
    python tests/fuzz/make_corpus.py build/tsan/inputs --only grammars/json.lark grammars/json.gbnf
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gdecode import compiler, ir  # noqa: E402
from gdecode.errors import GDecodeError  # noqa: E402


# ----------------------------------------------------------------------------------------- encoding
def _u(n: int) -> bytes:
    assert n >= 0
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _s(n: int) -> bytes:
    return _u((n << 1) if n >= 0 else ((-n << 1) - 1))


def encode_spec(g: ir.Grammar) -> tuple[bytes, int]:
    """(encoded grammar spec, number of terminals), numbered as compiler._compile does. Trimmed first (the
    core would drop the same parts), so the seeds carry no dead weight."""
    g = compiler.trim(g, {})
    terminals = list(g.terminals)
    rules = list(g.rules)
    symbol = {n: i for i, n in enumerate(terminals)}
    symbol.update({n: len(terminals) + i for i, n in enumerate(rules)})
    flat = compiler._RegexFlattener()
    roots = []
    for name in terminals:
        t = g.terminals[name]
        roots.append(-1 if t.special_token is not None else flat.add(t.regex))
    out = bytearray(_u(len(flat.flat)))
    for x in flat.flat:
        out += _s(x)
    out += _u(len(terminals))
    for name, root in zip(terminals, roots, strict=True):
        out += _s(root) + bytes([1 if g.terminals[name].ignore else 0]) + _u(0)
    prods = [(symbol[n], [symbol[s] for s in alt]) for n in rules for alt in g.rules[n]]
    out += _u(len(rules)) + _u(len(prods))
    for lhs, rhs in prods:
        out += _u(lhs) + _u(len(rhs)) + b"".join(_u(s) for s in rhs)
    out += _u(symbol[g.start])
    return bytes(out), len(terminals)


WORDS = ['{"', '":', '", "', '"}', "true", "false", "null", "SELECT", " FROM", " WHERE", "(", ")", "[", "]",
         ", ", "  ", "\n", "\\n", "\\u00", "é", "😀", "-1", "0.5", "e+", "abc", "the", " a", "==", "->", "::",
         "\xff", "<|eot|>"]


def vocab_bytes(rng: random.Random) -> bytes:
    """Single bytes (so everything is reachable), common multi-byte pieces, a duplicate and an empty token."""
    tokens = [bytes([b]) for b in range(256)]
    tokens += [w.encode("utf-8", "surrogatepass") if w != "\xff" else b"\xff\xfe" for w in WORDS]
    tokens += [tokens[ord("a")], b"", "é".encode()[:1]]  # duplicate, empty, a cut UTF-8 character
    extra = [bytes(rng.randrange(32, 127) for _ in range(rng.randrange(2, 6))) for _ in range(64)]
    tokens += extra
    out = bytearray(_u(len(tokens)))
    for t in tokens:
        out += _u(len(t)) + t
    out += _u(rng.randrange(0, 40))  # logit width beyond the tokenizer
    out += _u(1) + _u(len(tokens) - len(extra) - 1)  # EOS: the cut-character id (excluded from bytes)
    return bytes(out)


def op_script(rng: random.Random, n: int = 48) -> bytes:
    ops = bytearray()
    for _ in range(n):
        r = rng.random()
        if r < 0.35:
            ops += bytes([0, 1]) + _u(rng.randrange(1000))  # mask, then take an allowed token
        elif r < 0.45:
            ops += bytes([3, rng.randrange(1, 4)])
        elif r < 0.55:
            ops += bytes([2]) + _u(rng.randrange(400))
        else:
            ops += bytes([rng.choice([4, 6, 8, 0])])
    return bytes(ops)


# ------------------------------------------------------------------------------------------- sources
def only(paths: list[Path]) -> Iterator[tuple[str, ir.Grammar]]:
    from gdecode.frontends.gbnf import gbnf_to_ir
    from gdecode.frontends.lark import lark_to_ir

    for path in paths:
        text = path.read_text()
        if path.suffix == ".gbnf":
            yield path.name, gbnf_to_ir(text)
        else:
            yield path.name, lark_to_ir(text, import_paths=[str(path.parent)])


def grammars(datasets: Path, max_schemas: int, rng: random.Random) -> Iterator[tuple[str, ir.Grammar]]:
    from gdecode.frontends.gbnf import gbnf_to_ir
    from gdecode.frontends.lark import lark_to_ir
    from gdecode.json_schema import schema_to_ir
    from gdecode.regex import parse_regex

    gdir = datasets / "grammars"
    for path in sorted(gdir.rglob("*.lark")) + sorted((ROOT / "grammars").glob("*.lark")):
        try:
            yield path.name, lark_to_ir(path.read_text(), import_paths=[str(path.parent)])
        except (GDecodeError, Exception):  # libraries without a start rule, indentation grammars, ...
            continue
    for path in sorted(gdir.rglob("*.gbnf")):
        try:
            yield path.name, gbnf_to_ir(path.read_text())
        except GDecodeError:
            continue
    for line in (datasets / "regex" / "genlm_pattern_matching.jsonl").read_text().split("\n"):
        if not line.strip():
            continue
        rec = json.loads(line)
        try:
            parsed = parse_regex(rec["pattern"])
        except GDecodeError:
            continue
        b = ir.GrammarBuilder()
        b.terminal("REGEX", getattr(parsed, "regex", parsed))
        b.rule("start", [("REGEX",)])
        yield f"regex{rec['id']}", b.build()
    schemas = []
    for path in sorted((datasets / "jsonschemabench").glob("*.jsonl")):
        for line in path.read_text().split("\n"):
            if line.strip():
                schemas.append(json.loads(line)["schema"])
    rng.shuffle(schemas)
    kept = 0
    for schema in schemas:
        if kept >= max_schemas:
            break
        try:
            g, _ = schema_to_ir(schema, lenient=True)
        except (GDecodeError, RecursionError, ValueError, TypeError):
            continue
        kept += 1
        yield f"schema{kept}", g


SAMPLES = [b"abc", b'{"a": [1, 2.5, "x\\n"], "b": null}', b"SELECT name FROM t WHERE x = 1", b"2024-01-31T12:00:00Z",
           "caf\u00e9 \U0001F600".encode(), b"\x00\xff\xc3", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--max-schemas", type=int, default=300)
    ap.add_argument("--max-bytes", type=int, default=256 << 10)
    ap.add_argument("--only", type=Path, nargs="+", help="just these .lark/.gbnf files (no datasets)")
    args = ap.parse_args()
    rng = random.Random(8)
    gdir, rdir = args.out / "fuzz_grammar", args.out / "fuzz_regex"
    gdir.mkdir(parents=True, exist_ok=True)
    rdir.mkdir(parents=True, exist_ok=True)
    counts = [0, 0]
    source = only(args.only) if args.only else grammars(args.datasets, args.max_schemas, rng)
    for _name, g in source:
        try:
            spec, _ = encode_spec(g)
        except (GDecodeError, RecursionError):
            continue
        seed = spec + vocab_bytes(rng) + op_script(rng)
        if len(seed) <= args.max_bytes:
            (gdir / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
            counts[0] += 1
        # Regex target: the flat pool, then up to 8 terminal roots (the grammar's first ones), input bytes.
        pool, roots = _regex_pool(g)
        if pool is None:
            continue
        body = bytearray(_u(len(pool)))
        for x in pool:
            body += _s(x)
        roots = roots[:8]
        body += _u(len(roots) - 1)
        for r in roots:
            body += _u(r) + bytes([1])
        sample = rng.choice(SAMPLES)
        body += bytes([0xFF]) + _u(len(sample)) + sample
        body += b"".join(_u(rng.choice([rng.randrange(0x80), rng.randrange(0x800), rng.randrange(0x110000)]))
                         for _ in range(8))
        if len(body) <= args.max_bytes:
            (rdir / hashlib.sha1(bytes(body)).hexdigest()).write_bytes(bytes(body))
            counts[1] += 1
    print(f"fuzz_grammar: {counts[0]} seeds in {gdir}\nfuzz_regex: {counts[1]} seeds in {rdir}")


def _regex_pool(g: ir.Grammar) -> tuple[list[int] | None, list[int]]:
    flat = compiler._RegexFlattener()
    roots = [flat.add(t.regex) for t in g.terminals.values() if t.special_token is None]
    return (flat.flat, roots) if roots else (None, [])


if __name__ == "__main__":
    main()
