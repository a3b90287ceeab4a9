//! `EXP/train/history.csv`: one row per epoch, written by `train` after every epoch.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// One epoch of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub val_auc: Option<f64>,
    pub val_sensitivity: Option<f64>,
    pub val_specificity: Option<f64>,
    pub lr: f64,
    pub seconds: f64,
    /// The epoch whose parameters were exported (best on the monitored validation figure).
    pub best: bool,
}

/// Columns of `history.csv`.
pub const COLUMNS: &[&str] = &[
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_auc",
    "val_sensitivity",
    "val_specificity",
    "lr",
    "seconds",
    "best",
];

pub fn write(path: &Path, rows: &[EpochRow]) -> Result<(), StoreError> {
    crate::csv_file::write_csv(path, COLUMNS, rows)
}

pub fn read(path: &Path) -> Result<Vec<EpochRow>, StoreError> {
    crate::layout::require(path, "train")?;
    crate::csv_file::read_csv(path)
}
