"""The JSONSchemaBench model benchmark: generate with a real model under each engine and score the outputs.

For each (schema, engine), in an isolated worker that holds the model (see :mod:`gdecode.bench.worker`):
compile the schema (GCT), generate greedily with the engine's HF logits processor, parse the output and
validate it with ``jsonschema`` (Draft 2020-12, format checker). The metrics and their definitions are in
:mod:`gdecode.bench.metrics`.

Prompt, in the style of the paper: a system message "You need to generate a JSON object that matches the
schema below." and the schema as JSON text as the user message, through the model's chat template. Very
large schemas are cut in the *prompt* to ``max_prompt_tokens`` (the constraint always uses the whole
schema) so that a 135M-parameter model on a CPU stays within its context and the run within its budget.
Output: one JSONL line per (schema, engine) in ``model.jsonl``; a rerun resumes.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gdecode.bench.data import Record
from gdecode.bench.results import append_jsonl, done_keys
from gdecode.bench.worker import IsolatedWorker, WorkerInitError

SYSTEM_PROMPT = "You need to generate a JSON object that matches the schema below."


def load_tokenizer(name: str) -> Any:
    """A named gdecode tokenizer (``llama3``, ``gpt2``, ...) or a local HF tokenizer/model directory."""
    from gdecode.assets import TOKENIZERS, load_hf_tokenizer

    if name in TOKENIZERS:
        return load_hf_tokenizer(name)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name, local_files_only=True)


def validate_output(text: str, schema: Any) -> tuple[bool, str]:
    """(valid, reason): the output parses as JSON and validates against the schema."""
    import jsonschema

    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        return False, f"not JSON: {e}"[:300]
    try:
        cls = jsonschema.Draft202012Validator
        cls.check_schema(schema)
        errors = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value))
    except jsonschema.SchemaError as e:
        return False, f"schema invalid for Draft 2020-12: {e.message}"[:300]
    except Exception as e:  # unresolvable $ref, bad regex in the schema, ...
        return False, f"validator error: {type(e).__name__}: {e}"[:300]
    if errors:
        return False, f"schema violation: {errors[0].message}"[:300]
    return True, ""


def build_prompt(tok: Any, schema: Any, max_prompt_tokens: int) -> Any:
    text = json.dumps(schema, ensure_ascii=False)
    ids = tok.encode(text, add_special_tokens=False)
    if len(ids) > max_prompt_tokens:
        text = tok.decode(ids[:max_prompt_tokens]) + " ..."
    msgs = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]
    if getattr(tok, "chat_template", None):
        prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return tok(prompt, return_tensors="pt", add_special_tokens=False)
    return tok(SYSTEM_PROMPT + "\n" + text + "\n", return_tensors="pt")


class _Clock:
    """A transformers streamer that only records when tokens arrive (the first call carries the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


# ------------------------------------------------------------------------------------------ worker side
def init_worker(model: str | None, engines: list[str], threads: int = 2) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from gdecode.bench.engines import make_engine

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    if model is None:
        from gdecode.assets import default_model_dir

        model = str(default_model_dir())
    tok = AutoTokenizer.from_pretrained(model, local_files_only=True)
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32, local_files_only=True).eval()
    width = lm.get_output_embeddings().weight.shape[0]
    state = {"model": lm, "tok": tok, "engines": {}, "width": width}
    warm = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    for name in engines:
        state["engines"][name] = make_engine(name, tok, width)
        # Untimed warm-up: first-use costs (llguidance's torch helpers take seconds once) stay out of the figures.
        generate_one(state, {"engine": name, "schema": warm, "max_new_tokens": 3, "max_prompt_tokens": 64})
    return state


def generate_one(state: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    import torch

    eng, tok, lm = state["engines"][task["engine"]], state["tok"], state["model"]
    t0 = time.perf_counter()
    try:
        compiled = eng.compile(task["schema"])
    except Exception as e:
        return {"status": "compile_error", "error": f"{type(e).__name__}: {str(e)[:500]}",
                "gct_s": time.perf_counter() - t0}
    gct = time.perf_counter() - t0
    inputs = build_prompt(tok, task["schema"], task["max_prompt_tokens"])
    clock = _Clock()
    t1 = time.perf_counter()
    with torch.inference_mode():
        out = lm.generate(**inputs, max_new_tokens=task["max_new_tokens"], do_sample=False,
                          logits_processor=[eng.hf_processor(compiled)], streamer=clock,
                          pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    t2 = time.perf_counter()
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    text = tok.decode(new, skip_special_tokens=True)
    valid, reason = validate_output(text, task["schema"])
    steps = clock.times[1:]  # times[0] is the prompt
    n = len(steps)
    ttft = gct + (steps[0] - t1 if steps else t2 - t1)
    tpot = (steps[-1] - steps[0]) / (n - 1) if n > 1 else None
    return {"status": "ok", "gct_s": gct, "ttft_s": ttft, "tpot_s": tpot, "gen_s": t2 - t1, "tokens": n,
            "hit_limit": n >= task["max_new_tokens"], "valid": valid,
            "reason": reason, "output": text[:2000]}


def _eos_ids(state: dict[str, Any]) -> set[int]:
    ids = state["model"].generation_config.eos_token_id
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    if state["tok"].eos_token_id is not None:
        ids.add(state["tok"].eos_token_id)
    return ids


def generate_shared(state: dict[str, Any], task: dict[str, Any]) -> list[dict[str, Any]]:
    """All of ``task["engines"]`` on one schema as one greedy batch that shares the prompt's prefill.

    The prompt is the same for every engine, so its KV cache is computed once and copied to one row per
    engine; each row is then masked by its own engine's processor, exactly as :func:`generate_one` would,
    and leaves the batch when it ends. About 2.5x the throughput of one request at a time on a CPU. Times per
    engine: TTFT = its GCT + the shared prefill + its first mask; TPOT = the batch's forward time per step
    plus the engine's *own* mask time per step (the other rows' masks are left out, as if computed in
    parallel).
    """
    tok, lm = state["tok"], state["model"]
    results: dict[str, dict[str, Any]] = {}
    rows: list[tuple[str, Any, float]] = []  # (engine, processor, gct)
    for name in task["engines"]:
        eng = state["engines"][name]
        t0 = time.perf_counter()
        try:
            compiled = eng.compile(task["schema"])
        except Exception as e:
            results[name] = {"status": "compile_error", "error": f"{type(e).__name__}: {str(e)[:500]}",
                             "gct_s": time.perf_counter() - t0}
            continue
        rows.append((name, eng.hf_processor(compiled), time.perf_counter() - t0))
    if rows:
        results.update(_decode_rows(tok, lm, rows, task, _eos_ids(state)))
    return [results[name] for name in task["engines"]]


def _decode_rows(tok: Any, lm: Any, rows: list, task: dict[str, Any], eos: set[int]) -> dict:
    import torch

    inputs = build_prompt(tok, task["schema"], task["max_prompt_tokens"])
    prompt = inputs["input_ids"]
    n, limit = len(rows), task["max_new_tokens"]
    # transformers 5.x renamed past_key_values to cache; older releases only know the old name
    cache_arg = "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"
    with torch.inference_mode():
        t = time.perf_counter()
        out = lm(**inputs, use_cache=True)
        prefill = time.perf_counter() - t
        cache, logits = _cache_of(out), out.logits[:, -1, :].float()
        cache.batch_repeat_interleave(n)
        logits = logits.expand(n, -1)
        active = list(range(n))  # row index of each batch position
        new: list[list[int]] = [[] for _ in range(n)]
        mask_s: list[list[float]] = [[] for _ in range(n)]
        forward_s: list[float] = []  # forward time of each decoding step after the first token
        done = [False] * n
        gen_t0 = time.perf_counter()
        gen_s = [0.0] * n
        while active:
            chosen = []
            for pos, i in enumerate(active):
                ids = torch.cat([prompt, torch.tensor([new[i]], dtype=prompt.dtype)], dim=1) if new[i] else prompt
                t = time.perf_counter()
                scores = rows[i][1](ids, logits[pos:pos + 1].clone())
                mask_s[i].append(time.perf_counter() - t)
                tok_id = int(torch.argmax(scores[0]))
                chosen.append(tok_id)
                if tok_id not in eos:
                    new[i].append(tok_id)
                if tok_id in eos or len(new[i]) >= limit:
                    done[i] = True
                    gen_s[i] = time.perf_counter() - gen_t0
            keep = [pos for pos, i in enumerate(active) if not done[i]]
            if not keep:
                break
            if len(keep) < len(active):
                cache.batch_select_indices(torch.tensor(keep))
            nxt = torch.tensor([[chosen[pos]] for pos in keep], dtype=prompt.dtype)
            active = [active[pos] for pos in keep]
            t = time.perf_counter()
            out = lm(input_ids=nxt, use_cache=True, **{cache_arg: cache})
            forward_s.append(time.perf_counter() - t)
            cache, logits = _cache_of(out), out.logits[:, -1, :].float()
    results = {}
    for i, (name, _proc, gct) in enumerate(rows):
        k = len(mask_s[i])  # tokens chosen, EOS included (as a streamer counts it)
        text = tok.decode(new[i], skip_special_tokens=True)
        valid, reason = validate_output(text, task["schema"])
        steps = [forward_s[j - 1] + mask_s[i][j] for j in range(1, k)]
        results[name] = {"status": "ok", "gct_s": gct, "ttft_s": gct + prefill + mask_s[i][0],
                         "tpot_s": sum(steps) / len(steps) if steps else None, "gen_s": prefill + gen_s[i],
                         "tokens": k, "hit_limit": len(new[i]) >= limit, "valid": valid, "reason": reason,
                         "output": text[:2000], "shared_prefill": True}
    return results


# ------------------------------------------------------------------------------------------ parent side
def run(records: list[Record], engines: list[str], out_dir: Path, *, model: str | None = None,
        max_new_tokens: int = 256, max_prompt_tokens: int = 1024, timeout: float = 300.0,
        progress: bool = True, shared_prefill: bool = False, threads: int = 2) -> Path:
    """Generate for every (record, engine) pair not yet in ``out_dir/model.jsonl``; returns that path.

    ``shared_prefill``: the engines of one schema decode as one batch (:func:`generate_shared`); the
    timeout then covers the whole batch and is multiplied by the number of engines in it."""
    from gdecode.bench.masks import _progress

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.jsonl"
    done = done_keys(path)
    groups = [(r, [e for e in engines if (r.id, e) not in done]) for r in records]
    groups = [(r, es) for r, es in groups if es]
    if not shared_prefill:
        groups = [(r, [e]) for r, es in groups for e in es]
    if not groups:
        return path
    handle = "generate_shared" if shared_prefill else "generate_one"
    worker = IsolatedWorker("gdecode.bench.model_run:init_worker", f"gdecode.bench.model_run:{handle}",
                            (model, list(engines), threads))
    bar = _progress(sum(len(es) for _r, es in groups), progress, "model")
    try:
        for r, es in groups:
            task = {"schema": r.schema, "max_new_tokens": max_new_tokens, "max_prompt_tokens": max_prompt_tokens}
            if shared_prefill:
                task["engines"] = es
            else:
                task["engine"] = es[0]
            try:
                got = worker.run(task, timeout * len(es))
                if not isinstance(got, list) and len(es) > 1:
                    # A timeout or crash of the batch: rerun the engines one by one, so that one engine
                    # hanging (e.g. unrolling a huge minLength) does not cost the others their result.
                    got = [_first(worker.run({**task, "engines": [e]}, timeout)) for e in es]
            except WorkerInitError as err:
                print(f"[gdecode bench] cannot start the model worker: {err}", file=sys.stderr)
                raise
            outs = got if isinstance(got, list) else [got]
            for e, res in zip(es, outs, strict=True):
                rec: dict[str, Any] = {"id": r.id, "split": r.split, "engine": e,
                                       "model": model or "smollm2-135m-instruct", "max_new_tokens": max_new_tokens}
                rec.update(res)
                append_jsonl(path, rec)
            bar.update(len(es))
    finally:
        bar.close()
        worker.close()
    return path


def _cache_of(out: Any) -> Any:
    return out.get("cache") if out.get("cache") is not None else out.get("past_key_values")


def _first(result: Any) -> dict[str, Any]:
    return result[0] if isinstance(result, list) else result

