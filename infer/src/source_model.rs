//! In an experiment adapted by `train --adapt-from`: the unadapted source model's
//! predictions of the same splits, in `EXP/predictions/source/`, so that `report` measures
//! the gain on the same images instead of claiming it.

use std::path::PathBuf;

use cxr_config::{Config, OutputFormat};
use cxr_store::adaptation::Adaptation;
use cxr_store::layout::Layout;
use cxr_store::predictions::PredictionSource;

use crate::model::open_model;
use crate::runner::{Runner, predict_split};
use crate::{Decision, ModelFile, Options, decision};

/// Predicts `splits` (of `layout`'s tensors) with the source model `adaptation` names, into
/// `target`'s predictions folder, when it is still the file that was adapted (else a warning
/// says why there is no comparison); returns the files.
pub(crate) fn predict(
    config: &Config,
    layout: &Layout,
    target: &Layout,
    adaptation: &Adaptation,
    splits: &[String],
    options: &Options,
) -> anyhow::Result<Vec<(PathBuf, usize)>> {
    let path = PathBuf::from(&adaptation.source_model);
    let dir = target.source_predictions_dir();
    if dir.is_dir() {
        std::fs::remove_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", dir.display()))?;
    }
    if splits.is_empty() {
        return Ok(Vec::new());
    }
    if !path.is_file() {
        tracing::warn!(
            "the source model {} is not there (from this folder): the report cannot set it beside the adapted model",
            path.display()
        );
        return Ok(Vec::new());
    }
    let info = ModelFile::open_for(&path, &config.data.classes)?;
    let sha256 = info.sha256();
    if sha256 != adaptation.source_model_sha256 {
        tracing::warn!(
            "{} changed since this experiment was adapted from it (SHA-256 {sha256}, adapted from {}): the report cannot set it beside the adapted model",
            path.display(),
            adaptation.source_model_sha256
        );
        return Ok(Vec::new());
    }
    let Decision { threshold, source: threshold_source, target_sensitivity, .. } =
        decision(config.infer.threshold, layout, &info)?;
    let plain = Options { explain: None, ..options.clone() };
    let (_engine, session, _, _) = open_model(&config.infer, &config.runtime, &plain, &info, 1)?;
    let mut runner = Runner { session, info: &info, threshold, explaining: None };
    let mut written = Vec::new();
    for split in splits {
        let predictions =
            predict_split(&config.preprocess, config.infer.batch_size, layout, &info, split, &mut runner, &plain)?;
        let out = dir.join(format!("{split}.csv"));
        cxr_store::predictions::write(&out, OutputFormat::Csv, &info.classes, &predictions)?;
        written.push((out, predictions.len()));
    }
    let source = PredictionSource {
        model_path: crate::model::absolute(&path),
        model_sha256: sha256,
        experiment: Some(adaptation.source_experiment.clone()),
        external: true,
        backbone: info.meta.backbone.clone(),
        temperature: info.meta.temperature,
        threshold,
        threshold_source,
        target_sensitivity,
        adaptation: Vec::new(),
        stale: Vec::new(),
        shift: None,
    };
    source.write(&dir.join("model.json"))?;
    Ok(written)
}
