//! What `train --adapt-from` measured on the local sample, for `infer` and `report`:
//! `EXP/train/adaptation.json` (the source model, the local sample, what was chosen and
//! how), `EXP/train/budget.csv` (the label-budget curve) and the cross-fitted predictions
//! (`EXP/train/crossfit.csv` for the adapted model, `crossfit_source.csv` for the source
//! model on the same images), in the predictions format of [`crate::predictions`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// `EXP/train/adaptation.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adaptation {
    /// The source experiment folder as given to `--adapt-from`.
    pub source_experiment: String,
    /// Its `train/model.onnx`, and that file's SHA-256 when it was adapted.
    pub source_model: String,
    pub source_model_sha256: String,
    /// The splits of this experiment that make the local sample (every one but `test`).
    pub local_splits: Vec<String>,
    pub local_images: usize,
    pub local_patients: usize,
    /// The source experiment's training images the head was refitted with besides.
    pub source_images: usize,
    pub folds: usize,
    /// Epochs of every refit, and where that number came from.
    pub epochs: usize,
    pub epochs_from: String,
    /// Each candidate weight of a local image with its cross-fitted figures on the local sample.
    pub candidates: Vec<WeightCandidate>,
    /// The weight the exported model was refitted with.
    pub local_weight: f64,
    pub temperature: f64,
    /// The decision threshold (two classes) and how it was chosen.
    pub threshold: Option<f64>,
    pub threshold_chosen_on: String,
    /// The source model's own temperature and threshold (its metadata).
    pub source_temperature: f64,
    pub source_threshold: Option<f64>,
    /// The refits behind the cross-fitted estimate and the budget curve.
    pub refits: usize,
    pub seconds: f64,
}

/// One candidate weight of a local image, judged by cross-fitting on the whole local sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightCandidate {
    pub weight: f64,
    /// ROC AUC (macro one-vs-rest with 3+ classes) of the out-of-fold probabilities.
    pub auc: Option<f64>,
    pub log_loss: Option<f64>,
}

impl Adaptation {
    pub fn read(path: &Path) -> Result<Adaptation, StoreError> {
        crate::read_json(path, "train --adapt-from")
    }

    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        crate::write_json(path, self)
    }
}

/// One point of the label-budget curve: a model's cross-fitted figures on the local sample
/// after refitting with `local_images` local labels (0: the source model unchanged).
/// Intervals are 95% bootstrap intervals resampling patients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetRow {
    /// Local images each fold's refit used (mean over folds: whole patients are taken).
    pub local_images: f64,
    /// Images scored (each by a model that did not see it).
    pub n: usize,
    pub accuracy: Option<f64>,
    pub accuracy_lo: Option<f64>,
    pub accuracy_hi: Option<f64>,
    pub sensitivity: Option<f64>,
    pub sensitivity_lo: Option<f64>,
    pub sensitivity_hi: Option<f64>,
    pub specificity: Option<f64>,
    pub specificity_lo: Option<f64>,
    pub specificity_hi: Option<f64>,
    pub auc: Option<f64>,
    pub auc_lo: Option<f64>,
    pub auc_hi: Option<f64>,
}

/// Columns of `budget.csv`.
pub const BUDGET_COLUMNS: &[&str] = &[
    "local_images",
    "n",
    "accuracy",
    "accuracy_lo",
    "accuracy_hi",
    "sensitivity",
    "sensitivity_lo",
    "sensitivity_hi",
    "specificity",
    "specificity_lo",
    "specificity_hi",
    "auc",
    "auc_lo",
    "auc_hi",
];

/// When the adapted model's cross-fitted accuracy on the local sample (the curve's last point)
/// is below the unchanged source model's (its first): what to tell the user.
pub fn worse_than_source(budget: &[BudgetRow]) -> Option<String> {
    let (source, adapted) = (budget.first()?, budget.last()?);
    let (s, a) = (source.accuracy?, adapted.accuracy?);
    (budget.len() > 1 && a < s).then(|| {
        format!(
            "on the local sample the adapted model's cross-fitted accuracy ({a:.3}) is below the unadapted source model's ({s:.3}): with {:.0} local images per refit its threshold is not reliable yet; label more images (see the label-budget curve) or keep using the source model",
            adapted.local_images
        )
    })
}

pub fn write_budget(path: &Path, rows: &[BudgetRow]) -> Result<(), StoreError> {
    crate::csv_file::write_csv(path, BUDGET_COLUMNS, rows)
}

pub fn read_budget(path: &Path) -> Result<Vec<BudgetRow>, StoreError> {
    crate::layout::require(path, "train --adapt-from")?;
    crate::csv_file::read_csv(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_rows_round_trip_with_empty_figures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.csv");
        let rows = vec![
            BudgetRow {
                local_images: 0.0,
                n: 40,
                accuracy: Some(0.6),
                accuracy_lo: Some(0.45),
                accuracy_hi: Some(0.74),
                sensitivity: None,
                sensitivity_lo: None,
                sensitivity_hi: None,
                specificity: Some(0.2),
                specificity_lo: Some(0.1),
                specificity_hi: Some(0.4),
                auc: Some(0.5),
                auc_lo: Some(0.3),
                auc_hi: Some(0.7),
            },
            BudgetRow { local_images: 32.4, n: 40, ..rows_default() },
        ];
        write_budget(&path, &rows).unwrap();
        assert_eq!(read_budget(&path).unwrap(), rows);
        let header = std::fs::read_to_string(&path).unwrap().lines().next().unwrap().to_string();
        assert_eq!(header, BUDGET_COLUMNS.join(","));
    }

    #[test]
    fn an_adaptation_worse_than_its_source_is_said() {
        let point =
            |local_images: f64, accuracy: f64| BudgetRow { local_images, accuracy: Some(accuracy), ..rows_default() };
        assert!(worse_than_source(&[point(0.0, 0.9), point(20.0, 0.95)]).is_none());
        let said = worse_than_source(&[point(0.0, 0.92), point(20.0, 0.76)]).unwrap();
        assert!(said.contains("0.760") && said.contains("0.920") && said.contains("20 local images"), "{said}");
        assert!(worse_than_source(&[point(0.0, 0.9)]).is_none(), "no adapted point");
    }

    fn rows_default() -> BudgetRow {
        BudgetRow {
            local_images: 0.0,
            n: 0,
            accuracy: None,
            accuracy_lo: None,
            accuracy_hi: None,
            sensitivity: None,
            sensitivity_lo: None,
            sensitivity_hi: None,
            specificity: None,
            specificity_lo: None,
            specificity_hi: None,
            auc: None,
            auc_lo: None,
            auc_hi: None,
        }
    }
}
