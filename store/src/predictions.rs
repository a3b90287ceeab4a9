//! Prediction files written by `infer`: CSV `path,label,predicted,p_<CLASS>...`
//! (`label` empty when unknown), with `shift_score,shifted` after them from a model with the
//! shift monitor, or JSON lines.

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
    /// The sensitivity the threshold was chosen to reach, when it came from the model's
    /// validation split (so the report can set what it achieved beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_sensitivity: Option<f64>,
    /// The sources whose probabilities were adapted to their cohort without labels
    /// (`infer.adaptation`); empty when none was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adaptation: Vec<PriorAdaptation>,
    /// What did not belong together when `infer --allow-stale` made these predictions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<String>,
    /// The cohort-shift monitor's verdict on the images predicted (a model with the monitor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<CohortShift>,
}

/// How unlike the model's training images a cohort is: every image predicted in the run,
/// and each source (split or files) on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortShift {
    #[serde(flatten)]
    pub all: ShiftSummary,
    /// One summary per source of the run.
    pub sources: Vec<ShiftSummary>,
    /// The model's validation images' scores (sorted): what the cohorts were compared with.
    #[serde(default)]
    pub val_scores: Vec<f32>,
}

impl CohortShift {
    /// The summary of `source`, if the run predicted it.
    pub fn of(&self, source: &str) -> Option<&ShiftSummary> {
        self.sources.iter().find(|s| s.source == source)
    }
}

/// The shift scores of a group of images against the model's validation images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftSummary {
    /// A split name, `files`, or `all` for every image of the run.
    pub source: String,
    pub images: usize,
    /// The share of images scoring above the validation images' 99th percentile.
    pub flagged_share: f64,
    /// One-sided Mann-Whitney test that the images score higher than the validation
    /// images: small means the cohort is unlike the training data.
    pub p_value: f64,
    /// The score above which an image is `shifted` (validation's 99th percentile).
    pub threshold: f64,
    pub median_score: f64,
    pub val_median_score: f64,
    /// `p_value < 0.01` and more than 5% of the images flagged.
    pub shifted: bool,
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
    /// The shift monitor's score and whether it is above the validation 99th percentile.
    pub shift: Option<(f64, bool)>,
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
            let with_shift = rows.iter().any(|r| r.shift.is_some());
            if with_shift {
                header.extend(["shift_score".to_string(), "shifted".into()]);
            }
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let records = rows.iter().map(|r| {
                let mut rec = vec![r.path.clone(), r.label.clone().unwrap_or_default(), r.predicted.clone()];
                rec.extend(r.probabilities.iter().map(|p| format!("{p:.6}")));
                if with_shift {
                    let (score, shifted) =
                        r.shift.map_or((String::new(), String::new()), |(s, f)| (format!("{s:.4}"), f.to_string()));
                    rec.extend([score, shifted]);
                }
                rec
            });
            file.write_all(&crate::csv_file::encode(&header, records).map_err(csv_err)?).map_err(io_err)?;
        }
        OutputFormat::Jsonl => {
            for r in rows {
                let probs: serde_json::Map<String, serde_json::Value> =
                    classes.iter().zip(&r.probabilities).map(|(c, p)| (c.clone(), serde_json::json!(p))).collect();
                let mut line = serde_json::json!({
                    "path": r.path,
                    "label": r.label,
                    "predicted": r.predicted,
                    "probabilities": probs,
                });
                if let Some((score, shifted)) = r.shift {
                    line["shift_score"] = serde_json::json!(score);
                    line["shifted"] = serde_json::json!(shifted);
                }
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
    let with_shift = header.iter().any(|h| h == "shift_score");
    let class_columns = header.len() - 3 - if with_shift { 2 } else { 0 };
    if with_shift && (&header[header.len() - 2] != "shift_score" || &header[header.len() - 1] != "shifted") {
        return Err(bad("expected shift_score,shifted as the last two columns".into()));
    }
    let classes: Vec<String> = header
        .iter()
        .skip(3)
        .take(class_columns)
        .map(|h| h.strip_prefix("p_").map(str::to_string).ok_or_else(|| bad(format!("column {h:?} is not p_<CLASS>"))))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for (i, record) in records.into_iter().enumerate() {
        let probabilities = record
            .iter()
            .skip(3)
            .take(class_columns)
            .map(|v| parse_probability(v).ok_or_else(|| bad(format!("row {}: {v:?} is not a probability", i + 2))))
            .collect::<Result<Vec<_>, _>>()?;
        let shift = if with_shift {
            let score: f64 =
                record[3 + class_columns].parse().ok().filter(|s: &f64| s.is_finite()).ok_or_else(|| {
                    bad(format!("row {}: shift_score {:?} is not a number", i + 2, &record[3 + class_columns]))
                })?;
            let shifted = match &record[4 + class_columns] {
                "true" => true,
                "false" => false,
                other => return Err(bad(format!("row {}: shifted {other:?} is not true or false", i + 2))),
            };
            Some((score, shifted))
        } else {
            None
        };
        rows.push(Prediction {
            path: record[0].to_string(),
            label: Some(record[1].to_string()).filter(|l| !l.is_empty()),
            predicted: record[2].to_string(),
            probabilities,
            shift,
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

    #[test]
    fn shift_columns_round_trip_after_the_probabilities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        let classes = ["A".to_string(), "B".to_string()];
        let row = |path: &str, shift| Prediction {
            path: path.into(),
            label: Some("A".into()),
            predicted: "B".into(),
            probabilities: vec![0.25, 0.75],
            shift,
        };
        let rows = vec![row("a.png", Some((0.9876, false))), row("b.png", Some((3.5, true)))];
        write(&path, OutputFormat::Csv, &classes, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("path,label,predicted,p_A,p_B,shift_score,shifted\n"), "{text}");
        let (read_classes, read) = read_csv(&path).unwrap();
        assert_eq!(read_classes, classes);
        assert_eq!(read, rows);
    }
}
