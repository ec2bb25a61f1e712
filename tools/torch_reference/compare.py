"""Runs `bisenet bench` and the PyTorch reference on the same sizes, one after the other, and
prints the ratio ours / PyTorch per size: the figure that matters, since absolute times move on
shared machines. Where the `onnxruntime` package is installed, the same network exported to ONNX
runs in ONNX Runtime too, and the ratio ours / ONNX Runtime is printed beside.

On a shared machine the load drifts between runs; `--rounds N` alternates the two sides N times
and prints, per size, the median time over the rounds and the median of the per-round ratios,
with the ratio of each round so that the spread shows.

    python tools/torch_reference/compare.py [--arch v1|v2] [--backbone resnet18] [--sizes 360x480,1024x2048]
        [--iters 10] [--rounds 3] [--train-batch 4] [--bisenet target/release/bisenet] [--backend flex]
"""

import importlib.util

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="v1", choices=["v1", "v2"])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--backend", default="flex")
    parser.add_argument("--sizes", default="360x480,720x960,1024x2048")
    parser.add_argument("--iters", default="10")
    parser.add_argument("--warmup", default="2")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--train-batch", default="0")
    parser.add_argument("--train-crop", default="384x480")
    parser.add_argument("--bisenet", default=os.path.join(ROOT, "target/release/bisenet"))
    args = parser.parse_args()

    common = ["--arch", args.arch, "--backbone", args.backbone, "--sizes", args.sizes, "--iters", args.iters,
              "--warmup", args.warmup, "--train-batch", args.train_batch, "--train-crop", args.train_crop]
    with_ort = ["--onnxruntime"] if importlib.util.find_spec("onnxruntime") else []
    rounds = []  # (ours, reference) JSON per round
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            ours_json = os.path.join(tmp, f"ours{round_index}.json")
            torch_json = os.path.join(tmp, f"torch{round_index}.json")
            subprocess.run([args.bisenet, "bench", "--backend", args.backend, *common, "--json", ours_json],
                           check=True)
            subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), *common, *with_ort, "--json",
                            torch_json], check=True)
            rounds.append(tuple(json.load(open(p)) for p in (ours_json, torch_json)))

    def cells(ours_ms, ref_ms):
        """Median times over the rounds, the median per-round ratio, and each round's ratio."""
        ratios = [a / b for a, b in zip(ours_ms, ref_ms)]
        spread = f" ({', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
        return (f"{statistics.median(ours_ms):.1f}", f"{statistics.median(ref_ms):.1f}",
                f"{statistics.median(ratios):.2f}x{spread}")

    print()
    # Whole pipelines (RGB bytes in, labels out) are compared: the stages split differently
    # (ours makes labels from 1/8-resolution logits on the CPU), the work done is the same.
    name = "bisenet-v2" if args.arch == "v2" else args.backbone
    print(f"| {name}, HxW | ours ({args.backend}) ms | PyTorch ms | ours / PyTorch "
          f"| ONNX Runtime ms | ours / ONNX Runtime |")
    print("|---|---|---|---|---|---|")
    sizes = [r["size"] for r in rounds[0][0]["results"]]
    for i, size in enumerate(sizes):
        ours_ms = [ours["results"][i]["total_ms"]["median"] for ours, _ in rounds]
        torch_ms = [ref["results"][i]["total_ms"]["median"] for _, ref in rounds]
        ort_ms = [o["total_ms"]["median"] for _, ref in rounds for o in ref.get("onnxruntime", [])
                  if o["size"] == size]
        ms, torch_median, torch_ratio = cells(ours_ms, torch_ms)
        ort_cells = " | ".join(cells(ours_ms, ort_ms)[1:]) if len(ort_ms) == len(rounds) else "- | -"
        print(f"| {size} | {ms} | {torch_median} | {torch_ratio} | {ort_cells} |")
    for i, step in enumerate(rounds[0][0]["train"]):
        ours_ms = [ours["train"][i]["step_ms"]["median"] for ours, _ in rounds]
        torch_ms = [ref["train"][i]["step_ms"]["median"] for _, ref in rounds]
        ms, torch_median, ratio = cells(ours_ms, torch_ms)
        print(f"| training step, batch {step['batch']}, {step['crop']} | {ms} | {torch_median} | {ratio} | - | - |")


if __name__ == "__main__":
    main()
