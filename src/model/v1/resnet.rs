use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::prelude::*;

use super::config::Width;
use crate::kernels;
use crate::model::conv_bn_relu::{batch_norm, conv, conv_bn, conv_bn_act, fold_batch_norm};
use crate::model::pooling::stem_max_pool;

/// 1x1 strided projection of a residual shortcut (`downsample.0` / `downsample.1` in PyTorch).
#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    pub bn: Option<BatchNorm>,
}

/// ResNet basic block: two 3x3 convs and an identity (or projected) shortcut. BatchNorms are
/// `None` once folded into their convolutions for inference.
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: Option<BatchNorm>,
    pub conv2: Conv2d,
    pub bn2: Option<BatchNorm>,
    pub downsample: Option<Downsample>,
}

impl BasicBlock {
    pub fn new(in_channels: usize, out_channels: usize, stride: usize, device: &Device) -> Self {
        let downsample = (in_channels != out_channels || stride != 1).then(|| Downsample {
            conv: conv(in_channels, out_channels, 1, stride, 1, device),
            bn: Some(batch_norm(out_channels, device)),
        });
        Self {
            conv1: conv(in_channels, out_channels, 3, stride, 1, device),
            bn1: Some(batch_norm(out_channels, device)),
            conv2: conv(out_channels, out_channels, 3, 1, 1, device),
            bn2: Some(batch_norm(out_channels, device)),
            downsample,
        }
    }

    /// `[N, C_in, H, W]` -> `[N, C_out, ceil(H/stride), ceil(W/stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.downsample {
            Some(down) => conv_bn(&down.conv, &down.bn, x.clone()),
            None => x.clone(),
        };
        let residual = conv_bn_act(&self.conv1, &self.bn1, x, None, true);
        conv_bn_act(&self.conv2, &self.bn2, residual, Some(shortcut), true)
    }

    /// Folds every BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(&mut self) {
        fold_batch_norm(&mut self.conv1, &mut self.bn1);
        fold_batch_norm(&mut self.conv2, &mut self.bn2);
        if let Some(down) = &mut self.downsample {
            fold_batch_norm(&mut down.conv, &mut down.bn);
        }
    }
}

/// ResNet18 without its classifier, returning the 1/8, 1/16 and 1/32 feature maps.
#[derive(Module, Debug)]
pub struct ResNet18 {
    pub conv1: Conv2d,
    pub bn1: Option<BatchNorm>,
    pub maxpool: MaxPool2d,
    pub layer1: Vec<BasicBlock>,
    pub layer2: Vec<BasicBlock>,
    pub layer3: Vec<BasicBlock>,
    pub layer4: Vec<BasicBlock>,
}

impl ResNet18 {
    /// Channels of the 1/8, 1/16 and 1/32 features: 128, 256 and 512 at full width.
    pub fn channels(width: Width) -> [usize; 3] {
        [128, 256, 512].map(|c| width.of(c))
    }

    pub fn new(width: Width, device: &Device) -> Self {
        let layer = |in_channels, out_channels, stride| {
            let (in_channels, out_channels) = (width.of(in_channels), width.of(out_channels));
            vec![
                BasicBlock::new(in_channels, out_channels, stride, device),
                BasicBlock::new(out_channels, out_channels, 1, device),
            ]
        };
        Self {
            conv1: conv(3, width.of(64), 7, 2, 1, device),
            bn1: Some(batch_norm(width.of(64), device)),
            maxpool: stem_max_pool(),
            layer1: layer(64, 64, 1),
            layer2: layer(64, 128, 2),
            layer3: layer(128, 256, 2),
            layer4: layer(256, 512, 2),
        }
    }

    /// `[N, 3, H, W]` -> `([N, 128, H/8, W/8], [N, 256, H/16, W/16], [N, 512, H/32, W/32])`
    /// (each size rounded up).
    pub fn forward(&self, x: Tensor<4>) -> [Tensor<4>; 3] {
        let x = conv_bn_act(&self.conv1, &self.bn1, x, None, true); // 1/2
        let x = kernels::max_pool2d(&self.maxpool, x); // 1/4
        let run = |x, blocks: &[BasicBlock]| blocks.iter().fold(x, |x, b| b.forward(x));
        let x = run(x, &self.layer1);
        let feat8 = run(x, &self.layer2);
        let feat16 = run(feat8.clone(), &self.layer3);
        let feat32 = run(feat16.clone(), &self.layer4);
        [feat8, feat16, feat32]
    }

    /// Folds every BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(&mut self) {
        fold_batch_norm(&mut self.conv1, &mut self.bn1);
        for layer in [
            &mut self.layer1,
            &mut self.layer2,
            &mut self.layer3,
            &mut self.layer4,
        ] {
            layer.iter_mut().for_each(BasicBlock::fold_batch_norms);
        }
    }
}
