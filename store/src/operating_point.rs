//! `EXP/train/operating_point.json`: the validation threshold that reaches
//! `report.target_sensitivity`, which `infer.threshold: from-validation` uses.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    pub split: String,
    pub positive_class: String,
    pub target_sensitivity: f64,
    pub threshold: f64,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    /// The temperature the probabilities were calibrated with before choosing (1 = none).
    #[serde(default = "one")]
    pub temperature: f64,
    /// Images of the split it was chosen on.
    #[serde(default)]
    pub images: usize,
}

fn one() -> f64 {
    1.0
}

impl OperatingPoint {
    pub fn read(path: &Path) -> Result<OperatingPoint, StoreError> {
        crate::read_json(path, "train")
    }

    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        crate::write_json(path, self)
    }
}
