//! Class names, colours and the ignore id of a label set, with the CamVid and Cityscapes sets.

use serde::{Deserialize, Serialize};

/// The classes a model predicts: names, display colours and the label id that marks
/// unlabelled pixels (never predicted; excluded from losses and metrics).
///
/// Read from a file (a model's metadata) it passes the same checks as [`ClassSet::new`]: the
/// label maps downstream are 8-bit, so a set of more than 255 classes must not get through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedClassSet")]
pub struct ClassSet {
    pub names: Vec<String>,
    pub palette: Vec<[u8; 3]>,
    pub ignore_index: u8,
}

/// A class set as stored, before [`ClassSet::new`]'s checks.
#[derive(Deserialize)]
struct UncheckedClassSet {
    names: Vec<String>,
    palette: Vec<[u8; 3]>,
    ignore_index: u8,
}

impl TryFrom<UncheckedClassSet> for ClassSet {
    type Error = String;

    fn try_from(set: UncheckedClassSet) -> Result<Self, String> {
        Self::new(set.names, set.palette, set.ignore_index)
    }
}

impl ClassSet {
    /// Builds a class set, checking that every class has a colour.
    pub fn new(
        names: Vec<String>,
        palette: Vec<[u8; 3]>,
        ignore_index: u8,
    ) -> Result<Self, String> {
        if names.is_empty() {
            return Err("a class set needs at least one class".into());
        }
        if names.len() != palette.len() {
            return Err(format!(
                "{} class names but {} palette colours: give one colour per class",
                names.len(),
                palette.len()
            ));
        }
        if names.len() > 255 {
            return Err(format!(
                "{} classes do not fit 8-bit label maps (at most 255)",
                names.len()
            ));
        }
        Ok(Self {
            names,
            palette,
            ignore_index,
        })
    }

    /// Parses a `classes.json`:
    /// `{"names": ["road", ...], "palette": [[128, 64, 128], ...], "ignore_index": 255}`
    /// (`colors` is accepted for `palette`, `ignore` for `ignore_index`; the ignore id defaults
    /// to 255).
    pub fn from_json(json: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct File {
            names: Vec<String>,
            #[serde(alias = "colors", alias = "colours")]
            palette: Vec<[u8; 3]>,
            #[serde(default = "default_ignore", alias = "ignore")]
            ignore_index: u8,
        }
        fn default_ignore() -> u8 {
            255
        }
        let file: File = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let set = Self::new(file.names, file.palette, file.ignore_index)?;
        if (set.ignore_index as usize) < set.len() {
            return Err(format!(
                "ignore id {} is also a class id (0..{})",
                set.ignore_index,
                set.len()
            ));
        }
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Colour of a label id; the ignore id and unknown ids are black.
    pub fn color(&self, id: u8) -> [u8; 3] {
        self.palette.get(id as usize).copied().unwrap_or([0, 0, 0])
    }

    /// CamVid, SegNet release: 11 classes, 11 = void.
    pub fn camvid() -> Self {
        preset(
            &[
                ("Sky", [128, 128, 128]),
                ("Building", [128, 0, 0]),
                ("Pole", [192, 192, 128]),
                ("Road", [128, 64, 128]),
                ("Sidewalk", [60, 40, 222]),
                ("Tree", [128, 128, 0]),
                ("SignSymbol", [192, 128, 128]),
                ("Fence", [64, 64, 128]),
                ("Car", [64, 0, 128]),
                ("Pedestrian", [64, 64, 0]),
                ("Bicyclist", [0, 128, 192]),
            ],
            11,
        )
    }

    /// Cityscapes: the 19 official train ids and colours, 255 = ignore.
    pub fn cityscapes() -> Self {
        preset(
            &[
                ("road", [128, 64, 128]),
                ("sidewalk", [244, 35, 232]),
                ("building", [70, 70, 70]),
                ("wall", [102, 102, 156]),
                ("fence", [190, 153, 153]),
                ("pole", [153, 153, 153]),
                ("traffic light", [250, 170, 30]),
                ("traffic sign", [220, 220, 0]),
                ("vegetation", [107, 142, 35]),
                ("terrain", [152, 251, 152]),
                ("sky", [70, 130, 180]),
                ("person", [220, 20, 60]),
                ("rider", [255, 0, 0]),
                ("car", [0, 0, 142]),
                ("truck", [0, 0, 70]),
                ("bus", [0, 60, 100]),
                ("train", [0, 80, 100]),
                ("motorcycle", [0, 0, 230]),
                ("bicycle", [119, 11, 32]),
            ],
            255,
        )
    }

    /// A generic set of `n` classes named `class0..` with a distinct colour each, for models
    /// created without a dataset in mind.
    pub fn generic(n: usize) -> Self {
        let names = (0..n).map(|i| format!("class{i}")).collect();
        let palette = (0..n).map(generic_color).collect();
        Self {
            names,
            palette,
            ignore_index: 255,
        }
    }
}

fn preset(classes: &[(&str, [u8; 3])], ignore_index: u8) -> ClassSet {
    ClassSet {
        names: classes.iter().map(|(name, _)| name.to_string()).collect(),
        palette: classes.iter().map(|(_, color)| *color).collect(),
        ignore_index,
    }
}

/// The PASCAL VOC colour map: bit-interleaved, distinct for the first 256 ids.
fn generic_color(id: usize) -> [u8; 3] {
    let mut color = [0u8; 3];
    let mut id = id;
    for shift in (0..8).rev() {
        for (channel, value) in color.iter_mut().enumerate() {
            *value |= (((id >> channel) & 1) as u8) << shift;
        }
        id >>= 3;
    }
    color
}
