"""BiSeNet V1 in PyTorch, written from the paper to check the Rust implementation against.

The state-dict names are those of the widely used PyTorch BiSeNetV1 (`cp.resnet.layer1.0.conv1`,
`ffm.convblk.bn`, `conv_out16`, ...), which the Rust crate imports one to one. Two choices make
any input size well defined, and are shared with the Rust network:

* every resize targets an explicit size (the size of the feature it is added to, or the input
  size for the heads) instead of a scale factor, so odd sizes work: feature sizes are those of
  the strided convolutions, ceil(H / 2^k);
* bilinear resizes use ``align_corners=False``; the context path's upsampling is PyTorch's
  default ``nearest``.

At sizes that are multiples of 32 this computes exactly what the scale-factor formulation does.
``width`` scales every layer's channel count (rounded half away from zero, at least 1), so a
narrow network can serve as a small test fixture.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled(channels: int, width: float) -> int:
    """Channel count of a full-width layer at ``width`` (Rust's ``f64::round``, at least 1)."""
    return max(1, int(math.floor(channels * width + 0.5)))


class ConvBNReLU(nn.Module):
    def __init__(self, in_chan, out_chan, ks=3, stride=1, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(in_chan, out_chan, ks, stride, ks // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_chan)
        self.relu = relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class BasicBlock(nn.Module):
    def __init__(self, in_chan, out_chan, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chan, out_chan, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chan)
        self.conv2 = nn.Conv2d(out_chan, out_chan, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chan)
        self.downsample = None
        if in_chan != out_chan or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chan, out_chan, 1, stride, bias=False), nn.BatchNorm2d(out_chan)
            )

    def forward(self, x):
        residual = F.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(residual))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(residual + shortcut)


class ResNet18(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        c = lambda n: scaled(n, width)  # noqa: E731
        self.conv1 = nn.Conv2d(3, c(64), 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(c(64))
        self.maxpool = nn.MaxPool2d(3, 2, 1)

        def layer(cin, cout, stride):
            return nn.Sequential(BasicBlock(c(cin), c(cout), stride), BasicBlock(c(cout), c(cout)))

        self.layer1 = layer(64, 64, 1)
        self.layer2 = layer(64, 128, 2)
        self.layer3 = layer(128, 256, 2)
        self.layer4 = layer(256, 512, 2)
        self.channels = [c(128), c(256), c(512)]

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32


class SeparableConvBN(nn.Module):
    """Depthwise 3x3 (no BN) then a pointwise 1x1 ConvBN(ReLU)."""

    def __init__(self, in_chan, out_chan, stride=1, relu=True):
        super().__init__()
        self.depthwise = nn.Conv2d(in_chan, in_chan, 3, stride, 1, groups=in_chan, bias=False)
        self.pointwise = ConvBNReLU(in_chan, out_chan, 1, 1, relu=relu)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    expansion = 4

    def __init__(self, in_chan, mid_chan, stride):
        super().__init__()
        out_chan = mid_chan * self.expansion
        self.proj = SeparableConvBN(in_chan, out_chan, stride, relu=False) if stride > 1 else None
        self.residual = nn.Sequential(
            SeparableConvBN(in_chan, mid_chan, stride),
            SeparableConvBN(mid_chan, mid_chan),
            SeparableConvBN(mid_chan, out_chan, relu=False),
        )

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return F.relu(shortcut + self.residual(x))


class Xception39(nn.Module):
    """The paper's Xception39 (the authors' TorchSeg layer table: [4, 8, 4] blocks, mid 16/32/64)."""

    def __init__(self, width=1.0):
        super().__init__()
        stem = scaled(8, width)
        mids = [scaled(m, width) for m in (16, 32, 64)]
        self.conv1 = ConvBNReLU(3, stem, 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)

        def stage(cin, mid, blocks):
            out = mid * XceptionBlock.expansion
            return nn.Sequential(
                *[XceptionBlock(cin if i == 0 else out, mid, 2 if i == 0 else 1) for i in range(blocks)]
            )

        self.channels = [m * XceptionBlock.expansion for m in mids]
        self.layer1 = stage(stem, mids[0], 4)
        self.layer2 = stage(self.channels[0], mids[1], 8)
        self.layer3 = stage(self.channels[1], mids[2], 4)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        feat8 = self.layer1(x)
        feat16 = self.layer2(feat8)
        feat32 = self.layer3(feat16)
        return feat8, feat16, feat32


class AttentionRefinementModule(nn.Module):
    def __init__(self, in_chan, out_chan):
        super().__init__()
        self.conv = ConvBNReLU(in_chan, out_chan, 3)
        self.conv_atten = nn.Conv2d(out_chan, out_chan, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_chan)

    def forward(self, x):
        feat = self.conv(x)
        atten = torch.mean(feat, dim=(2, 3), keepdim=True)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(atten)))
        return feat * atten


class ContextPath(nn.Module):
    def __init__(self, backbone="resnet18", width=1.0):
        super().__init__()
        if backbone == "resnet18":
            self.resnet = ResNet18(width)
            net = self.resnet
        elif backbone == "xception39":
            self.xception = Xception39(width)
            net = self.xception
        else:
            raise ValueError(f"unknown backbone {backbone}")
        self.backbone = [net]  # a plain list: not registered twice in the state dict
        _, c16, c32 = net.channels
        c = scaled(128, width)
        self.arm16 = AttentionRefinementModule(c16, c)
        self.arm32 = AttentionRefinementModule(c32, c)
        self.conv_head32 = ConvBNReLU(c, c, 3)
        self.conv_head16 = ConvBNReLU(c, c, 3)
        self.conv_avg = ConvBNReLU(c32, c, 1)

    def forward(self, x):
        feat8, feat16, feat32 = self.backbone[0](x)
        size8, size16 = feat8.shape[2:], feat16.shape[2:]
        avg = self.conv_avg(torch.mean(feat32, dim=(2, 3), keepdim=True))
        feat32_sum = self.arm32(feat32) + avg
        feat32_up = self.conv_head32(F.interpolate(feat32_sum, size16, mode="nearest"))
        feat16_sum = self.arm16(feat16) + feat32_up
        feat16_up = self.conv_head16(F.interpolate(feat16_sum, size8, mode="nearest"))
        return feat16_up, feat32_up  # 1/8 and 1/16


class SpatialPath(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        c = scaled(64, width)
        self.conv1 = ConvBNReLU(3, c, 7, 2)
        self.conv2 = ConvBNReLU(c, c, 3, 2)
        self.conv3 = ConvBNReLU(c, c, 3, 2)
        self.conv_out = ConvBNReLU(c, scaled(128, width), 1, 1)

    def forward(self, x):
        return self.conv_out(self.conv3(self.conv2(self.conv1(x))))


class FeatureFusionModule(nn.Module):
    def __init__(self, in_chan, out_chan):
        super().__init__()
        self.convblk = ConvBNReLU(in_chan, out_chan, 1, 1)
        self.conv = nn.Conv2d(out_chan, out_chan, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_chan)

    def forward(self, fsp, fcp):
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        atten = torch.sigmoid(self.bn(self.conv(torch.mean(feat, dim=(2, 3), keepdim=True))))
        return feat * atten + feat


class BiSeNetOutput(nn.Module):
    def __init__(self, in_chan, mid_chan, n_classes):
        super().__init__()
        self.conv = ConvBNReLU(in_chan, mid_chan, 3)
        self.conv_out = nn.Conv2d(mid_chan, n_classes, 1, bias=True)

    def forward(self, x, size):
        return F.interpolate(self.conv_out(self.conv(x)), size, mode="bilinear", align_corners=False)


class BiSeNetV1(nn.Module):
    def __init__(self, n_classes, backbone="resnet18", width=1.0, aux_heads=True):
        super().__init__()
        self.cp = ContextPath(backbone, width)
        self.sp = SpatialPath(width)
        fused = scaled(128, width) + scaled(128, width)
        self.ffm = FeatureFusionModule(fused, fused)
        head = 256 if backbone == "resnet18" else 64
        self.conv_out = BiSeNetOutput(fused, scaled(head, width), n_classes)
        if aux_heads:
            self.conv_out16 = BiSeNetOutput(scaled(128, width), scaled(64, width), n_classes)
            self.conv_out32 = BiSeNetOutput(scaled(128, width), scaled(64, width), n_classes)
        self.aux_heads = aux_heads

    def forward(self, x):
        size = x.shape[2:]
        feat_cp8, feat_cp16 = self.cp(x)
        feat_sp = self.sp(x)
        feat_fuse = self.ffm(feat_sp, feat_cp8)
        out = self.conv_out(feat_fuse, size)
        if self.training and self.aux_heads:
            return out, self.conv_out16(feat_cp8, size), self.conv_out32(feat_cp16, size)
        return out
