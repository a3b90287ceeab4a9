//! Whether what a stage is about to combine belongs together: `train/model.onnx` with the
//! record `train` wrote beside it and the tensors it was trained on, and predictions with the
//! model and tensors that made them. A stage refuses a mix (naming the stage to rerun) unless
//! told `--allow-stale`, and then says so.

use crate::StoreError;
use crate::layout::Layout;
use crate::manifest::TensorsMeta;
use crate::predictions::PredictionSource;
use crate::provenance::Provenance;

/// One thing that does not belong with the rest, and the stage whose rerun fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub what: String,
    pub rerun: &'static str,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (rerun `{}`)", self.what, self.rerun)
    }
}

/// `train/model.onnx` against `train/provenance.json` (an interrupted or mixed `train/`),
/// and the tensors `train` used against the ones there now.
pub fn trained_model(layout: &Layout) -> Result<Vec<Stale>, StoreError> {
    trained_model_hashed(layout, || crate::sha256_file(&layout.model()))
}

/// [`trained_model`], with `model_sha256` giving `train/model.onnx`'s SHA-256 when it is
/// needed: a caller holding the file's bytes hashes them instead of reading the file again.
pub fn trained_model_hashed(
    layout: &Layout,
    model_sha256: impl FnOnce() -> Result<String, StoreError>,
) -> Result<Vec<Stale>, StoreError> {
    let model = layout.model();
    let provenance_path = layout.train().join("provenance.json");
    if !model.is_file() || !provenance_path.is_file() {
        return Ok(Vec::new());
    }
    let provenance = Provenance::read(&provenance_path)?;
    let mut out = Vec::new();
    if let Some(recorded) = provenance.inputs.get("model.onnx") {
        let actual = model_sha256()?;
        if *recorded != actual {
            out.push(Stale {
                what: format!(
                    "{} is not the model {} records: the train folder mixes two runs",
                    model.display(),
                    provenance_path.display()
                ),
                rerun: "train",
            });
        }
    }
    if let (Some(recorded), Ok(meta)) =
        (provenance.inputs.get("tensors.content_hash"), TensorsMeta::read(&layout.tensors_meta()))
        && *recorded != meta.content_hash
    {
        out.push(Stale {
            what: format!("{} changed after the model was trained on it", layout.tensors().display()),
            rerun: "train",
        });
    }
    Ok(out)
}

/// The predictions in `EXP/predictions/` against the experiment's own model and tensors now.
pub fn predictions(layout: &Layout, source: &PredictionSource) -> Result<Vec<Stale>, StoreError> {
    let mut out = Vec::new();
    if !source.external && layout.model().is_file() {
        let actual = crate::sha256_file(&layout.model())?;
        if actual != source.model_sha256 {
            out.push(Stale {
                what: format!(
                    "the predictions were made by another model than {} (trained again since)",
                    layout.model().display()
                ),
                rerun: "infer",
            });
        }
    }
    let provenance_path = layout.predictions_dir().join("provenance.json");
    if let (Ok(provenance), Ok(meta)) = (Provenance::read(&provenance_path), TensorsMeta::read(&layout.tensors_meta()))
        && provenance.inputs.get("tensors.content_hash").is_some_and(|h| *h != meta.content_hash)
    {
        out.push(Stale {
            what: format!("{} changed after the predictions were made", layout.tensors().display()),
            rerun: "infer",
        });
    }
    Ok(out)
}

/// Refuses `stale` unless `allow_stale`; returns what the caller must warn about and record.
pub fn check(stale: Vec<Stale>, allow_stale: bool) -> Result<Vec<String>, String> {
    if stale.is_empty() {
        return Ok(Vec::new());
    }
    let lines: Vec<String> = stale.iter().map(ToString::to_string).collect();
    if allow_stale {
        Ok(lines)
    } else {
        Err(format!("{}; or pass --allow-stale to go on anyway (the output then says so)", lines.join("; ")))
    }
}
