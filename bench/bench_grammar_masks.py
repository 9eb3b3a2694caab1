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
# Per-mask clock. "cpu" (the calling thread's CPU time) is not inflated when other processes take the
# core away mid-mask, which on a shared 2-core machine otherwise dominates the tail; every engine fills
# its mask on the calling thread, so the comparison stays fair. "wall" is time.perf_counter.
clock = time.thread_time


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

    def __init__(self, hf, grammar_text: str, lexer: str = "contextual", fresh: bool = False) -> None:
        # fresh=True recompiles the grammar for every document, so no mask cache carries over between
        # documents (a cold start each time); otherwise documents share one compiled grammar and its caches.
        self.fresh, self.text, self.lexer = fresh, grammar_text, lexer
        if fresh:
            self.name = "gdecode (cold: grammar recompiled per doc)"
        self.info = gd.TokenizerInfo.from_huggingface(hf)
        from gdecode.compiler import core_vocabulary

        core_vocabulary(self.info)  # per-tokenizer work, done once per process (like the peers' tokenizer info)
        gd.compile_lark('start: "x"', self.info)  # one-time imports and lark's own meta-grammar (~0.15 s)
        self.bm = gd.allocate_bitmask(1, self.info.vocab_size, backend="numpy")
        t = time.perf_counter()
        self.g = gd.compile_lark(grammar_text, self.info, lexer=lexer)
        gd.Matcher(self.g).fill_bitmask(self.bm)
        self.compile_s = time.perf_counter() - t

    def walk(self, ids: list[int], times: list[float]) -> bool:
        if self.fresh:
            self.g = gd.compile_lark(self.text, self.info, lexer=self.lexer)
        m = gd.Matcher(self.g)
        for t in ids:
            t0 = clock()
            m.fill_bitmask(self.bm)
            times.append(clock() - t0)
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
        self.bm = lnp.allocate_token_bitmask(1, self.tok.vocab_size)
        lnp.fill_next_token_bitmask(m, self.bm, 0)
        self.compile_s = time.perf_counter() - t
        if m.is_error():
            raise RuntimeError(m.get_error())

    def walk(self, ids: list[int], times: list[float]) -> bool:
        m = self.llg.LLMatcher(self.tok, self.grammar)
        for t in ids:
            t0 = clock()
            self.lnp.fill_next_token_bitmask(m, self.bm, 0)
            times.append(clock() - t0)
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
        self.bm = xgr.allocate_token_bitmask(1, info.vocab_size)
        xgr.GrammarMatcher(self.cg).fill_next_token_bitmask(self.bm)
        self.compile_s = time.perf_counter() - t

    def walk(self, ids: list[int], times: list[float]) -> bool:
        m = self.xgr.GrammarMatcher(self.cg)
        for t in ids:
            t0 = clock()
            m.fill_next_token_bitmask(self.bm)
            times.append(clock() - t0)
            if not m.accept_token(t):
                return False
        return m.accept_token(self.stop)


def run(title: str, engines: list, docs: list[list[int]], warmup: list[int] | None = None) -> list[str]:
    """Times every mask of every document once per engine. ``warmup`` (not timed, not among ``docs``)
    runs first, so one-time work such as imports is not counted; caches then fill as in real use."""
    lines = [f"### {title}", "", f"{len(docs)} documents, {sum(map(len, docs))} tokens, each mask timed once "
             "(one untimed warm-up document first).", "",
             "| engine | compile + 1st mask ms | p50 µs | p90 µs | p99 µs | max µs | docs accepted |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    stats = {}
    for e in engines:
        if warmup:
            e.walk(warmup, [])
        times: list[float] = []
        accepted = sum(e.walk(ids, times) for ids in docs)
        s = percentiles(times)
        stats[e.name] = s
        lines.append(f"| {e.name} | {e.compile_s * 1e3:.1f} | {s['p50']:.0f} | {s['p90']:.0f} | {s['p99']:.0f} | "
                     f"{s['max']:.0f} | {accepted}/{len(docs)} |")
    if "gdecode" in stats:
        for name, s in stats.items():
            if not name.startswith("gdecode"):
                g = stats["gdecode"]
                lines.append(f"\n{name}/gdecode time ratio: p50 {s['p50'] / g['p50']:.2f}x, "
                             f"p99 {s['p99'] / g['p99']:.2f}x (> 1: gdecode faster)")
    return lines


def run_lark_grammar(hf, title: str, text: str, texts: list[str], lexer: str) -> list[str]:
    """gdecode and llguidance (XGrammar has no Lark input) on one Lark grammar; the last text is the warm-up."""
    docs = [hf.encode(q, add_special_tokens=False) for q in texts]
    engines = [GDecodeEngine(hf, text, lexer=lexer)]
    notes = []
    try:
        engines.append(LLGuidanceEngine(hf, text))
    except Exception as e:  # a peer that cannot take the grammar is reported, not fatal
        notes.append(f"llguidance: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    notes.append("xgrammar: no Lark input (EBNF only); not measured on this grammar")
    return run(title, engines, docs[:-1], docs[-1]) + [f"\n{n}" for n in notes] + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", default="llama3")
    ap.add_argument("--docs", type=int, default=40)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="per-mask timer: thread CPU time (robust on a loaded machine) or wall time")
    args = ap.parse_args()
    global clock
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    hf = load_hf_tokenizer(args.tokenizer)
    out: list[str] = []

    json_text = (ROOT / "grammars" / "json.lark").read_text()
    docs = [hf.encode(d, add_special_tokens=False) for d in json_docs(args.docs + 1)]
    warmup, docs = docs[-1], docs[:-1]
    engines = [GDecodeEngine(hf, json_text), GDecodeEngine(hf, json_text, fresh=True)]
    notes = []
    for make in (lambda: LLGuidanceEngine(hf, json_text), lambda: XGrammarEngine(hf, builtin_json=True)):
        try:
            engines.append(make())
        except Exception as e:  # a missing or failing peer is reported, not fatal
            notes.append(f"peer unavailable: {type(e).__name__}: {str(e)[:160]}")
    out += run(f"JSON grammar (grammars/json.lark; XGrammar: its builtin JSON grammar), {args.tokenizer}",
               engines, docs, warmup)
    out += [f"\n{n}" for n in notes] + [""]

    # General SQL (contextual lexer, multi-character lexemes): the queries are ours, in the grammar's dialect.
    sql_queries = ["SELECT name FROM singer WHERE age > 30",
                   "select a, b from t where a = 1 order by b desc limit 10",
                   "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.singer_id "
                   "GROUP BY T1.name HAVING count(*) > 1",
                   "SELECT count(*) FROM singer"]
    out += run_lark_grammar(hf, f"SQL (grammars/sql.lark, contextual lexer), {args.tokenizer}",
                            (ROOT / "grammars" / "sql.lark").read_text(), sql_queries, "contextual")
    spec = json.loads((ROOT / "grammars" / "samples" / "spider_concert_singer.json").read_text())
    out += run_lark_grammar(hf, f"Spider SQL (grammars/spider_concert_singer.lark, character-level), {args.tokenizer}",
                            (ROOT / "grammars" / spec["grammar"]).read_text(), spec["accept"], "dynamic")
    print("\n".join(out))


if __name__ == "__main__":
    main()
