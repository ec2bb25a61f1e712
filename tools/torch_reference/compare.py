"""Times `bisenet bench` and its peers on the same sizes and prints the ratios ours / peer.

The sides run one after the other; the ratio is the figure that matters, since absolute times
move on shared machines. The peers are PyTorch (eager) and, where their packages are installed,
ONNX Runtime and OpenVINO running the network as deployed exports do, with the argmax inside the
graph (bench.py says how each is measured). A line naming the CPU and whether it has AVX-512
heads the table, since the ratios depend on it.

On a shared machine the load drifts between runs; `--rounds N` alternates the sides N times
and prints, per size, the median time over the rounds and the median of the per-round ratios,
with the ratio of each round so that the spread shows. `--weights` times a weights file's
network on every side instead of a fresh one (then `--arch` and `--backbone` do not apply).

    python tools/torch_reference/compare.py [--arch v1|v2] [--backbone resnet18] [--weights FILE]
        [--sizes 360x480,1024x2048] [--iters 10] [--rounds 3] [--train-batch 4]
        [--bisenet target/release/bisenet] [--backend flex]
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}  # bench.py's flag: the column's name


def cpu():
    """The CPU's model name and whether it has AVX-512, which decide our kernels and theirs."""
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    avx512 = "yes" if "avx512f" in info.get("flags", "").split() else "no"
    return f"CPU: {info.get('model name', 'unknown')}, {os.cpu_count()} logical cores, avx512f: {avx512}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="v1", choices=["v1", "v2"])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--weights", help="time this weights file's network on every side")
    parser.add_argument("--backend", default="flex")
    parser.add_argument("--sizes", default="360x480,720x960,1024x2048")
    parser.add_argument("--iters", default="10")
    parser.add_argument("--warmup", default="2")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--train-batch", default="0")
    parser.add_argument("--train-crop", default="384x480")
    parser.add_argument("--bisenet", default=os.path.join(ROOT, "target/release/bisenet"))
    args = parser.parse_args()

    network = ["--weights", args.weights] if args.weights else ["--arch", args.arch, "--backbone", args.backbone]
    common = [*network, "--sizes", args.sizes, "--iters", args.iters, "--warmup", args.warmup,
              "--train-batch", args.train_batch, "--train-crop", args.train_crop]
    peers = [peer for peer in PEERS if importlib.util.find_spec(peer)]
    rounds = []  # (ours, reference) JSON per round
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            ours_json = os.path.join(tmp, f"ours{round_index}.json")
            torch_json = os.path.join(tmp, f"torch{round_index}.json")
            subprocess.run([args.bisenet, "bench", "--backend", args.backend, *common, "--json", ours_json],
                           check=True)
            subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), *common,
                            *(f"--{peer}" for peer in peers), "--json", torch_json], check=True)
            rounds.append(tuple(json.load(open(p)) for p in (ours_json, torch_json)))

    def cells(ours_ms, ref_ms):
        """Median times over the rounds, the median per-round ratio, and each round's ratio."""
        if len(ref_ms) != len(ours_ms):
            return "-", "-", "-"  # a peer that did not run
        ratios = [a / b for a, b in zip(ours_ms, ref_ms)]
        spread = f" ({', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
        return (f"{statistics.median(ours_ms):.1f}", f"{statistics.median(ref_ms):.1f}",
                f"{statistics.median(ratios):.2f}x{spread}")

    print()
    # Whole pipelines (RGB bytes in, labels out) are compared: the stages split differently
    # (ours makes labels from 1/8-resolution logits on the CPU, the peers in their graphs).
    name = rounds[0][0]["results"][0]["network"]
    if args.weights:
        name += f" ({os.path.basename(args.weights)})"
    print(cpu())
    print(f"| {name}, HxW | ours ({args.backend}) ms | PyTorch ms | ours / PyTorch"
          + "".join(f" | {PEERS[p]} ms (argmax in graph) | ours / {PEERS[p]}" for p in PEERS) + " |")
    print("|---" * (4 + 2 * len(PEERS)) + "|")
    sizes = [r["size"] for r in rounds[0][0]["results"]]
    for i, size in enumerate(sizes):
        ours_ms = [ours["results"][i]["total_ms"]["median"] for ours, _ in rounds]
        torch_ms = [ref["results"][i]["total_ms"]["median"] for _, ref in rounds]
        row = [size, *cells(ours_ms, torch_ms)]
        for peer in PEERS:
            peer_ms = [o["total_ms"]["median"] for _, ref in rounds for o in ref.get(peer, []) if o["size"] == size]
            row += cells(ours_ms, peer_ms)[1:]
        print("| " + " | ".join(row) + " |")
    for i, step in enumerate(rounds[0][0]["train"]):
        ours_ms = [ours["train"][i]["step_ms"]["median"] for ours, _ in rounds]
        torch_ms = [ref["train"][i]["step_ms"]["median"] for _, ref in rounds]
        row = [f"training step, batch {step['batch']}, {step['crop']}", *cells(ours_ms, torch_ms)]
        print("| " + " | ".join(row + ["-", "-"] * len(PEERS)) + " |")


if __name__ == "__main__":
    main()
