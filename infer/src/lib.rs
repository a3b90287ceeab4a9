//! Stage 3, `infer`: runs the exported `model.onnx` on image files, folders or a
//! preprocessed split, on CPU or CUDA, and writes one prediction per image.
//! Raw files go through the same `cxr-imaging` transform as `preprocess`;
//! decoding runs on all cores in a producer thread while the model runs.

pub mod adapt;
pub mod explain;
mod merge;
mod model;
mod options;
mod runner;
pub mod shift;
mod source_model;
mod sources;

use std::time::Instant;

use cxr_config::Config;
use cxr_engine::Engine;
use cxr_store::layout::Layout;
use cxr_store::manifest::TensorsMeta;
use cxr_store::provenance::Provenance;

pub use cxr_model::{Decision, ModelFile};
pub use cxr_store::predictions::Prediction;
pub use merge::merge;
pub use model::decision;
use model::{Opened, absolute, beside_stale_check, check_and_open, experiment_of};
pub use options::{Options, Outcome, Source};
use runner::{Runner, SourceRun};

/// Runs the stage.
pub fn run(config: &Config, options: &Options) -> anyhow::Result<Outcome> {
    let shard = options.shard.map(|s| s.to_string());
    let _lock = cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "infer", shard.as_deref())?;
    let layout = Layout::new(config);
    let model_path = options.model.clone().unwrap_or_else(|| layout.model());
    let external = model_path.canonicalize().ok() != layout.model().canonicalize().ok();
    let info = ModelFile::open(&model_path)?;
    // The stale check hashes the model (tens of ms for a float32 VGG16) on the other core
    // while the rest is checked and ONNX Runtime builds the session; its error comes first.
    let (stale, opened) = beside_stale_check(&layout, options, external, &info, || {
        check_and_open(config, &layout, options, &info, external)
    })?;
    let Opened { adapted, decision, adapt_from, sources, engine, session, provider, explaining } = opened;
    let Decision { threshold, source: threshold_source, target_sensitivity, .. } = decision;
    let mut runner = Runner { session, info: &info, threshold, explaining };
    let format = options.format.unwrap_or(config.infer.format);
    let mut outcome = Outcome { provider: provider.to_string(), threshold, ..Outcome::default() };
    let started = Instant::now();
    let mut provenance = start_provenance(config, &layout, &info, &provider.to_string(), &engine);
    let target = match options.shard {
        Some(shard) => {
            provenance.tool("shard", format!("{}/{}", shard.index, shard.count));
            Layout::at(&layout.shard(shard.index, shard.count))
        }
        None => layout.clone(),
    };
    // The predictions folder is built beside the old one and swapped in whole: it always
    // holds one run's predictions and their model.json, never a mix of two runs.
    let staging =
        options.out.is_none().then(|| cxr_store::staging::Staging::new(&target.predictions_dir())).transpose()?;
    let target = staging.as_ref().map_or(target.clone(), |s| target.with_predictions_at(s.path()));
    for source in &sources {
        let run = SourceRun {
            preprocess: &config.preprocess,
            batch_size: config.infer.batch_size,
            layout: &layout,
            info: &info,
            options,
            format,
            target: &target,
            adapt_from,
        };
        run.predict(source, &mut runner, &mut outcome)?;
    }
    if let Some(adapted) = &adapted
        && options.shard.is_none()
    {
        let splits: Vec<String> =
            sources.iter().filter_map(|s| if let Source::Split(n) = s { Some(n.clone()) } else { None }).collect();
        outcome.source_outputs = source_model::predict(config, &layout, &target, adapted, &splits, options)?;
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    if options.out.is_none() {
        let source = cxr_store::predictions::PredictionSource {
            model_path: absolute(&model_path),
            model_sha256: info.sha256(),
            experiment: experiment_of(&model_path),
            external,
            backbone: info.meta.backbone.clone(),
            temperature: info.meta.temperature,
            threshold,
            threshold_source,
            target_sensitivity,
            adaptation: outcome.adaptation.clone(),
            stale,
            shift: info.meta.shift.as_ref().and_then(|meta| std::mem::take(&mut outcome.shift).finish(meta)),
        };
        source.write(&target.predictions_source())?;
        provenance.write(&target.predictions_dir(), config)?;
    }
    if let Some(staging) = staging {
        swap_in(staging, &target, &mut outcome)?;
    }
    Ok(outcome)
}

/// The run's provenance so far: the model, the provider and the tensors it predicts.
fn start_provenance(config: &Config, layout: &Layout, info: &ModelFile, provider: &str, engine: &Engine) -> Provenance {
    let mut provenance = Provenance::start("infer", config);
    provenance.input("model.onnx", info.sha256());
    provenance.tool("provider", provider);
    provenance.tool("onnxruntime", engine.version());
    if let Ok(meta) = TensorsMeta::read(&layout.tensors_meta()) {
        provenance.input("tensors.content_hash", meta.content_hash);
    }
    provenance
}

/// Swaps the predictions folder built in `staging` in, and points the outcome's paths at
/// where the files are now, not where they were built.
fn swap_in(staging: cxr_store::staging::Staging, built: &Layout, outcome: &mut Outcome) -> anyhow::Result<()> {
    let dir = staging.commit()?;
    for (path, _) in outcome.outputs.iter_mut().chain(outcome.source_outputs.iter_mut()) {
        if let Ok(rel) = path.strip_prefix(built.predictions_dir()) {
            *path = dir.join(rel);
        }
    }
    Ok(())
}

/// The one human line for a single image, like the tutorial's `doctor()`.
pub fn doctor_line(p: &Prediction, classes: &[String]) -> String {
    let idx = classes.iter().position(|c| *c == p.predicted).unwrap_or(0);
    format!("{} {:.2}  {}", p.predicted, p.probabilities[idx], p.path)
}
