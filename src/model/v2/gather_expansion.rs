//! The Gather-and-Expansion layer of the Semantic Branch: a 3x3 conv gathers, a 3x3 depthwise
//! conv expands the channels 6x, a 1x1 projects back; residual shortcut.

use burn::module::Param;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use crate::model::conv_bn_relu::{
    ConvBnRelu, batch_norm, conv, conv_bn, conv_bn_act, fold_batch_norm,
};

/// The expansion ratio of every GE layer.
pub const EXPANSION: usize = 6;

/// A convolution and its BatchNorm (`None` once folded), without activation.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: Option<BatchNorm>,
}

impl ConvBn {
    pub fn new(conv: Conv2d, channels: usize, device: &Device) -> Self {
        Self {
            conv,
            bn: Some(batch_norm(channels, device)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_bn(&self.conv, &self.bn, x)
    }

    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        conv_bn_act(&self.conv, &self.bn, x, None, true)
    }

    pub fn fold_batch_norm(&mut self) {
        fold_batch_norm(&mut self.conv, &mut self.bn);
    }
}

/// The strided layer's shortcut: 3x3 depthwise s2 + BN, then 1x1 + BN.
#[derive(Module, Debug)]
pub struct Shortcut {
    pub depthwise: ConvBn,
    pub pointwise: ConvBn,
}

/// GE layer, stride 1 (`dwconv`) or 2 (`dwconv1` strided, then `dwconv2`):
/// `[N, C_in, H, W]` -> `[N, C_out, H / stride, W / stride]`.
#[derive(Module, Debug)]
pub struct GatherExpansion {
    pub conv1: ConvBnRelu,
    /// Stride 1: the expanding depthwise conv, BN, ReLU.
    pub dwconv: Option<ConvBn>,
    /// Stride 2: the expanding depthwise conv with stride 2, BN (no ReLU).
    pub dwconv1: Option<ConvBn>,
    /// Stride 2: a depthwise conv on the expanded channels, BN, ReLU.
    pub dwconv2: Option<ConvBn>,
    /// 1x1 projection and BN; its scale starts at zero, so each layer starts as its shortcut.
    pub conv2: ConvBn,
    pub shortcut: Option<Shortcut>,
}

impl GatherExpansion {
    pub fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        let mid = input * EXPANSION;
        let depthwise = |from: usize, to: usize, stride: usize| {
            ConvBn::new(conv(from, to, 3, stride, from, device), to, device)
        };
        let mut conv2 = ConvBn::new(conv(mid, output, 1, 1, 1, device), output, device);
        if let Some(bn) = &mut conv2.bn {
            bn.gamma = Param::from_tensor(Tensor::zeros([output], device));
        }
        let strided = stride != 1;
        assert!(
            strided || input == output,
            "a stride-1 GE layer keeps its channels"
        );
        Self {
            conv1: ConvBnRelu::new(input, input, 3, 1, device),
            dwconv: (!strided).then(|| depthwise(input, mid, 1)),
            dwconv1: strided.then(|| depthwise(input, mid, stride)),
            dwconv2: strided.then(|| depthwise(mid, mid, 1)),
            conv2,
            shortcut: strided.then(|| Shortcut {
                depthwise: depthwise(input, input, stride),
                pointwise: ConvBn::new(conv(input, output, 1, 1, 1, device), output, device),
            }),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let feat = self.conv1.forward(x.clone());
        let feat = match (&self.dwconv, &self.dwconv1, &self.dwconv2) {
            (Some(dwconv), _, _) => dwconv.forward_relu(feat),
            (None, Some(dwconv1), Some(dwconv2)) => dwconv2.forward_relu(dwconv1.forward(feat)),
            _ => unreachable!("a GE layer has either dwconv or dwconv1 and dwconv2"),
        };
        let shortcut = match &self.shortcut {
            Some(shortcut) => shortcut.pointwise.forward(shortcut.depthwise.forward(x)),
            None => x,
        };
        conv_bn_act(&self.conv2.conv, &self.conv2.bn, feat, Some(shortcut), true)
    }

    pub fn fold_batch_norms(&mut self) {
        self.conv1.fold_batch_norm();
        for block in [&mut self.dwconv, &mut self.dwconv1, &mut self.dwconv2]
            .into_iter()
            .flatten()
        {
            block.fold_batch_norm();
        }
        self.conv2.fold_batch_norm();
        if let Some(shortcut) = &mut self.shortcut {
            shortcut.depthwise.fold_batch_norm();
            shortcut.pointwise.fold_batch_norm();
        }
    }
}
