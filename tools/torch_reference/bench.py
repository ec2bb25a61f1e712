"""Times BiSeNet in PyTorch, ONNX Runtime and OpenVINO the way `bisenet bench` times ours.

    python tools/torch_reference/bench.py --backbone resnet18 --sizes 360x480,1024x2048 --json out.json
        [--arch v2 | --weights models/bisenet-camvid.safetensors] [--onnxruntime] [--openvino]

Writes the same JSON. Every row times the stages of our pipeline on a fresh random frame each
run, 2 threads: uint8 RGB to a normalised float tensor, the network (logits at the input size),
argmax to uint8 labels. PyTorch runs eager, denormals flushed to zero, in inference mode.

`--onnxruntime` and `--openvino` (each needs its package) are the fair peers: the network
exported to ONNX per size (static shapes) with the argmax and the cast to uint8 inside the graph,
as deployed BiSeNet exports end, numpy only normalising the input. ONNX Runtime: CPU provider,
all graph optimisations (it fuses convolution, BatchNorm and ReLU); OpenVINO: CPU plugin,
latency hint, f32; both flush denormals to zero, as ours and PyTorch do. Each prints the share of pixels whose labels equal PyTorch's on one frame
(a check of the export); ONNX Runtime also prints a "network only" time, a graph ending at the
logits: the network alone, without argmax, not a pipeline.

`--weights` times a weights file's network (its architecture, classes and normalisation) instead
of a freshly initialised one: the time does not depend on the weights, the labels check does.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import torch

from bisenet import BiSeNetV1
from bisenetv2 import BiSeNetV2
from export_onnx import WithArgmax, export, load

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])  # mean, std


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


def torch_preprocess(norm):
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in norm)
    return lambda rgb: rgb.permute(2, 0, 1).unsqueeze(0).float().div_(255).sub_(mean).div_(std).contiguous()


def numpy_preprocess(norm):
    """uint8 HxWx3 to the normalised float32 1x3xHxW the exported graphs take, as numpy would."""
    import numpy as np

    mean, std = (np.array(v, np.float32) for v in norm)
    scale, offset = 1 / (255 * std), mean / std
    return lambda rgb: np.ascontiguousarray((rgb.numpy() * scale - offset).transpose(2, 0, 1)[None])


def bench_inference(model, size, warmup, iters, gen, norm):
    with torch.inference_mode():
        return time_pipeline(size, warmup, iters, gen, torch_preprocess(norm), network=model,
                             argmax=lambda logits: logits.argmax(1).to(torch.uint8))


def onnxruntime_session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"input": x})[0]


def openvino_session(path, threads):
    """f32 pinned: OpenVINO would otherwise run bf16 on CPUs that have it, a different network."""
    import openvino as ov

    compiled = ov.Core().compile_model(path, "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
        "CPU_DENORMALS_OPTIMIZATION": True})
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x}, share_inputs=True)[0]


SESSIONS = {"onnxruntime": onnxruntime_session, "openvino": openvino_session}


def bench_exported(model, size, backends, threads, warmup, iters, gen, norm):
    """Times each of `backends` on the network exported to ONNX for `size` with the argmax and the
    cast to uint8 in the graph (its `network` stage includes them); returns their JSON entries.
    Each records the share of pixels where its labels equal PyTorch's on one frame, and ONNX
    Runtime the network alone (a graph ending at the logits) as `network_only_ms`."""
    h, w = size
    with tempfile.TemporaryDirectory() as tmp:
        labels_graph, logits_graph = (os.path.join(tmp, f"{name}.onnx") for name in ("labels", "logits"))
        export(WithArgmax(model, torch.uint8).eval(), labels_graph, size, "labels")
        runs = {backend: SESSIONS[backend](labels_graph, threads) for backend in backends}
        if "onnxruntime" in backends:
            export(model, logits_graph, size, "logits")
            logits_run = onnxruntime_session(logits_graph, threads)
    preprocess = numpy_preprocess(norm)
    rgb = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, generator=gen)
    with torch.inference_mode():
        reference = model(torch_preprocess(norm)(rgb)).argmax(1).to(torch.uint8).numpy()
    results = {}
    for backend, run in runs.items():
        agreement = float((run(preprocess(rgb)) == reference).mean())
        result = time_pipeline(size, warmup, iters, gen, preprocess, run, argmax=lambda labels: labels)
        results[backend] = {"backend": backend, **result, "labels_equal_pytorch": agreement}
    if "onnxruntime" in backends:
        network_only = time_pipeline(size, warmup, iters, gen, preprocess, logits_run, lambda logits: logits)
        results["onnxruntime"]["network_only_ms"] = network_only["stages_ms"]["network"]
    return results


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
    parser.add_argument("--weights", help="time this weights file's network (ignores --arch, --backbone, --classes)")
    parser.add_argument("--sizes", default="360x480,720x960,1024x2048", help="HxW list")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-batch", type=int, default=0)
    parser.add_argument("--train-crop", default="384x480")
    parser.add_argument("--onnxruntime", action="store_true",
                        help="also time the ONNX export, argmax in the graph, in ONNX Runtime")
    parser.add_argument("--openvino", action="store_true",
                        help="also time the ONNX export, argmax in the graph, in OpenVINO")
    parser.add_argument("--json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # without it libtorch runs 3-8x slower at random here
    gen = torch.Generator().manual_seed(0)
    arch, backbone, classes, norm = args.arch, args.backbone, args.classes, IMAGENET
    if args.weights:
        model, info = load(args.weights)
        arch = "v2" if info["architecture"] == "bisenet-v2" else "v1"
        backbone, classes = info.get("backbone"), info["num_classes"]
        norm = (info["normalization"]["mean"], info["normalization"]["std"])
    else:
        model = build(arch, classes, backbone, aux_heads=False).eval()
    name = network_name(arch, backbone)
    sizes = [parse_hw(spec) for spec in args.sizes.split(",")]
    results = []
    for size in sizes:
        result = {"backend": "pytorch", "network": name}
        result.update(bench_inference(model, size, args.warmup, args.iters, gen, norm))
        results.append(result)
        print(f"pytorch {name} {result['size']}: {result['total_ms']['median']:.1f} ms "
              f"(network {result['stages_ms']['network']:.1f})", flush=True)
    peers = {backend: [] for backend in SESSIONS if getattr(args, backend)}
    for size in sizes if peers else []:  # export only where a peer runs it
        for backend, result in bench_exported(model, size, list(peers), args.threads, args.warmup,
                                              args.iters, gen, norm).items():
            peers[backend].append({**result, "network": name})
            print(f"{backend} {name} {result['size']}, argmax in the graph: {result['total_ms']['median']:.1f} ms "
                  f"(labels equal PyTorch's on {result['labels_equal_pytorch']:.2%} of pixels)", flush=True)
            if "network_only_ms" in result:
                print(f"{backend} {name} {result['size']}, network only (graph ends at the logits, no argmax, "
                      f"not a pipeline): {result['network_only_ms']:.1f} ms", flush=True)
    train = []
    if args.train_batch:
        train.append(bench_train(arch, backbone, classes, args.train_batch,
                                 parse_hw(args.train_crop), args.warmup, args.iters, gen))
        print(f"pytorch training step: {train[0]['step_ms']['median']:.0f} ms", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, **peers, "train": train}, f, indent=2)


if __name__ == "__main__":
    main()
