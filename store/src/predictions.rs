//! Prediction files written by `infer`: CSV `path,label,predicted,p_<CLASS>...`
//! (`label` empty when unknown) or JSON lines.

use std::io::Write;
use std::path::Path;

use cxr_config::OutputFormat;
use serde::{Deserialize, Serialize};

use crate::{AtomicFile, StoreError};

/// `EXP/predictions/model.json`: which model made the predictions beside it, and the
/// threshold it decided with, so that `report` can say so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionSource {
    pub model_path: String,
    pub model_sha256: String,
    /// The experiment the model was trained in (its metadata), if recorded.
    pub experiment: Option<String>,
    /// True when the model is not this experiment's own `train/model.onnx`.
    pub external: bool,
    pub backbone: String,
    pub temperature: f64,
    pub threshold: f64,
    /// How the threshold was set: fixed, or chosen on which images.
    pub threshold_source: String,
    /// The sources whose probabilities were adapted to their cohort without labels
    /// (`infer.adaptation`); empty when none was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adaptation: Vec<PriorAdaptation>,
    /// What did not belong together when `infer --allow-stale` made these predictions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<String>,
}

/// One source's label-free prior adaptation: its probabilities in the predictions file are
/// the model's corrected from `model_prior` to `estimated_prior`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorAdaptation {
    /// The predictions file's stem: a split name, or `files`.
    pub source: String,
    /// The unlabelled images the prior was estimated from.
    pub images: usize,
    /// The positive prevalence the model's probabilities assume.
    pub model_prior: f64,
    /// The positive prevalence estimated for this cohort (EM, no labels).
    pub estimated_prior: f64,
    pub iterations: usize,
    pub converged: bool,
}

impl PredictionSource {
    /// The adaptation applied to the predictions of `source`, if any.
    pub fn adaptation_of(&self, source: &str) -> Option<&PriorAdaptation> {
        self.adaptation.iter().find(|a| a.source == source)
    }
}

impl PredictionSource {
    pub fn read(path: &Path) -> Result<PredictionSource, StoreError> {
        crate::read_json(path, "infer")
    }

    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        crate::write_json(path, self)
    }
}

/// One prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub path: String,
    /// The known class, if any (folder name or the split's label).
    pub label: Option<String>,
    pub predicted: String,
    pub probabilities: Vec<f64>,
}

/// Writes predictions atomically in `format`.
pub fn write(path: &Path, format: OutputFormat, classes: &[String], rows: &[Prediction]) -> Result<(), StoreError> {
    let csv_err = |e: csv::Error| StoreError::Format { path: path.to_path_buf(), message: e.to_string() };
    let io_err = |e: std::io::Error| StoreError::io(path, e);
    let mut file = AtomicFile::create(path)?;
    match format {
        OutputFormat::Csv => {
            let mut header = vec!["path".to_string(), "label".into(), "predicted".into()];
            header.extend(classes.iter().map(|c| format!("p_{c}")));
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let records = rows.iter().map(|r| {
                let mut rec = vec![r.path.clone(), r.label.clone().unwrap_or_default(), r.predicted.clone()];
                rec.extend(r.probabilities.iter().map(|p| format!("{p:.6}")));
                rec
            });
            file.write_all(&crate::csv_file::encode(&header, records).map_err(csv_err)?).map_err(io_err)?;
        }
        OutputFormat::Jsonl => {
            for r in rows {
                let probs: serde_json::Map<String, serde_json::Value> =
                    classes.iter().zip(&r.probabilities).map(|(c, p)| (c.clone(), serde_json::json!(p))).collect();
                let line = serde_json::json!({
                    "path": r.path,
                    "label": r.label,
                    "predicted": r.predicted,
                    "probabilities": probs,
                });
                writeln!(file, "{line}").map_err(io_err)?;
            }
        }
    }
    file.commit()?;
    Ok(())
}

/// Reads a predictions CSV; returns the class names from its `p_<CLASS>` columns and the rows.
pub fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Prediction>), StoreError> {
    let bad = |message: String| StoreError::Format { path: path.to_path_buf(), message };
    let (header, records) = crate::csv_file::read_records(path)?;
    if header.len() < 4 || &header[0] != "path" || &header[1] != "label" || &header[2] != "predicted" {
        return Err(bad("expected columns path,label,predicted,p_<CLASS>...".into()));
    }
    let classes: Vec<String> = header
        .iter()
        .skip(3)
        .map(|h| h.strip_prefix("p_").map(str::to_string).ok_or_else(|| bad(format!("column {h:?} is not p_<CLASS>"))))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for (i, record) in records.into_iter().enumerate() {
        let probabilities = record
            .iter()
            .skip(3)
            .map(|v| parse_probability(v).ok_or_else(|| bad(format!("row {}: {v:?} is not a probability", i + 2))))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(Prediction {
            path: record[0].to_string(),
            label: Some(record[1].to_string()).filter(|l| !l.is_empty()),
            predicted: record[2].to_string(),
            probabilities,
        });
    }
    Ok((classes, rows))
}

/// A probability cell: a finite number in [0, 1]. "NaN", "inf" and "-0.5" parse as
/// floats but are not probabilities; letting them through would corrupt every metric.
fn parse_probability(cell: &str) -> Option<f64> {
    let p: f64 = cell.trim().parse().ok()?;
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_or_out_of_range_probabilities_are_errors_naming_the_row() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["NaN", "inf", "-inf", "1.5", "-0.1", ""] {
            let path = dir.path().join("p.csv");
            let text = format!("path,label,predicted,p_A,p_B\na.png,A,A,0.9,0.1\nb.png,B,B,0.2,{bad}\n");
            std::fs::write(&path, text).unwrap();
            let err = read_csv(&path).unwrap_err().to_string();
            assert!(err.contains("p.csv") && err.contains("row 3"), "{bad}: {err}");
        }
        let path = dir.path().join("ok.csv");
        std::fs::write(&path, "path,label,predicted,p_A,p_B\na.png,,A,1.000000,0.000000\n").unwrap();
        let (classes, rows) = read_csv(&path).unwrap();
        assert_eq!(classes, ["A", "B"]);
        assert_eq!(rows[0].probabilities, [1.0, 0.0]);
        assert_eq!(rows[0].label, None);
    }
}
