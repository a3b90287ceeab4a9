//! The report's CSV tables: metrics per split, confusion matrices, ROC and threshold tables.

use cxr_metrics::{Confusion, auc, auc_bootstrap, roc_curve, threshold_for_sensitivity, wilson};
use cxr_store::predictions::Prediction;
use serde::Serialize;

/// Labelled predictions of one split, reduced to what the metrics need.
#[derive(Debug, Clone)]
pub struct SplitData {
    pub name: String,
    pub classes: Vec<String>,
    pub positive: usize,
    /// Rows with a known label.
    pub labels: Vec<usize>,
    pub predicted: Vec<usize>,
    pub scores: Vec<f64>,
    pub unlabelled: usize,
}

impl SplitData {
    /// Keeps rows whose label and prediction are known classes; errors on unknown class names.
    pub fn new(name: &str, classes: &[String], positive: usize, rows: &[Prediction]) -> Result<SplitData, String> {
        let index = |c: &str| classes.iter().position(|k| k == c);
        let mut d = SplitData {
            name: name.to_string(),
            classes: classes.to_vec(),
            positive,
            labels: Vec::new(),
            predicted: Vec::new(),
            scores: Vec::new(),
            unlabelled: 0,
        };
        for r in rows {
            let predicted = index(&r.predicted)
                .ok_or_else(|| format!("{}: predicted class {:?} is not in data.classes", r.path, r.predicted))?;
            match &r.label {
                None => d.unlabelled += 1,
                Some(l) => {
                    let label = index(l).ok_or_else(|| format!("{}: label {l:?} is not in data.classes", r.path))?;
                    d.labels.push(label);
                    d.predicted.push(predicted);
                    d.scores.push(r.probabilities[positive]);
                }
            }
        }
        Ok(d)
    }

    pub fn is_positive(&self) -> Vec<bool> {
        self.labels.iter().map(|&l| l == self.positive).collect()
    }

    /// Binary counts from the predicted classes (the threshold `infer` applied).
    pub fn confusion(&self) -> Confusion {
        let mut c = Confusion::default();
        for (&l, &p) in self.labels.iter().zip(&self.predicted) {
            match (p == self.positive, l == self.positive) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    /// `counts[actual][predicted]`.
    pub fn confusion_matrix(&self) -> Vec<Vec<usize>> {
        let k = self.classes.len();
        let mut m = vec![vec![0; k]; k];
        for (&l, &p) in self.labels.iter().zip(&self.predicted) {
            m[l][p] += 1;
        }
        m
    }
}

/// One row of `metrics.csv`; intervals are 95% (Wilson; stratified bootstrap for AUC).
#[derive(Debug, Clone, Serialize)]
pub struct MetricsRow {
    pub split: String,
    pub n: usize,
    pub n_negative: usize,
    pub n_positive: usize,
    pub positive_class: String,
    pub threshold: Option<f64>,
    pub accuracy: Option<f64>,
    pub accuracy_lo: Option<f64>,
    pub accuracy_hi: Option<f64>,
    pub balanced_accuracy: Option<f64>,
    pub sensitivity: Option<f64>,
    pub sensitivity_lo: Option<f64>,
    pub sensitivity_hi: Option<f64>,
    pub specificity: Option<f64>,
    pub specificity_lo: Option<f64>,
    pub specificity_hi: Option<f64>,
    pub precision: Option<f64>,
    pub precision_lo: Option<f64>,
    pub precision_hi: Option<f64>,
    pub npv: Option<f64>,
    pub npv_lo: Option<f64>,
    pub npv_hi: Option<f64>,
    pub f1: Option<f64>,
    pub auc: Option<f64>,
    pub auc_lo: Option<f64>,
    pub auc_hi: Option<f64>,
}

/// Columns of `metrics.csv` in order (also used by `report compare`).
pub const METRICS_COLUMNS: &[&str] = &[
    "split",
    "n",
    "n_negative",
    "n_positive",
    "positive_class",
    "threshold",
    "accuracy",
    "accuracy_lo",
    "accuracy_hi",
    "balanced_accuracy",
    "sensitivity",
    "sensitivity_lo",
    "sensitivity_hi",
    "specificity",
    "specificity_lo",
    "specificity_hi",
    "precision",
    "precision_lo",
    "precision_hi",
    "npv",
    "npv_lo",
    "npv_hi",
    "f1",
    "auc",
    "auc_lo",
    "auc_hi",
];

fn interval(succ: usize, n: usize) -> (Option<f64>, Option<f64>) {
    wilson(succ, n).map_or((None, None), |(lo, hi)| (Some(lo), Some(hi)))
}

pub fn metrics_row(d: &SplitData, threshold: Option<f64>, bootstrap: usize, seed: u64) -> MetricsRow {
    let c = d.confusion();
    let pos = d.is_positive();
    let correct = d.labels.iter().zip(&d.predicted).filter(|(l, p)| l == p).count();
    let (accuracy_lo, accuracy_hi) = interval(correct, d.labels.len());
    let (sensitivity_lo, sensitivity_hi) = interval(c.tp, c.positives());
    let (specificity_lo, specificity_hi) = interval(c.tn, c.negatives());
    let (precision_lo, precision_hi) = interval(c.tp, c.tp + c.fp);
    let (npv_lo, npv_hi) = interval(c.tn, c.tn + c.fn_);
    let (auc_lo, auc_hi) =
        auc_bootstrap(&d.scores, &pos, bootstrap, seed).map_or((None, None), |(a, b)| (Some(a), Some(b)));
    MetricsRow {
        split: d.name.clone(),
        n: d.labels.len(),
        n_negative: c.negatives(),
        n_positive: c.positives(),
        positive_class: d.classes[d.positive].clone(),
        threshold,
        accuracy: (!d.labels.is_empty()).then(|| correct as f64 / d.labels.len() as f64),
        accuracy_lo,
        accuracy_hi,
        balanced_accuracy: c.balanced_accuracy(),
        sensitivity: c.sensitivity(),
        sensitivity_lo,
        sensitivity_hi,
        specificity: c.specificity(),
        specificity_lo,
        specificity_hi,
        precision: c.precision(),
        precision_lo,
        precision_hi,
        npv: c.npv(),
        npv_lo,
        npv_hi,
        f1: c.f1(),
        auc: auc(&d.scores, &pos),
        auc_lo,
        auc_hi,
    }
}

/// One row of `thresholds_<split>.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdRow {
    pub threshold: f64,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    pub precision: Option<f64>,
    pub accuracy: Option<f64>,
}

/// Sensitivity/specificity at thresholds 0.05, 0.10, ..., 0.95 (to choose an operating point).
pub fn threshold_table(d: &SplitData) -> Vec<ThresholdRow> {
    let pos = d.is_positive();
    (1..20)
        .map(|i| {
            let t = i as f64 * 0.05;
            let c = Confusion::at(&d.scores, &pos, t);
            ThresholdRow {
                threshold: (t * 100.0).round() / 100.0,
                sensitivity: c.sensitivity(),
                specificity: c.specificity(),
                precision: c.precision(),
                accuracy: c.accuracy(),
            }
        })
        .collect()
}

/// One row of `roc_<split>.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct RocRow {
    pub threshold: f64,
    pub fpr: f64,
    pub tpr: f64,
}

pub fn roc_rows(d: &SplitData) -> Vec<RocRow> {
    roc_curve(&d.scores, &d.is_positive())
        .into_iter()
        .map(|p| RocRow { threshold: if p.threshold.is_finite() { p.threshold } else { 1.0 }, fpr: p.fpr, tpr: p.tpr })
        .collect()
}

/// `operating_point.csv`: the threshold reaching the target sensitivity on a split.
#[derive(Debug, Clone, Serialize)]
pub struct OperatingPointRow {
    pub split: String,
    pub target_sensitivity: f64,
    pub threshold: Option<f64>,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
}

pub fn operating_point(d: &SplitData, target: f64) -> OperatingPointRow {
    let pos = d.is_positive();
    let threshold = threshold_for_sensitivity(&d.scores, &pos, target);
    let c = threshold.map(|t| Confusion::at(&d.scores, &pos, t));
    OperatingPointRow {
        split: d.name.clone(),
        target_sensitivity: target,
        threshold,
        sensitivity: c.and_then(|c| c.sensitivity()),
        specificity: c.and_then(|c| c.specificity()),
    }
}
