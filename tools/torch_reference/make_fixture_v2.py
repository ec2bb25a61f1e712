"""Writes the PyTorch side of the BiSeNet V2 parity test.

    python tools/torch_reference/make_fixture_v2.py --width 0.0625 --out tests/fixtures/torch_reference

creates, from fixed seeds:

* ``bisenetv2.pth``: a randomly initialised BiSeNetV2 state dict of the widely used
  implementation's layout, booster heads and ``num_batches_tracked`` included, wrapped the way
  training scripts save it (``{"state_dict": {"module.": ...}}``); BatchNorm affine parameters
  and running statistics are random, as in ``make_fixture.py``;
* ``bisenetv2_shuffle.pth``: a bare state dict of the implementation's current head layout
  (pixel-shuffle heads), without booster heads (at this layout they hold 23 M parameters at
  any width);
* ``parity_v2.safetensors``: inputs and the logits PyTorch computes for them in eval mode,
  ``{v2,v2s}.input.{H}x{W}`` and ``{v2,v2s}.logits.{H}x{W}`` (``v2s``: pixel-shuffle heads),
  at a multiple of 32 and at 360x480's proportions (90x120: 90 is not a multiple of 32, where
  the reference's own x4 upsampling fails; the logits here are those of its explicit-size
  form).
"""

import json
import os

import torch
from safetensors.torch import save_file

from bisenetv2 import BiSeNetV2
from make_fixture import fixture_arguments, randomise

SIZES = [(64, 96), (90, 120)]


def main() -> None:
    args = fixture_arguments(__doc__)

    model = BiSeNetV2(args.classes, args.width, aux_heads=True)
    randomise(model, 2)
    model.eval()
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}
    torch.save(wrapped, os.path.join(args.out, "bisenetv2.pth"))
    shuffle = BiSeNetV2(args.classes, args.width, aux_heads=False, pixel_shuffle=True)
    randomise(shuffle, 3)
    shuffle.eval()
    torch.save(shuffle.state_dict(), os.path.join(args.out, "bisenetv2_shuffle.pth"))
    tensors = {}
    with torch.inference_mode():
        for name, net in (("v2", model), ("v2s", shuffle)):
            for h, w in SIZES:
                x = torch.randn(1, 3, h, w)
                tensors[f"{name}.input.{h}x{w}"] = x.contiguous()
                tensors[f"{name}.logits.{h}x{w}"] = net(x).contiguous()
    metadata = {"width": str(args.width), "classes": str(args.classes), "torch": torch.__version__,
                "sizes": json.dumps(SIZES)}
    save_file(tensors, os.path.join(args.out, "parity_v2.safetensors"), metadata=metadata)
    for name in ("bisenetv2.pth", "bisenetv2_shuffle.pth", "parity_v2.safetensors"):
        print(f"{name}: {os.path.getsize(os.path.join(args.out, name)) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
