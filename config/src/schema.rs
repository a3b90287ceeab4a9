//! The configuration schema: every section, key and default of every stage.
//!
//! Defaults live here and nowhere else. Every struct denies unknown keys so a
//! typo is an error that names the key, never a silently ignored setting.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The whole configuration shared by `preprocess`, `train`, `infer` and `report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub experiment: Experiment,
    pub data: Data,
    pub preprocess: Preprocess,
    pub model: Model,
    pub train: Train,
    pub infer: Infer,
    pub report: Report,
    pub runtime: Runtime,
}

/// Where an experiment lives: `EXP = <workdir>/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Experiment {
    pub name: String,
    pub workdir: PathBuf,
    /// Seeds every random choice: splits, sampling, init, shuffling, dropout.
    pub seed: u64,
}

impl Default for Experiment {
    fn default() -> Self {
        Self { name: "default".into(), workdir: PathBuf::from("runs"), seed: 42 }
    }
}

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

/// Decode + resize settings; the same transform runs in `infer` on raw files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preprocess {
    /// Output `[height, width]`.
    pub size: [u32; 2],
    /// Channel order of the stored tensors (the tutorial swapped BGR -> RGB).
    pub channel_order: ChannelOrder,
    pub resize_filter: ResizeFilter,
    /// Contrast normalisation of each image after resizing (exposure varies between machines).
    pub equalize: Equalize,
    pub on_error: OnError,
    /// Images with more pixels than this are rejected (decompression bombs).
    pub max_pixels: u64,
    /// Images with a side shorter than this are rejected.
    pub min_side: u32,
    /// Files larger than this many bytes are rejected before they are read.
    pub max_file_bytes: u64,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
}

impl Default for Preprocess {
    fn default() -> Self {
        Self {
            size: [224, 224],
            channel_order: ChannelOrder::Rgb,
            resize_filter: ResizeFilter::Area,
            equalize: Equalize::None,
            on_error: OnError::Skip,
            max_pixels: 100_000_000,
            min_side: 16,
            // 256 MiB: above any single chest radiograph (a 16-bit 4k x 4k DICOM is 32 MiB).
            max_file_bytes: 256 << 20,
            threads: 0,
        }
    }
}

impl Preprocess {
    /// Decoding threads: `threads`, or one per core when it is 0.
    pub fn worker_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeFilter {
    /// Box/area averaging: no aliasing when shrinking 1800 px to 50 px.
    Area,
    /// What cv2.resize does by default (the tutorial).
    Bilinear,
    Lanczos3,
    Nearest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Equalize {
    /// Pixels as decoded.
    None,
    /// Global histogram equalisation of the image's brightness.
    Histogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Record the bad file in `rejects.csv` and go on.
    Skip,
    /// Stop at the first bad file.
    Fail,
}

/// The network: backbone, its input normalisation, and the trained head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    /// `imagenet`, `random`, or a path to an ONNX backbone.
    pub backbone: Backbone,
    /// Input layout of a user-supplied backbone; `auto` reads it from the input shape.
    pub backbone_layout: Layout,
    pub normalization: Normalization,
    /// How the backbone's feature map becomes the head's input vector.
    pub pooling: Pooling,
    pub head: Head,
    /// Arithmetic of the frozen backbone: `fp32`, or `int8` (static post-training
    /// quantization calibrated on training images; `model.quantization`).
    pub precision: Precision,
    pub quantization: Quantization,
}

/// Arithmetic of the frozen backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    /// int8 weights (per output channel) and uint8 activations, ranges calibrated on a
    /// seeded sample of training images.
    Int8,
}

/// How `model.precision: int8` finds each activation's range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quantization {
    pub calibration: RangeCalibration,
    /// Training images the ranges are measured on (a seeded sample; all if fewer).
    pub images: usize,
    /// With `calibration: percentile`, the percentile of each activation's values kept
    /// (the rest saturate).
    pub percentile: f64,
}

impl Default for Quantization {
    fn default() -> Self {
        Self { calibration: RangeCalibration::Minmax, images: 64, percentile: 99.999 }
    }
}

/// Range of an activation for int8: its min and max, or a percentile of its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RangeCalibration {
    Minmax,
    Percentile,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            backbone: Backbone::Imagenet,
            backbone_layout: Layout::Auto,
            normalization: Normalization::Caffe,
            pooling: Pooling::Flatten,
            head: Head::default(),
            precision: Precision::Fp32,
            quantization: Quantization::default(),
        }
    }
}

/// Backbone source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backbone {
    Imagenet,
    Random,
    Path(PathBuf),
}

impl Serialize for Backbone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Backbone::Imagenet => s.serialize_str("imagenet"),
            Backbone::Random => s.serialize_str("random"),
            Backbone::Path(p) => s.serialize_str(&p.to_string_lossy()),
        }
    }
}

impl<'de> Deserialize<'de> for Backbone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "imagenet" => Backbone::Imagenet,
            "random" => Backbone::Random,
            _ if s.ends_with(".onnx") => Backbone::Path(PathBuf::from(s)),
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown value {s:?}, expected one of: imagenet, random, or a path ending in .onnx"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Auto,
    Nhwc,
    Nchw,
}

/// Input normalisation baked into the model graph (so train and infer cannot disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// What Keras VGG16 expects: BGR, ImageNet channel means subtracted, 0-255 scale.
    Caffe,
    /// RGB / 255, then ImageNet mean/std.
    Torch,
    /// Raw 0-255 RGB (the tutorial's mistake, kept to reproduce it).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Keras `Flatten()`: the head's input size grows with the image size.
    Flatten,
    /// Global average pooling: 512 features at any image size.
    Avg,
    /// Global max pooling.
    Max,
}

/// The trained head: Dense layers with ReLU and dropout, then Dense(classes) + softmax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Head {
    /// Hidden layer widths; `[]` is a logistic regression on the features.
    pub hidden: Vec<usize>,
    pub dropout: f64,
}

impl Default for Head {
    fn default() -> Self {
        Self { hidden: vec![256], dropout: 0.5 }
    }
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Train {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: Optimizer,
    pub class_weights: ClassWeights,
    pub early_stopping: EarlyStopping,
    /// Compute backbone features once and train the head on them.
    pub feature_cache: bool,
    pub augment: Augment,
    /// Batch size of the backbone forward pass when computing features.
    pub feature_batch_size: usize,
    /// How the exported probabilities are calibrated on the validation split.
    pub calibration: Calibration,
}

/// Probability calibration, fitted on `val` after training and built into `model.onnx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Calibration {
    /// Temperature scaling: one divisor of the head's logits, fitted by likelihood; it
    /// changes probabilities, never their order (the ROC curve stays).
    Temperature,
    /// The head's softmax as trained.
    None,
}

impl Default for Train {
    fn default() -> Self {
        Self {
            epochs: 16,
            batch_size: 100,
            optimizer: Optimizer::default(),
            class_weights: ClassWeights::None,
            early_stopping: EarlyStopping::default(),
            feature_cache: true,
            augment: Augment::default(),
            feature_batch_size: 32,
            calibration: Calibration::Temperature,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// SGD momentum (Keras form: v' = m*v - lr*g, w' = w + v').
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// L2 penalty added to the loss (0.5 * wd * |w|^2 on weight matrices).
    pub weight_decay: f64,
}

impl Default for Optimizer {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Sgd,
            lr: 1e-4,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

/// Per-class loss weights.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassWeights {
    None,
    /// n_samples / (n_classes * n_class), as scikit-learn and Keras guides compute it.
    Balanced,
    Explicit(Vec<f64>),
}

impl Serialize for ClassWeights {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ClassWeights::None => s.serialize_str("none"),
            ClassWeights::Balanced => s.serialize_str("balanced"),
            ClassWeights::Explicit(w) => w.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ClassWeights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            List(Vec<f64>),
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected one of: none, balanced, or a list of numbers"))?
        {
            Raw::Name(n) if n == "none" => Ok(ClassWeights::None),
            Raw::Name(n) if n == "balanced" => Ok(ClassWeights::Balanced),
            Raw::Name(n) => Err(serde::de::Error::custom(format!(
                "unknown value {n:?}, expected one of: none, balanced, or a list of numbers"
            ))),
            Raw::List(w) => Ok(ClassWeights::Explicit(w)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStopping {
    pub monitor: Monitor,
    /// Epochs without improvement before stopping; 0 disables early stopping.
    pub patience: usize,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self { monitor: Monitor::ValLoss, patience: 0 }
    }
}

/// The validation figure that picks the best epoch and drives early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    ValLoss,
    ValAccuracy,
    ValAuc,
    /// No selection: the last epoch is exported (as a plain Keras `fit` does).
    Last,
}

/// Training-time augmentation; when enabled the backbone runs every epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    pub enabled: bool,
    pub rotate_degrees: f64,
    pub shift_fraction: f64,
    pub brightness: f64,
}

impl Default for Augment {
    fn default() -> Self {
        Self { enabled: false, rotate_degrees: 5.0, shift_fraction: 0.05, brightness: 0.1 }
    }
}

/// Inference settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Infer {
    pub device: Device,
    pub batch_size: usize,
    pub threshold: Threshold,
    pub format: OutputFormat,
    /// Label-free adaptation of the probabilities to each cohort predicted on.
    pub adaptation: Adaptation,
}

impl Default for Infer {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            batch_size: 32,
            threshold: Threshold::Fixed(0.5),
            format: OutputFormat::Csv,
            adaptation: Adaptation::None,
        }
    }
}

/// How `infer` adapts a model to the cohort it predicts on, from that cohort's images
/// alone (never its labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Adaptation {
    /// The model's probabilities as they are.
    None,
    /// Re-estimate the cohort's prevalence from its unlabelled images (EM) and correct
    /// every probability to it; the threshold then applies to the corrected probabilities.
    Prior,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda,
    /// CUDA when it registers, else CPU; the provider that ran is logged.
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Csv,
    Jsonl,
}

/// Decision threshold on the positive class probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Fixed(f64),
    /// The operating point chosen on validation (`report.target_sensitivity`).
    FromValidation,
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Threshold::Fixed(t) => s.serialize_f64(*t),
            Threshold::FromValidation => s.serialize_str("from-validation"),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Name(String),
        }
        const EXPECTED: &str = "expected a number in [0, 1] or \"from-validation\"";
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(EXPECTED))? {
            Raw::Number(t) if (0.0..=1.0).contains(&t) => Ok(Threshold::Fixed(t)),
            Raw::Number(t) => Err(serde::de::Error::custom(format!("{t} is out of range, {EXPECTED}"))),
            Raw::Name(n) if n == "from-validation" => Ok(Threshold::FromValidation),
            Raw::Name(n) => Err(serde::de::Error::custom(format!("unknown value {n:?}, {EXPECTED}"))),
        }
    }
}

/// Report settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Report {
    /// Sensitivity the validation operating point must reach.
    pub target_sensitivity: f64,
    /// Bootstrap resamples for the AUC confidence interval.
    pub bootstrap: usize,
    /// Render PNG plots besides the SVG ones.
    pub png: bool,
    /// Cases per kind in each split's gallery (confident wrong and right calls, with
    /// thumbnails); 0 leaves the gallery out.
    pub gallery: usize,
    /// Draw each gallery thumbnail with the Grad-CAM heatmap of its call (the model runs
    /// on those images once more, on CPU).
    pub explain: bool,
}

impl Default for Report {
    fn default() -> Self {
        Self { target_sensitivity: 0.95, bootstrap: 1000, png: true, gallery: 4, explain: true }
    }
}

/// ONNX Runtime settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// Path to `libonnxruntime.so`; else `ORT_DYLIB_PATH`; else the project's `.ort/` folder.
    pub onnxruntime: Option<PathBuf>,
    /// Threads inside one operator; 0 = one per core.
    pub intra_threads: usize,
    /// Threads across independent operators; 0 = ONNX Runtime's default.
    pub inter_threads: usize,
}
