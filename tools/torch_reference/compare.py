"""Runs `bisenet bench` and the PyTorch reference on the same sizes, one after the other, and
prints the ratio ours / PyTorch per size: the figure that matters, since absolute times move on
shared machines. Where the `onnxruntime` package is installed, the same network exported to ONNX
runs in ONNX Runtime too, and the ratio ours / ONNX Runtime is printed beside.

    python tools/torch_reference/compare.py [--arch v1|v2] [--backbone resnet18] [--sizes 360x480,1024x2048]
        [--iters 10] [--train-batch 4] [--bisenet target/release/bisenet] [--backend flex]
"""

import importlib.util

import argparse
import json
import os
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
    parser.add_argument("--train-batch", default="0")
    parser.add_argument("--train-crop", default="384x480")
    parser.add_argument("--bisenet", default=os.path.join(ROOT, "target/release/bisenet"))
    args = parser.parse_args()

    common = ["--arch", args.arch, "--backbone", args.backbone, "--sizes", args.sizes, "--iters", args.iters,
              "--warmup", args.warmup, "--train-batch", args.train_batch, "--train-crop", args.train_crop]
    with tempfile.TemporaryDirectory() as tmp:
        ours_json, torch_json = os.path.join(tmp, "ours.json"), os.path.join(tmp, "torch.json")
        subprocess.run([args.bisenet, "bench", "--backend", args.backend, *common, "--json", ours_json], check=True)
        with_ort = ["--onnxruntime"] if importlib.util.find_spec("onnxruntime") else []
        subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), *common, *with_ort, "--json", torch_json],
                       check=True)
        ours, ref = (json.load(open(p)) for p in (ours_json, torch_json))

    print()
    # Whole pipelines (RGB bytes in, labels out) are compared: the stages split differently
    # (ours makes labels from 1/8-resolution logits on the CPU), the work done is the same.
    ort = {r["size"]: r for r in ref.get("onnxruntime", [])}
    name = "bisenet-v2" if args.arch == "v2" else args.backbone
    print(f"| {name}, HxW | ours ({args.backend}) ms | PyTorch ms | ours / PyTorch "
          f"| ONNX Runtime ms | ours / ONNX Runtime |")
    print("|---|---|---|---|---|---|")
    for a, b in zip(ours["results"], ref["results"]):
        ms = a["total_ms"]["median"]
        ratio = ms / b["total_ms"]["median"]
        o = ort.get(a["size"])
        ort_cells = f"{o['total_ms']['median']:.1f} | {ms / o['total_ms']['median']:.2f}x" if o else "- | -"
        print(f"| {a['size']} | {ms:.1f} | {b['total_ms']['median']:.1f} | {ratio:.2f}x | {ort_cells} |")
    for a, b in zip(ours["train"], ref["train"]):
        ratio = a["step_ms"]["median"] / b["step_ms"]["median"]
        print(f"| training step, batch {a['batch']}, {a['crop']} | {a['step_ms']['median']:.0f} | "
              f"{b['step_ms']['median']:.0f} | {ratio:.2f}x | - | - |")


if __name__ == "__main__":
    main()
