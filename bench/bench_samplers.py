"""Samplers on the real model: SmolLM2-135M-Instruct on JSONSchemaBench schemas, all methods in one run.

For each schema (the first ones of the chosen splits that gdecode compiles and whose text is short) and a
chat prompt that shows the schema, at temperature 1:

* **mask vs AWRS** (same law): per generated token, the constraint work (AWRS: single-token checks; mask:
  one full mask over the vocabulary), the time spent in the logits processor and the wall time of the whole
  decoding step (model forward included). ``--samples`` samples each.
* **mask vs ASAp vs SMC** on quality: the log-likelihood of the output under the *unconstrained* model
  (teacher-forced forward at T = 1, prompt excluded, EOS included; higher is better) and validity (output
  parses and validates with ``jsonschema``; must be 100%). ASAp: ``--samples`` consecutive samples sharing one
  trie. SMC: one run with ``--particles`` particles (ESS threshold 0.5, exact mask weights), scored by the
  posterior expectation over its particles.

Prints p50/p90/p99/max and ratios; meant to fit in about 30 minutes on 2 CPU cores.

    python bench/bench_samplers.py [--n-schemas 10] [--samples 3] [--particles 4] [--max-new-tokens 192]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessor as HFProcessor

import gdecode as gd
from gdecode.assets import shared_assets_dir
from gdecode.cli import _chat_prompt, _load_model
from gdecode.generate import logit_width, tokenizer_info_for
from gdecode.integrations.hf import LogitsProcessor
from gdecode.samplers.asap import ASApTrie
from gdecode.samplers.hf_driver import smc_generate

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("Github_trivial", "Github_easy", "Glaiveai2K")
METHODS = ("mask", "awrs", "asap", "smc")


def pct(xs, scale=1.0) -> str:
    a = np.asarray(xs, dtype=np.float64) * scale
    if not a.size:
        return "n=0"
    return (f"p50 {np.percentile(a, 50):.1f} / p90 {np.percentile(a, 90):.1f} / p99 {np.percentile(a, 99):.1f}"
            f" / max {a.max():.1f}")


def pick_schemas(info, n: int, max_chars: int):
    shared = shared_assets_dir()
    bench = (shared.parent if shared else ROOT.parent / "shared") / "datasets" / "jsonschemabench"
    out = []
    for split in SPLITS:
        for line in (bench / f"{split}.jsonl").open():
            row = json.loads(line)
            text = json.dumps(row["schema"])
            if len(text) > max_chars or row["schema"].get("type") != "object":
                continue
            try:
                g = gd.compile_json_schema(row["schema"], info)
            except gd.GDecodeError:
                continue
            out.append((row["id"], row["schema"], g))
            if len(out) >= n:
                return out
    return out


class Timed(HFProcessor):
    """Times each call of the wrapped gdecode processor; records AWRS checks per call."""

    def __init__(self, inner: LogitsProcessor) -> None:
        self.inner = inner
        self.times: list[float] = []
        self.checks: list[int] = []
        self.wall = self.cpu = 0.0                         # whole generate call: wall and process CPU seconds

    def __call__(self, input_ids, scores):
        ch = self.inner.chooser
        c0 = ch.stats.checks if ch is not None else 0
        t0 = time.thread_time()
        out = self.inner(input_ids, scores)
        self.times.append(time.thread_time() - t0)
        if ch is not None:
            self.checks.append(ch.stats.checks - c0)
        return out


def run_hf(lm, prompt_ids, proc, max_new_tokens, eos, do_sample, extra=()):
    timed = Timed(proc)
    ids = torch.tensor([prompt_ids])
    kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0) if do_sample else dict(do_sample=False)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                          logits_processor=[*extra, timed], eos_token_id=eos, pad_token_id=eos[0], **kw)
    timed.wall, timed.cpu = time.perf_counter() - t0, time.process_time() - c0
    gen = out[0, len(prompt_ids):].tolist()
    return gen, timed.wall, timed


@torch.no_grad()
def loglik(lm, prompt_ids, gen) -> float:
    ids = torch.tensor([list(prompt_ids) + list(gen)])
    logp = torch.log_softmax(lm(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].double(), -1)
    return float(logp[torch.arange(len(gen)), torch.tensor(gen)].sum())


def is_valid(info, gen, eos, schema) -> bool:
    import jsonschema

    if not gen or gen[-1] not in eos:
        return False                                   # truncated at max_new_tokens
    body = [t for t in gen if t not in info.special_token_ids]
    try:
        doc = json.loads(info.decode_bytes(body).decode("utf-8"))
        cls = jsonschema.validators.validator_for(schema)
        cls(schema).validate(doc)
        return True
    except (ValueError, jsonschema.ValidationError, jsonschema.SchemaError):
        return False


class Record(HFProcessor):
    """Keeps (input ids, raw logits) of every decoding step."""

    def __init__(self) -> None:
        self.steps: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, input_ids, scores):
        self.steps.append((input_ids.clone(), scores.clone()))
        return scores


def micro(lm, tok, info, schemas, max_new_tokens: int, reps: int = 3) -> None:
    """Processor time per token, mask vs AWRS, on real states: one masked sample per schema is generated
    and recorded (input ids + logits at every step); then every step is replayed ``reps`` times through a
    fresh mask processor and a fresh AWRS processor, interleaved, each call timed with the calling thread's
    CPU time (``time.thread_time_ns``: the machine is shared, wall time would count other jobs). Both
    processors follow the recorded tokens (the matcher advances along ``input_ids``), so they see the same
    states; AWRS chooses its own token, which is discarded."""
    steps = []                                             # (grammar, prompt length, input ids, scores)
    for sid, schema, g in schemas:
        prompt = _chat_prompt(tok, "Generate a JSON object that satisfies this JSON Schema. Output only the "
                              f"JSON.\n{json.dumps(schema)}", False)
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        record = Record()
        torch.manual_seed(0)
        run_hf(lm, prompt_ids, LogitsProcessor(g), max_new_tokens, list(info.eos_token_ids), True,
               extra=[record])
        steps.extend((g, len(prompt_ids), i, s) for i, s in record.steps)
        print(f"recorded {sid}: {len(record.steps)} steps", flush=True)

    def replay(make):
        times, checks = [], []
        for _ in range(reps):
            proc = None
            last_g = None
            for g, plen, ids, sc in steps:
                if g is not last_g or ids.shape[1] == plen:
                    proc, last_g = make(g), g                # a fresh processor per recorded sample
                ch = proc.chooser
                c0 = ch.stats.checks if ch is not None else 0
                row = sc.clone()
                t0 = time.thread_time_ns()
                proc(ids, row)
                times.append((time.thread_time_ns() - t0) / 1e3)
                if ch is not None:
                    checks.append(ch.stats.checks - c0)
        return np.array(times), np.array(checks)

    t_mask, _ = replay(lambda g: LogitsProcessor(g))
    t_awrs, checks = replay(lambda g: LogitsProcessor(g, sampler="awrs", temperature=1.0,
                                                      sampler_options={"seed": 0}))
    print(f"\n## Micro: processor CPU µs per token (thread_time), {len(steps)} recorded steps × {reps}, "
          f"V = {info.vocab_size}")
    for name, t in (("mask", t_mask), ("awrs", t_awrs)):
        print(f"{name:5} {pct(t)}   mean {t.mean():.1f}")
    print(f"AWRS checks/token: mean {checks.mean():.2f}, p50 {np.percentile(checks, 50):.0f}, "
          f"p99 {np.percentile(checks, 99):.0f}, max {checks.max()}")
    print(f"ratio AWRS/mask: p50 {np.median(t_awrs) / np.median(t_mask):.2f}x, "
          f"p90 {np.percentile(t_awrs, 90) / np.percentile(t_mask, 90):.2f}x, "
          f"mean {t_awrs.mean() / t_mask.mean():.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-schemas", type=int, default=10)
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--max-schema-chars", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--micro", action="store_true", help="only the per-token micro-benchmark")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a shared 2-core machine more threads made steps 8x slower)")
    ap.add_argument("--json", help="write the per-output records here after every schema")
    ap.add_argument("--skip-schemas", type=int, default=0, help="resume: skip the first K schemas")
    ap.add_argument("--summarize", nargs="+", metavar="JSON", help="only print the tables of these runs, merged")
    args = ap.parse_args()
    if args.summarize:
        docs = [json.loads(Path(f).read_text()) for f in args.summarize]
        runs = [d["agg"] for d in docs]
        agg = {k: {f: (sum(r[k][f] for r in runs) if isinstance(runs[0][k][f], (int, float))
                       else [x for r in runs for x in r[k][f]]) for f in runs[0][k]} for k in METHODS}
        summarize(agg, docs[0]["vocab_size"])
        return
    torch.set_num_threads(args.threads)

    lm, tok = _load_model(None)
    info = tokenizer_info_for(tok, logit_width(lm))
    eos = list(info.eos_token_ids)
    schemas = pick_schemas(info, args.n_schemas, args.max_schema_chars)
    if args.micro:
        micro(lm, tok, info, schemas, args.max_new_tokens)
        return
    print(f"model SmolLM2-135M-Instruct, V = {info.vocab_size}, {len(schemas)} schemas, torch threads "
          f"{torch.get_num_threads()}", flush=True)
    agg = {k: {"tok": 0, "wall": 0.0, "cpu": 0.0, "proc": [], "checks": [], "ll": [], "valid": [], "done": [],
               "schema": [], "log_ml": [], "gen": [], "eos": [], "dead_ends": 0} for k in METHODS}
    t_start = time.perf_counter()
    for si, (sid, schema, g) in enumerate(schemas):
        if si < args.skip_schemas:
            continue
        prompt = _chat_prompt(tok, "Generate a JSON object that satisfies this JSON Schema. Output only the "
                              f"JSON.\n{json.dumps(schema)}", False)
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        trie = ASApTrie()
        line = [sid]
        for k in range(args.samples):
            seed = args.seed + 1000 * si + k
            # masking: HF samples from the masked logits
            torch.manual_seed(seed)
            gen, wall, timed = run_hf(lm, prompt_ids, LogitsProcessor(g), args.max_new_tokens, eos, True)
            rec(agg["mask"], sid, gen, wall, timed, lm, prompt_ids, info, eos, schema, g)
            # AWRS: the processor draws and forces the token; HF decodes greedily
            p = LogitsProcessor(g, sampler="awrs", temperature=1.0, sampler_options={"seed": seed})
            gen, wall, timed = run_hf(lm, prompt_ids, p, args.max_new_tokens, eos, False)
            rec(agg["awrs"], sid, gen, wall, timed, lm, prompt_ids, info, eos, schema, g)
            # ASAp: consecutive samples share the schema's trie
            p = LogitsProcessor(g, sampler="asap", temperature=1.0,
                                sampler_options={"seed": seed, "max_tokens": args.max_new_tokens})
            p.chooser.tries[(0, tuple(prompt_ids))] = trie
            gen, wall, timed = run_hf(lm, prompt_ids, p, args.max_new_tokens, eos, False)
            rec(agg["asap"], sid, gen, wall, timed, lm, prompt_ids, info, eos, schema, g)
        t0, c0 = time.perf_counter(), time.process_time()
        res = smc_generate(lm, prompt_ids, g, n_particles=args.particles, ess_threshold=0.5,
                           max_tokens=args.max_new_tokens, token_sampler="mask", seed=args.seed + si)
        w = res.normalized_weights
        a = agg["smc"]
        a["wall"] += time.perf_counter() - t0
        a["cpu"] += time.process_time() - c0
        a["tok"] += sum(len(s) for s in res.sequences)
        a["schema"].append(sid)
        a["eos"].append(float(w.sum() > 0))
        a["gen"].append([list(s) for s in res.sequences])
        if w.sum() > 0:
            lls = [loglik(lm, prompt_ids, s) for s in res.sequences]
            a["ll"].append(float(np.dot(w, lls)))
            a["valid"].append(float(sum(wi for wi, s in zip(w, res.sequences, strict=True)
                                        if wi > 0 and is_valid(info, s, eos, schema))))
            a["done"].append(1.0)
            a["log_ml"].append(res.log_ml)
        else:
            a["ll"].append(float("-inf"))       # every particle truncated at max_tokens: no output
            a["valid"].append(0.0)
            a["done"].append(0.0)
        for k in METHODS:
            line.append(f"{k} ll {agg[k]['ll'][-1]:.1f}")
        line.append(f"smc tokens {sum(len(s) for s in res.sequences)}")
        print(f"[{si + 1}/{len(schemas)} {time.perf_counter() - t_start:.0f}s] " + ", ".join(line), flush=True)
        if args.json:                                      # after every schema: a killed run keeps its data
            Path(args.json).write_text(json.dumps({"vocab_size": info.vocab_size, "agg": agg}))
    summarize(agg, info.vocab_size)
    print(f"total {time.perf_counter() - t_start:.0f}s")


def summarize(agg, vocab_size: int) -> None:
    """The tables, from the per-output records (``--summarize`` merges the JSON of several runs)."""
    print("\n## Constraint work and time per token (mask vs AWRS, T = 1)")
    print("processor: thread CPU µs per call; cpu: process CPU ms per token of the whole generate call "
          "(model included); wall: the same in wall time")
    print(f"{'method':6} {'tokens':>7} {'checks/token':>13} {'processor µs/token (p50/p90/p99/max)':>46} "
          f"{'cpu ms/tok':>10} {'wall ms/tok':>11}")
    for k in ("mask", "awrs", "asap", "smc"):
        a = agg[k]
        chk = (f"{np.mean(a['checks']):.2f}" if k == "awrs" else
               f"mask of {vocab_size}" if k == "mask" else "mask + trie" if k == "asap" else "mask")
        proc = pct(a["proc"], 1e6) if a["proc"] else "-"
        n = max(1, a["tok"])
        print(f"{k:6} {a['tok']:7d} {chk:>13} {proc:>46} {1e3 * a['cpu'] / n:10.2f} {1e3 * a['wall'] / n:11.2f}")
    if agg["awrs"]["checks"]:
        c = np.array(agg["awrs"]["checks"])
        print(f"AWRS checks per token: mean {c.mean():.3f}, p50 {np.percentile(c, 50):.0f}, p90 "
              f"{np.percentile(c, 90):.0f}, p99 {np.percentile(c, 99):.0f}, max {c.max()}; "
              f"tokens needing > 2 checks: {100 * np.mean(c > 2):.1f}%")
        pm, pa = np.array(agg["mask"]["proc"]), np.array(agg["awrs"]["proc"])
        per = {k: (agg[k]["cpu"] / max(1, agg[k]["tok"]), agg[k]["wall"] / max(1, agg[k]["tok"]))
               for k in ("mask", "awrs")}
        print(f"ratios AWRS/mask: processor p50 {np.median(pa) / np.median(pm):.2f}x, p90 "
              f"{np.percentile(pa, 90) / np.percentile(pm, 90):.2f}x, mean {pa.mean() / pm.mean():.2f}x; "
              f"cpu per token {per['awrs'][0] / per['mask'][0]:.2f}x, wall per token "
              f"{per['awrs'][1] / per['mask'][1]:.2f}x")
    print("\n## Quality: log-likelihood under the unconstrained model (T = 1), validity")
    print("EOS = ended with EOS within the budget; finished = ended with an EOS the grammar accepted (an EOS "
          "forced at a dead end or at the budget is not finished; SMC: some particle finished); valid % of "
          "finished must be 100 (SMC: posterior weight on valid outputs)")
    print(f"{'method':6} {'outputs':>8} {'EOS %':>6} {'finished %':>10} {'valid % of fin.':>15} {'dead ends':>9} "
          f"{'all: mean ll':>12} {'median':>8} {'finished: mean ll':>17} {'median':>8}")
    for k in METHODS:
        a = agg[k]
        ll = np.array(a["ll"])
        done = np.array(a["done"]) > 0
        vf = 100 * np.mean(np.array(a["valid"])[done]) if done.any() else float("nan")
        fin = ll[np.isfinite(ll)]
        lf = ll[done]
        print(f"{k:6} {len(ll):8d} {100 * np.mean(a['eos']):6.1f} {100 * done.mean():10.1f} {vf:15.1f} "
              f"{a['dead_ends']:9d} {fin.mean():12.2f} {np.median(fin):8.2f} "
              f"{lf.mean() if lf.size else float('nan'):17.2f} {np.median(lf) if lf.size else float('nan'):8.2f}")
    # per schema, over finished outputs only: the methods' mean loglik where both have one
    def per_schema(k):
        out: dict[str, list[float]] = {}
        for sid, ll, d in zip(agg[k]["schema"], agg[k]["ll"], agg[k]["done"], strict=True):
            if d:
                out.setdefault(sid, []).append(ll)
        return {s: float(np.mean(v)) for s, v in out.items()}
    base = per_schema("mask")
    for k in ("awrs", "asap", "smc"):
        other = per_schema(k)
        common = sorted(set(base) & set(other))
        d = np.array([other[s] - base[s] for s in common])
        if d.size:
            print(f"{k} − mask per schema (finished outputs, {len(common)} schemas with both): mean "
                  f"{d.mean():+.2f} nats, median {np.median(d):+.2f}, better on {int((d > 0).sum())}/{len(d)}")
    if agg["smc"]["log_ml"]:
        print(f"SMC log marginal likelihood estimate (log P(valid | prompt)): mean {np.mean(agg['smc']['log_ml']):.2f}")


def grammar_finished(g, gen, eos) -> bool:
    """Ended with an EOS that the grammar accepted (not an EOS forced at a dead end or at the budget)."""
    if not gen or gen[-1] not in eos:
        return False
    m = gd.Matcher(g)
    return all(m.consume_token(t) for t in gen)


def rec(a, sid, gen, wall, timed, lm, prompt_ids, info, eos, schema, g) -> None:
    a["schema"].append(sid)
    a["gen"].append(gen)
    a["eos"].append(float(bool(gen) and gen[-1] in eos))
    ch = timed.inner.chooser
    a["dead_ends"] += ch.stats.dead_ends if ch is not None else 0
    a["tok"] += len(gen)
    a["wall"] += wall
    a["cpu"] += timed.cpu
    a["proc"].extend(timed.times)
    a["checks"].extend(timed.checks)
    a["ll"].append(loglik(lm, prompt_ids, gen))
    a["valid"].append(float(is_valid(info, gen, eos, schema)))
    a["done"].append(float(grammar_finished(g, gen, eos)))


if __name__ == "__main__":
    main()

