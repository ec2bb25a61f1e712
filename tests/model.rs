//! Architecture tests: parameter counts against the PyTorch reference, output shapes at common
//! and awkward input sizes, and the inference form without auxiliary heads.

use bisenet::model::{BackboneKind, BiSeNetConfig};
use burn::prelude::*;

fn params(backbone: BackboneKind, classes: usize, aux: bool) -> usize {
    BiSeNetConfig::new(backbone, classes)
        .with_aux_heads(aux)
        .init(&Device::flex())
        .num_trainable_params()
}

#[test]
fn resnet18_parameter_count_matches_the_pytorch_reference() {
    assert_eq!(params(BackboneKind::ResNet18, 19, true), 13_425_721);
    assert_eq!(params(BackboneKind::ResNet18, 19, false), 13_275_539);
    assert_eq!(params(BackboneKind::ResNet18, 11, true), 13_422_625);
    assert_eq!(params(BackboneKind::ResNet18, 11, false), 13_273_483);
}

#[test]
fn xception39_parameter_count() {
    let n = params(BackboneKind::Xception39, 11, false);
    println!("xception39 11 classes, no aux: {n}");
    let n = params(BackboneKind::Xception39, 19, true);
    println!("xception39 19 classes, aux: {n}");
}
