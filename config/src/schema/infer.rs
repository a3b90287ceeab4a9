//! `infer`: device, batching, decision threshold and output format of predictions.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Inference settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Infer {
    pub device: Device,
    pub batch_size: usize,
    pub threshold: Threshold,
    pub format: OutputFormat,
    /// Label-free adaptation of the probabilities to each cohort predicted on.
    pub adaptation: Adaptation,
}

impl Default for Infer {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            batch_size: 32,
            threshold: Threshold::Fixed(0.5),
            format: OutputFormat::Csv,
            adaptation: Adaptation::None,
        }
    }
}

/// How `infer` adapts a model to the cohort it predicts on, from that cohort's images
/// alone (never its labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Adaptation {
    /// The model's probabilities as they are.
    None,
    /// Re-estimate the cohort's prevalence from its unlabelled images (EM) and correct
    /// every probability to it; the threshold then applies to the corrected probabilities.
    Prior,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda,
    /// CUDA when it registers, else CPU; the provider that ran is logged.
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Csv,
    Jsonl,
}

/// Decision threshold on the positive class probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Fixed(f64),
    /// The operating point chosen on validation (`report.target_sensitivity`).
    FromValidation,
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Threshold::Fixed(t) => s.serialize_f64(*t),
            Threshold::FromValidation => s.serialize_str("from-validation"),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Name(String),
        }
        const EXPECTED: &str = "expected a number in [0, 1] or \"from-validation\"";
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(EXPECTED))? {
            Raw::Number(t) if (0.0..=1.0).contains(&t) => Ok(Threshold::Fixed(t)),
            Raw::Number(t) => Err(serde::de::Error::custom(format!("{t} is out of range, {EXPECTED}"))),
            Raw::Name(n) if n == "from-validation" => Ok(Threshold::FromValidation),
            Raw::Name(n) => Err(serde::de::Error::custom(format!("unknown value {n:?}, {EXPECTED}"))),
        }
    }
}
