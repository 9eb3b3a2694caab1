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


# ------------------------------------------------------------------------------------------ parent side
def run(records: list[Record], engines: list[str], out_dir: Path, *, model: str | None = None,
        max_new_tokens: int = 256, max_prompt_tokens: int = 1024, timeout: float = 300.0,
        progress: bool = True) -> Path:
    """Generate for every (record, engine) pair not yet in ``out_dir/model.jsonl``; returns that path."""
    from gdecode.bench.masks import _progress

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.jsonl"
    done = done_keys(path)
    todo = [(r, e) for r in records for e in engines if (r.id, e) not in done]
    if not todo:
        return path
    worker = IsolatedWorker("gdecode.bench.model_run:init_worker", "gdecode.bench.model_run:generate_one",
                            (model, list(engines)))
    bar = _progress(len(todo), progress, "model")
    try:
        for r, e in todo:
            rec: dict[str, Any] = {"id": r.id, "split": r.split, "engine": e, "model": model or "smollm2-135m-instruct",
                                   "max_new_tokens": max_new_tokens}
            try:
                rec.update(worker.run({"engine": e, "schema": r.schema, "max_new_tokens": max_new_tokens,
                                       "max_prompt_tokens": max_prompt_tokens}, timeout))
            except WorkerInitError as err:
                print(f"[gdecode bench] cannot start the model worker: {err}", file=sys.stderr)
                raise
            append_jsonl(path, rec)
            bar.update(1)
    finally:
        bar.close()
        worker.close()
    return path
