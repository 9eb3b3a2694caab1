"""MaskBench-style engine benchmark, no model: compile time, time to first mask and the mask time at every
token of each schema's valid and invalid test instances, for gdecode and its peers in one run.

For each (schema, engine), in the engine's isolated worker process:

1. compile the schema (GCT; a failure is a ``compile_error`` and the schema is not covered by that engine);
2. for each test instance, in a fresh matcher: before every token, fill the mask (timed), check the
   token's bit, consume it; after the last token fill the mask once more
   (timed) and ask whether the matcher accepts. A valid instance is *rejected* if a token is masked out
   or the end is not accepting; an invalid instance is *accepted* if every token was allowed and the end
   accepts (a soundness failure: the engine would let a model produce it).

Instance text is ``json.dumps(data, ensure_ascii=False, separators=(",", ":"))``: compact JSON, which the
default whitespace rules of all four engines admit, tokenized with the benchmark tokenizer (canonical
tokenization). Keys appear in the instance's own order, so an engine that enforces the schema's property
order (all four do by default) may reject a valid instance whose keys are in another order; such valid
rejects are engine limits, not soundness bugs.

Clocks (``clock``): ``"wall"`` times with ``perf_counter_ns``; ``"cpu"`` times mask fills with the calling
thread's CPU time and compiles with the process's CPU time (all threads: XGrammar compiles on a thread
pool), so time stolen by other processes on a shared machine stays out of the figures.

Time to first mask = compile + the first mask fill. Per-schema timeout and crash isolation: see
:mod:`gdecode.bench.worker`. Output: one JSONL line per (schema, engine) in ``masks.jsonl``; a rerun skips
pairs already present (resume).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from gdecode.bench.data import Record
from gdecode.bench.results import append_jsonl, done_keys
from gdecode.bench.worker import IsolatedWorker, WorkerInitError

_WARMUP_SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}


# (mask clock, compile clock) by name; see the module docstring.
CLOCKS = {"wall": (time.perf_counter_ns, time.perf_counter_ns), "cpu": (time.thread_time_ns, time.process_time_ns)}


def instance_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# ------------------------------------------------------------------------------------------ worker side
def init_worker(engine: str, tokenizer: str, vocab_size: int | None = None) -> dict[str, Any]:
    from gdecode.bench.engines import make_engine
    from gdecode.bench.model_run import load_tokenizer

    hf = load_tokenizer(tokenizer)
    eng = make_engine(engine, hf, vocab_size)
    # Untimed warm-up: imports and one-time setup stay out of the first schema's figures.
    m = eng.matcher(eng.compile(_WARMUP_SCHEMA))
    m.fill_mask()
    return {"engine": eng, "hf": hf}


def run_schema(state: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    eng, hf = state["engine"], state["hf"]
    clock, compile_clock = CLOCKS[task.get("clock", "wall")]
    t0 = compile_clock()
    try:
        compiled = eng.compile(task["schema"])
    except Exception as e:
        return {"status": "compile_error", "error": f"{type(e).__name__}: {str(e)[:500]}",
                "compile_us": (compile_clock() - t0) / 1e3}
    compile_ns = compile_clock() - t0
    out: dict[str, Any] = {"status": "ok", "compile_us": compile_ns / 1e3, "ttfm_us": None, "mask_us": [],
                           "valid_total": 0, "valid_rejected": 0, "invalid_total": 0, "invalid_accepted": 0,
                           "inconsistent": 0, "tokens": 0}
    if not task["tests"]:  # no instances: the first mask still counts
        m = eng.matcher(compiled)
        t = clock()
        m.fill_mask()
        out["ttfm_us"] = (compile_ns + clock() - t) / 1e3
    for inst in task["tests"]:
        ids = hf.encode(inst["text"], add_special_tokens=False)
        m = eng.matcher(compiled)
        ok = True
        for k in range(len(ids) + 1):
            t = clock()
            m.fill_mask()
            dt = clock() - t
            if out["ttfm_us"] is None:
                out["ttfm_us"] = (compile_ns + dt) / 1e3
            out["mask_us"].append(round(dt / 1e3, 2))
            if k == len(ids):
                ok = m.is_accepting()
                break
            if not m.allowed(ids[k]):
                ok = False
                break
            if not m.consume(ids[k]):  # the mask allowed it but the matcher refused: the engine disagrees with itself
                out["inconsistent"] += 1
                ok = False
                break
            out["tokens"] += 1
        if inst["valid"]:
            out["valid_total"] += 1
            out["valid_rejected"] += not ok
        else:
            out["invalid_total"] += 1
            out["invalid_accepted"] += ok
    return out


# ------------------------------------------------------------------------------------------ parent side
def run(records: list[Record], engines: list[str], out_dir: Path, *, tokenizer: str = "llama3",
        timeout: float = 60.0, progress: bool = True, clock: str = "wall",
        worker_init: str = "gdecode.bench.masks:init_worker",
        worker_handle: str = "gdecode.bench.masks:run_schema") -> Path:
    """Benchmark every (record, engine) pair not yet in ``out_dir/masks.jsonl``; returns that path."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "masks.jsonl"
    done = done_keys(path)
    todo = [(r, e) for r in records for e in engines if (r.id, e) not in done]
    workers: dict[str, IsolatedWorker] = {}
    dead: dict[str, str] = {}
    bar = _progress(len(todo), progress, "masks")
    try:
        for r, e in todo:
            rec: dict[str, Any] = {"id": r.id, "split": r.split, "engine": e, "tokenizer": tokenizer, "clock": clock}
            if e in dead:
                rec.update(status="unavailable", error=dead[e])
            else:
                if e not in workers:
                    workers[e] = IsolatedWorker(worker_init, worker_handle, (e, tokenizer))
                task = {"schema": r.schema, "clock": clock,
                        "tests": [{"valid": bool(t["valid"]), "text": instance_text(t["data"])} for t in r.tests]}
                try:
                    rec.update(workers[e].run(task, timeout))
                except WorkerInitError as err:  # e.g. the peer is not installed: every schema says so
                    dead[e] = str(err)
                    rec.update(status="unavailable", error=str(err))
            rec["valid_in_data"] = sum(bool(t["valid"]) for t in r.tests)
            rec["invalid_in_data"] = sum(not t["valid"] for t in r.tests)
            append_jsonl(path, rec)
            bar.update(1)
    finally:
        bar.close()
        for w in workers.values():
            w.close()
    return path


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, dynamic_ncols=True)
