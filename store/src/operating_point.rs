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
}

impl OperatingPoint {
    pub fn read(path: &Path) -> Result<OperatingPoint, StoreError> {
        crate::layout::require(path, "train")?;
        let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| StoreError::Format { path: path.to_path_buf(), message: e.to_string() })
    }

    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        crate::write_atomic(path, serde_json::to_string_pretty(self).expect("serialisable").as_bytes())
    }
}
