//! Label-free adaptation to a new cohort's prevalence: the EM re-estimation of a class
//! prior from unlabelled posteriors (Saerens, Latinne & Decaestecker, Neural Computation
//! 14(1), 2002), and the Bayes correction of a posterior from one prior to another.
//!
//! Both assume the cohort differs from the training images in prevalence only (the images
//! of each class look alike in both); under any other shift the estimate is a guess, which
//! is why `infer` applies it only when asked and says so beside every figure it touches.

/// The prior found by [`estimate_prior`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriorEstimate {
    /// The estimated share of positive images in the cohort.
    pub prior: f64,
    /// EM iterations run.
    pub iterations: usize,
    /// False when it stopped at the iteration limit before the estimate settled.
    pub converged: bool,
}

/// `p`, a positive-class posterior under prior `from`, corrected to prior `to` by Bayes'
/// rule: the likelihood ratio is kept, the prior odds replaced. Monotone in `p`, so the
/// ranking of images (and the ROC curve) is unchanged.
pub fn shift_prior(p: f64, from: f64, to: f64) -> f64 {
    let positive = to / from * p;
    let negative = (1.0 - to) / (1.0 - from) * (1.0 - p);
    if positive + negative > 0.0 { positive / (positive + negative) } else { p }
}

/// The positive prior that makes the cohort's corrected posteriors average to itself: EM
/// from the model's own prior `model_prior` (the prevalence its probabilities assume).
/// Each step corrects every posterior to the current estimate and takes their mean; the
/// likelihood of the unlabelled images never decreases. `None` without images or with a
/// `model_prior` outside (0, 1). The result is clamped to [1e-6, 1 - 1e-6], so that a
/// cohort of one class still gives finite corrections.
pub fn estimate_prior(posteriors: &[f64], model_prior: f64) -> Option<PriorEstimate> {
    const LIMIT: usize = 10_000;
    const TOLERANCE: f64 = 1e-10;
    if posteriors.is_empty() || !(model_prior > 0.0 && model_prior < 1.0) {
        return None;
    }
    let clamp = |x: f64| x.clamp(1e-6, 1.0 - 1e-6);
    let mut prior = model_prior;
    for iteration in 1..=LIMIT {
        let next = clamp(
            posteriors.iter().map(|&p| shift_prior(p, model_prior, prior)).sum::<f64>() / posteriors.len() as f64,
        );
        let settled = (next - prior).abs() < TOLERANCE;
        prior = next;
        if settled {
            return Some(PriorEstimate { prior, iterations: iteration, converged: true });
        }
    }
    Some(PriorEstimate { prior, iterations: LIMIT, converged: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A cohort with positive share `prior` whose scores are exact posteriors under
    /// `model_prior`: each class draws a score from its own Gaussian, and the posterior is
    /// computed from the two densities, as a perfectly calibrated model would give.
    fn cohort(n: usize, prior: f64, model_prior: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let positive = rng.random_bool(prior);
                // Box-Muller: one standard normal draw.
                let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
                let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                let x = z + if positive { 1.0 } else { -1.0 };
                // Likelihood ratio of N(1,1) over N(-1,1) at x is e^{2x}.
                let odds = (2.0 * x).exp() * model_prior / (1.0 - model_prior);
                odds / (1.0 + odds)
            })
            .collect()
    }

    #[test]
    fn em_recovers_the_prevalence_of_a_shifted_cohort() {
        for (truth, seed) in [(0.2, 1), (0.45, 2), (0.62, 3), (0.9, 4)] {
            let posteriors = cohort(20_000, truth, 0.75, seed);
            let found = estimate_prior(&posteriors, 0.75).unwrap();
            assert!(found.converged);
            assert!((found.prior - truth).abs() < 0.02, "true {truth}, estimated {}", found.prior);
        }
    }

    #[test]
    fn a_cohort_like_the_models_own_leaves_the_prior_where_it_was() {
        // Posteriors whose mean is already the model's prior are a fixed point at once.
        let posteriors = [0.1, 0.9, 0.5, 0.7, 0.8];
        let mean = posteriors.iter().sum::<f64>() / posteriors.len() as f64;
        let found = estimate_prior(&posteriors, mean).unwrap();
        assert!((found.prior - mean).abs() < 1e-9);
        assert_eq!(found.iterations, 1);
    }

    #[test]
    fn degenerate_inputs_are_refused_or_clamped() {
        assert_eq!(estimate_prior(&[], 0.5), None);
        assert_eq!(estimate_prior(&[0.5], 0.0), None);
        assert_eq!(estimate_prior(&[0.5], f64::NAN), None);
        let all_negative = estimate_prior(&[0.0; 50], 0.7).unwrap();
        assert!(all_negative.prior > 0.0 && all_negative.prior < 1e-3);
        assert!(shift_prior(0.3, 0.7, all_negative.prior).is_finite());
    }

    #[test]
    fn shifting_to_the_same_prior_is_the_identity_and_shifts_compose() {
        assert!((shift_prior(0.42, 0.7, 0.7) - 0.42).abs() < 1e-12);
        let there = shift_prior(0.42, 0.7, 0.3);
        assert!(there < 0.42);
        assert!((shift_prior(there, 0.3, 0.7) - 0.42).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn shifting_keeps_the_order_of_images(a in 0.0..=1.0f64, b in 0.0..=1.0f64, from in 0.01..0.99f64, to in 0.01..0.99f64) {
            let (sa, sb) = (shift_prior(a, from, to), shift_prior(b, from, to));
            prop_assert!((0.0..=1.0).contains(&sa) && (0.0..=1.0).contains(&sb));
            if a < b { prop_assert!(sa <= sb); }
        }

        #[test]
        fn the_estimate_is_a_probability(p in proptest::collection::vec(0.0..=1.0f64, 1..200), from in 0.01..0.99f64) {
            let found = estimate_prior(&p, from).unwrap();
            prop_assert!(found.prior > 0.0 && found.prior < 1.0);
        }
    }
}
