"""BiSeNet V2 in PyTorch, written from the paper to check the Rust implementation against.

Yu et al., "BiSeNet V2: Bilateral Network with Guided Aggregation for Real-time Semantic
Segmentation", IJCV 2021. The state-dict names are those of the widely used PyTorch
implementation (`detail.S1.0.conv`, `segment.S5_4.0.dwconv1.0`, `bga.left1.0`, `head.conv_out.1`,
`aux5_4.conv_out.0.1.conv`, ...), whose checkpoints the Rust crate imports one to one.

As in `bisenet.py`, every resize targets an explicit size, so any input size works:

* the Bilateral Guided Aggregation's two x4 upsamplings (nearest, as the reference's
  ``nn.Upsample(scale_factor=4)``) target the detail feature's size;
* the heads' final bilinear upsampling (``align_corners=False``) targets the input size;
* the booster heads' first x2 nearest upsampling is exact at any size.

At sizes that are multiples of 32 this computes exactly what the scale-factor formulation does.
``width`` scales every channel count (the expansion ratio of 6 stays), so a narrow network can
serve as a small test fixture.
"""

import torch
import torch.nn.functional as F
from torch import nn

from bisenet import scaled


class ConvBNReLU(nn.Module):
    def __init__(self, in_chan, out_chan, ks=3, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(in_chan, out_chan, ks, stride, ks // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_chan)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def depthwise(in_chan, out_chan, stride=1):
    """3x3 depthwise convolution; ``out_chan`` a multiple of ``in_chan`` (the GE layers' 6x)."""
    return nn.Conv2d(in_chan, out_chan, 3, stride, 1, groups=in_chan, bias=False)


def pointwise(in_chan, out_chan):
    return nn.Conv2d(in_chan, out_chan, 1, 1, 0, bias=False)


class DetailBranch(nn.Module):
    def __init__(self, w=1.0):
        super().__init__()
        c64, c128 = scaled(64, w), scaled(128, w)
        self.S1 = nn.Sequential(ConvBNReLU(3, c64, 3, 2), ConvBNReLU(c64, c64))
        self.S2 = nn.Sequential(ConvBNReLU(c64, c64, 3, 2), ConvBNReLU(c64, c64), ConvBNReLU(c64, c64))
        self.S3 = nn.Sequential(ConvBNReLU(c64, c128, 3, 2), ConvBNReLU(c128, c128), ConvBNReLU(c128, c128))

    def forward(self, x):
        return self.S3(self.S2(self.S1(x)))


class StemBlock(nn.Module):
    def __init__(self, w=1.0):
        super().__init__()
        c8, c16 = scaled(8, w), scaled(16, w)
        self.conv = ConvBNReLU(3, c16, 3, 2)
        self.left = nn.Sequential(ConvBNReLU(c16, c8, 1), ConvBNReLU(c8, c16, 3, 2))
        self.right = nn.MaxPool2d(3, 2, 1)
        self.fuse = ConvBNReLU(2 * c16, c16)

    def forward(self, x):
        x = self.conv(x)
        return self.fuse(torch.cat([self.left(x), self.right(x)], dim=1))


class CEBlock(nn.Module):
    """Context Embedding: global average pooling, BN, 1x1 conv-BN-ReLU, broadcast add, 3x3."""

    def __init__(self, w=1.0):
        super().__init__()
        c = scaled(128, w)
        self.bn = nn.BatchNorm2d(c)
        self.conv_gap = ConvBNReLU(c, c, 1)
        self.conv_last = ConvBNReLU(c, c)

    def forward(self, x):
        gap = self.conv_gap(self.bn(torch.mean(x, dim=(2, 3), keepdim=True)))
        return self.conv_last(gap + x)


class GELayerS1(nn.Module):
    """Gather-and-Expansion, stride 1: 3x3, depthwise 6x expansion, 1x1 projection, residual."""

    def __init__(self, in_chan, out_chan, exp_ratio=6):
        super().__init__()
        mid = in_chan * exp_ratio
        self.conv1 = ConvBNReLU(in_chan, in_chan)
        self.dwconv = nn.Sequential(depthwise(in_chan, mid), nn.BatchNorm2d(mid), nn.ReLU())
        self.conv2 = nn.Sequential(pointwise(mid, out_chan), nn.BatchNorm2d(out_chan))

    def forward(self, x):
        return F.relu(self.conv2(self.dwconv(self.conv1(x))) + x)


class GELayerS2(nn.Module):
    """Gather-and-Expansion, stride 2: two depthwise convs and a depthwise + 1x1 shortcut."""

    def __init__(self, in_chan, out_chan, exp_ratio=6):
        super().__init__()
        mid = in_chan * exp_ratio
        self.conv1 = ConvBNReLU(in_chan, in_chan)
        self.dwconv1 = nn.Sequential(depthwise(in_chan, mid, 2), nn.BatchNorm2d(mid))
        self.dwconv2 = nn.Sequential(depthwise(mid, mid), nn.BatchNorm2d(mid), nn.ReLU())
        self.conv2 = nn.Sequential(pointwise(mid, out_chan), nn.BatchNorm2d(out_chan))
        self.shortcut = nn.Sequential(
            depthwise(in_chan, in_chan, 2),
            nn.BatchNorm2d(in_chan),
            pointwise(in_chan, out_chan),
            nn.BatchNorm2d(out_chan),
        )

    def forward(self, x):
        feat = self.conv2(self.dwconv2(self.dwconv1(self.conv1(x))))
        return F.relu(feat + self.shortcut(x))


class SegmentBranch(nn.Module):
    def __init__(self, w=1.0):
        super().__init__()
        c16, c32, c64, c128 = (scaled(c, w) for c in (16, 32, 64, 128))
        self.S1S2 = StemBlock(w)
        self.S3 = nn.Sequential(GELayerS2(c16, c32), GELayerS1(c32, c32))
        self.S4 = nn.Sequential(GELayerS2(c32, c64), GELayerS1(c64, c64))
        self.S5_4 = nn.Sequential(
            GELayerS2(c64, c128), GELayerS1(c128, c128), GELayerS1(c128, c128), GELayerS1(c128, c128)
        )
        self.S5_5 = CEBlock(w)

    def forward(self, x):
        feat2 = self.S1S2(x)
        feat3 = self.S3(feat2)
        feat4 = self.S4(feat3)
        feat5_4 = self.S5_4(feat4)
        return feat2, feat3, feat4, feat5_4, self.S5_5(feat5_4)


class BGALayer(nn.Module):
    """Bilateral Guided Aggregation of the detail (1/8) and semantic (1/32) features."""

    def __init__(self, w=1.0):
        super().__init__()
        c = scaled(128, w)
        self.left1 = nn.Sequential(depthwise(c, c), nn.BatchNorm2d(c), pointwise(c, c))
        self.left2 = nn.Sequential(
            nn.Conv2d(c, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.AvgPool2d(3, 2, 1)
        )
        self.right1 = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        self.right2 = nn.Sequential(depthwise(c, c), nn.BatchNorm2d(c), pointwise(c, c))
        self.conv = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())

    def forward(self, detail, semantic):
        size = detail.shape[2:]
        right1 = F.interpolate(self.right1(semantic), size, mode="nearest")
        left = self.left1(detail) * torch.sigmoid(right1)
        right = self.left2(detail) * torch.sigmoid(self.right2(semantic))
        return self.conv(left + F.interpolate(right, size, mode="nearest"))


class SegmentHead(nn.Module):
    """3x3 conv-BN-ReLU, dropout, then one of the implementation's two head layouts:

    * ``pixel_shuffle=False`` (the layout of the issue's parameter counts): booster heads add a
      x2 nearest upsampling and a 3x3 ConvBNReLU to ``up_factor^2`` channels; a 1x1 classifier
      with bias; a bilinear resize to the input size. Names ``conv_out.0.1``, ``conv_out.1``.
    * ``pixel_shuffle=True`` (its current layout): booster heads add a 3x3 ConvBNReLU to
      ``up_factor^2`` channels; a 1x1 conv to ``classes * up_factor^2`` channels with bias; a
      ``PixelShuffle(up_factor)``; then, where the input size is not a multiple of the factor,
      a bilinear resize to it. Names ``conv_out.0`` (booster: ``conv_out.0.conv/bn`` and
      ``conv_out.1``).
    """

    def __init__(self, in_chan, mid_chan, n_classes, up_factor=8, aux=True, pixel_shuffle=False):
        super().__init__()
        self.conv = ConvBNReLU(in_chan, mid_chan)
        self.drop = nn.Dropout(0.1)
        mid2 = up_factor * up_factor if aux else mid_chan
        self.pixel_shuffle = pixel_shuffle
        if pixel_shuffle:
            out = n_classes * up_factor * up_factor
            layers = [ConvBNReLU(mid_chan, mid2)] if aux else []
            self.conv_out = nn.Sequential(*layers, nn.Conv2d(mid2, out, 1, bias=True), nn.PixelShuffle(up_factor))
        else:
            self.conv_out = nn.Sequential(
                nn.Sequential(nn.Upsample(scale_factor=2), ConvBNReLU(mid_chan, mid2)) if aux else nn.Identity(),
                nn.Conv2d(mid2, n_classes, 1, bias=True),
            )

    def forward(self, x, size):
        logits = self.conv_out(self.drop(self.conv(x)))
        if tuple(logits.shape[2:]) == tuple(size):
            return logits
        return F.interpolate(logits, size, mode="bilinear", align_corners=False)


class BiSeNetV2(nn.Module):
    def __init__(self, n_classes, width=1.0, aux_heads=True, pixel_shuffle=False):
        super().__init__()
        w, ps = width, pixel_shuffle
        self.detail = DetailBranch(w)
        self.segment = SegmentBranch(w)
        self.bga = BGALayer(w)
        self.head = SegmentHead(scaled(128, w), scaled(1024, w), n_classes, 8, aux=False, pixel_shuffle=ps)
        if aux_heads:
            # The booster heads' expanded widths (up_factor^2) do not scale with `width`.
            self.aux2 = SegmentHead(scaled(16, w), scaled(128, w), n_classes, 4, pixel_shuffle=ps)
            self.aux3 = SegmentHead(scaled(32, w), scaled(128, w), n_classes, 8, pixel_shuffle=ps)
            self.aux4 = SegmentHead(scaled(64, w), scaled(128, w), n_classes, 16, pixel_shuffle=ps)
            self.aux5_4 = SegmentHead(scaled(128, w), scaled(128, w), n_classes, 32, pixel_shuffle=ps)
        self.aux_heads = aux_heads
        for module in self.modules():
            if isinstance(module, GELayerS1 | GELayerS2):
                nn.init.zeros_(module.conv2[1].weight)  # each GE layer starts as its shortcut

    def forward(self, x):
        size = x.shape[2:]
        feat2, feat3, feat4, feat5_4, semantic = self.segment(x)
        logits = self.head(self.bga(self.detail(x), semantic), size)
        if self.training and self.aux_heads:
            boosters = (self.aux2(feat2, size), self.aux3(feat3, size), self.aux4(feat4, size),
                        self.aux5_4(feat5_4, size))
            return (logits, *boosters)
        return logits


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    for ps in (False, True):
        for aux in (False, True):
            count = trainable_params(BiSeNetV2(19, aux_heads=aux, pixel_shuffle=ps))
            print(f"19 classes, pixel-shuffle heads {ps}, booster heads {aux}: {count:,}")
