//! `data`: where the dataset is, how it is labelled and split, whose image each is.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How the dataset is found and labelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Data {
    /// Folder with `<split>/<CLASS>/*` or `<CLASS>/*` (folders and synthetic adapters),
    /// or the folder the CSV's paths are relative to (csv adapter).
    pub root: PathBuf,
    pub adapter: Adapter,
    /// Class names; the index in this list is the label id.
    pub classes: Vec<String>,
    /// The class whose recall is "sensitivity"; defaults to the last class.
    pub positive_class: Option<String>,
    /// Where the validation split comes from.
    pub val_source: ValSource,
    /// Fraction of the training split held out for validation when it is taken from train.
    pub val_fraction: f64,
    /// Share of the validation split (by patient) moved to an `estimate` split that nothing
    /// is chosen on: the epoch, the temperature and the threshold are chosen on `val`, and
    /// `estimate` measures the result honestly. 0 keeps one `val` split. Applied when `val`
    /// has at least [`Data::MIN_PER_CLASS_FOR_ESTIMATE`] images of every class.
    pub estimate_fraction: f64,
    /// Keep all images of one patient on the same side of the train/validation split.
    pub group_by_patient: bool,
    /// Where an image's patient comes from (see [`PatientId`]).
    pub patient: PatientId,
    /// A patient group holding more than this share of a split's images (and more than
    /// [`Data::MIN_IMAGES_FOR_SHARE_CHECK`] images) is an error: the grouping is wrong.
    pub max_patient_share: f64,
    /// What a byte-identical image in two splits, or under two labels, is: an error (a leak
    /// between training and evaluation, or a contradiction) or a warning.
    pub duplicates: Duplicates,
    /// A seeded, balanced subset of at most this many training images per class
    /// (validation and test are not limited).
    pub limit_per_class: Option<usize>,
    /// Folders adapter: classes read from file names inside a folder rather than from a
    /// folder per class (Kermany's `PNEUMONIA/*_bacteria_*` and `*_virus_*`).
    pub class_patterns: Vec<ClassPattern>,
    pub csv: CsvAdapter,
    pub synthetic: Synthetic,
}

/// Images in `<split>/<folder>/` whose file name matches `pattern` (a regular expression)
/// are of `class`; the first matching rule of their folder wins, and an image of a rule's
/// folder that matches none is a reject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassPattern {
    pub folder: String,
    pub pattern: String,
    pub class: String,
}

impl Default for Data {
    fn default() -> Self {
        Self {
            root: PathBuf::from("data/synthetic"),
            adapter: Adapter::Folders,
            classes: vec!["NORMAL".into(), "PNEUMONIA".into()],
            positive_class: None,
            val_source: ValSource::Auto,
            val_fraction: 0.15,
            estimate_fraction: 0.5,
            group_by_patient: true,
            patient: PatientId::Auto,
            max_patient_share: 0.05,
            duplicates: Duplicates::Error,
            limit_per_class: None,
            class_patterns: Vec::new(),
            csv: CsvAdapter::default(),
            synthetic: Synthetic::default(),
        }
    }
}

impl Data {
    /// Groups this small are never too big, whatever their share (tiny test datasets).
    pub const MIN_IMAGES_FOR_SHARE_CHECK: usize = 20;
    /// A validation split smaller than this per class is not divided into `val` and `estimate`.
    pub const MIN_PER_CLASS_FOR_ESTIMATE: usize = 20;

    /// Label id of the positive class (the one sensitivity is measured on).
    pub fn positive_index(&self) -> usize {
        self.positive_class
            .as_ref()
            .and_then(|p| self.classes.iter().position(|c| c == p))
            .unwrap_or(self.classes.len().saturating_sub(1))
    }
}

/// How the patient of an image is found, so that no patient is on both sides of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientId {
    /// `kermany` for the folders and synthetic adapters; `path` for a label file.
    Auto,
    /// Kermany file names: `person<ID>_*`, `IM-<ID>-*`, `NORMAL2-IM-<ID>-*`; other names are their own patient.
    Kermany,
    /// Every image is its own patient.
    Path,
    /// A column of the label file (`Patient ID` for NIH, `patientId` for RSNA, `subject_id` for MIMIC-CXR).
    Column(String),
    /// A regular expression over the path relative to `data.root`; its first capture group
    /// (or the whole match) is the patient (`patient\d+` for CheXpert).
    Pattern(String),
}

const PATIENT_EXPECTED: &str = "expected one of: auto, kermany, path, {column: NAME}, {pattern: REGEX}";

impl Serialize for PatientId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (key, value) = match self {
            PatientId::Auto => return s.serialize_str("auto"),
            PatientId::Kermany => return s.serialize_str("kermany"),
            PatientId::Path => return s.serialize_str("path"),
            PatientId::Column(c) => ("column", c),
            PatientId::Pattern(p) => ("pattern", p),
        };
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(key, value)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for PatientId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Map(std::collections::BTreeMap<String, String>),
        }
        let raw = Raw::deserialize(d).map_err(|_| serde::de::Error::custom(PATIENT_EXPECTED))?;
        let unknown = |what: String| serde::de::Error::custom(format!("unknown value {what}, {PATIENT_EXPECTED}"));
        match raw {
            Raw::Name(n) => match n.as_str() {
                "auto" => Ok(PatientId::Auto),
                "kermany" => Ok(PatientId::Kermany),
                "path" => Ok(PatientId::Path),
                _ => Err(unknown(format!("{n:?}"))),
            },
            Raw::Map(m) if m.len() == 1 => {
                let (k, v) = m.into_iter().next().expect("one entry");
                match k.as_str() {
                    "column" => Ok(PatientId::Column(v)),
                    "pattern" => Ok(PatientId::Pattern(v)),
                    _ => Err(unknown(format!("{{{k}: ...}}"))),
                }
            }
            Raw::Map(_) => Err(serde::de::Error::custom(PATIENT_EXPECTED)),
        }
    }
}

/// Dataset adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Adapter {
    /// `<root>/<split>/<CLASS>/*` or `<root>/<CLASS>/*`.
    Folders,
    /// A label file (RSNA, NIH ChestX-ray14, CheXpert style).
    Csv,
    /// Seeded synthetic chest-X-ray-like images generated into `root`, then read as folders.
    Synthetic,
}

/// Where the validation split comes from.
/// `data.duplicates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Duplicates {
    Error,
    Warn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValSource {
    /// The dataset's own `val` split when it has at least 50 images per class, else from train.
    Auto,
    /// Always the dataset's own `val` split.
    Dataset,
    /// Always a stratified, seeded split of train (the dataset's `val` is then ignored).
    FromTrain,
}

/// CSV label-file adapter settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvAdapter {
    /// The label file; relative paths are relative to `data.root`.
    pub file: PathBuf,
    /// Column holding the image path or id.
    pub path_column: String,
    /// Template turning the column value into a path below `data.root`; `{}` is the value.
    pub path_template: String,
    /// How the label is read from the row.
    pub label: CsvLabel,
    /// Optional column naming the split of each row (e.g. train/test).
    pub split_column: Option<String>,
    /// Rows are kept only when every filter's column holds one of its values
    /// (CheXpert `Frontal/Lateral: [Frontal]`, NIH `View Position: [PA, AP]`); the
    /// others are listed in `rejects.csv` with the reason.
    pub filters: Vec<CsvFilter>,
    /// Folders besides `data.root` that the label file's paths may point into. A path
    /// that resolves (links followed) outside all of them is rejected and never read.
    pub allowed_roots: Vec<PathBuf>,
}

/// Keep only rows whose `column` holds one of `keep`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvFilter {
    pub column: String,
    pub keep: Vec<String>,
}

impl Default for CsvAdapter {
    fn default() -> Self {
        Self {
            file: PathBuf::from("labels.csv"),
            path_column: "path".into(),
            path_template: "{}".into(),
            label: CsvLabel::default(),
            split_column: None,
            filters: Vec::new(),
            allowed_roots: Vec::new(),
        }
    }
}

/// How a CSV row becomes a class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvLabel {
    pub column: String,
    /// `equals`: the cell equals a key of `map`; `contains`: the cell, split on `separator`,
    /// contains a key of `map` (first match in `map` order wins, else `otherwise`).
    pub rule: CsvLabelRule,
    pub separator: String,
    /// Cell value -> class name, in priority order.
    pub map: Vec<(String, String)>,
    /// Class for rows no key matched; rows are skipped (and recorded) when unset.
    pub otherwise: Option<String>,
    /// Several rows for one path (RSNA: one per box): the label is the max label id.
    pub merge_duplicates: bool,
}

impl Default for CsvLabel {
    fn default() -> Self {
        Self {
            column: "label".into(),
            rule: CsvLabelRule::Equals,
            separator: "|".into(),
            map: Vec::new(),
            otherwise: None,
            merge_duplicates: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CsvLabelRule {
    Equals,
    Contains,
}

/// The synthetic dataset generator (the embedded default dataset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Synthetic {
    /// Images per class in each split.
    pub train_per_class: usize,
    pub val_per_class: usize,
    pub test_per_class: usize,
    /// Longest side of a generated image, in pixels (varied by +-20%).
    pub size: u32,
}

impl Default for Synthetic {
    fn default() -> Self {
        Self { train_per_class: 120, val_per_class: 40, test_per_class: 40, size: 1000 }
    }
}
