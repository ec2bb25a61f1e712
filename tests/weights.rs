//! The weights file: round trips, PyTorch state-dict names, and every kind of bad file.

use bisenet::classes::ClassSet;
use bisenet::model::v2::BiSeNetV2Config;
use bisenet::model::{BackboneKind, BiSeNetConfig, Network, NetworkConfig};
use bisenet::weights::{self, ModelInfo, Precision, WeightsError};
use burn::module::ModuleVisitor;
use burn::prelude::*;

fn model(backbone: BackboneKind, aux: bool) -> (Network, ModelInfo) {
    let config: NetworkConfig = BiSeNetConfig::new(backbone, 11).with_aux_heads(aux).into();
    let info = ModelInfo::new(&config, ClassSet::camvid());
    (config.init(&Device::flex()), info)
}

/// Every float tensor of a module (parameters and running statistics), in visit order.
struct Tensors(Vec<Vec<f32>>);

impl ModuleVisitor for Tensors {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        self.0.push(param.val().into_data().iter::<f32>().collect());
    }
}

fn tensors(model: &Network) -> Vec<Vec<f32>> {
    let mut visitor = Tensors(Vec::new());
    model.visit(&mut visitor);
    visitor.0
}

/// Gives the running statistics non-trivial values so the round trip checks them too.
fn perturbed(model: Network) -> Network {
    let device = Device::flex();
    let x = Tensor::<4>::random(
        [2, 3, 64, 96],
        burn::tensor::Distribution::Default,
        &device.clone().autodiff(),
    );
    let model = model.fork(&device.clone().autodiff());
    let _ = model.forward(x);
    model.fork(&device)
}

#[test]
fn f32_round_trip_is_exact() {
    for backbone in BackboneKind::ALL {
        let (model, info) = model(backbone, true);
        let model = perturbed(model);
        let bytes = weights::to_bytes(&model, &info, Precision::F32).unwrap();
        let loaded = weights::from_bytes(bytes, &Device::flex()).unwrap();
        assert_eq!(loaded.info.backbone, Some(backbone));
        assert!(loaded.model.has_aux_heads());
        assert_eq!(tensors(&model), tensors(&loaded.model), "{backbone}");
    }
}

#[test]
fn bisenet_v2_round_trips_and_says_so() {
    for pixel_shuffle in [false, true] {
        let config: NetworkConfig = BiSeNetV2Config::new(11)
            .with_width(0.25)
            .with_aux_heads(!pixel_shuffle) // pixel-shuffle boosters are 23 M parameters
            .with_pixel_shuffle_heads(pixel_shuffle)
            .into();
        let info = ModelInfo::new(&config, ClassSet::camvid());
        let model = perturbed(config.init(&Device::flex()));
        let bytes = weights::to_bytes(&model, &info, Precision::F32).unwrap();
        let loaded = weights::from_bytes(bytes, &Device::flex()).unwrap();
        assert_eq!(loaded.info.architecture, "bisenet-v2");
        assert_eq!(loaded.info.backbone, None);
        assert_eq!(loaded.info.pixel_shuffle_heads, pixel_shuffle);
        assert!(matches!(loaded.model, Network::V2(_)));
        assert_eq!(loaded.model.has_aux_heads(), !pixel_shuffle);
        assert_eq!(tensors(&model), tensors(&loaded.model));
    }
}

#[test]
fn f16_round_trip_is_within_half_precision() {
    let (model, info) = model(BackboneKind::ResNet18, false);
    let model = perturbed(model);
    let bytes16 = weights::to_bytes(&model, &info, Precision::F16).unwrap();
    let bytes32 = weights::to_bytes(&model, &info, Precision::F32).unwrap();
    assert!(
        bytes16.len() < bytes32.len() * 6 / 10,
        "{} vs {}",
        bytes16.len(),
        bytes32.len()
    );
    let loaded = weights::from_bytes(bytes16, &Device::flex()).unwrap();
    let (original, read) = (tensors(&model), tensors(&loaded.model));
    assert_eq!(original.len(), read.len());
    for (a, b) in original.iter().zip(read) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= x.abs() * 1e-3 + 1e-6, "{x} vs {y}");
        }
    }
}

#[test]
fn state_dict_names_follow_the_pytorch_reference() {
    let (model, info) = model(BackboneKind::ResNet18, true);
    let bytes = weights::to_bytes(&model, &info, Precision::F16).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<_> = file.names();
    for name in [
        "cp.resnet.conv1.weight",
        "cp.resnet.bn1.weight",
        "cp.resnet.bn1.running_var",
        "cp.resnet.layer1.0.conv1.weight",
        "cp.resnet.layer2.0.downsample.0.weight",
        "cp.resnet.layer2.0.downsample.1.bias",
        "cp.arm16.conv.conv.weight",
        "cp.arm32.conv_atten.weight",
        "cp.arm32.bn_atten.weight",
        "cp.conv_head32.conv.weight",
        "cp.conv_head16.bn.bias",
        "cp.conv_avg.conv.weight",
        "sp.conv1.conv.weight",
        "sp.conv_out.bn.running_mean",
        "ffm.convblk.conv.weight",
        "ffm.conv.weight",
        "ffm.bn.weight",
        "conv_out.conv.conv.weight",
        "conv_out.conv_out.weight",
        "conv_out.conv_out.bias",
        "conv_out16.conv_out.weight",
        "conv_out32.conv.bn.weight",
    ] {
        assert!(names.contains(&name), "{name} missing in {names:?}");
    }
    let conv = file.tensor("cp.resnet.conv1.weight").unwrap();
    assert_eq!(conv.dtype(), safetensors::Dtype::F16);
    assert_eq!(conv.shape(), &[64, 3, 7, 7]);
    let var = file.tensor("cp.resnet.bn1.running_var").unwrap();
    assert_eq!(var.dtype(), safetensors::Dtype::F32);
}

/// Re-serialises a weights file with its `bisenet` metadata edited.
fn with_metadata(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut map = metadata.metadata().clone().unwrap();
    let mut info: serde_json::Value = serde_json::from_str(&map["bisenet"]).unwrap();
    edit(&mut info);
    map.insert("bisenet".into(), info.to_string());
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    safetensors::serialize(file.tensors(), Some(map)).unwrap()
}

fn load_err(bytes: Vec<u8>) -> WeightsError {
    weights::from_bytes(bytes, &Device::flex()).expect_err("the file should be refused")
}

fn small_file() -> Vec<u8> {
    let (model, info) = model(BackboneKind::Xception39, false);
    weights::to_bytes(&model, &info, Precision::F16).unwrap()
}

#[test]
fn truncated_file_is_reported_as_truncated() {
    let bytes = small_file();
    for keep in [bytes.len() - 1, bytes.len() / 2, 100, 12] {
        let err = load_err(bytes[..keep].to_vec());
        assert!(
            matches!(err, WeightsError::Truncated { .. }),
            "{keep} bytes: {err}"
        );
        assert!(err.to_string().contains("truncated"));
    }
}

#[test]
fn garbage_is_not_a_weights_file() {
    for bytes in [
        Vec::new(),
        b"not a model at all, just text".to_vec(),
        vec![0xff; 4096],
    ] {
        let err = load_err(bytes);
        assert!(
            matches!(
                err,
                WeightsError::NotSafetensors(_) | WeightsError::Truncated { .. }
            ),
            "{err}"
        );
    }
    let png = std::iter::once(0x89u8)
        .chain(*b"PNG\r\n\x1a\n")
        .chain([0; 64])
        .collect();
    assert!(matches!(
        load_err(png),
        WeightsError::NotSafetensors(_) | WeightsError::Truncated { .. }
    ));
}

#[test]
fn safetensors_without_our_metadata_is_refused() {
    let bytes = small_file();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let plain = safetensors::serialize(file.tensors(), None).unwrap();
    assert!(matches!(load_err(plain), WeightsError::MissingMetadata));
}

#[test]
fn wrong_architecture_and_version_are_refused() {
    let bytes = small_file();
    let unknown = with_metadata(&bytes, |info| info["architecture"] = "bisenet-v3".into());
    let err = load_err(unknown);
    assert!(
        matches!(err, WeightsError::WrongArchitecture { .. }),
        "{err}"
    );
    // A V1 file whose metadata claims V2: the tensors do not fit, and the error says so.
    let relabelled = with_metadata(&bytes, |info| info["architecture"] = "bisenet-v2".into());
    let err = load_err(relabelled);
    assert!(matches!(err, WeightsError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("BiSeNet V2"), "{err}");
    let future = with_metadata(&bytes, |info| info["format_version"] = 99.into());
    assert!(matches!(
        load_err(future),
        WeightsError::UnsupportedVersion { found: 99 }
    ));
}

#[test]
fn tensors_that_do_not_fit_the_described_model_are_refused() {
    let bytes = small_file();
    // The metadata claims a ResNet18 but the tensors are an Xception39's.
    let err = load_err(with_metadata(&bytes, |info| {
        info["backbone"] = "resnet18".into()
    }));
    assert!(matches!(err, WeightsError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
    // The metadata claims 19 classes; the classifier has 11 rows.
    let err = load_err(with_metadata(&bytes, |info| {
        info["num_classes"] = 19.into();
        info["classes"] = serde_json::to_value(ClassSet::cityscapes()).unwrap();
    }));
    assert!(matches!(err, WeightsError::Mismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("conv_out.conv_out.weight"),
        "{err}"
    );
}

#[test]
fn class_metadata_that_8_bit_labels_cannot_hold_is_refused() {
    let bytes = small_file();
    // 300 classes: their ids would wrap around in the 8-bit label maps.
    let err = load_err(with_metadata(&bytes, |info| {
        let many = ClassSet::generic(255);
        let names: Vec<String> = (0..300).map(|i| format!("class {i}")).collect();
        let palette: Vec<[u8; 3]> = (0..300).map(|i| many.color((i % 255) as u8)).collect();
        info["num_classes"] = 300.into();
        info["classes"]["names"] = serde_json::to_value(names).unwrap();
        info["classes"]["palette"] = serde_json::to_value(palette).unwrap();
    }));
    assert!(matches!(err, WeightsError::BadMetadata(_)), "{err}");
    assert!(err.to_string().contains("at most 255"), "{err}");
    // A colour missing for a class.
    let err = load_err(with_metadata(&bytes, |info| {
        info["classes"]["palette"].as_array_mut().unwrap().pop();
    }));
    assert!(matches!(err, WeightsError::BadMetadata(_)), "{err}");
    assert!(err.to_string().contains("palette colours"), "{err}");
}

#[test]
fn class_count_is_checked_against_the_task() {
    let loaded = weights::from_bytes(small_file(), &Device::flex()).unwrap();
    assert!(loaded.expect_classes(11, "CamVid").is_ok());
    let err = loaded.expect_classes(19, "Cityscapes").unwrap_err();
    assert!(
        err.to_string().contains("19") && err.to_string().contains("11"),
        "{err}"
    );
}
