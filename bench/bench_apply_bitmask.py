"""Micro-benchmark of gdecode.apply_bitmask_inplace backends: torch ops vs the C++ CPU code (and the CUDA kernel
when a GPU and gdecode._cuda exist), on Llama-3-sized rows (V = 128256), batch 1 and 16.

Each call masks the same logits tensor in place (the work does not depend on the logit values), timed one call
at a time after a warm-up. Figures are wall-clock microseconds per call (and per row) through the public Python
entry point, so they include argument checks and dispatch. Two mask kinds: "random" (every mask word has
mixed bits: the worst case for the word-skipping CPU code) and "sparse" (3% of the mask words allow a few
tokens each, ~0.2% of the vocabulary: a grammar state that allows little). The C++ CPU code is single-threaded;
torch uses its intra-op thread pool (--torch-threads sets its size; on a busy machine more threads can be slower).

    .venv/bin/python bench/bench_apply_bitmask.py [--vocab 128256] [--batches 1,16] [--dtypes float32,bfloat16]
                                                  [--torch-threads N]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from gdecode.bitmask import apply_bitmask_with_backend, cuda_kernel


def make_mask(kind: str, batch: int, vocab: int, rng: np.random.Generator) -> torch.Tensor:
    words = (vocab + 31) // 32
    if kind == "random":
        bits = rng.integers(0, 2**32, size=(batch, words), dtype=np.uint64).astype(np.uint32)
    else:  # sparse: ~1% of the words allow something, each with a few random bits
        bits = np.zeros((batch, words), dtype=np.uint32)
        hot = rng.random((batch, words)) < 0.03
        bits[hot] = rng.integers(0, 2**32, size=int(hot.sum()), dtype=np.uint64).astype(np.uint32) & 0x01010101
    return torch.from_numpy(bits.view(np.int32))


def time_calls(fn, iters: int, warmup: int, sync=None) -> np.ndarray:
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    out = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter_ns()
        fn()
        if sync:
            sync()
        out[i] = (time.perf_counter_ns() - t0) / 1e3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--masks", default="random,sparse")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--torch-iters", type=int, default=60, help="iterations of the (slow) torch path on CPU")
    ap.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    args = ap.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    rng = np.random.default_rng(0)
    gpu = torch.cuda.is_available() and cuda_kernel() is not None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, {platform.processor() or platform.machine()}; "
          f"CUDA kernel: {'yes' if gpu else 'no (no GPU or gdecode._cuda not built)'}")
    print(f"V={args.vocab}; microseconds per call (per row = p50 / batch)")
    header = f"{'dtype':9} {'mask':7} {'batch':>5} {'backend':8} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9} {'p50/row':>9}"
    print(header)
    print("-" * len(header))
    for dtype_name in args.dtypes.split(","):
        dtype = getattr(torch, dtype_name)
        for kind in args.masks.split(","):
            for batch in (int(b) for b in args.batches.split(",")):
                mask = make_mask(kind, batch, args.vocab, rng)
                p50 = {}
                runs = [("torch", "cpu", args.torch_iters), ("cpu", "cpu", args.iters)]
                if gpu:
                    runs += [("torch", "cuda", args.iters), ("cuda", "cuda", args.iters)]
                for backend, device, iters in runs:
                    logits = torch.randn(batch, args.vocab, dtype=dtype, device=device)
                    m = mask.to(device)
                    sync = torch.cuda.synchronize if device == "cuda" else None
                    ts = time_calls(lambda b=backend, x=logits, m=m: apply_bitmask_with_backend(x, m, backend=b),
                                    iters, warmup=max(5, iters // 10), sync=sync)
                    label = backend if device == "cpu" or backend == "cuda" else "torch-gpu"
                    q = np.percentile(ts, [50, 90, 99])
                    p50[label] = q[0]
                    print(f"{dtype_name:9} {kind:7} {batch:>5} {label:8} {q[0]:9.1f} {q[1]:9.1f} {q[2]:9.1f} "
                          f"{ts.max():9.1f} {q[0] / batch:9.2f}")
                ratio = f"  -> torch/cpu p50 ratio: {p50['torch'] / p50['cpu']:.1f}x"
                if gpu:
                    ratio += f"; torch-gpu/cuda: {p50['torch-gpu'] / p50['cuda']:.1f}x"
                print(ratio)


if __name__ == "__main__":
    main()
