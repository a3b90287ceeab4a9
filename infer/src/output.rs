//! Prediction files: CSV `path,label,predicted,p_<CLASS>...` or JSON lines.

use std::io::Write;
use std::path::Path;

use cxr_config::OutputFormat;
use cxr_store::AtomicFile;

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
pub fn write(
    path: &Path,
    format: OutputFormat,
    classes: &[String],
    rows: &[Prediction],
) -> anyhow::Result<()> {
    let mut file = AtomicFile::create(path)?;
    match format {
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut file);
            let mut header = vec!["path".to_string(), "label".into(), "predicted".into()];
            header.extend(classes.iter().map(|c| format!("p_{c}")));
            w.write_record(&header)?;
            for r in rows {
                let mut rec = vec![
                    r.path.clone(),
                    r.label.clone().unwrap_or_default(),
                    r.predicted.clone(),
                ];
                rec.extend(r.probabilities.iter().map(|p| format!("{p:.6}")));
                w.write_record(&rec)?;
            }
            w.flush()?;
        }
        OutputFormat::Jsonl => {
            for r in rows {
                let probs: serde_json::Map<String, serde_json::Value> = classes
                    .iter()
                    .zip(&r.probabilities)
                    .map(|(c, p)| (c.clone(), serde_json::json!(p)))
                    .collect();
                let line = serde_json::json!({
                    "path": r.path,
                    "label": r.label,
                    "predicted": r.predicted,
                    "probabilities": probs,
                });
                writeln!(file, "{line}")?;
            }
        }
    }
    file.commit()?;
    Ok(())
}
