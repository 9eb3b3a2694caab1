"""HF logits-processor overhead per decoding step: gdecode vs XGrammar vs llguidance, in one run.

Each engine's HuggingFace-style processor is called as ``processor(input_ids, scores)`` exactly as
``model.generate`` calls it, so the timed work per step is the whole processor: reading the new token from
``input_ids`` and advancing the matchers, filling the bitmask and applying it to the logits. No model runs:
every engine replays the same token sequences (valid JSONSchemaBench instances, each row constrained by its
own schema), with random fp32 logits of the model's width. Rows of a batch are documents of similar length;
a group runs for as many steps as its shortest document.

    python bench/bench_processors.py [--tokenizers smollm2 llama3] [--batches 1 16] [--docs 64]

For gdecode, pass 1 of every batch size starts from freshly compiled grammars (its mask cache lives in
the compiled grammar); XGrammar precomputes its token cache at compile time; llguidance builds its lexer
per matcher, so each of its passes starts cold.

Engines: gdecode's ``gdecode.integrations.hf.LogitsProcessor``, XGrammar's ``xgrammar.contrib.hf.LogitsProcessor``
and, since llguidance ships no HF processor, a minimal one over ``llguidance.torch`` (batched mask fill with
``LLExecutor``, its own ``apply_token_bitmask_inplace``). Schemas are compiled before timing; every pass makes
new processors (new matchers). Pass 1 is each schema's first generation, pass 2 a repeat (warm caches).
Prints p50/p90/p99/max in microseconds per step, by wall clock and by process CPU time (all threads; the
robust figure on a shared, loaded machine), and each peer's ratio to gdecode (> 1: gdecode faster).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import gdecode as gd
from gdecode.assets import load_hf_tokenizer, shared_assets_dir

ROOT = Path(__file__).resolve().parents[1]
# Logit width of a model using each tokenizer (Llama-3 models: 128,256; SmolLM2: its tokenizer size).
MODEL_VOCAB = {"llama3": 128_256, "smollm2": 49_152}


def dataset_dir() -> Path:
    shared = shared_assets_dir()
    return (shared.parent if shared else ROOT.parent / "shared") / "datasets" / "jsonschemabench"


def candidate_records(seed: int) -> list[dict]:
    """Every JSONSchemaBench record with a valid instance, shuffled, then interleaved over the splits."""
    per_split = []
    for path in sorted(dataset_dir().glob("*.jsonl")):
        recs = [r for r in map(json.loads, path.open()) if any(t["valid"] for t in r["tests"])]
        random.Random(seed).shuffle(recs)
        per_split.append(recs)
    out = []
    for i in range(max(map(len, per_split))):
        out += [recs[i] for recs in per_split if i < len(recs)]
    return out


# ------------------------------------------------------------------------------------------ processors


class LLGuidanceProcessor:
    """A minimal HF-style processor over llguidance (it ships matchers and kernels, not a processor)."""

    def __init__(self, llg, tokenizer, grammars: list[str], batch: int, vocab: int) -> None:
        import llguidance.torch as llt

        self.llt = llt
        self.matchers = [llg.LLMatcher(tokenizer, grammars[r % len(grammars)]) for r in range(batch)]
        self.executor = llg.LLExecutor()
        self.bitmask = llt.allocate_token_bitmask(batch, vocab)
        self.prompt_len: int | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        else:
            for m, t in zip(self.matchers, input_ids[:, -1].tolist(), strict=True):
                m.consume_token(t)
        self.llt.fill_next_token_bitmask_par(self.executor, [(m, i) for i, m in enumerate(self.matchers)],
                                             self.bitmask)
        self.llt.apply_token_bitmask_inplace(scores, self.bitmask)
        return scores


class Engines:
    """Compiles schemas and builds processors for gdecode, XGrammar and llguidance over one tokenizer."""

    names = ("gdecode", "xgrammar", "llguidance")

    def __init__(self, hf, vocab: int) -> None:
        import llguidance
        import llguidance.hf
        import xgrammar as xgr
        from xgrammar.contrib.hf import LogitsProcessor as XgrProcessor

        from gdecode.integrations.hf import LogitsProcessor as GdProcessor

        self.vocab, self.xgr, self.llg = vocab, xgr, llguidance
        self.GdProcessor, self.XgrProcessor = GdProcessor, XgrProcessor
        self.gd_info = gd.TokenizerInfo.from_huggingface(hf, vocab_size=vocab)
        self.xgr_compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(hf, vocab_size=vocab))
        self.llg_tok = llguidance.hf.from_tokenizer(hf, n_vocab=vocab)
        self.compile_s = dict.fromkeys(self.names, 0.0)

    def compile(self, schema: dict) -> dict:
        """Each engine's compiled form of ``schema`` (raises if any engine rejects it)."""
        out = {}
        text = json.dumps(schema)
        for name, fn in (("gdecode", lambda: gd.compile_json_schema(schema, self.gd_info)),
                         ("xgrammar", lambda: self.xgr_compiler.compile_json_schema(text)),
                         ("llguidance", lambda: self._llg_grammar(text))):
            t = time.perf_counter()
            out[name] = fn()
            self.compile_s[name] += time.perf_counter() - t
        return out

    def _llg_grammar(self, text: str) -> str:
        g = self.llg.LLMatcher.grammar_from_json_schema(text)
        m = self.llg.LLMatcher(self.llg_tok, g)
        if m.is_error():
            raise ValueError(m.get_error())
        return g

    def accepts(self, compiled: dict, ids: list[int]) -> bool:
        """Every engine accepts the whole document (so all replay the same steps)."""
        m = gd.Matcher(compiled["gdecode"])
        if m.consume_tokens(ids) != len(ids) or not m.is_accepting():
            return False
        xm = self.xgr.GrammarMatcher(compiled["xgrammar"])
        if not all(xm.accept_token(t) for t in ids):
            return False
        lm = self.llg.LLMatcher(self.llg_tok, compiled["llguidance"])
        return all(lm.consume_token(t) for t in ids) and lm.is_accepting() and not lm.is_error()

    def processor(self, name: str, grammars: list, batch: int):
        if name == "gdecode":
            return self.GdProcessor(grammars)
        if name == "xgrammar":
            return self.XgrProcessor(list(grammars))
        return LLGuidanceProcessor(self.llg, self.llg_tok, grammars, batch, self.vocab)


# ------------------------------------------------------------------------------------------ timing


def replay(proc, docs: list[list[int]], logits: torch.Tensor, times: list[float],
           cpu: list[float] | None = None) -> None:
    """Steps of one batch group: at step k each row's input_ids is a 1-token prompt + its first k tokens.
    Records wall time per step, and the process's CPU time (all threads) in ``cpu``: on a loaded machine
    wall time includes waiting for a core, CPU time does not."""
    steps = min(map(len, docs))
    rows = torch.tensor([[0] + d[:steps] for d in docs], dtype=torch.long)
    for k in range(steps):
        input_ids = rows[:, :k + 1]
        scores = logits.clone()
        c0, t0 = time.process_time(), time.perf_counter()
        proc(input_ids, scores)
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)


def stats(times: list[float]) -> dict[str, float]:
    a = np.array(times) * 1e6
    return {"n": len(a), "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def run_tokenizer(name: str, batches: list[int], n_docs: int, passes: int, seed: int) -> list[str]:
    hf = load_hf_tokenizer(name)
    vocab = MODEL_VOCAB.get(name, len(hf))
    eng = Engines(hf, vocab)
    docs: list[tuple[list[int], dict, dict]] = []  # (token ids, compiled per engine, schema)
    skipped = 0
    for rec in candidate_records(seed):
        if len(docs) >= n_docs:
            break
        data = next(t["data"] for t in rec["tests"] if t["valid"])
        ids = hf.encode(json.dumps(data, ensure_ascii=False), add_special_tokens=False)
        if not 8 <= len(ids) <= 400:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compiled = eng.compile(rec["schema"])
            ok = eng.accepts(compiled, ids)
        except Exception:
            ok = False
        if ok:
            docs.append((ids, compiled, rec["schema"]))
        else:
            skipped += 1
    docs.sort(key=lambda d: len(d[0]))
    rng = np.random.default_rng(seed)
    lines = [f"### {name} (logit width {vocab:,})", "",
             f"{len(docs)} schemas with one valid instance each ({sum(len(d[0]) for d in docs)} tokens; "
             f"{skipped} records skipped: some engine rejects the schema or the instance). "
             "Compile time, all schemas: " + ", ".join(f"{k} {v:.1f} s" for k, v in eng.compile_s.items()) + ".",
             "", "| batch | pass | clock | engine | steps | p50 µs | p90 µs | p99 µs | max µs | p50 ratio | p99 ratio |",
             "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for bi, batch in enumerate(batches):
        if bi:  # gdecode's mask cache lives in the compiled grammar: recompile so pass 1 is cold again
            docs = [(ids, dict(c, gdecode=gd.compile_json_schema(schema, eng.gd_info)), schema)
                    for ids, c, schema in docs]
        groups = [[d[:2] for d in docs[i:i + batch]] for i in range(0, len(docs) - batch + 1, batch)]
        logits = torch.from_numpy(rng.normal(size=(batch, vocab)).astype(np.float32))
        # untimed warm-up per engine (imports, llguidance's torch.compile'd kernel), on a throwaway group
        for e in eng.names:
            replay(eng.processor(e, [c[e] for _, c in groups[0]], batch), [d[:4] for d, _ in groups[0]],
                   logits, [])
        for p in range(1, passes + 1):
            res, res_cpu = {}, {}
            for e in eng.names:
                times: list[float] = []
                cpu: list[float] = []
                for group in groups:
                    replay(eng.processor(e, [c[e] for _, c in group], batch), [d for d, _ in group], logits,
                           times, cpu)
                res[e], res_cpu[e] = stats(times), stats(cpu)
            for clock, table in (("wall", res), ("cpu", res_cpu)):
                g = table["gdecode"]
                for e, s in table.items():
                    lines.append(f"| {batch} | {p} | {clock} | {e} | {s['n']} | {s['p50']:.0f} | {s['p90']:.0f} | "
                                 f"{s['p99']:.0f} | {s['max']:.0f} | {s['p50'] / g['p50']:.2f} | "
                                 f"{s['p99'] / g['p99']:.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizers", nargs="+", default=["smollm2", "llama3"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    ap.add_argument("--docs", type=int, default=64)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the apply step)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: list[str] = []
    for name in args.tokenizers:
        out += run_tokenizer(name, args.batches, args.docs, args.passes, args.seed) + [""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
