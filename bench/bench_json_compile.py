"""JSON Schema time-to-first-mask over JSONSchemaBench: gdecode vs llguidance vs XGrammar, in one run.

For every schema, each engine starts from the schema as a Python dict and stops when the first token mask
is filled (compile + matcher + one mask, Llama-3 tokenizer, no cache shared between schemas: XGrammar's
compiler cache is disabled, gdecode and llguidance have none across schemas). Times are the process's CPU
time (``time.process_time``, all threads), so other load on a shared machine does not inflate them.
Prints p50/p90/p99/max in milliseconds over the schemas each engine compiles, then over the schemas all engines compile (the fair
comparison), with the ratio of each peer to gdecode (> 1: gdecode faster).

    python bench/bench_json_compile.py [--stride 1] [--engines gdecode,llguidance,xgrammar]

``--stride N`` takes every N-th record of every split (the full run is 8397 schemas). The process's heap
after loading (schemas, tokenizers, engines) is frozen for the garbage collector (``gc.freeze``), as
long-running servers do, so a full collection does not land on one schema's time at random.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import numpy as np

import gdecode as gd
from gdecode.assets import load_hf_tokenizer, shared_assets_dir
from gdecode.compiler import Limits

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(max_nfa_states=200_000, max_dfa_states=20_000)


def data_dir() -> Path:
    shared = shared_assets_dir()
    return (shared.parent if shared else ROOT.parent / "shared") / "datasets" / "jsonschemabench"


def load(stride: int) -> list[tuple[str, dict]]:
    out = []
    for path in sorted(data_dir().glob("*.jsonl")):
        for i, line in enumerate(path.open()):
            if i % stride == 0:
                rec = json.loads(line)
                out.append((rec["id"], rec["schema"]))
    return out


class GDecode:
    name = "gdecode"

    def __init__(self, hf) -> None:
        self.tok = gd.TokenizerInfo.from_huggingface(hf)
        self.bm = gd.allocate_bitmask(1, self.tok.vocab_size)

    def first_mask(self, schema: dict) -> None:
        g = gd.compile_json_schema(schema, self.tok, limits=LIMITS, max_rules=20_000)
        gd.Matcher(g).fill_bitmask(self.bm, row=0)


class LLGuidance:
    name = "llguidance"

    def __init__(self, hf) -> None:
        import llguidance
        import llguidance.hf
        import llguidance.numpy as lnp

        self.llg, self.lnp = llguidance, lnp
        self.tok = llguidance.hf.from_tokenizer(hf)
        self.bm = lnp.allocate_token_bitmask(1, self.tok.vocab_size)

    def first_mask(self, schema: dict) -> None:
        grammar = self.llg.LLMatcher.grammar_from_json_schema(schema)
        m = self.llg.LLMatcher(self.tok, grammar)
        if m.is_error():
            raise RuntimeError(m.get_error())
        self.lnp.fill_next_token_bitmask(m, self.bm, 0)
        if m.is_error():
            raise RuntimeError(m.get_error())


class XGrammar:
    name = "xgrammar"

    def __init__(self, hf) -> None:
        import xgrammar as xgr

        self.xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(hf)
        self.compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        self.bm = xgr.allocate_token_bitmask(1, info.vocab_size)

    def first_mask(self, schema: dict) -> None:
        cg = self.compiler.compile_json_schema(json.dumps(schema))
        self.xgr.GrammarMatcher(cg).fill_next_token_bitmask(self.bm)


def stats(ms: list[float]) -> str:
    if not ms:
        return "| - | - | - | - |"
    a = np.array(ms)
    p = np.percentile(a, [50, 90, 99])
    return f"| {p[0]:.2f} | {p[1]:.2f} | {p[2]:.2f} | {a.max():.0f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--engines", default="gdecode,llguidance,xgrammar")
    args = ap.parse_args()
    hf = load_hf_tokenizer("llama3")
    classes = {"gdecode": GDecode, "llguidance": LLGuidance, "xgrammar": XGrammar}
    engines = []
    for name in args.engines.split(","):
        try:
            engines.append(classes[name](hf))
        except ImportError as e:
            print(f"{name}: not installed ({e})")
    records = load(args.stride)
    warm = {"type": "object", "properties": {"a": {"type": "string"}}}
    for e in engines:  # one-time imports and tables outside the timings
        e.first_mask(warm)
    # The loaded schemas, tokenizers and engines stay for the whole run: frozen, Python's full collections
    # (triggered by whichever compile allocates at the wrong moment) do not walk them again and again. A
    # full collection of this heap took ~80 ms and fell into one schema's time at random (as it would in
    # a server that did not freeze its startup heap).
    gc.collect()
    gc.freeze()
    times: dict[str, dict[str, float]] = {e.name: {} for e in engines}
    t_all = time.time()
    for rid, schema in records:
        for e in engines:
            t = time.process_time()
            try:
                e.first_mask(schema)
            except Exception:  # noqa: BLE001 - a schema the engine refuses: not timed
                continue
            times[e.name][rid] = (time.process_time() - t) * 1e3
    common = set.intersection(*(set(t) for t in times.values())) if times else set()
    print(f"{len(records)} schemas (stride {args.stride}), Llama-3 tokenizer, {time.time() - t_all:.0f} s\n")
    print("| engine | compiled | p50 ms | p90 ms | p99 ms | max ms | common: p50 ms | p90 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for e in engines:
        t = times[e.name]
        print(f"| {e.name} | {len(t)} ({len(t) / len(records):.1%}) {stats(list(t.values()))} "
              f"{stats([t[r] for r in sorted(common)])[1:]}")
    if "gdecode" in times and common:
        g = np.array([times["gdecode"][r] for r in sorted(common)])
        for e in engines:
            if e.name != "gdecode":
                o = np.array([times[e.name][r] for r in sorted(common)])
                print(f"\n{e.name}/gdecode on the {len(common)} common schemas: p50 "
                      f"{np.percentile(o, 50) / np.percentile(g, 50):.2f}x, p99 "
                      f"{np.percentile(o, 99) / np.percentile(g, 99):.2f}x (> 1: gdecode faster)")


if __name__ == "__main__":
    main()
