//! `infer.adaptation: prior`: each cohort's probabilities corrected to the prevalence
//! re-estimated from its own unlabelled images (`cxr_metrics::estimate_prior`). Labels,
//! where a split has them, are never read here.

use anyhow::bail;
use cxr_store::predictions::{Prediction, PriorAdaptation};

use crate::ModelFile;
use cxr_metrics::decide;

/// Fewer images than this give a prevalence estimate too noisy to correct anything with.
pub const MIN_IMAGES: usize = 20;

/// Why `infer.adaptation: prior` cannot run with this model, if it cannot.
pub fn check_model(info: &ModelFile) -> anyhow::Result<f64> {
    if info.classes.len() != 2 {
        bail!(
            "infer.adaptation: prior needs a model with two classes; {} has {}",
            info.path.display(),
            info.classes.len()
        );
    }
    match info.meta.prior {
        Some(prior) => Ok(prior),
        None => bail!(
            "infer.adaptation: prior: {} records no prior ({} metadata); retrain it with this version, or set infer.adaptation: none",
            info.path.display(),
            cxr_store::model_meta::PRIOR
        ),
    }
}

/// Corrects `predictions` (one cohort, `source`) to its estimated prevalence and decides
/// again at `threshold` on the corrected probabilities.
pub fn adapt(
    source: &str,
    predictions: &mut [Prediction],
    info: &ModelFile,
    model_prior: f64,
    threshold: f64,
) -> anyhow::Result<PriorAdaptation> {
    if predictions.len() < MIN_IMAGES {
        bail!(
            "infer.adaptation: prior: {source} has {} image(s); estimating a cohort's prevalence needs at least {MIN_IMAGES} of its images in one run",
            predictions.len()
        );
    }
    let positive = info.positive;
    let scores: Vec<f64> = predictions.iter().map(|p| p.probabilities[positive]).collect();
    let Some(found) = cxr_metrics::estimate_prior(&scores, model_prior) else {
        bail!("infer.adaptation: prior: no estimate for {source} from model prior {model_prior}");
    };
    if !found.converged {
        tracing::warn!("{source}: the prevalence estimate had not settled after {} iterations", found.iterations);
    }
    for prediction in predictions.iter_mut() {
        let p = cxr_metrics::shift_prior(prediction.probabilities[positive], model_prior, found.prior);
        prediction.probabilities[positive] = p;
        prediction.probabilities[1 - positive] = 1.0 - p;
        prediction.predicted = info.classes[decide(&prediction.probabilities, positive, threshold)].clone();
    }
    tracing::info!(
        "{source}: probabilities adapted without labels to an estimated {} share of {:.3} (the model assumes {:.3}; {} images)",
        info.classes[positive],
        found.prior,
        model_prior,
        predictions.len()
    );
    Ok(PriorAdaptation {
        source: source.to_string(),
        images: predictions.len(),
        model_prior,
        estimated_prior: found.prior,
        iterations: found.iterations,
        converged: found.converged,
    })
}
