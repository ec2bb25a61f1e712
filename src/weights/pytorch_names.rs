//! How this crate's parameter paths map to the state-dict names of the widely used PyTorch
//! BiSeNet V1 and V2, side by side.
//!
//! V1 differs in two places only, and its weights files use the PyTorch names, so that a file
//! loads into the PyTorch network as is. V2 differs in many (snake-case fields, named fields
//! for `nn.Sequential` indices); its files keep this crate's paths and only `bisenet import`
//! maps the PyTorch names onto them.

use crate::model::{BackboneKind, NetworkConfig};

/// V1: state-dict name of the backbone inside the context path.
pub(crate) fn backbone_key(backbone: BackboneKind) -> &'static str {
    match backbone {
        BackboneKind::ResNet18 => "resnet",
        BackboneKind::Xception39 => "xception",
    }
}

/// V1: the names that differ between burn's module paths and the PyTorch state dict, as plain
/// `(burn, pytorch)` segments: the backbone field (`backbone` vs `resnet`/`xception`) and the
/// residual projection (`downsample.conv/bn` vs the `nn.Sequential` indices `downsample.0/1`).
/// V2 (no backbone) has none in its files.
fn v1_name_pairs(backbone: Option<BackboneKind>) -> Vec<(String, String)> {
    let Some(backbone) = backbone else {
        return Vec::new();
    };
    vec![
        (
            "cp.backbone.".to_owned(),
            format!("cp.{}.", backbone_key(backbone)),
        ),
        (".downsample.conv.".to_owned(), ".downsample.0.".to_owned()),
        (".downsample.bn.".to_owned(), ".downsample.1.".to_owned()),
    ]
}

/// V2: `(pattern, replacement)` regexes that turn the PyTorch implementation's tensor names
/// into this network's parameter paths, applied in order.
pub const V2_RENAMES: [(&str, &str); 18] = [
    (r"^detail\.S(\d)\.", "detail.s$1."),
    (r"^segment\.S1S2\.", "segment.s1s2."),
    (r"^segment\.S(\d(?:_\d)?)\.", "segment.s$1."),
    // Gather-and-Expansion layers: a (depthwise or 1x1) conv, then its BN.
    (r"\.(dwconv|dwconv1|dwconv2|conv2)\.0\.", ".$1.conv."),
    (r"\.(dwconv|dwconv1|dwconv2|conv2)\.1\.", ".$1.bn."),
    (r"\.shortcut\.0\.", ".shortcut.depthwise.conv."),
    (r"\.shortcut\.1\.", ".shortcut.depthwise.bn."),
    (r"\.shortcut\.2\.", ".shortcut.pointwise.conv."),
    (r"\.shortcut\.3\.", ".shortcut.pointwise.bn."),
    // Bilateral Guided Aggregation.
    (r"^bga\.(left1|right2)\.0\.", "bga.$1.depthwise.conv."),
    (r"^bga\.(left1|right2)\.1\.", "bga.$1.depthwise.bn."),
    (r"^bga\.(left1|right2)\.2\.", "bga.$1.pointwise."),
    (r"^bga\.(left2|right1|conv)\.0\.", "bga.$1.conv."),
    (r"^bga\.(left2|right1|conv)\.1\.", "bga.$1.bn."),
    // Heads, bilinear layout: the booster stage, then the classifier.
    (r"\.conv_out\.0\.1\.", ".booster."),
    (r"\.conv_out\.1\.", ".conv_out."),
    // Heads, pixel-shuffle layout: the booster stage, and the main head's classifier.
    (r"\.conv_out\.0\.(conv|bn)\.", ".booster.$1."),
    (r"^head\.conv_out\.0\.", "head.conv_out."),
];

/// The renames between burn's module paths and a weights file's tensor names, as
/// `(pattern, replacement)` regex pairs for burn-store, towards PyTorch's names when
/// `to_pytorch`, back otherwise. Empty for V2 (`backbone` is `None`).
pub(crate) fn file_renames(
    backbone: Option<BackboneKind>,
    to_pytorch: bool,
) -> Vec<(String, String)> {
    v1_name_pairs(backbone)
        .into_iter()
        .map(|(burn, torch)| {
            let (from, to) = if to_pytorch {
                (burn, torch)
            } else {
                (torch, burn)
            };
            let anchor = if from.starts_with("cp.") { "^" } else { "" };
            (format!("{anchor}{}", escape_regex(&from)), to)
        })
        .collect()
}

/// The renames that map a PyTorch checkpoint of `config`'s network onto its parameter paths.
pub fn checkpoint_renames(config: &NetworkConfig) -> Vec<(String, String)> {
    match config {
        NetworkConfig::V1(v1) => file_renames(Some(v1.backbone), false),
        NetworkConfig::V2(_) => V2_RENAMES
            .iter()
            .map(|(from, to)| (from.to_string(), to.to_string()))
            .collect(),
    }
}

/// A burn module path as a V1 weights file names it (V2 paths unchanged), for messages users
/// can match against their checkpoint.
pub(crate) fn pytorch_name(path: &str, backbone: Option<BackboneKind>) -> String {
    v1_name_pairs(backbone)
        .iter()
        .fold(path.to_owned(), |name, (burn, torch)| {
            name.replace(burn, torch)
        })
}

/// Escapes `text` for use as a literal inside a regex.
pub(crate) fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
