//! DeLong, McNemar and erfc against fixtures/paired.json (numpy's fast DeLong after Sun &
//! Xu, scikit-learn's AUC, statsmodels' McNemar, scipy's erfc; fixtures/make_paired.py).

use serde::Deserialize;

use super::*;
use crate::special::{binomial_half_cdf, erfc};

#[derive(Deserialize)]
struct DeLongCase {
    labels: Vec<u8>,
    a: Vec<f64>,
    b: Vec<f64>,
    auc_a: f64,
    auc_b: f64,
    var_a: f64,
    var_b: f64,
    covariance: f64,
    z: f64,
    p: f64,
    threshold: f64,
    mcnemar_b: usize,
    mcnemar_c: usize,
    mcnemar_exact: bool,
    mcnemar_p: f64,
}

#[derive(Deserialize)]
struct McNemarCase {
    b: usize,
    c: usize,
    exact_p: f64,
    chi2_statistic: Option<f64>,
    chi2_p: Option<f64>,
}

#[derive(Deserialize)]
struct ErfcCase {
    x: f64,
    erfc: f64,
}

#[derive(Deserialize)]
struct Fixture {
    delong: Vec<DeLongCase>,
    mcnemar: Vec<McNemarCase>,
    erfc: Vec<ErfcCase>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("../fixtures/paired.json")).unwrap()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: {a} vs reference {b}");
}

#[test]
fn delong_agrees_with_the_reference_implementation() {
    let cases = fixture().delong;
    assert_eq!(cases.len(), 4);
    for case in cases {
        let positive: Vec<bool> = case.labels.iter().map(|&l| l == 1).collect();
        let d = delong(&positive, &case.a, &case.b).unwrap();
        close(d.auc_a, case.auc_a, "auc_a");
        close(d.auc_b, case.auc_b, "auc_b");
        close(d.auc_a, crate::auc(&case.a, &positive).unwrap(), "auc_a against cxr_metrics::auc");
        close(d.var_a, case.var_a, "var_a");
        close(d.var_b, case.var_b, "var_b");
        close(d.covariance, case.covariance, "covariance");
        close(d.z, case.z, "z");
        close(d.p, case.p, "p");
        close(d.difference(), case.auc_b - case.auc_a, "difference");
        // The swapped test has the opposite z and the same p.
        let swapped = delong(&positive, &case.b, &case.a).unwrap();
        close(swapped.z, -case.z, "swapped z");
        close(swapped.p, case.p, "swapped p");
    }
}

#[test]
fn mcnemar_of_the_delong_cases_agrees_with_statsmodels() {
    for case in fixture().delong {
        let right = |s: &[f64]| -> Vec<bool> {
            s.iter().zip(&case.labels).map(|(&s, &l)| (s >= case.threshold) == (l == 1)).collect()
        };
        let m = McNemar::of_calls(&right(&case.a), &right(&case.b));
        assert_eq!((m.b, m.c, m.exact), (case.mcnemar_b, case.mcnemar_c, case.mcnemar_exact));
        close(m.p, case.mcnemar_p, "mcnemar p");
    }
}

#[test]
fn mcnemar_agrees_with_statsmodels_both_ways() {
    let cases = fixture().mcnemar;
    assert!(cases.len() >= 10);
    for case in cases {
        close(mcnemar_exact(case.b, case.c), case.exact_p, &format!("exact ({}, {})", case.b, case.c));
        let (statistic, p) = mcnemar_chi_square(case.b, case.c);
        match (case.chi2_statistic, case.chi2_p) {
            (Some(s), Some(q)) => {
                close(statistic, s, "chi-square statistic");
                close(p, q, &format!("chi-square p ({}, {})", case.b, case.c));
            }
            // b = c: the corrected difference stops at 0 here (statsmodels: 1 / (b + c)).
            _ => assert_eq!((statistic, p), (0.0, 1.0)),
        }
        let chosen = McNemar::of_counts(case.b, case.c);
        assert_eq!(chosen.exact, case.b + case.c < MCNEMAR_EXACT_BELOW);
        assert_eq!(chosen.p, if chosen.exact { mcnemar_exact(case.b, case.c) } else { p });
        assert_eq!(chosen.statistic.is_none(), chosen.exact);
    }
}

#[test]
fn erfc_agrees_with_scipy_to_1e_15() {
    for case in fixture().erfc {
        let got = erfc(case.x);
        assert!((got - case.erfc).abs() < 1e-15, "erfc({}) = {got}, scipy {}", case.x, case.erfc);
        if case.erfc > 1e-300 {
            assert!(((got - case.erfc) / case.erfc).abs() < 1e-12, "erfc({}) relative", case.x);
        }
    }
    assert!(erfc(f64::NAN).is_nan());
    assert_eq!(erfc(f64::INFINITY), 0.0);
    assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
}

#[test]
fn binomial_tail_is_exact_for_small_counts() {
    // P(X <= 2) for Binomial(10, 1/2) = (1 + 10 + 45) / 1024.
    assert!((binomial_half_cdf(2, 10) - 56.0 / 1024.0).abs() < 1e-15);
    assert_eq!(binomial_half_cdf(0, 0), 1.0);
    assert_eq!(binomial_half_cdf(7, 5), 1.0);
    // Large n does not underflow: P(X <= 1000) for n = 2000 is a little over 1/2.
    let half = binomial_half_cdf(1000, 2000);
    assert!(half > 0.5 && half < 0.52, "{half}");
}

#[test]
fn degenerate_inputs_give_none_or_no_difference() {
    let positive = [true, true, false, false];
    let a = [0.9, 0.8, 0.2, 0.1];
    assert!(delong(&[true, false, false], &[0.9, 0.2, 0.1], &[0.9, 0.2, 0.1]).is_none(), "one positive");
    assert!(delong(&positive, &a, &a[..3]).is_none(), "lengths differ");
    let same = delong(&positive, &a, &a).unwrap();
    assert_eq!((same.z, same.p), (0.0, 1.0), "identical scores: no difference");
    let backwards = [0.1, 0.2, 0.8, 0.9];
    assert!(delong(&positive, &a, &backwards).is_none(), "no variance, different AUCs");
    let m = McNemar::of_calls(&[true, true], &[true, true]);
    assert_eq!((m.b, m.c, m.p), (0, 0, 1.0));
}
