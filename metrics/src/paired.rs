//! Paired tests of two classifiers judged on the same images: DeLong's test for the
//! difference of two correlated ROC AUCs (DeLong, DeLong & Clarke-Pearson 1988, in Sun &
//! Xu's 2014 O(n log n) midrank form) and McNemar's test for the difference of two
//! accuracies (exact binomial with few discordant pairs, else chi-square with continuity
//! correction). Checked against numpy/scikit-learn/statsmodels in `paired_tests.rs`.

use serde::{Deserialize, Serialize};

use crate::special::{binomial_half_cdf, chi_square_1_sf, normal_two_sided};

/// DeLong's test of model B's ROC AUC against model A's on the same images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeLong {
    pub auc_a: f64,
    pub auc_b: f64,
    /// DeLong's variance of each AUC and their covariance.
    pub var_a: f64,
    pub var_b: f64,
    pub covariance: f64,
    /// `(auc_b - auc_a) / sd(auc_b - auc_a)`; 0 when the two are equal without variance.
    pub z: f64,
    /// Two-sided p-value of `z` against the standard normal.
    pub p: f64,
}

impl DeLong {
    /// `auc_b - auc_a`.
    pub fn difference(&self) -> f64 {
        self.auc_b - self.auc_a
    }
}

/// 1-based ranks of `x`, tied values sharing their mean rank (ordered by `total_cmp`).
fn midranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && x[order[j]].total_cmp(&x[order[i]]).is_eq() {
            j += 1;
        }
        let rank = (i + j - 1) as f64 / 2.0 + 1.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        i = j;
    }
    ranks
}

/// One model's AUC and DeLong's structural components (Sun & Xu's V10 and V01): one
/// value per positive and per negative image.
struct Components {
    auc: f64,
    positives: Vec<f64>,
    negatives: Vec<f64>,
}

fn components(pos: &[f64], neg: &[f64]) -> Components {
    let (m, n) = (pos.len() as f64, neg.len() as f64);
    let all: Vec<f64> = pos.iter().chain(neg).copied().collect();
    let (tx, ty, tz) = (midranks(pos), midranks(neg), midranks(&all));
    let auc = tz[..pos.len()].iter().sum::<f64>() / m / n - (m + 1.0) / 2.0 / n;
    let positives = tz[..pos.len()].iter().zip(&tx).map(|(z, x)| (z - x) / n).collect();
    let negatives = tz[pos.len()..].iter().zip(&ty).map(|(z, y)| 1.0 - (z - y) / m).collect();
    Components { auc, positives, negatives }
}

/// Sample covariance (denominator `len - 1`) of two equally long series.
fn covariance(x: &[f64], y: &[f64]) -> f64 {
    let len = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / len, y.iter().sum::<f64>() / len);
    x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum::<f64>() / (len - 1.0)
}

/// DeLong's test that models A and B (scores `a` and `b` of the same images, in the same
/// order) have the same ROC AUC. `None` when the lengths differ, with fewer than two
/// positive or two negative images, or when the difference has no variance but the AUCs
/// differ (each model separates the classes perfectly, one of them backwards).
pub fn delong(positive: &[bool], a: &[f64], b: &[f64]) -> Option<DeLong> {
    if a.len() != positive.len() || b.len() != positive.len() {
        return None;
    }
    let split = |s: &[f64], want: bool| -> Vec<f64> {
        s.iter().zip(positive).filter(|(_, p)| **p == want).map(|(v, _)| *v).collect()
    };
    let (m, n) = (positive.iter().filter(|p| **p).count(), positive.iter().filter(|p| !**p).count());
    if m < 2 || n < 2 {
        return None;
    }
    let ca = components(&split(a, true), &split(a, false));
    let cb = components(&split(b, true), &split(b, false));
    let part = |x: &Components, y: &Components| {
        covariance(&x.positives, &y.positives) / m as f64 + covariance(&x.negatives, &y.negatives) / n as f64
    };
    let (var_a, var_b, cov) = (part(&ca, &ca), part(&cb, &cb), part(&ca, &cb));
    let var_diff = var_a + var_b - 2.0 * cov;
    let diff = cb.auc - ca.auc;
    let (z, p) = if var_diff > 1e-14 * (var_a + var_b) {
        let z = diff / var_diff.sqrt();
        (z, normal_two_sided(z))
    } else if diff.abs() < 1e-12 {
        (0.0, 1.0)
    } else {
        return None;
    };
    Some(DeLong { auc_a: ca.auc, auc_b: cb.auc, var_a, var_b, covariance: cov, z, p })
}

/// With fewer discordant pairs than this, McNemar's test is the exact binomial one.
pub const MCNEMAR_EXACT_BELOW: usize = 25;

/// McNemar's test that models A and B are right equally often on the same images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// Images A called right and B wrong.
    pub b: usize,
    /// Images A called wrong and B right.
    pub c: usize,
    /// The exact binomial test (`b + c < 25`), else chi-square with continuity correction.
    pub exact: bool,
    /// The corrected chi-square statistic (`None` for the exact test).
    pub statistic: Option<f64>,
    /// Two-sided p-value.
    pub p: f64,
}

impl McNemar {
    /// The test from the discordant counts, by the method their number calls for.
    pub fn of_counts(b: usize, c: usize) -> McNemar {
        if b + c < MCNEMAR_EXACT_BELOW {
            McNemar { b, c, exact: true, statistic: None, p: mcnemar_exact(b, c) }
        } else {
            let (statistic, p) = mcnemar_chi_square(b, c);
            McNemar { b, c, exact: false, statistic: Some(statistic), p }
        }
    }

    /// The test from whether each image was called right by A and by B (pairs in order).
    pub fn of_calls(a_right: &[bool], b_right: &[bool]) -> McNemar {
        let b = a_right.iter().zip(b_right).filter(|(a, b)| **a && !**b).count();
        let c = a_right.iter().zip(b_right).filter(|(a, b)| !**a && **b).count();
        McNemar::of_counts(b, c)
    }

    /// `exact binomial` or `chi-square, continuity-corrected`.
    pub fn method(&self) -> &'static str {
        if self.exact { "exact binomial" } else { "chi-square, continuity-corrected" }
    }
}

/// Exact McNemar p-value: `min(1, 2 P(X <= min(b, c)))` for `X ~ Binomial(b + c, 1/2)`, as
/// statsmodels' `mcnemar(table, exact=True)`; 1 without discordant pairs.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    (2.0 * binomial_half_cdf(b.min(c), b + c)).min(1.0)
}

/// McNemar's chi-square with Edwards' continuity correction, `(|b - c| - 1)^2 / (b + c)`, and
/// its p-value (1 degree of freedom), as statsmodels' `mcnemar(table, exact=False)`, except
/// that the corrected difference is never below 0: with `b = c` the statistic is 0 and p = 1
/// (statsmodels gives `1 / (b + c)`). Without discordant pairs: `(0, 1)`.
pub fn mcnemar_chi_square(b: usize, c: usize) -> (f64, f64) {
    if b + c == 0 {
        return (0.0, 1.0);
    }
    let corrected = (b.abs_diff(c) as f64 - 1.0).max(0.0);
    let statistic = corrected * corrected / (b + c) as f64;
    (statistic, chi_square_1_sf(statistic))
}

#[cfg(test)]
#[path = "paired_tests.rs"]
mod tests;
