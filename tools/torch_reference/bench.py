"""Times the PyTorch BiSeNetV1 the way `bisenet bench` times ours, and writes the same JSON.

    python tools/torch_reference/bench.py --backbone resnet18 --sizes 360x480,1024x2048 --json out.json
        [--onnxruntime]

Eager PyTorch on the CPU, 2 threads, denormals flushed to zero, inference mode, a fresh random
input every run; the stages are those of our pipeline: uint8 RGB to a normalised tensor, the
network (logits at the input size), argmax to uint8 labels. `--onnxruntime` also times the same
network exported to ONNX (per size, static shapes) in ONNX Runtime's CPU provider with the same
threads and all graph optimisations (it fuses convolution, BatchNorm and ReLU), when the
`onnxruntime` package is installed.
"""

import argparse
import json
import statistics
import time

import torch

from bisenet import BiSeNetV1
from bisenetv2 import BiSeNetV2

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def stats(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def parse_hw(spec):
    h, w = spec.lower().split("x")
    return int(h), int(w)


def time_pipeline(size, warmup, iters, gen, preprocess, network, argmax):
    """Times `argmax(network(preprocess(rgb)))` per stage on a fresh random HxWx3 uint8 frame
    each run; returns the JSON entry `bisenet bench` writes."""
    h, w = size
    times = {"preprocess": [], "network": [], "argmax": [], "total": []}
    for run in range(warmup + iters):
        rgb = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, generator=gen)
        start = time.perf_counter()
        x = preprocess(rgb)
        t1 = time.perf_counter()
        logits = network(x)
        t2 = time.perf_counter()
        labels = argmax(logits)
        t3 = time.perf_counter()
        del labels
        if run >= warmup:
            for key, value in zip(times, [t1 - start, t2 - t1, t3 - t2, t3 - start]):
                times[key].append(value * 1e3)
    total = stats(times["total"])
    return {
        "size": f"{h}x{w}",
        "total_ms": total,
        "stages_ms": {k: statistics.median(times[k]) for k in ("preprocess", "network", "argmax")},
        "fps": 1e3 / total["median"],
    }


def bench_inference(model, size, warmup, iters, gen):
    with torch.inference_mode():
        return time_pipeline(
            size, warmup, iters, gen,
            preprocess=lambda rgb: rgb.permute(2, 0, 1).unsqueeze(0).float().div_(255).sub_(MEAN).div_(STD)
            .contiguous(),
            network=model,
            argmax=lambda logits: logits.argmax(1).to(torch.uint8),
        )


def bench_onnxruntime(model, size, threads, warmup, iters, gen):
    """The same pipeline with the network run by ONNX Runtime (numpy pre- and post-processing)."""
    import os
    import tempfile

    import numpy as np
    import onnxruntime as ort

    h, w = size
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bisenet.onnx")
        torch.onnx.export(model, torch.zeros(1, 3, h, w), path, dynamo=False,
                          input_names=["x"], output_names=["logits"], opset_version=17)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    mean, std = MEAN.numpy(), STD.numpy()
    result = time_pipeline(
        size, warmup, iters, gen,
        preprocess=lambda rgb: np.ascontiguousarray(
            (rgb.numpy().transpose(2, 0, 1)[None].astype(np.float32) / 255 - mean) / std),
        network=lambda x: session.run(None, {"x": x})[0],
        argmax=lambda logits: logits.argmax(1).astype(np.uint8),
    )
    return {"backend": "onnxruntime", **result}


def build(arch, classes, backbone, aux_heads):
    """BiSeNet V1 on ``backbone`` or V2, with or without its training heads."""
    if arch == "v2":
        return BiSeNetV2(classes, aux_heads=aux_heads)
    return BiSeNetV1(classes, backbone, aux_heads=aux_heads)


def bench_train(arch, backbone, classes, batch, crop, warmup, iters, gen):
    h, w = crop
    model = build(arch, classes, backbone, aux_heads=True).train()
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    times = []
    for run in range(warmup + iters):
        x = torch.randn(batch, 3, h, w, generator=gen)
        y = torch.randint(0, classes, (batch, h, w), generator=gen)
        start = time.perf_counter()
        loss = sum(torch.nn.functional.cross_entropy(o, y) for o in model(x))
        optim.zero_grad()
        loss.backward()
        optim.step()
        if run >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return {"backend": "pytorch", "network": network_name(arch, backbone), "batch": batch, "crop": f"{h}x{w}", "step_ms": stats(times)}


def network_name(arch, backbone):
    """The name `bisenet bench` gives the network: V1's backbone, or `bisenet-v2`."""
    return "bisenet-v2" if arch == "v2" else backbone


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="v1", choices=["v1", "v2"])
    parser.add_argument("--backbone", default="resnet18", choices=["resnet18", "xception39"])
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--sizes", default="360x480,720x960,1024x2048", help="HxW list")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-batch", type=int, default=0)
    parser.add_argument("--train-crop", default="384x480")
    parser.add_argument("--onnxruntime", action="store_true",
                        help="also time the network exported to ONNX in ONNX Runtime")
    parser.add_argument("--json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # without it libtorch runs 3-8x slower at random here
    gen = torch.Generator().manual_seed(0)
    model = build(args.arch, args.classes, args.backbone, aux_heads=False).eval()
    name = network_name(args.arch, args.backbone)
    results = []
    for spec in args.sizes.split(","):
        result = {"backend": "pytorch", "network": name}
        result.update(bench_inference(model, parse_hw(spec), args.warmup, args.iters, gen))
        results.append(result)
        print(f"pytorch {name} {result['size']}: {result['total_ms']['median']:.1f} ms "
              f"(network {result['stages_ms']['network']:.1f})", flush=True)
    onnxruntime = []
    if args.onnxruntime:
        for spec in args.sizes.split(","):
            result = bench_onnxruntime(model, parse_hw(spec), args.threads, args.warmup, args.iters, gen)
            result["network"] = name
            onnxruntime.append(result)
            print(f"onnxruntime {name} {result['size']}: {result['total_ms']['median']:.1f} ms "
                  f"(network {result['stages_ms']['network']:.1f})", flush=True)
    train = []
    if args.train_batch:
        train.append(bench_train(args.arch, args.backbone, args.classes, args.train_batch,
                                 parse_hw(args.train_crop), args.warmup, args.iters, gen))
        print(f"pytorch training step: {train[0]['step_ms']['median']:.0f} ms", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "onnxruntime": onnxruntime, "train": train}, f, indent=2)


if __name__ == "__main__":
    main()
