//! `train`: the head's optimisation, early stopping, calibration and augmentation.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// `train --adapt-from SOURCE_EXP`: refitting a source model's head with this
    /// experiment's labelled local images.
    pub adapt: Adapt,
}

/// Site adaptation (`train --adapt-from`): the head is refitted on the source experiment's
/// training features plus this experiment's local sample (every split but `test`), the
/// local images weighted; everything chosen is chosen by cross-fitting over the local
/// sample, so no local image is scored by a model that saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Adapt {
    /// Cross-fitting folds over the local sample, grouped by patient and stratified by class.
    pub folds: usize,
    /// Candidate weights of one local image relative to one source image (each group's
    /// classes weighted within the group as `train.class_weights` says); the candidate with
    /// the best cross-fitted ROC AUC on the local sample is used (ties: the smaller).
    pub local_weights: Vec<f64>,
    /// Local-sample sizes of the label-budget curve (refits on nested subsets of each
    /// fold's training part; sizes the part cannot reach are left out, the whole part is
    /// always a point). Empty: no curve.
    pub budget: Vec<usize>,
    /// Epochs of every refit; none: as many as the source run's exported epoch.
    pub epochs: Option<usize>,
}

impl Default for Adapt {
    fn default() -> Self {
        Self { folds: 5, local_weights: vec![1.0, 4.0, 16.0, 64.0], budget: vec![25, 50, 100, 200, 400], epochs: None }
    }
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
            adapt: Adapt::default(),
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
