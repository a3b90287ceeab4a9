//! The figures of one point of the label-budget curve: accuracy, sensitivity, specificity
//! and ROC AUC of cross-fitted calls, with 95% bootstrap intervals that resample patients.

use cxr_store::adaptation::BudgetRow;

use super::crossfit::{Sample, auc_on};

/// Rows of one budget point: `local_images` labels were used; `probabilities` and
/// `predicted` are every local row's cross-fitted probabilities and call.
pub fn row(
    sample: &Sample,
    local_images: f64,
    probabilities: &[Vec<f64>],
    predicted: &[usize],
    resamples: usize,
    seed: u64,
) -> BudgetRow {
    let positive: Vec<bool> = sample.labels.iter().map(|&l| l == sample.positive).collect();
    let rate = |rows: &[usize], counted: &dyn Fn(usize) -> bool, hit: &dyn Fn(usize) -> bool| {
        let n = rows.iter().filter(|&&r| counted(r)).count();
        (n > 0).then(|| rows.iter().filter(|&&r| counted(r) && hit(r)).count() as f64 / n as f64)
    };
    let called = |r: usize| predicted[r] == sample.positive;
    let accuracy = |rows: &[usize]| rate(rows, &|_| true, &|r| predicted[r] == sample.labels[r]);
    let sensitivity = |rows: &[usize]| rate(rows, &|r| positive[r], &called);
    let specificity = |rows: &[usize]| rate(rows, &|r| !positive[r], &|r| !called(r));
    let auc = |rows: &[usize]| auc_on(sample, probabilities, rows);
    let all: Vec<usize> = (0..sample.len()).collect();
    let two_classes = sample.classes == 2;
    let figure = |stat: &dyn Fn(&[usize]) -> Option<f64>, applies: bool| {
        if !applies {
            return (None, None, None);
        }
        let interval = cxr_metrics::group_bootstrap(&sample.patients, &positive, resamples, seed, stat);
        (stat(&all), interval.map(|i| i.0), interval.map(|i| i.1))
    };
    let (accuracy, accuracy_lo, accuracy_hi) = figure(&accuracy, true);
    let (sensitivity, sensitivity_lo, sensitivity_hi) = figure(&sensitivity, two_classes);
    let (specificity, specificity_lo, specificity_hi) = figure(&specificity, two_classes);
    let (auc, auc_lo, auc_hi) = figure(&auc, true);
    BudgetRow {
        local_images,
        n: sample.len(),
        accuracy,
        accuracy_lo,
        accuracy_hi,
        sensitivity,
        sensitivity_lo,
        sensitivity_hi,
        specificity,
        specificity_lo,
        specificity_hi,
        auc,
        auc_lo,
        auc_hi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_holds_its_figures_inside_their_intervals() {
        let labels: Vec<usize> = (0..80).map(|i| usize::from(i % 2 == 0)).collect();
        let sample = Sample { patients: (0..80).map(|i| i / 2).collect(), labels, classes: 2, positive: 1 };
        let probabilities: Vec<Vec<f64>> =
            (0..80).map(|i| if i % 5 == 0 { vec![0.7, 0.3] } else { vec![0.4 - (i % 2) as f64 * 0.3, 0.6] }).collect();
        let predicted: Vec<usize> = probabilities.iter().map(|p| cxr_metrics::decide(p, 1, 0.5)).collect();
        let r = row(&sample, 25.0, &probabilities, &predicted, 200, 1);
        assert_eq!(r.n, 80);
        for (v, lo, hi) in [
            (r.accuracy, r.accuracy_lo, r.accuracy_hi),
            (r.sensitivity, r.sensitivity_lo, r.sensitivity_hi),
            (r.specificity, r.specificity_lo, r.specificity_hi),
            (r.auc, r.auc_lo, r.auc_hi),
        ] {
            let (v, lo, hi) = (v.unwrap(), lo.unwrap(), hi.unwrap());
            assert!(lo <= v && v <= hi && lo < hi, "{lo} <= {v} <= {hi}");
        }
        assert!((r.sensitivity.unwrap() - 0.8).abs() < 1e-12, "8 of 10 positives called");
    }
}
