//! Metrics of a binary screening classifier, computed one way for every stage:
//! confusion counts at a threshold, ROC curve and AUC (ties handled as the
//! Mann-Whitney statistic), Wilson intervals for proportions, a seeded bootstrap
//! interval for AUC, the threshold that reaches a target sensitivity, calibration
//! (Brier, reliability, ECE, temperature), label-free prior re-estimation (`prior.rs`) and
//! paired tests of two models on the same images, DeLong and McNemar (`paired.rs`).
//!
//! Degenerate inputs (one class only, empty) give `None`/NaN-free results
//! rather than panics: a rate with a zero denominator is `None`. Scores are
//! ordered by `f64::total_cmp`, so NaN and infinite scores (which the stages
//! refuse before they get here) can never hang or panic a metric.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

mod paired;
mod prior;
mod special;
pub use paired::{DeLong, MCNEMAR_EXACT_BELOW, McNemar, delong, mcnemar_chi_square, mcnemar_exact};
pub use prior::{PriorEstimate, estimate_prior, shift_prior};
pub use special::{binomial_half_cdf, chi_square_1_sf, erfc, normal_two_sided};

/// Counts at one threshold; "positive" is the class whose recall is sensitivity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    pub fn_: usize,
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Confusion {
    /// Counts for scores `>= threshold` called positive.
    pub fn at(scores: &[f64], positive: &[bool], threshold: f64) -> Confusion {
        Confusion::of_calls(scores.iter().map(|&s| s >= threshold), positive.iter().copied())
    }

    /// Counts of `called` positive against `actual` positive, pair by pair (decisions
    /// made elsewhere, e.g. the `predicted` column of a predictions file).
    pub fn of_calls(called: impl IntoIterator<Item = bool>, actual: impl IntoIterator<Item = bool>) -> Confusion {
        let mut c = Confusion::default();
        for (called, actual) in called.into_iter().zip(actual) {
            match (called, actual) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }
    pub fn positives(&self) -> usize {
        self.tp + self.fn_
    }
    pub fn negatives(&self) -> usize {
        self.tn + self.fp
    }
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.tp + self.tn, self.total())
    }
    /// Recall of the positive class.
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(self.tp, self.positives())
    }
    /// Recall of the negative class.
    pub fn specificity(&self) -> Option<f64> {
        ratio(self.tn, self.negatives())
    }
    /// Positive predictive value.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }
    /// Negative predictive value.
    pub fn npv(&self) -> Option<f64> {
        ratio(self.tn, self.tn + self.fn_)
    }
    pub fn f1(&self) -> Option<f64> {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
    pub fn balanced_accuracy(&self) -> Option<f64> {
        Some((self.sensitivity()? + self.specificity()?) / 2.0)
    }
}

/// ROC AUC: the probability that a random positive scores above a random negative
/// (ties count one half). `None` when either class is absent.
pub fn auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(positive.iter().copied()).collect();
    let n_pos = pairs.iter().filter(|p| p.1).count();
    let n_neg = pairs.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of ranks of positives, with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j + 1 < pairs.len() && pairs[j + 1].0.total_cmp(&pairs[i].0).is_eq() {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * pairs[i..=j].iter().filter(|p| p.1).count() as f64;
        i = j + 1;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// One point of a ROC curve: calling scores `>= threshold` positive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub fpr: f64,
    pub tpr: f64,
}

/// The ROC curve at every distinct score, from (0,0) (threshold +inf) to (1,1).
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Vec<RocPoint> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let rate = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let mut points = vec![RocPoint { threshold: f64::INFINITY, fpr: 0.0, tpr: 0.0 }];
    let (mut tp, mut fp) = (0, 0);
    let mut k = 0;
    while k < order.len() {
        let threshold = scores[order[k]];
        // `total_cmp`, not `==`: a NaN score equals itself here, so the loop always advances.
        while k < order.len() && scores[order[k]].total_cmp(&threshold).is_eq() {
            if positive[order[k]] {
                tp += 1;
            } else {
                fp += 1;
            }
            k += 1;
        }
        points.push(RocPoint { threshold, fpr: rate(fp, n_neg), tpr: rate(tp, n_pos) });
    }
    points
}

/// A threshold whose sensitivity reaches `target` with specificity as high as it
/// can be there. It lies midway between the score that reaches the target and the
/// next lower score, so the same decisions survive tiny numeric differences
/// between the graph that chose it and the one applying it. `None` without positives.
pub fn threshold_for_sensitivity(scores: &[f64], positive: &[bool], target: f64) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    if n_pos == 0 {
        return None;
    }
    let curve = roc_curve(scores, positive);
    let k = curve.iter().skip(1).position(|p| p.tpr >= target - 1e-12)? + 1;
    let at = curve[k].threshold;
    Some(match curve.get(k + 1) {
        Some(next) => (at + next.threshold) / 2.0,
        None => at - (at.abs() * 1e-6).max(1e-9),
    })
}

/// The class called for `probs`: with two classes the positive class wins at `threshold`
/// (a probability equal to it is positive), with three or more the largest probability.
pub fn decide(probs: &[f64], positive: usize, threshold: f64) -> usize {
    if probs.len() == 2 {
        if probs[positive] >= threshold { positive } else { 1 - positive }
    } else {
        (0..probs.len()).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap_or(0)
    }
}

/// One-sided Mann-Whitney U test that `x` tends to be larger than `y`: the p-value by the
/// normal approximation with tie and continuity corrections, as scipy's
/// `mannwhitneyu(x, y, alternative="greater", method="asymptotic")`. `None` when either is
/// empty or every value ties.
pub fn mann_whitney_greater(x: &[f64], y: &[f64]) -> Option<f64> {
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x.iter().map(|&v| (v, true)).chain(y.iter().map(|&v| (v, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len() as f64;
    let (mut rank_x, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_x += rank * all[i..=j].iter().filter(|a| a.1).count() as f64;
        i = j + 1;
    }
    let u = rank_x - nx * (nx + 1.0) / 2.0;
    let variance = nx * ny / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return None;
    }
    let z = (u - nx * ny / 2.0 - 0.5) / variance.sqrt();
    Some(0.5 * erfc(z / std::f64::consts::SQRT_2))
}

/// Wilson score interval for `successes / n` at 95% (z = 1.959964). `None` when `n == 0`.
pub fn wilson(successes: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let z = 1.959_963_984_540_054_f64;
    let n = n as f64;
    let p = successes as f64 / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Percentile bootstrap 95% interval of the AUC, resampling positives and negatives
/// separately (stratified), seeded. `None` when either class is absent or `resamples == 0`.
pub fn auc_bootstrap(scores: &[f64], positive: &[bool], resamples: usize, seed: u64) -> Option<(f64, f64)> {
    let pos: Vec<f64> = scores.iter().zip(positive).filter(|p| *p.1).map(|p| *p.0).collect();
    let neg: Vec<f64> = scores.iter().zip(positive).filter(|p| !*p.1).map(|p| *p.0).collect();
    if pos.is_empty() || neg.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut aucs = Vec::with_capacity(resamples);
    let labels: Vec<bool> = std::iter::repeat_n(true, pos.len()).chain(std::iter::repeat_n(false, neg.len())).collect();
    let mut sample = vec![0.0; labels.len()];
    for _ in 0..resamples {
        for (k, s) in sample.iter_mut().enumerate() {
            *s = if k < pos.len() { pos[rng.random_range(0..pos.len())] } else { neg[rng.random_range(0..neg.len())] };
        }
        aucs.push(auc(&sample, &labels).expect("both classes present"));
    }
    aucs.sort_by(f64::total_cmp);
    let at = |q: f64| aucs[((q * (aucs.len() - 1) as f64).round() as usize).min(aucs.len() - 1)];
    Some((at(0.025), at(0.975)))
}

/// Mean cross-entropy of class probabilities against labels (clamped away from log 0).
pub fn log_loss(probabilities: &[Vec<f64>], labels: &[usize]) -> Option<f64> {
    if labels.is_empty() {
        return None;
    }
    let sum: f64 = probabilities.iter().zip(labels).map(|(p, &l)| -p[l].clamp(1e-15, 1.0).ln()).sum();
    Some(sum / labels.len() as f64)
}

/// Brier score of the positive-class probabilities: mean of `(p - y)^2`. `None` when empty.
pub fn brier(scores: &[f64], positive: &[bool]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let sum: f64 = scores.iter().zip(positive).map(|(&s, &p)| (s - if p { 1.0 } else { 0.0 }).powi(2)).sum();
    Some(sum / scores.len() as f64)
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    /// Mean predicted probability in the bin.
    pub mean_predicted: f64,
    /// Share of positives in the bin.
    pub fraction_positive: f64,
}

/// Equal-width bins over [0, 1], binned as scikit-learn's `calibration_curve(strategy="uniform")`
/// does (a score on an inner edge falls in the lower bin); empty bins are left out.
pub fn reliability(scores: &[f64], positive: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let bins = bins.max(1);
    let step = 1.0 / bins as f64;
    // Edges as numpy's linspace makes them (k * step), so that ties at edges agree with it.
    let inner: Vec<f64> = (1..bins).map(|k| k as f64 * step).collect();
    binned(scores, positive, &inner, |b| (b as f64 * step, (b + 1) as f64 * step))
}

/// The scores' bins between `inner` edges (a score on an edge in the lower bin, as numpy's
/// `searchsorted` puts it), each with its edges from `edges(bin)`; empty bins are left out.
fn binned(
    scores: &[f64],
    positive: &[bool],
    inner: &[f64],
    edges: impl Fn(usize) -> (f64, f64),
) -> Vec<ReliabilityBin> {
    let mut sums = vec![(0usize, 0.0f64, 0usize); inner.len() + 1];
    for (&s, &p) in scores.iter().zip(positive) {
        if !s.is_finite() {
            continue;
        }
        let b = inner.partition_point(|&e| e < s);
        sums[b].0 += 1;
        sums[b].1 += s;
        sums[b].2 += p as usize;
    }
    sums.iter()
        .enumerate()
        .filter(|(_, (n, _, _))| *n > 0)
        .map(|(b, &(n, sum, pos))| {
            let (lo, hi) = edges(b);
            ReliabilityBin {
                lo,
                hi,
                count: n,
                mean_predicted: sum / n as f64,
                fraction_positive: pos as f64 / n as f64,
            }
        })
        .collect()
}

/// Equal-count bins, as scikit-learn's `calibration_curve(strategy="quantile")` makes them:
/// edges at the scores' quantiles (numpy's linear interpolation), a score on an inner edge
/// in the lower bin, empty bins (from tied edges) left out. For small sets, where most
/// equal-width bins would hold a handful of images.
pub fn reliability_equal_count(scores: &[f64], positive: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let bins = bins.max(1);
    let mut sorted: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    if sorted.is_empty() {
        return Vec::new();
    }
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let pos = q * (sorted.len() - 1) as f64;
        let (i, frac) = (pos.floor() as usize, pos.fract());
        let next = sorted[(i + 1).min(sorted.len() - 1)];
        sorted[i] + frac * (next - sorted[i])
    };
    let edges: Vec<f64> = (0..=bins).map(|k| quantile(k as f64 / bins as f64)).collect();
    binned(scores, positive, &edges[1..bins], |b| (edges[b], edges[b + 1]))
}

/// Expected calibration error over `bins` equal-width bins: the count-weighted mean of
/// `|fraction positive - mean predicted|`. `None` when empty.
pub fn expected_calibration_error(scores: &[f64], positive: &[bool], bins: usize) -> Option<f64> {
    let table = reliability(scores, positive, bins);
    let total: usize = table.iter().map(|b| b.count).sum();
    (total > 0).then(|| {
        table.iter().map(|b| b.count as f64 * (b.fraction_positive - b.mean_predicted).abs()).sum::<f64>()
            / total as f64
    })
}

/// Class probabilities with temperature `t` applied to their logits (`ln p`):
/// `softmax(ln p / t)`. `t > 1` softens, `t < 1` sharpens; the ranking is unchanged.
pub fn apply_temperature(probabilities: &[f64], t: f64) -> Vec<f64> {
    let logits: Vec<f64> = probabilities.iter().map(|p| p.max(1e-300).ln() / t).collect();
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

/// The temperature in [0.05, 20] that minimises the mean cross-entropy of
/// `apply_temperature(p, t)` against `labels` (golden-section search on ln t; the loss is
/// convex in 1/t). `None` without labels.
pub fn fit_temperature(probabilities: &[Vec<f64>], labels: &[usize]) -> Option<f64> {
    if labels.is_empty() {
        return None;
    }
    let nll = |ln_t: f64| {
        let t = ln_t.exp();
        let calibrated: Vec<Vec<f64>> = probabilities.iter().map(|p| apply_temperature(p, t)).collect();
        log_loss(&calibrated, labels).unwrap_or(f64::INFINITY)
    };
    let (mut a, mut b) = (0.05f64.ln(), 20f64.ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - ratio * (b - a), a + ratio * (b - a));
    let (mut fc, mut fd) = (nll(c), nll(d));
    for _ in 0..80 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - ratio * (b - a);
            fc = nll(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + ratio * (b - a);
            fd = nll(d);
        }
    }
    Some(((a + b) / 2.0).exp())
}

/// Each class's ROC AUC against the rest, from its own probability column
/// (`probabilities[row][class]`). `None` for a class without images of it or of the rest.
pub fn one_vs_rest_auc(probabilities: &[Vec<f64>], labels: &[usize], classes: usize) -> Vec<Option<f64>> {
    (0..classes)
        .map(|k| {
            let scores: Vec<f64> = probabilities.iter().map(|p| p[k]).collect();
            let actual: Vec<bool> = labels.iter().map(|&l| l == k).collect();
            auc(&scores, &actual)
        })
        .collect()
}

/// The mean one-vs-rest AUC over classes; `None` unless every class has one. With two
/// classes both AUCs equal the binary AUC, and so does this.
pub fn macro_auc(probabilities: &[Vec<f64>], labels: &[usize], classes: usize) -> Option<f64> {
    let aucs: Option<Vec<f64>> = one_vs_rest_auc(probabilities, labels, classes).into_iter().collect();
    aucs.filter(|a| !a.is_empty()).map(|a| a.iter().sum::<f64>() / a.len() as f64)
}

/// A percentile 95% bootstrap interval that resamples groups (patients), not rows: every
/// resample draws as many groups as there are, with replacement, separately among groups
/// with a positive row and groups without (so both classes stay present), and evaluates
/// `stat` on the rows of the drawn groups. Resamples where `stat` is `None` are skipped.
/// `None` when no resample gives a value or `resamples == 0`.
pub fn group_bootstrap(
    groups: &[usize],
    positive: &[bool],
    resamples: usize,
    seed: u64,
    stat: impl Fn(&[usize]) -> Option<f64>,
) -> Option<(f64, f64)> {
    let mut members: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for (row, &g) in groups.iter().enumerate() {
        members.entry(g).or_default().push(row);
    }
    let (pos, neg): (Vec<&Vec<usize>>, Vec<&Vec<usize>>) =
        members.values().partition(|rows| rows.iter().any(|&r| positive[r]));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(resamples);
    let mut rows = Vec::with_capacity(groups.len());
    for _ in 0..resamples {
        rows.clear();
        for stratum in [&pos, &neg] {
            for _ in 0..stratum.len() {
                rows.extend_from_slice(stratum[rng.random_range(0..stratum.len())]);
            }
        }
        if let Some(v) = stat(&rows).filter(|v| v.is_finite()) {
            values.push(v);
        }
    }
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((q * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)];
    Some((at(0.025), at(0.975)))
}

#[cfg(test)]
mod tests;
