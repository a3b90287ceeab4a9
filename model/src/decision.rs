//! The decision threshold on the positive class's probability: `infer.threshold` read
//! against the model's own metadata, so that a model from another experiment decides as it
//! did there. `infer` applies it and `report` states it; neither resolves it itself.

use std::path::Path;

use cxr_config::Threshold;
use cxr_store::operating_point::OperatingPoint;

use crate::{ModelError, ModelFile};

/// The threshold a run decides with, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub threshold: f64,
    /// How it was set: fixed, or chosen on which images.
    pub source: String,
    /// The sensitivity it was chosen to reach, when it was chosen on a validation split.
    pub target_sensitivity: Option<f64>,
    /// Said when the model carries no threshold and its experiment's
    /// `train/operating_point.json` was used instead.
    pub fallback: Option<String>,
}

const NOT_USED: &str = "not used: with three or more classes each image is called by its largest probability";

impl ModelFile {
    /// The threshold `policy` means for this model. A model that carries none (exported
    /// before thresholds were recorded) falls back to `operating_point`, its experiment's
    /// `train/operating_point.json`, when that exists.
    pub fn decision(&self, policy: Threshold, operating_point: &Path) -> Result<Decision, ModelError> {
        let decided = |threshold, source: String, target_sensitivity| Decision {
            threshold,
            source,
            target_sensitivity,
            fallback: None,
        };
        if self.classes.len() != 2 {
            return Ok(decided(0.5, NOT_USED.into(), None));
        }
        match (policy, self.meta.threshold) {
            (Threshold::Fixed(t), _) => Ok(decided(t, format!("fixed at {t} (infer.threshold)"), None)),
            (Threshold::FromValidation, Some(t)) => Ok(decided(
                t,
                format!(
                    "from the model's metadata: {}",
                    self.meta.threshold_chosen_on.as_deref().unwrap_or("chosen on its validation split")
                ),
                self.meta.threshold_target_sensitivity,
            )),
            (Threshold::FromValidation, None) if operating_point.is_file() => {
                let op = OperatingPoint::read(operating_point)?;
                Ok(Decision {
                    threshold: op.threshold,
                    source: format!("chosen on the val split ({})", operating_point.display()),
                    target_sensitivity: Some(op.target_sensitivity),
                    fallback: Some(format!(
                        "{} carries no validation threshold; using {}",
                        self.path.display(),
                        operating_point.display()
                    )),
                })
            }
            (Threshold::FromValidation, None) => Err(ModelError::Threshold {
                path: self.path.clone(),
                message: "infer.threshold is from-validation but the model carries no validation threshold (its validation split had no positive image); set infer.threshold to a number".into(),
            }),
        }
    }
}
