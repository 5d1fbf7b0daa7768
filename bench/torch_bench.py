#!/usr/bin/python3
"""PyTorch (eager, CPU) latency of a torchvision ResNet at batch 1, printed as
one JSON object like `edge-resnet bench --json`:

  /usr/bin/python3 bench/torch_bench.py --model resnet50 [--threads N] [--runs R] [--warmup W]
    {"runtime": "pytorch", "version": "1.13.0a0", "model": "resnet50", "threads": 1, "runs": 20,
     "min_ms": ..., "median_ms": ..., "p90_ms": ..., "mean_ms": ...}

The network is built exactly as bench/export_models.py builds the one it
exports (same seeds), in eval mode, run under torch.inference_mode() with
torch.set_num_threads(N) on a fixed random [1,3,224,224] input.
Needs Debian's python3-torch and python3-torchvision (/usr/bin/python3).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_models  # noqa: E402


def summarize(times):
    """min, median (mean of the middle two for an even count), p90 by nearest
    rank and mean, as edge-resnet bench computes them."""
    s = sorted(times)
    n = len(s)
    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    i = int(0.9 * n + 0.999999) - 1
    return {"runs": n, "min_ms": s[0], "median_ms": med,
            "p90_ms": s[min(max(i, 0), n - 1)], "mean_ms": sum(s) / n}


def main():
    ap = argparse.ArgumentParser(description="PyTorch batch-1 latency of a torchvision ResNet")
    ap.add_argument("--model", required=True, help="torchvision name, e.g. resnet50")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    if args.threads < 1 or args.runs < 1 or args.warmup < 0:
        sys.exit("torch_bench.py: --threads and --runs must be >= 1, --warmup >= 0")
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError as e:
        sys.exit(f"torch_bench.py: {e}; install with: apt-get install python3-torch python3-torchvision "
                 f"(and run with /usr/bin/python3)")

    torch.set_num_threads(args.threads)
    model = export_models.build(args.model)
    g = torch.Generator().manual_seed(12345)
    x = torch.randn(*export_models.SHAPE, generator=g)
    times = []
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(x)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    res = {"runtime": "pytorch", "version": torch.__version__, "model": args.model,
           "threads": torch.get_num_threads()}
    res.update(summarize(times))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
