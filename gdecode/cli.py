"""Command line: ``gdecode demo`` and ``gdecode generate``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

_PKG = Path(__file__).resolve().parent
# Installed wheels carry the grammars inside the package; a source checkout has them at the top level.
GRAMMARS_DIR = next((p for p in (_PKG / "grammars", _PKG.parent / "grammars") if p.is_dir()), _PKG / "grammars")
DEMO_PROMPT = "Describe the planet Saturn as JSON: its name, number of moons, whether it has rings, and the main gases of its atmosphere."


def _load_model(model: str | None):
    """(model, tokenizer): a local HF model directory, or the embedded default SmolLM2-135M-Instruct."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if model is None:
        from gdecode.assets import default_model_dir

        model = str(default_model_dir())
    tok = AutoTokenizer.from_pretrained(model)
    # fp32 on CPU: bf16 matmuls are far slower on these machines.
    dtype = torch.float32 if not torch.cuda.is_available() else torch.bfloat16
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).eval()
    return lm, tok


def _chat_prompt(tokenizer, text: str, raw: bool) -> str:
    if raw or not getattr(tokenizer, "chat_template", None):
        return text
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)


def cmd_generate(args: argparse.Namespace) -> int:
    from gdecode.generate import generate

    grammar, fmt, regex, schema = None, "lark", None, None
    if args.schema:
        schema = Path(args.schema).read_text()
    elif args.grammar:
        grammar = Path(args.grammar).read_text()
        fmt = "gbnf" if args.grammar.endswith(".gbnf") else "lark"
    elif args.regex:
        regex = args.regex
    else:
        grammar = (GRAMMARS_DIR / "json.lark").read_text()
    if args.engine != "hf":
        print(f"error: engine {args.engine!r} is not available yet (only 'hf')", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    lm, tok = _load_model(args.model)
    prompt = _chat_prompt(tok, args.prompt, args.raw_prompt)
    t1 = time.perf_counter()
    text = generate(lm, tok, prompt, grammar=grammar, grammar_format=fmt, regex=regex, schema=schema,
                    sampler=args.sampler, max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                    sampler_options={"n_particles": args.particles} if args.sampler == "smc" else None)
    t2 = time.perf_counter()
    print(text)
    print(f"[gdecode] model load {t1 - t0:.1f}s, generation {t2 - t1:.1f}s", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Main job: generate JSON for an example schema with the embedded model, then validate it."""
    import jsonschema

    from gdecode.generate import generate

    schema_path = GRAMMARS_DIR / "schemas" / "planet.json"
    schema = json.loads(schema_path.read_text())
    print(f"[gdecode] demo: SmolLM2-135M-Instruct constrained by {schema_path.name}", file=sys.stderr)
    lm, tok = _load_model(args.model)
    prompt = _chat_prompt(tok, DEMO_PROMPT, raw=False)
    t0 = time.perf_counter()
    text = generate(lm, tok, prompt, schema=schema, max_new_tokens=args.max_new_tokens)
    dt = time.perf_counter() - t0
    print(text)
    try:
        jsonschema.validate(json.loads(text), schema)
    except (json.JSONDecodeError, jsonschema.ValidationError) as e:
        print(f"[gdecode] demo FAILED: output does not validate ({e})", file=sys.stderr)
        return 1
    print(f"[gdecode] demo OK: schema-valid JSON in {dt:.1f}s", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # benchmarks have their own CLI (gdecode/bench/cli.py)
        from gdecode.bench.cli import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="gdecode", description="Structured generation for LLMs")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate JSON with the embedded default model")
    demo.add_argument("--model", help="HF model directory (default: embedded SmolLM2-135M-Instruct)")
    demo.add_argument("--max-new-tokens", type=int, default=128)
    demo.set_defaults(func=cmd_demo)

    gen = sub.add_parser("generate", help="constrained generation from a grammar or regex")
    src = gen.add_mutually_exclusive_group()
    src.add_argument("--grammar", help="Lark (.lark) or GBNF (.gbnf) grammar file (default: JSON grammar)")
    src.add_argument("--regex", help="regular expression the whole output must match")
    src.add_argument("--schema", help="JSON Schema file (.json) the output must validate against")
    gen.add_argument("--prompt", required=True, help="user message (wrapped in the chat template)")
    gen.add_argument("--raw-prompt", action="store_true", help="do not apply the chat template")
    gen.add_argument("--model", help="HF model directory (default: embedded SmolLM2-135M-Instruct)")
    gen.add_argument("--engine", default="hf", choices=["hf", "vllm"])
    gen.add_argument("--sampler", default="mask", choices=["mask", "awrs", "smc", "asap"],
                     help="mask: token masking; awrs: rejection sampling, same law as masking, checks only the "
                          "tokens it draws; asap / smc: correct masking's bias towards the grammar-conditioned "
                          "model (see README, Samplers)")
    gen.add_argument("--particles", type=int, default=4, help="SMC particles (--sampler smc)")
    gen.add_argument("--max-new-tokens", type=int, default=256)
    gen.add_argument("--temperature", type=float, default=None,
                     help="0 = greedy; default 0 for mask/awrs, 1 for smc/asap")
    gen.add_argument("--seed", type=int)
    gen.set_defaults(func=cmd_generate)
    # Listed for --help only: main() hands "bench ..." to gdecode.bench.cli before parsing.
    sub.add_parser("bench", help="benchmarks: gdecode bench {masks,jsonschemabench,report} --help")

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
