"""Exports a weights file of this project (BiSeNet V1 or V2) to ONNX, through the parity-tested
PyTorch port in this folder, for ONNX Runtime, TensorRT, OpenVINO or ncnn (burn has no ONNX
export of its own).

    python tools/torch_reference/export_onnx.py models/bisenet-camvid.safetensors -o bisenet.onnx \
        [--size 360x480] [--argmax]

The graph takes a normalised float image `input` [1, 3, H, W] (RGB / 255, minus the file's mean,
over its std; both are written into the ONNX metadata as `mean` and `std`) and returns `logits`
[1, classes, H, W], or with `--argmax` the class ids `labels` [1, H, W] (int64). The size is
fixed at export (`--size HxW`, default 360x480): every resize in the network targets the size
of a feature, so one graph serves one input size.
"""

import argparse
import json
import re

import torch

from bisenet import BiSeNetV1
from bisenetv2 import BiSeNetV2

# This crate's BiSeNet V2 parameter paths -> the PyTorch implementation's names: the inverse of
# `V2_RENAMES` in src/weights/pytorch_names.rs, applied in order.
V2_TO_PYTORCH = [
    (r"^detail\.s(\d)\.", r"detail.S\1."),
    (r"^segment\.s1s2\.", "segment.S1S2."),
    (r"^segment\.s(\d(?:_\d)?)\.", r"segment.S\1."),
    (r"\.(dwconv|dwconv1|dwconv2|conv2)\.conv\.", r".\1.0."),
    (r"\.(dwconv|dwconv1|dwconv2|conv2)\.bn\.", r".\1.1."),
    (r"\.shortcut\.depthwise\.conv\.", ".shortcut.0."),
    (r"\.shortcut\.depthwise\.bn\.", ".shortcut.1."),
    (r"\.shortcut\.pointwise\.conv\.", ".shortcut.2."),
    (r"\.shortcut\.pointwise\.bn\.", ".shortcut.3."),
    (r"^bga\.(left1|right2)\.depthwise\.conv\.", r"bga.\1.0."),
    (r"^bga\.(left1|right2)\.depthwise\.bn\.", r"bga.\1.1."),
    (r"^bga\.(left1|right2)\.pointwise\.", r"bga.\1.2."),
    (r"^bga\.(left2|right1|conv)\.conv\.", r"bga.\1.0."),
    (r"^bga\.(left2|right1|conv)\.bn\.", r"bga.\1.1."),
]
# The heads, per layout (see `SegmentHead` in bisenetv2.py).
HEADS_TO_PYTORCH = {
    False: [(r"\.booster\.", ".conv_out.0.1."), (r"\.conv_out\.(weight|bias)$", r".conv_out.1.\1")],
    True: [(r"\.booster\.", ".conv_out.0."), (r"^head\.conv_out\.(weight|bias)$", r"head.conv_out.0.\1"),
           (r"\.conv_out\.(weight|bias)$", r".conv_out.1.\1")],
}


def load(path):
    """The PyTorch network a weights file describes, with its weights, and the file's metadata."""
    from safetensors import safe_open  # here, so that importing WithArgmax needs torch only

    with safe_open(path, framework="pt") as f:
        info = json.loads(f.metadata()["bisenet"])
        tensors = {name: f.get_tensor(name).float() for name in f.keys()}
    width, classes, aux = info.get("width", 1.0), info["num_classes"], info["aux_heads"]
    if info["architecture"] == "bisenet-v2":
        shuffle = info.get("pixel_shuffle_heads", False)
        model = BiSeNetV2(classes, width, aux_heads=aux, pixel_shuffle=shuffle)
        renamed = {}
        for name, tensor in tensors.items():
            for pattern, replacement in V2_TO_PYTORCH + HEADS_TO_PYTORCH[shuffle]:
                name = re.sub(pattern, replacement, name)
            renamed[name] = tensor
        tensors = renamed
    elif info["architecture"] == "bisenet-v1":
        model = BiSeNetV1(classes, info["backbone"], width, aux_heads=aux)
    else:
        raise SystemExit(f"{path}: unknown architecture {info['architecture']!r}")
    result = model.load_state_dict(tensors, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise SystemExit(f"{path}: missing {missing[:4]}, unexpected {result.unexpected_keys[:4]}")
    return model.eval(), info


class WithArgmax(torch.nn.Module):
    """The network with the class ids as its output, as deployed graphs end; `dtype` casts them
    inside the graph (uint8 labels: what a pipeline hands on, and 8x less to write than int64)."""

    def __init__(self, model, dtype=None):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x):
        labels = self.model(x).argmax(dim=1)
        return labels if self.dtype is None else labels.to(self.dtype)


def export(graph, path, size, output):
    """Writes `graph` as ONNX for a `size = (h, w)` input named `input` (static shapes: every
    resize in the network targets the size of a feature) with one output named `output`."""
    h, w = size
    torch.onnx.export(graph, torch.zeros(1, 3, h, w), path, dynamo=False,
                      input_names=["input"], output_names=[output], opset_version=17)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--size", default="360x480", help="HxW of the input")
    parser.add_argument("--argmax", action="store_true", help="output class ids, not logits")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))

    model, info = load(args.weights)
    graph = WithArgmax(model) if args.argmax else model
    output = "labels" if args.argmax else "logits"
    export(graph, args.output, (h, w), output)

    import onnx  # only needed here, to record the preprocessing beside the graph

    exported = onnx.load(args.output)
    norm = info["normalization"]
    for key, value in (("mean", norm["mean"]), ("std", norm["std"]), ("classes", info["classes"]["names"])):
        entry = exported.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(exported, args.output)
    print(f"wrote {args.output}: {info['architecture']}, {info['num_classes']} classes, input 1x3x{h}x{w}, "
          f"output {output}")


if __name__ == "__main__":
    main()
