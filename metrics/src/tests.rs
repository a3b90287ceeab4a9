//! Metrics checked against scikit-learn / statsmodels values (fixtures/reference.json,
//! made by fixtures/generate.py) and small hand-computed cases, to 1e-9.

use proptest::prelude::*;
use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Case {
    labels: Vec<u8>,
    scores: Vec<f64>,
    threshold: f64,
    tp: usize,
    fp: usize,
    tn: usize,
    #[serde(rename = "fn")]
    fn_: usize,
    auc: f64,
    f1: f64,
    precision: f64,
    balanced_accuracy: f64,
    log_loss: f64,
    wilson_sensitivity: (f64, f64),
    wilson_specificity: (f64, f64),
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn agrees_with_scikit_learn_and_statsmodels() {
    let cases: Vec<Case> = serde_json::from_str(include_str!("../fixtures/reference.json")).unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let positive: Vec<bool> = case.labels.iter().map(|&l| l == 1).collect();
        let c = Confusion::at(&case.scores, &positive, case.threshold);
        assert_eq!((c.tp, c.fp, c.tn, c.fn_), (case.tp, case.fp, case.tn, case.fn_));
        assert!(close(auc(&case.scores, &positive).unwrap(), case.auc));
        assert!(close(c.f1().unwrap(), case.f1));
        assert!(close(c.precision().unwrap(), case.precision));
        assert!(close(c.balanced_accuracy().unwrap(), case.balanced_accuracy));
        let probs: Vec<Vec<f64>> = case.scores.iter().map(|&s| vec![1.0 - s, s]).collect();
        let labels: Vec<usize> = case.labels.iter().map(|&l| l as usize).collect();
        assert!(close(log_loss(&probs, &labels).unwrap(), case.log_loss));
        let (lo, hi) = wilson(c.tp, c.positives()).unwrap();
        assert!(close(lo, case.wilson_sensitivity.0) && close(hi, case.wilson_sensitivity.1));
        let (lo, hi) = wilson(c.tn, c.negatives()).unwrap();
        assert!(close(lo, case.wilson_specificity.0) && close(hi, case.wilson_specificity.1));
    }
}

#[test]
fn hand_computed_small_case() {
    // Scores 0.1 0.4 0.35 0.8 with labels 0 0 1 1: AUC = 3/4 (sklearn's classic example).
    let scores = [0.1, 0.4, 0.35, 0.8];
    let positive = [false, false, true, true];
    assert!(close(auc(&scores, &positive).unwrap(), 0.75));
    let c = Confusion::at(&scores, &positive, 0.5);
    assert_eq!((c.tp, c.fp, c.tn, c.fn_), (1, 0, 2, 1));
    assert!(close(c.sensitivity().unwrap(), 0.5));
    assert!(close(c.specificity().unwrap(), 1.0));
    assert!(close(c.npv().unwrap(), 2.0 / 3.0));
    // Sensitivity 1 is first reached at score 0.35 (specificity 0.5 there); the threshold
    // sits midway to the next lower score 0.1, so both classify the same.
    let t = threshold_for_sensitivity(&scores, &positive, 1.0).unwrap();
    assert!(close(t, 0.225), "{t}");
    let c = Confusion::at(&scores, &positive, t);
    assert_eq!((c.sensitivity(), c.specificity()), (Some(1.0), Some(0.5)));
    // Sensitivity 0.5 at score 0.8; next lower is 0.4.
    assert!(close(threshold_for_sensitivity(&scores, &positive, 0.5).unwrap(), 0.6));
}

#[test]
fn degenerate_inputs_are_none_not_nan() {
    let scores = [0.2, 0.9];
    assert_eq!(auc(&scores, &[true, true]), None);
    assert_eq!(auc(&[], &[]), None);
    let c = Confusion::at(&scores, &[true, true], 0.5);
    assert_eq!(c.specificity(), None);
    assert_eq!(c.balanced_accuracy(), None);
    assert_eq!(c.sensitivity(), Some(0.5));
    assert_eq!(Confusion::default().accuracy(), None);
    assert_eq!(wilson(0, 0), None);
    assert_eq!(auc_bootstrap(&scores, &[true, true], 100, 1), None);
    assert_eq!(threshold_for_sensitivity(&scores, &[false, false], 0.9), None);
    assert_eq!(log_loss(&[], &[]), None);
    // All predictions the same: AUC one half, no crash.
    assert_eq!(auc(&[0.5, 0.5, 0.5], &[true, false, true]), Some(0.5));
}

#[test]
fn bootstrap_interval_brackets_the_auc_and_is_seeded() {
    let scores: Vec<f64> = (0..60).map(|i| (i % 10) as f64 / 10.0 + if i < 30 { 0.3 } else { 0.0 }).collect();
    let positive: Vec<bool> = (0..60).map(|i| i < 30).collect();
    let a = auc(&scores, &positive).unwrap();
    let (lo, hi) = auc_bootstrap(&scores, &positive, 500, 3).unwrap();
    assert!(lo <= a && a <= hi, "{lo} {a} {hi}");
    assert_eq!(auc_bootstrap(&scores, &positive, 500, 3), Some((lo, hi)));
}

proptest! {
    #[test]
    fn confusion_counts_add_up(scores in proptest::collection::vec(0.0f64..1.0, 0..200), seed: u64, t in 0.0f64..1.0) {
        let positive: Vec<bool> = scores.iter().enumerate().map(|(i, _)| (seed >> (i % 64)) & 1 == 1).collect();
        let c = Confusion::at(&scores, &positive, t);
        prop_assert_eq!(c.total(), scores.len());
        prop_assert_eq!(c.positives(), positive.iter().filter(|&&p| p).count());
        if let Some(a) = auc(&scores, &positive) {
            prop_assert!((0.0..=1.0).contains(&a));
            // Flipping the scores mirrors the AUC.
            let flipped: Vec<f64> = scores.iter().map(|s| 1.0 - s).collect();
            prop_assert!((auc(&flipped, &positive).unwrap() - (1.0 - a)).abs() < 1e-9);
        }
        let roc = roc_curve(&scores, &positive);
        prop_assert!(roc.windows(2).all(|w| w[0].fpr <= w[1].fpr && w[0].tpr <= w[1].tpr));
    }
}

/// A score that may be NaN, +-inf or an ordinary probability.
fn hostile_score() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => 0.0f64..1.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-f64::NAN),
    ]
}

proptest! {
    /// NaN and infinite scores never hang or panic a metric, and every figure stays a rate.
    #[test]
    fn metrics_are_safe_with_nan_and_inf(scores in proptest::collection::vec(hostile_score(), 0..120), seed: u64, target in 0.01f64..1.0) {
        let positive: Vec<bool> = scores.iter().enumerate().map(|(i, _)| (seed >> (i % 64)) & 1 == 1).collect();
        let roc = roc_curve(&scores, &positive);
        prop_assert!(roc.len() <= scores.len() + 1);
        prop_assert!(roc.windows(2).all(|w| w[0].fpr <= w[1].fpr && w[0].tpr <= w[1].tpr));
        prop_assert!(roc.iter().all(|p| (0.0..=1.0).contains(&p.fpr) && (0.0..=1.0).contains(&p.tpr)));
        let n_pos = positive.iter().filter(|&&p| p).count();
        if n_pos > 0 && n_pos < scores.len() {
            let last = roc.last().unwrap();
            prop_assert_eq!((last.fpr, last.tpr), (1.0, 1.0));
        }
        if let Some(a) = auc(&scores, &positive) {
            prop_assert!((0.0..=1.0).contains(&a), "auc {}", a);
        }
        if let Some((lo, hi)) = auc_bootstrap(&scores, &positive, 20, seed) {
            prop_assert!(lo <= hi && (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
        }
        let _ = threshold_for_sensitivity(&scores, &positive, target);
        let c = Confusion::at(&scores, &positive, 0.5);
        prop_assert_eq!(c.total(), scores.len());
        for rate in [c.accuracy(), c.sensitivity(), c.specificity(), c.precision(), c.npv(), c.f1(), c.balanced_accuracy()].into_iter().flatten() {
            prop_assert!((0.0..=1.0).contains(&rate));
        }
    }
}

#[test]
fn roc_curve_of_nan_scores_ends() {
    // Before NaN-safe ordering this looped for ever, growing memory.
    let roc = roc_curve(&[f64::NAN, 0.3, f64::NAN, 0.9], &[true, false, false, true]);
    assert_eq!(roc.len(), 4);
    assert_eq!((roc[3].fpr, roc[3].tpr), (1.0, 1.0));
}

#[derive(Deserialize)]
struct CalibrationCase {
    labels: Vec<u8>,
    scores: Vec<f64>,
    brier: f64,
    fraction_positive: Vec<f64>,
    mean_predicted: Vec<f64>,
    counts: Vec<usize>,
    ece: f64,
    temperature: f64,
}

#[test]
fn calibration_agrees_with_scikit_learn_and_scipy() {
    let cases: Vec<CalibrationCase> = serde_json::from_str(include_str!("../fixtures/calibration.json")).unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let positive: Vec<bool> = case.labels.iter().map(|&l| l == 1).collect();
        assert!(close(brier(&case.scores, &positive).unwrap(), case.brier));
        let bins = reliability(&case.scores, &positive, 10);
        assert_eq!(bins.iter().map(|b| b.count).collect::<Vec<_>>(), case.counts);
        for (b, (fp, mp)) in bins.iter().zip(case.fraction_positive.iter().zip(&case.mean_predicted)) {
            assert!(close(b.fraction_positive, *fp) && close(b.mean_predicted, *mp), "{b:?} vs {fp} {mp}");
        }
        assert!(close(expected_calibration_error(&case.scores, &positive, 10).unwrap(), case.ece));
        let probs: Vec<Vec<f64>> = case.scores.iter().map(|&s| vec![1.0 - s, s]).collect();
        let labels: Vec<usize> = case.labels.iter().map(|&l| l as usize).collect();
        let t = fit_temperature(&probs, &labels).unwrap();
        assert!((t - case.temperature).abs() < 1e-4 * case.temperature, "{t} vs {}", case.temperature);
        // Temperature changes probabilities, never the ranking: the AUC stays.
        let scaled: Vec<f64> = probs.iter().map(|p| apply_temperature(p, t)[1]).collect();
        assert!(close(auc(&scaled, &positive).unwrap(), auc(&case.scores, &positive).unwrap()));
    }
}

#[test]
fn group_bootstrap_resamples_patients_not_images() {
    // 20 patients with 5 identical images each: by image the interval of the accuracy would be
    // as narrow as for 100 independent images; by patient it is as wide as for 20.
    let groups: Vec<usize> = (0..100).map(|i| i / 5).collect();
    let positive: Vec<bool> = (0..100).map(|i| (i / 5) % 2 == 0).collect();
    let correct: Vec<bool> = (0..100).map(|i| (i / 5) % 4 != 3).collect();
    let accuracy = |rows: &[usize]| Some(rows.iter().filter(|&&r| correct[r]).count() as f64 / rows.len() as f64);
    let (lo, hi) = group_bootstrap(&groups, &positive, 2000, 3, accuracy).unwrap();
    let (wlo, whi) = wilson(75, 100).unwrap();
    assert!(hi - lo > 1.5 * (whi - wlo), "by patient [{lo}, {hi}] vs by image [{wlo}, {whi}]");
    assert!(lo < 0.75 && hi > 0.75);
    // One image per patient: the same as an ordinary bootstrap, close to Wilson's width.
    let singles: Vec<usize> = (0..100).collect();
    let (slo, shi) = group_bootstrap(&singles, &positive, 2000, 3, accuracy).unwrap();
    assert!((shi - slo) < 1.3 * (whi - wlo));
}

#[test]
fn macro_auc_is_the_binary_auc_with_two_classes_and_the_mean_of_one_vs_rest_otherwise() {
    let probabilities = vec![vec![0.9, 0.1], vec![0.6, 0.4], vec![0.3, 0.7], vec![0.45, 0.55]];
    let labels = [0, 1, 1, 0];
    let binary = auc(&[0.1, 0.4, 0.7, 0.55], &[false, true, true, false]).unwrap();
    assert!((macro_auc(&probabilities, &labels, 2).unwrap() - binary).abs() < 1e-12);
    // Three classes: classes 0 and 2 perfectly ranked, class 1 not (its image scores 0.35,
    // below a class-2 image's 0.5).
    let probabilities =
        vec![vec![0.8, 0.1, 0.1], vec![0.3, 0.35, 0.35], vec![0.1, 0.5, 0.4], vec![0.1, 0.2, 0.7], vec![0.7, 0.2, 0.1]];
    let labels = [0, 1, 2, 2, 0];
    let each = one_vs_rest_auc(&probabilities, &labels, 3);
    assert_eq!(each[0], Some(1.0));
    assert_eq!(each[2], Some(1.0));
    assert!(each[1].unwrap() < 1.0);
    let expected = (1.0 + each[1].unwrap() + 1.0) / 3.0;
    assert!((macro_auc(&probabilities, &labels, 3).unwrap() - expected).abs() < 1e-12);
    // A class with no image has no AUC, so there is no macro AUC.
    assert_eq!(macro_auc(&probabilities, &[0, 0, 2, 2, 0], 3), None);
}

#[test]
fn two_classes_decide_at_the_threshold_and_more_by_the_largest() {
    assert_eq!(decide(&[0.3, 0.7], 1, 0.7), 1, "a probability equal to the threshold is positive");
    assert_eq!(decide(&[0.31, 0.69], 1, 0.7), 0);
    assert_eq!(decide(&[0.9, 0.1], 0, 0.5), 0, "the positive class may be the first");
    assert_eq!(decide(&[0.2, 0.5, 0.3], 0, 0.99), 1, "three classes ignore the threshold");
}

#[test]
fn mann_whitney_agrees_with_scipy() {
    // scipy.stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic"), scipy 1.17.1.
    let x = [1.2, 3.4, 2.2, 5.1, 4.4, 3.3, 2.9, 6.0];
    let y = [1.0, 0.5, 2.2, 1.9, 0.7, 1.1, 2.5, 0.2, 1.4, 3.0];
    let p = mann_whitney_greater(&x, &y).unwrap();
    assert!((p - 0.002927039660740872).abs() < 1e-7, "{p}");
    let q = mann_whitney_greater(&y, &x).unwrap();
    assert!((q - 0.9977776356403268).abs() < 1e-7, "{q}");
    assert_eq!(mann_whitney_greater(&[], &y), None);
    assert_eq!(mann_whitney_greater(&[1.0, 1.0], &[1.0]), None, "all tied");
}

#[test]
fn equal_count_reliability_matches_scikit_learns_quantile_strategy() {
    // calibration_curve(y, p, n_bins=4, strategy="quantile") of scikit-learn 1.9.1,
    // with a tie (0.16) in the scores.
    let p = [
        0.086, 0.237, 0.801, 0.582, 0.094, 0.16, 0.479, 0.16, 0.735, 0.114, 0.391, 0.517, 0.431, 0.587, 0.738, 0.956,
        0.284, 0.649, 0.696, 0.293, 0.001, 0.973, 0.298,
    ];
    let y = [0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0];
    let positive: Vec<bool> = y.iter().map(|&v| v == 1).collect();
    let bins = reliability_equal_count(&p, &positive, 4);
    let true_share = [0.16666666666666666, 0.16666666666666666, 0.6, 0.8333333333333334];
    let mean_predicted = [0.1025, 0.3223333333333333, 0.5628, 0.8165];
    assert_eq!(bins.len(), 4);
    for (b, (t, m)) in bins.iter().zip(true_share.iter().zip(mean_predicted)) {
        assert!((b.fraction_positive - t).abs() < 1e-12 && (b.mean_predicted - m).abs() < 1e-12, "{b:?}");
    }
    assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), p.len());
    assert_eq!(bins.iter().map(|b| b.count).collect::<Vec<_>>(), vec![6, 6, 5, 6]);
}
