"""Writes the PyTorch side of the import parity test.

    python tools/torch_reference/make_fixture.py --width 0.0625 --out tests/fixtures/torch_reference

creates, from fixed seeds:

* ``resnet18.pth``: a randomly initialised BiSeNetV1-ResNet18 state dict, auxiliary heads and
  ``num_batches_tracked`` included. BatchNorm affine parameters *and running statistics* are
  random, so the test really exercises BatchNorm;
* ``resnet18_wrapped.pth``: the same weights the way training scripts save them, under
  ``state_dict`` with DataParallel's ``module.`` prefix, beside an epoch and optimizer state;
* ``xception39.pth``: the same for the Xception39 backbone;
* ``broken.pth``: ``resnet18.pth`` with one tensor missing, one unexpected and one mis-shaped;
* ``parity.safetensors``: inputs and the logits PyTorch computes for them in eval mode,
  ``{backbone}.input.{H}x{W}`` ``[1, 3, H, W]`` and ``{backbone}.logits.{H}x{W}``
  ``[1, classes, H, W]``, at sizes that are and are not multiples of 32.
"""

import argparse
import json
import os

import torch
from safetensors.torch import save_file

from bisenet import BiSeNetV1

SIZES = {"resnet18": [(64, 64), (70, 90)], "xception39": [(70, 90)]}


def randomise(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            fan_out //= module.groups
            std = (2.0 / fan_out) ** 0.5
            module.weight.data = torch.randn(module.weight.shape, generator=gen) * std
            if module.bias is not None:
                module.bias.data = torch.randn(module.bias.shape, generator=gen) * 0.1
        elif isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.weight.data = torch.rand(n, generator=gen) + 0.5
            if name.endswith((".bn2", "residual.2.pointwise.bn")):
                # Damp each residual branch, as trained nets do, so that 16 stacked blocks keep
                # activations (and float rounding) at a scale where 1e-3 is a meaningful bound.
                module.weight.data *= 0.25
            module.bias.data = torch.randn(n, generator=gen) * 0.1
            module.running_mean = torch.randn(n, generator=gen) * 0.2
            module.running_var = torch.rand(n, generator=gen) * 1.5 + 0.5
            module.num_batches_tracked = torch.tensor(int(torch.randint(1, 10_000, (1,), generator=gen)))


def fixture_arguments(doc: str) -> argparse.Namespace:
    """The options every fixture script takes (``--width``, ``--classes``, ``--out``), with the
    output folder created and torch's generator seeded."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.0625)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    return args


def main() -> None:
    args = fixture_arguments(__doc__)

    tensors = {}
    for seed, backbone in enumerate(["resnet18", "xception39"]):
        model = BiSeNetV1(args.classes, backbone, args.width, aux_heads=True)
        randomise(model, seed)
        model.eval()
        state = model.state_dict()
        torch.save(state, os.path.join(args.out, f"{backbone}.pth"))
        if backbone == "resnet18":
            wrapped = {
                "epoch": 7,
                "state_dict": {f"module.{k}": v for k, v in state.items()},
                "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(4)}}, "lr": 0.01},
            }
            torch.save(wrapped, os.path.join(args.out, "resnet18_wrapped.pth"))
            broken = dict(state)
            del broken["ffm.bn.running_var"]
            broken["cp.extra.weight"] = torch.zeros(3)
            w = broken["sp.conv2.conv.weight"]
            broken["sp.conv2.conv.weight"] = torch.zeros(w.shape[0] + 1, *w.shape[1:])
            torch.save(broken, os.path.join(args.out, "broken.pth"))
        with torch.inference_mode():
            for h, w in SIZES[backbone]:
                x = torch.randn(1, 3, h, w)
                tensors[f"{backbone}.input.{h}x{w}"] = x.contiguous()
                tensors[f"{backbone}.logits.{h}x{w}"] = model(x).contiguous()

    metadata = {
        "width": str(args.width),
        "classes": str(args.classes),
        "torch": torch.__version__,
        "sizes": json.dumps(SIZES),
    }
    save_file(tensors, os.path.join(args.out, "parity.safetensors"), metadata=metadata)
    for name in sorted(os.listdir(args.out)):
        print(f"{name}: {os.path.getsize(os.path.join(args.out, name)) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
