"""Mask time per token on real grammars: gdecode vs llguidance vs XGrammar, in one run.

For each grammar, every engine walks the same token sequences (real documents tokenized with the chosen
tokenizer) and the time of each mask fill is recorded. Prints p50/p90/p99/max in microseconds and the
ratio of each peer to gdecode (> 1 means gdecode is faster). Peers are optional (``pip install
.[bench]``; on CPU machines ``pip install --no-deps xgrammar apache-tvm-ffi`` avoids a 1 GB triton).

    python bench/bench_grammar_masks.py [--tokenizer llama3] [--docs 40]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import gdecode as gd
from gdecode.assets import load_hf_tokenizer, shared_assets_dir

ROOT = Path(__file__).resolve().parents[1]


def percentiles(xs: list[float]) -> dict[str, float]:
    a = np.array(xs) * 1e6
    return {"n": len(a), "p50": np.percentile(a, 50), "p90": np.percentile(a, 90),
            "p99": np.percentile(a, 99), "max": a.max()}


def json_docs(n: int) -> list[str]:
    """Valid JSONSchemaBench instances, spread evenly over the splits."""
    shared = shared_assets_dir()
    bench = (shared.parent if shared else ROOT.parent / "shared") / "datasets" / "jsonschemabench"
    files = sorted(bench.glob("*.jsonl"))
    per_file = -(-n // max(1, len(files)))
    docs: list[str] = []
    for path in files:
        taken = 0
        for line in path.open():
            valid = [t["data"] for t in json.loads(line)["tests"] if t["valid"]]
            if valid:
                docs.append(json.dumps(valid[0], ensure_ascii=False))
                taken += 1
            if taken >= per_file:
                break
    return docs[:n]


class GDecodeEngine:
    name = "gdecode"

    def __init__(self, hf, grammar_text: str, lexer: str = "contextual") -> None:
        self.info = gd.TokenizerInfo.from_huggingface(hf)
        t = time.perf_counter()
        self.g = gd.compile_lark(grammar_text, self.info, lexer=lexer)
        self.compile_s = time.perf_counter() - t
        self.bm = gd.allocate_bitmask(1, self.info.vocab_size, backend="numpy")

    def walk(self, ids: list[int], times: list[float]) -> bool:
        m = gd.Matcher(self.g)
        for t in ids:
            t0 = time.perf_counter()
            m.fill_bitmask(self.bm)
            times.append(time.perf_counter() - t0)
            if not m.consume_token(t):
                return False
        return m.is_accepting()


class LLGuidanceEngine:
    name = "llguidance"

    def __init__(self, hf, grammar_text: str) -> None:
        import llguidance
        import llguidance.hf
        import llguidance.numpy as lnp

        self.llg, self.lnp = llguidance, lnp
        self.tok = llguidance.hf.from_tokenizer(hf)
        t = time.perf_counter()
        self.grammar = llguidance.LLMatcher.grammar_from_lark(grammar_text)
        m = llguidance.LLMatcher(self.tok, self.grammar)
        self.compile_s = time.perf_counter() - t
        if m.is_error():
            raise RuntimeError(m.get_error())
        self.bm = lnp.allocate_token_bitmask(1, self.tok.vocab_size)

    def walk(self, ids: list[int], times: list[float]) -> bool:
        m = self.llg.LLMatcher(self.tok, self.grammar)
        for t in ids:
            t0 = time.perf_counter()
            self.lnp.fill_next_token_bitmask(m, self.bm, 0)
            times.append(time.perf_counter() - t0)
            if m.is_error() or not m.consume_token(t):
                return False
        return m.is_accepting()


class XGrammarEngine:
    name = "xgrammar"

    def __init__(self, hf, builtin_json: bool) -> None:
        import xgrammar as xgr

        if not builtin_json:
            raise RuntimeError("XGrammar reads EBNF, not Lark: no equivalent grammar")
        self.xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(hf)
        self.stop = info.stop_token_ids[0]
        t = time.perf_counter()
        self.cg = xgr.GrammarCompiler(info, max_threads=1).compile_builtin_json_grammar()
        self.compile_s = time.perf_counter() - t
        self.bm = xgr.allocate_token_bitmask(1, info.vocab_size)

    def walk(self, ids: list[int], times: list[float]) -> bool:
        m = self.xgr.GrammarMatcher(self.cg)
        for t in ids:
            t0 = time.perf_counter()
            m.fill_next_token_bitmask(self.bm)
            times.append(time.perf_counter() - t0)
            if not m.accept_token(t):
                return False
        return m.accept_token(self.stop)


def run(title: str, engines: list, docs: list[list[int]], warm: int = 1) -> list[str]:
    lines = [f"### {title}", "", f"{len(docs)} documents, {sum(map(len, docs))} tokens per pass; "
             f"masks timed on pass {warm + 1} (earlier passes warm the caches).", "",
             "| engine | compile ms | p50 µs | p90 µs | p99 µs | max µs | docs accepted |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    stats = {}
    for e in engines:
        for _ in range(warm):
            e.walk(docs[0], [])
        times: list[float] = []
        accepted = sum(e.walk(ids, times) for ids in docs)
        s = percentiles(times)
        stats[e.name] = s
        lines.append(f"| {e.name} | {e.compile_s * 1e3:.1f} | {s['p50']:.0f} | {s['p90']:.0f} | {s['p99']:.0f} | "
                     f"{s['max']:.0f} | {accepted}/{len(docs)} |")
    if "gdecode" in stats:
        for name, s in stats.items():
            if name != "gdecode":
                g = stats["gdecode"]
                lines.append(f"\n{name}/gdecode time ratio: p50 {s['p50'] / g['p50']:.2f}x, "
                             f"p99 {s['p99'] / g['p99']:.2f}x (> 1: gdecode faster)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", default="llama3")
    ap.add_argument("--docs", type=int, default=40)
    args = ap.parse_args()
    hf = load_hf_tokenizer(args.tokenizer)
    out: list[str] = []

    json_text = (ROOT / "grammars" / "json.lark").read_text()
    docs = [hf.encode(d, add_special_tokens=False) for d in json_docs(args.docs)]
    engines = [GDecodeEngine(hf, json_text)]
    notes = []
    for make in (lambda: LLGuidanceEngine(hf, json_text), lambda: XGrammarEngine(hf, builtin_json=True)):
        try:
            engines.append(make())
        except Exception as e:  # a missing or failing peer is reported, not fatal
            notes.append(f"peer unavailable: {type(e).__name__}: {str(e)[:160]}")
    out += run(f"JSON grammar (grammars/json.lark; XGrammar: its builtin JSON grammar), {args.tokenizer}",
               engines, docs)
    out += [f"\n{n}" for n in notes] + [""]

    spec = json.loads((ROOT / "grammars" / "samples" / "spider_concert_singer.json").read_text())
    sql_text = (ROOT / "grammars" / spec["grammar"]).read_text()
    sql_docs = [hf.encode(q, add_special_tokens=False) for q in spec["accept"]]
    engines = [GDecodeEngine(hf, sql_text, lexer="dynamic")]
    notes = []
    try:
        engines.append(LLGuidanceEngine(hf, sql_text))
    except Exception as e:
        notes.append(f"llguidance: {type(e).__name__}: {str(e)[:160]}")
    notes.append("xgrammar: no Lark input (EBNF only); not measured on this grammar")
    out += run(f"Spider SQL (grammars/spider_concert_singer.lark, character-level), {args.tokenizer}",
               engines, sql_docs)
    out += [f"\n{n}" for n in notes]
    print("\n".join(out))


if __name__ == "__main__":
    main()
