//! The report's CSV tables: metrics per split, confusion matrices, ROC and threshold tables.

use cxr_metrics::{
    Confusion, auc, auc_bootstrap, brier, expected_calibration_error, group_bootstrap, roc_curve,
    threshold_for_sensitivity, wilson,
};
use cxr_store::predictions::Prediction;
use serde::Serialize;

/// Labelled predictions of one split, reduced to what the metrics need.
#[derive(Debug, Clone)]
pub struct SplitData {
    pub name: String,
    pub classes: Vec<String>,
    pub positive: usize,
    /// Paths of the labelled rows.
    pub paths: Vec<String>,
    /// Rows with a known label.
    pub labels: Vec<usize>,
    pub predicted: Vec<usize>,
    pub scores: Vec<f64>,
    /// Every class's probability, per labelled row (one-vs-rest figures with 3+ classes).
    pub probabilities: Vec<Vec<f64>>,
    /// The patient of each labelled row, as a group id (its own id when unknown).
    pub patients: Vec<usize>,
    /// Each labelled row's shift score, from a model with the shift monitor.
    pub shift_scores: Vec<Option<f64>>,
    /// Every row's shift score, labelled or not (a cohort to check is often unlabelled).
    pub all_shift_scores: Vec<f64>,
    pub unlabelled: usize,
}

impl SplitData {
    /// Keeps rows whose label and prediction are known classes; errors on unknown class names.
    /// `patient_of` gives a row's patient by its path (from the split's manifest), if known.
    pub fn new(
        name: &str,
        classes: &[String],
        positive: usize,
        rows: &[Prediction],
        patient_of: impl Fn(&str) -> Option<String>,
    ) -> Result<SplitData, String> {
        let index = |c: &str| classes.iter().position(|k| k == c);
        let mut patient_ids: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut d = SplitData {
            name: name.to_string(),
            classes: classes.to_vec(),
            positive,
            paths: Vec::new(),
            labels: Vec::new(),
            predicted: Vec::new(),
            scores: Vec::new(),
            probabilities: Vec::new(),
            patients: Vec::new(),
            shift_scores: Vec::new(),
            all_shift_scores: Vec::new(),
            unlabelled: 0,
        };
        for r in rows {
            d.all_shift_scores.extend(r.shift.map(|s| s.0));
            let predicted = index(&r.predicted)
                .ok_or_else(|| format!("{}: predicted class {:?} is not in data.classes", r.path, r.predicted))?;
            match &r.label {
                None => d.unlabelled += 1,
                Some(l) => {
                    let label = index(l).ok_or_else(|| format!("{}: label {l:?} is not in data.classes", r.path))?;
                    d.paths.push(r.path.clone());
                    d.labels.push(label);
                    d.predicted.push(predicted);
                    d.scores.push(r.probabilities[positive]);
                    d.probabilities.push(r.probabilities.clone());
                    d.shift_scores.push(r.shift.map(|s| s.0));
                    // Rows without a known patient are each their own.
                    let key = patient_of(&r.path).unwrap_or_else(|| format!("\0{}", r.path));
                    let next = patient_ids.len();
                    d.patients.push(*patient_ids.entry(key).or_insert(next));
                }
            }
        }
        Ok(d)
    }

    /// Distinct patients among the labelled rows.
    pub fn patient_count(&self) -> usize {
        self.patients.iter().collect::<std::collections::BTreeSet<_>>().len()
    }

    /// Whether some patient has several images (then intervals resample patients).
    pub fn has_repeated_patients(&self) -> bool {
        self.patient_count() < self.patients.len()
    }

    pub fn is_positive(&self) -> Vec<bool> {
        self.labels.iter().map(|&l| l == self.positive).collect()
    }

    /// Binary counts from the predicted classes (the threshold `infer` applied).
    pub fn confusion(&self) -> Confusion {
        Confusion::of_calls(
            self.predicted.iter().map(|&p| p == self.positive),
            self.labels.iter().map(|&l| l == self.positive),
        )
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
#[derive(Debug, Clone, Default, Serialize)]
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
    /// What the split is to the model: `selection`, `estimate`, `training`, `evaluation`, `external`.
    pub role: String,
    /// Which images the epoch, temperature and threshold were chosen on, relative to this split.
    pub chosen_on: String,
    /// How the intervals were computed (per image, or resampling patients).
    pub intervals: String,
    pub patients: usize,
    pub brier: Option<f64>,
    /// Expected calibration error over 10 equal-width bins.
    pub ece: Option<f64>,
    /// The positive prevalence this split's probabilities were adapted to without labels
    /// (`infer.adaptation: prior`); empty when they are the model's own.
    pub adapted_prior: Option<f64>,
    /// The mean over classes of each class's one-vs-rest ROC AUC (equal to `auc` with two classes).
    pub macro_auc: Option<f64>,
}

/// Columns of `metrics.csv` in order: [`MetricsRow`]'s fields, as serde names them.
pub fn metrics_columns() -> Vec<String> {
    cxr_store::csv_file::header_of::<MetricsRow>()
}

/// What a split is to the model whose predictions are on it, and what was chosen on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: &'static str,
    pub chosen_on: String,
}

impl Role {
    /// The role of split `name`; `external` names the experiment of a model trained elsewhere.
    pub fn of(name: &str, external: Option<&str>) -> Role {
        if let Some(exp) = external {
            return Role {
                name: "external",
                chosen_on: format!("nothing: the model, its temperature and its threshold were chosen in {exp}"),
            };
        }
        match name {
            "val" => Role {
                name: "selection",
                chosen_on: "this split: the epoch, the temperature and the threshold were chosen on it (optimistic)"
                    .into(),
            },
            "estimate" => Role {
                name: "estimate",
                chosen_on: "val: nothing was chosen on this split (the honest in-distribution estimate)".into(),
            },
            "train" => {
                Role { name: "training", chosen_on: "this split: the head was fitted on it (optimistic)".into() }
            }
            _ => Role { name: "evaluation", chosen_on: "val: nothing was chosen on this split".into() },
        }
    }
}

/// 95% intervals of (accuracy, sensitivity, specificity, precision, NPV, AUC): resampling
/// patients when one has several images, else Wilson (rates) and a stratified bootstrap (AUC).
type Intervals = [(Option<f64>, Option<f64>); 6];
/// A figure computed on the rows of one bootstrap resample.
type Statistic<'a> = &'a dyn Fn(&[usize]) -> Option<f64>;

fn intervals(d: &SplitData, bootstrap: usize, seed: u64) -> (Intervals, String) {
    let pos = d.is_positive();
    let c = d.confusion();
    if d.has_repeated_patients() {
        let rate = |rows: &[usize], num: &dyn Fn(usize) -> bool, den: &dyn Fn(usize) -> bool| {
            let n = rows.iter().filter(|&&r| den(r)).count();
            (n > 0).then(|| rows.iter().filter(|&&r| den(r) && num(r)).count() as f64 / n as f64)
        };
        let called = |r: usize| d.predicted[r] == d.positive;
        let correct = |r: usize| d.predicted[r] == d.labels[r];
        let actual = |r: usize| pos[r];
        let all = |_: usize| true;
        let statistics: [Statistic; 6] = [
            &|rows| rate(rows, &correct, &all),
            &|rows| rate(rows, &called, &actual),
            &|rows| rate(rows, &|r| !called(r), &|r| !actual(r)),
            &|rows| rate(rows, &actual, &called),
            &|rows| rate(rows, &|r| !actual(r), &|r| !called(r)),
            &|rows| {
                let s: Vec<f64> = rows.iter().map(|&r| d.scores[r]).collect();
                let p: Vec<bool> = rows.iter().map(|&r| pos[r]).collect();
                auc(&s, &p)
            },
        ];
        let out = statistics.map(|stat| {
            group_bootstrap(&d.patients, &pos, bootstrap, seed, stat).map_or((None, None), |(a, b)| (Some(a), Some(b)))
        });
        return (out, format!("95% bootstrap over {} patients ({bootstrap} resamples)", d.patient_count()));
    }
    let w = |succ: usize, n: usize| wilson(succ, n).map_or((None, None), |(lo, hi)| (Some(lo), Some(hi)));
    let correct = d.labels.iter().zip(&d.predicted).filter(|(l, p)| l == p).count();
    let auc_ci = auc_bootstrap(&d.scores, &pos, bootstrap, seed).map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let out = [
        w(correct, d.labels.len()),
        w(c.tp, c.positives()),
        w(c.tn, c.negatives()),
        w(c.tp, c.tp + c.fp),
        w(c.tn, c.tn + c.fn_),
        auc_ci,
    ];
    (out, "95% Wilson per image; AUC by stratified bootstrap over images".into())
}

pub fn metrics_row(d: &SplitData, threshold: Option<f64>, role: &Role, bootstrap: usize, seed: u64) -> MetricsRow {
    let c = d.confusion();
    let pos = d.is_positive();
    let correct = d.labels.iter().zip(&d.predicted).filter(|(l, p)| l == p).count();
    let ([accuracy_ci, sensitivity_ci, specificity_ci, precision_ci, npv_ci, auc_ci], method) =
        intervals(d, bootstrap, seed);
    MetricsRow {
        split: d.name.clone(),
        n: d.labels.len(),
        n_negative: c.negatives(),
        n_positive: c.positives(),
        positive_class: d.classes[d.positive].clone(),
        threshold,
        accuracy: (!d.labels.is_empty()).then(|| correct as f64 / d.labels.len() as f64),
        accuracy_lo: accuracy_ci.0,
        accuracy_hi: accuracy_ci.1,
        balanced_accuracy: c.balanced_accuracy(),
        sensitivity: c.sensitivity(),
        sensitivity_lo: sensitivity_ci.0,
        sensitivity_hi: sensitivity_ci.1,
        specificity: c.specificity(),
        specificity_lo: specificity_ci.0,
        specificity_hi: specificity_ci.1,
        precision: c.precision(),
        precision_lo: precision_ci.0,
        precision_hi: precision_ci.1,
        npv: c.npv(),
        npv_lo: npv_ci.0,
        npv_hi: npv_ci.1,
        f1: c.f1(),
        auc: auc(&d.scores, &pos),
        auc_lo: auc_ci.0,
        auc_hi: auc_ci.1,
        role: role.name.to_string(),
        chosen_on: role.chosen_on.clone(),
        intervals: method,
        patients: d.patient_count(),
        brier: brier(&d.scores, &pos),
        ece: expected_calibration_error(&d.scores, &pos, 10),
        adapted_prior: None,
        macro_auc: cxr_metrics::macro_auc(&d.probabilities, &d.labels, d.classes.len()),
    }
}

/// One row of `per_class_<split>.csv`: one class against the rest.
#[derive(Debug, Clone, Serialize)]
pub struct PerClassRow {
    pub class: String,
    /// Labelled images of this class.
    pub n: usize,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    pub precision: Option<f64>,
    /// ROC AUC of this class's probability against the other classes.
    pub auc_one_vs_rest: Option<f64>,
}

/// Columns of `per_class_<split>.csv`.
pub const PER_CLASS_COLUMNS: &[&str] = &["class", "n", "sensitivity", "specificity", "precision", "auc_one_vs_rest"];

/// Each class against the rest: rates from the predicted classes, AUC from its probability.
pub fn per_class_rows(d: &SplitData) -> Vec<PerClassRow> {
    let aucs = cxr_metrics::one_vs_rest_auc(&d.probabilities, &d.labels, d.classes.len());
    aucs.into_iter()
        .enumerate()
        .map(|(k, auc_one_vs_rest)| {
            let c = Confusion::of_calls(d.predicted.iter().map(|&p| p == k), d.labels.iter().map(|&l| l == k));
            PerClassRow {
                class: d.classes[k].clone(),
                n: c.positives(),
                sensitivity: c.sensitivity(),
                specificity: c.specificity(),
                precision: c.precision(),
                auc_one_vs_rest,
            }
        })
        .collect()
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
    /// Always this split: chosen and measured on the same images, so optimistic.
    pub chosen_on: String,
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
        chosen_on: format!("{} (chosen and measured on the same images: optimistic)", d.name),
    }
}

/// Below this many images a reliability diagram uses equal-count bins.
const EQUAL_WIDTH_FROM: usize = 200;

/// `calibration_<split>.csv`: the reliability diagram's bins, and how they were made.
/// Ten equal-width bins from 200 images; below that, equal-count bins of about ten images
/// each (2 to 10 bins), because ten equal-width bins of a small set hold a few images each
/// and their shares say little.
pub fn calibration_rows(d: &SplitData) -> (Vec<cxr_metrics::ReliabilityBin>, String) {
    let n = d.scores.len();
    if n >= EQUAL_WIDTH_FROM {
        (cxr_metrics::reliability(&d.scores, &d.is_positive(), 10), "10 equal-width bins".into())
    } else {
        let bins = (n / 10).clamp(2, 10);
        (cxr_metrics::reliability_equal_count(&d.scores, &d.is_positive(), bins), format!("{bins} equal-count bins"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_val_is_the_selection_split_and_a_foreign_model_makes_every_split_external() {
        assert_eq!(Role::of("val", None).name, "selection");
        assert!(Role::of("val", None).chosen_on.contains("optimistic"));
        assert_eq!(Role::of("estimate", None).name, "estimate");
        assert_eq!(Role::of("train", None).name, "training");
        assert_eq!(Role::of("test", None).name, "evaluation");
        let external = Role::of("val", Some("runs/kermany"));
        assert_eq!(external.name, "external");
        assert!(external.chosen_on.contains("runs/kermany"));
    }
}
