//! The cohort-shift monitor at prediction time: each image's `shift_score` (the model's
//! second output) against the validation images' scores that `model.onnx` carries, and a
//! cohort's verdict: the share of images above validation's 99th percentile and a one-sided
//! Mann-Whitney test of its scores against validation's. A rank test needs no assumption
//! about the scores' distribution, and it asks the question a user has: are these images,
//! as a group, further from the training data than images like the training data are?

use cxr_store::model_meta::ShiftMeta;
use cxr_store::predictions::{CohortShift, Prediction, ShiftSummary};

/// A cohort is called shifted when its test says so at this level...
pub const P_VALUE: f64 = 0.01;
/// ...and more than this share of its images is flagged (about 1% would be, at random).
pub const FLAGGED_SHARE: f64 = 0.05;

/// What a cohort is compared with: the validation images' scores and the flag threshold.
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a> {
    pub val_scores: &'a [f32],
    pub threshold: f64,
}

impl<'a> From<&'a ShiftMeta> for Reference<'a> {
    fn from(meta: &'a ShiftMeta) -> Self {
        Reference { val_scores: &meta.val_scores, threshold: meta.p99 }
    }
}

/// The verdict on `scores`, named `source`.
pub fn summarize(source: &str, scores: &[f64], against: Reference) -> ShiftSummary {
    let flagged = scores.iter().filter(|&&s| s > against.threshold).count();
    let flagged_share = if scores.is_empty() { 0.0 } else { flagged as f64 / scores.len() as f64 };
    let reference: Vec<f64> = against.val_scores.iter().map(|&v| v as f64).collect();
    let p_value = cxr_metrics::mann_whitney_greater(scores, &reference).unwrap_or(1.0);
    ShiftSummary {
        source: source.to_string(),
        images: scores.len(),
        flagged_share,
        p_value,
        threshold: against.threshold,
        median_score: median(scores),
        val_median_score: median(&reference),
        shifted: p_value < P_VALUE && flagged_share > FLAGGED_SHARE,
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The verdict on merged shard predictions: every source's scores, read back from the
/// predictions files, against the reference the shards' `model.json` recorded.
pub fn merged(recorded: &CohortShift, sources: &[(String, Vec<Prediction>)]) -> CohortShift {
    let against = Reference { val_scores: &recorded.val_scores, threshold: recorded.all.threshold };
    let mut all = Vec::new();
    let mut summaries = Vec::new();
    for (name, predictions) in sources {
        let scores: Vec<f64> = predictions.iter().filter_map(|p| p.shift.map(|s| s.0)).collect();
        if !scores.is_empty() {
            summaries.push(summarize(name, &scores, against));
            all.extend(scores);
        }
    }
    CohortShift { all: summarize("all", &all, against), sources: summaries, val_scores: recorded.val_scores.clone() }
}

/// Collects each source's scores during a run, then the run's verdict.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    all: Vec<f64>,
    sources: Vec<ShiftSummary>,
}

impl Monitor {
    /// Adds the predictions of `source`; warns on stderr when they look shifted.
    pub fn add(&mut self, source: &str, predictions: &[Prediction], meta: &ShiftMeta) {
        let scores: Vec<f64> = predictions.iter().filter_map(|p| p.shift.map(|s| s.0)).collect();
        if scores.is_empty() {
            return;
        }
        let summary = summarize(source, &scores, meta.into());
        if summary.shifted {
            tracing::warn!(
                "{source}: {:.0}% of these {} images lie outside what the model saw in training (shift score above {:.3}; p = {:.2e}): its figures may not hold here",
                summary.flagged_share * 100.0,
                summary.images,
                summary.threshold,
                summary.p_value
            );
        }
        self.all.extend(scores);
        self.sources.push(summary);
    }

    /// The run's verdict: every image, and each source.
    pub fn finish(self, meta: &ShiftMeta) -> Option<CohortShift> {
        (!self.sources.is_empty()).then(|| CohortShift {
            all: summarize("all", &self.all, meta.into()),
            sources: self.sources,
            val_scores: meta.val_scores.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ShiftMeta {
        let val_scores: Vec<f32> = (0..200).map(|i| 0.8 + i as f32 * 0.002).collect();
        ShiftMeta { features: "x".into(), dim: 4, shrinkage: 0.1, train_images: 100, p95: 1.18, p99: 1.196, val_scores }
    }

    #[test]
    fn the_cohort_test_raises_false_alarms_at_about_its_nominal_level() {
        // 1000 cohorts of 80 images drawn from the validation images' own distribution.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        // Scores like the monitor's: a square root of a mean of squares, skewed to the right.
        let mut score = || ((0..6).map(|_| (uniform() * 2.0 - 1.0).powi(2)).sum::<f64>() / 2.0).sqrt();
        let mut val: Vec<f32> = (0..400).map(|_| score() as f32).collect();
        val.sort_by(f32::total_cmp);
        let meta = ShiftMeta { val_scores: val.clone(), p99: val[395] as f64, p95: val[379] as f64, ..meta() };
        let (mut alarms, mut shifted) = (0, 0);
        for _ in 0..1000 {
            let cohort: Vec<f64> = (0..80).map(|_| score()).collect();
            let s = summarize("cohort", &cohort, (&meta).into());
            alarms += usize::from(s.p_value < P_VALUE);
            shifted += usize::from(s.shifted);
        }
        // Nominal 1%: 10 of 1000, with a binomial allowance.
        assert!(alarms <= 25, "{alarms} of 1000 in-distribution cohorts had p < 0.01");
        assert!(shifted <= alarms, "the verdict needs the test too");
    }

    #[test]
    fn images_like_validation_pass_and_far_ones_are_called_shifted() {
        let like: Vec<f64> = (0..100).map(|i| 0.81 + i as f64 * 0.0039).collect();
        let s = summarize("test", &like, (&meta()).into());
        assert!(!s.shifted && s.p_value > 0.1 && s.flagged_share < 0.02, "{s:?}");
        let far: Vec<f64> = (0..100).map(|i| if i < 60 { 2.0 + i as f64 * 0.01 } else { 1.0 }).collect();
        let s = summarize("files", &far, (&meta()).into());
        assert!(s.shifted && s.p_value < 1e-6 && (s.flagged_share - 0.6).abs() < 1e-12, "{s:?}");
        assert_eq!(s.threshold, 1.196);
    }
}
