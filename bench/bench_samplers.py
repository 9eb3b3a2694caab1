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

    def __call__(self, input_ids, scores):
        ch = self.inner.chooser
        c0 = ch.stats.checks if ch is not None else 0
        t0 = time.perf_counter()
        out = self.inner(input_ids, scores)
        self.times.append(time.perf_counter() - t0)
        if ch is not None:
            self.checks.append(ch.stats.checks - c0)
        return out


def run_hf(lm, prompt_ids, proc, max_new_tokens, eos, do_sample):
    timed = Timed(proc)
    ids = torch.tensor([prompt_ids])
    kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0) if do_sample else dict(do_sample=False)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                          logits_processor=[timed], eos_token_id=eos, pad_token_id=eos[0], **kw)
    wall = time.perf_counter() - t0
    gen = out[0, len(prompt_ids):].tolist()
    return gen, wall, timed


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


def micro(lm, tok, info, schemas, reps: int = 300) -> None:
    """Where AWRS's time per token goes, on real logits (the model's first step for each schema's prompt):
    the fixed O(V) part (Gumbel keys over the vocabulary) and the per-candidate part (one C++ check plus the
    Python loop), against the mask path (fill + apply)."""
    from gdecode.samplers.awrs import AWRS, GumbelOrder
    from gdecode.samplers.base import MatcherConstraint, to_numpy

    _, schema, g = schemas[0]
    m = gd.Matcher(g)
    prompt = _chat_prompt(tok, "Generate a JSON object that satisfies this JSON Schema. Output only the "
                          f"JSON.\n{json.dumps(schema)}", False)
    with torch.no_grad():
        x = lm(input_ids=torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])).logits[0, -1]

    def t(f, n=reps):
        f()
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        return (time.perf_counter() - t0) / n * 1e6

    c = MatcherConstraint(m)
    check = c.fast_checker()
    xs = to_numpy(x)
    s = np.exp(xs - xs.max())
    rng = np.random.default_rng(0)
    awrs = AWRS()
    bm = gd.allocate_bitmask(1, info.vocab_size)
    ids = list(range(0, info.vocab_size, 97))[:256]
    per_check = t(lambda: [check(i) for i in ids], 50) / len(ids)
    print(f"\n## Micro: first token of {schemas[0][0]}, AWRS vs mask (µs, V = {info.vocab_size})")
    print(f"to_numpy (float64 copy)        {t(lambda: to_numpy(x)):9.1f}")
    print(f"Gumbel keys + first 2 in order {t(lambda: GumbelOrder(s, rng).ensure(2)):9.1f}")
    print(f"one check (C++ call + loop)    {per_check:9.3f}")
    print(f"AWRS sample, whole             {t(lambda: awrs.sample(xs, c, rng)):9.1f}"
          f"   (checks: {np.mean([awrs.sample(xs, c, rng).n_evals for _ in range(50)]):.1f})")
    print(f"mask: fill_bitmask             {t(lambda: m.fill_bitmask(bm, 0)):9.1f}")
    row = x[None].clone()
    print(f"mask: apply_bitmask_inplace    {t(lambda: gd.apply_bitmask_inplace(row, bm)):9.1f}")


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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    lm, tok = _load_model(None)
    info = tokenizer_info_for(tok, logit_width(lm))
    eos = list(info.eos_token_ids)
    schemas = pick_schemas(info, args.n_schemas, args.max_schema_chars)
    if args.micro:
        micro(lm, tok, info, schemas)
        return
    print(f"model SmolLM2-135M-Instruct, V = {info.vocab_size}, {len(schemas)} schemas, torch threads "
          f"{torch.get_num_threads()}")
    agg = {k: {"tok": 0, "wall": 0.0, "proc": [], "checks": [], "ll": [], "valid": [], "done": [], "masks": 0}
           for k in ("mask", "awrs", "asap", "smc")}
    smc_logml = []
    t_start = time.perf_counter()
    for si, (sid, schema, g) in enumerate(schemas):
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
            rec(agg["mask"], gen, wall, timed, lm, prompt_ids, info, eos, schema)
            # AWRS: the processor draws and forces the token; HF decodes greedily
            p = LogitsProcessor(g, sampler="awrs", temperature=1.0, sampler_options={"seed": seed})
            gen, wall, timed = run_hf(lm, prompt_ids, p, args.max_new_tokens, eos, False)
            rec(agg["awrs"], gen, wall, timed, lm, prompt_ids, info, eos, schema)
            # ASAp: consecutive samples share the schema's trie
            p = LogitsProcessor(g, sampler="asap", temperature=1.0,
                                sampler_options={"seed": seed, "max_tokens": args.max_new_tokens})
            p.chooser.tries[(0, tuple(prompt_ids))] = trie
            gen, wall, timed = run_hf(lm, prompt_ids, p, args.max_new_tokens, eos, False)
            rec(agg["asap"], gen, wall, timed, lm, prompt_ids, info, eos, schema)
        t0 = time.perf_counter()
        res = smc_generate(lm, prompt_ids, g, n_particles=args.particles, ess_threshold=0.5,
                           max_tokens=args.max_new_tokens, token_sampler="mask", seed=args.seed + si)
        wall = time.perf_counter() - t0
        w = res.normalized_weights
        a = agg["smc"]
        a["wall"] += wall
        a["tok"] += sum(len(s) for s in res.sequences)
        if w.sum() > 0:
            lls = [loglik(lm, prompt_ids, s) for s in res.sequences]
            a["ll"].append(float(np.dot(w, lls)))
            a["valid"].append(float(sum(wi for wi, s in zip(w, res.sequences, strict=True)
                                        if wi > 0 and is_valid(info, s, eos, schema))))
            a["done"].append(1.0)
            smc_logml.append(res.log_ml)
        else:
            a["ll"].append(float("-inf"))       # every particle truncated at max_tokens: no output
            a["valid"].append(0.0)
            a["done"].append(0.0)
        for k in ("mask", "awrs", "asap", "smc"):
            line.append(f"{k} ll {agg[k]['ll'][-1]:.1f}")
        line.append(f"smc tokens {sum(len(s) for s in res.sequences)}")
        print(f"[{si + 1}/{len(schemas)} {time.perf_counter() - t_start:.0f}s] " + ", ".join(line), flush=True)

    print("\n## Constraint work and time per token (mask vs AWRS, T = 1)")
    print(f"{'method':6} {'tokens':>7} {'checks/token':>13} {'processor µs/token (p50/p90/p99/max)':>46} "
          f"{'wall ms/token':>14}")
    for k in ("mask", "awrs", "asap"):
        a = agg[k]
        chk = (f"{np.mean(a['checks']):.2f}" if k == "awrs" else
               f"mask of {info.vocab_size}" if k == "mask" else "mask + trie")
        print(f"{k:6} {a['tok']:7d} {chk:>13} {pct(a['proc'], 1e6):>46} {1e3 * a['wall'] / max(1, a['tok']):14.2f}")
    if agg["awrs"]["checks"]:
        c = np.array(agg["awrs"]["checks"])
        print(f"AWRS checks per token: mean {c.mean():.3f}, p50 {np.percentile(c, 50):.0f}, p90 "
              f"{np.percentile(c, 90):.0f}, p99 {np.percentile(c, 99):.0f}, max {c.max()}; "
              f"tokens needing > 2 checks: {100 * np.mean(c > 2):.1f}%")
        pm, pa = np.median(agg["mask"]["proc"]), np.median(agg["awrs"]["proc"])
        wm = agg["mask"]["wall"] / max(1, agg["mask"]["tok"])
        wa = agg["awrs"]["wall"] / max(1, agg["awrs"]["tok"])
        print(f"ratios AWRS/mask: processor p50 {pa / pm:.2f}x, wall per token {wa / wm:.2f}x")
    print("\n## Quality: log-likelihood under the unconstrained model (T = 1), validity")
    print(f"{'method':6} {'outputs':>8} {'mean loglik':>12} {'median':>8} {'valid %':>8} {'finished %':>10} "
          f"{'valid % of finished':>20}")
    for k in ("mask", "awrs", "asap", "smc"):
        a = agg[k]
        ll = np.array(a["ll"])
        fin = ll[np.isfinite(ll)]
        done = np.array(a["done"]) > 0
        vf = 100 * np.mean(np.array(a["valid"])[done]) if done.any() else float("nan")
        print(f"{k:6} {len(ll):8d} {fin.mean():12.2f} {np.median(fin):8.2f} {100 * np.mean(a['valid']):8.1f} "
              f"{100 * done.mean():10.1f} {vf:20.1f}")
    ll_m = np.array(agg["mask"]["ll"]).reshape(len(schemas), -1).mean(1)
    for k in ("asap", "smc"):
        other = np.array(agg[k]["ll"]).reshape(len(schemas), -1).mean(1)
        d = other - ll_m
        print(f"{k} − mask per schema: mean {d.mean():+.2f} nats, better on {int((d > 0).sum())}/{len(d)} schemas")
    if smc_logml:
        print(f"SMC log marginal likelihood estimate (log P(valid | prompt)): mean {np.mean(smc_logml):.2f}")
    print(f"total {time.perf_counter() - t_start:.0f}s")


def rec(a, gen, wall, timed, lm, prompt_ids, info, eos, schema) -> None:
    a["tok"] += len(gen)
    a["wall"] += wall
    a["proc"].extend(timed.times)
    a["checks"].extend(timed.checks)
    a["ll"].append(loglik(lm, prompt_ids, gen))
    a["valid"].append(float(is_valid(info, gen, eos, schema)))
    a["done"].append(float(bool(gen) and gen[-1] in eos))


if __name__ == "__main__":
    main()

