//! Metrics of a binary screening classifier, computed one way for every stage:
//! confusion counts at a threshold, ROC curve and AUC (ties handled as the
//! Mann-Whitney statistic), Wilson intervals for proportions, a seeded bootstrap
//! interval for AUC, and the threshold that reaches a target sensitivity.
//!
//! Degenerate inputs (one class only, empty) give `None`/NaN-free results
//! rather than panics: a rate with a zero denominator is `None`. Scores are
//! ordered by `f64::total_cmp`, so NaN and infinite scores (which the stages
//! refuse before they get here) can never hang or panic a metric.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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
        let mut c = Confusion::default();
        for (&s, &p) in scores.iter().zip(positive) {
            match (s >= threshold, p) {
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

#[cfg(test)]
mod tests;
