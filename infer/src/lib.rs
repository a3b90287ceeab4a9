//! Stage 3, `infer`: runs the exported `model.onnx` on image files, folders or a
//! preprocessed split, on CPU or CUDA, and writes one prediction per image.
//! Raw files go through the same `cxr-imaging` transform as `preprocess`;
//! decoding runs on all cores in a producer thread while the model runs.

pub mod adapt;
pub mod explain;
pub mod shift;
mod source_model;

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::{Context, bail};
use cxr_config::{Config, Device, OutputFormat};
use cxr_engine::{Engine, Input, Model};
use cxr_store::layout::Layout;
use cxr_store::manifest::{ManifestRow, REJECT_COLUMNS, RejectRow, TensorsMeta};
use cxr_store::npy::NpyReader;
use cxr_store::provenance::Provenance;
use rayon::prelude::*;

pub use cxr_model::{Decision, ModelFile};
pub use cxr_store::predictions::Prediction;

/// What to predict on.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A preprocessed split of this experiment.
    Split(String),
    /// Image files and folders (searched recursively).
    Paths(Vec<PathBuf>),
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub device: Option<Device>,
    /// Sources to run; empty means every non-train split of the experiment.
    pub sources: Vec<Source>,
    pub out: Option<PathBuf>,
    pub format: Option<OutputFormat>,
    pub model: Option<PathBuf>,
    pub show_progress: bool,
    /// Predict only this shard's contiguous part of each source (`--shard I/N`), into
    /// `EXP/shards/I-of-N/predictions/`; `merge` combines the shards.
    pub shard: Option<cxr_store::shard::Shard>,
    /// Also draw each image's Grad-CAM heatmap (`--explain DIR`).
    pub explain: Option<explain::ExplainOptions>,
    /// Go on when the model and tensors do not belong together (`--allow-stale`), and say so.
    pub allow_stale: bool,
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub outputs: Vec<(PathBuf, usize)>,
    pub rejected: Vec<RejectRow>,
    pub provider: String,
    pub images: usize,
    pub seconds: f64,
    pub threshold: f64,
    /// The predictions when exactly one file was given (for the one-line answer).
    pub single: Option<Prediction>,
    /// The sources adapted to their cohort without labels (`infer.adaptation: prior`).
    pub adaptation: Vec<cxr_store::predictions::PriorAdaptation>,
    /// In an adapted experiment: the source model's predictions of the same splits.
    pub source_outputs: Vec<(PathBuf, usize)>,
    /// The shift monitor's scores of every source (a model with the monitor).
    pub shift: shift::Monitor,
}

/// The model's decision threshold under `infer.threshold` (resolved by `cxr_model`), with a
/// warning when the model carries none and its experiment's operating point stands in.
pub fn decision(config: &Config, layout: &Layout, model: &ModelFile) -> anyhow::Result<Decision> {
    let decision = model.decision(config.infer.threshold, &layout.operating_point())?;
    if let Some(why) = &decision.fallback {
        tracing::warn!("{why}");
    }
    Ok(decision)
}

/// `path` as an absolute path (not resolving links), as `experiment` is written: the
/// report shows both, and `model.json` stays valid from any working folder.
pub(crate) fn absolute(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// The experiment folder a model file belongs to: `EXP` for `EXP/train/model.onnx`.
fn experiment_of(model: &Path) -> Option<String> {
    let abs = model.canonicalize().ok()?;
    let train = abs.parent().filter(|p| p.file_name().is_some_and(|n| n == "train"))?;
    Some(train.parent()?.display().to_string())
}

/// The pixel settings (`preprocess` keys) in which `ours` differs from what `model` was trained with.
fn pixel_differences(ours: &cxr_config::Preprocess, model: &cxr_config::Preprocess) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |key: &str, a: String, b: String| {
        if a != b {
            out.push(format!("--set preprocess.{key}={b} (this config has {a})"));
        }
    };
    use cxr_config::spelling;
    check("size", spelling(&ours.size), spelling(&model.size));
    check("channel_order", spelling(&ours.channel_order), spelling(&model.channel_order));
    check("resize_filter", spelling(&ours.resize_filter), spelling(&model.resize_filter));
    check("equalize", spelling(&ours.equalize), spelling(&model.equalize));
    out
}

/// A batch ready for the model: uint8 pixels and who they belong to.
struct Batch {
    pixels: Vec<u8>,
    items: Vec<(String, Option<String>)>,
}

struct Runner<'a> {
    session: Model,
    info: &'a ModelFile,
    threshold: f64,
    /// With `--explain`: the session is the Grad-CAM model, whose maps are kept here.
    explaining: Option<explain::Explaining>,
}

impl Runner<'_> {
    fn predict(&mut self, batch: Batch) -> anyhow::Result<Vec<Prediction>> {
        let n = batch.items.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let [h, w] = self.info.size;
        let input = Input::U8(vec![n, h as usize, w as usize, 3], batch.pixels);
        let shift = self.info.meta.shift.as_ref();
        let mut wanted = vec!["probabilities"];
        if shift.is_some() {
            wanted.push("shift_score");
        }
        if self.explaining.is_some() {
            wanted.push(cxr_explain::CAM);
        }
        let mut outputs = self.session.run_shaped(vec![("image".into(), input)], &wanted)?;
        let (_, probs) = outputs.remove(0);
        let scores = if shift.is_some() { Some(outputs.remove(0).1) } else { None };
        if let (Some(explaining), Some((shape, cam))) = (&mut self.explaining, outputs.pop()) {
            explaining.maps.push(&shape, &cam, n)?;
        }
        let classes = self.info.classes.len();
        let mut out = Vec::with_capacity(n);
        for (i, ((path, label), p)) in batch.items.into_iter().zip(probs.chunks(classes)).enumerate() {
            // A model that returns NaN/inf (bad weights, a broken export) must not become a
            // predictions file that every metric downstream would then misread.
            if let Some(bad) = p.iter().find(|v| !v.is_finite()) {
                bail!(
                    "{}: the model returned a non-finite probability ({bad}) for {path}; the model file is broken (retrain or re-export it)",
                    self.info.path.display()
                );
            }
            let p: Vec<f64> = p.iter().map(|&v| v as f64).collect();
            let predicted = self.info.classes[cxr_metrics::decide(&p, self.info.positive, self.threshold)].clone();
            let shift = match (&scores, shift) {
                (Some(scores), Some(meta)) => Some((scores[i] as f64, scores[i] as f64 > meta.p99)),
                _ => None,
            };
            out.push(Prediction { path, label, predicted, probabilities: p, shift });
        }
        Ok(out)
    }
}

/// What predicting one source needs besides the model runner.
struct SourceRun<'a> {
    config: &'a Config,
    layout: &'a Layout,
    info: &'a ModelFile,
    options: &'a Options,
    format: OutputFormat,
    /// Where predictions go: this experiment's layout, or its shard's.
    target: &'a Layout,
    /// The model's prior when `infer.adaptation: prior` (checked before any image is read).
    adapt_from: Option<f64>,
}

impl SourceRun<'_> {
    /// Predicts `source` and writes its predictions (and rejects) file.
    fn predict(&self, source: &Source, runner: &mut Runner, outcome: &mut Outcome) -> anyhow::Result<()> {
        let (config, info, options) = (self.config, self.info, self.options);
        let (name, mut predictions, rejected) = match source {
            Source::Split(split) => {
                (split.clone(), predict_split(config, self.layout, info, split, runner, options)?, Vec::new())
            }
            Source::Paths(paths) => {
                let (p, r) = predict_files(config, info, paths, runner, options)?;
                ("files".to_string(), p, r)
            }
        };
        let extension = match self.format {
            OutputFormat::Csv => "csv",
            OutputFormat::Jsonl => "jsonl",
        };
        if predictions.is_empty() && !rejected.is_empty() {
            let out = options.out.clone().unwrap_or_else(|| self.target.predictions_file(&name, extension));
            let rejects_path = cxr_store::layout::rejects_beside(&out);
            cxr_store::csv_file::write_csv(&rejects_path, REJECT_COLUMNS, &rejected)?;
            bail!(
                "every one of the {} input file(s) was rejected (for example {}: {}); see {}",
                rejected.len(),
                rejected[0].path,
                rejected[0].reason,
                rejects_path.display()
            );
        }
        if let Some(model_prior) = self.adapt_from {
            outcome.adaptation.push(adapt::adapt(&name, &mut predictions, info, model_prior, runner.threshold)?);
        }
        if let Some(meta) = &info.meta.shift {
            outcome.shift.add(&name, &predictions, meta);
        }
        if let (Some(asked), Some(explaining)) = (&options.explain, runner.explaining.take()) {
            let transform = info.transform(&config.preprocess);
            let drawing = explain::Drawing {
                info,
                transform: &transform,
                threshold: runner.threshold,
                threads: config.preprocess.worker_threads(),
                show_progress: options.show_progress,
            };
            let fallback = match source {
                Source::Split(split) => Some(explain::Fallback { images: self.layout.images(split), first_row: 0 }),
                Source::Paths(_) => None,
            };
            explain::write(asked, explaining, &predictions, &drawing, fallback.as_ref())?;
        }
        let out = options.out.clone().unwrap_or_else(|| self.target.predictions_file(&name, extension));
        cxr_store::predictions::write(&out, self.format, &info.classes, &predictions)?;
        if !rejected.is_empty() {
            let rejects_path = cxr_store::layout::rejects_beside(&out);
            cxr_store::csv_file::write_csv(&rejects_path, REJECT_COLUMNS, &rejected)?;
            tracing::warn!("{} file(s) could not be read; see {}", rejected.len(), rejects_path.display());
        }
        if let (Source::Paths(paths), [one]) = (source, predictions.as_slice())
            && paths.len() == 1
            && paths[0].is_file()
        {
            outcome.single = Some(one.clone());
        }
        outcome.images += predictions.len();
        outcome.outputs.push((out, predictions.len()));
        outcome.rejected.extend(rejected);
        Ok(())
    }
}

/// Runs the stage.
pub fn run(config: &Config, options: &Options) -> anyhow::Result<Outcome> {
    let shard = options.shard.map(|s| s.to_string());
    let _lock = cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "infer", shard.as_deref())?;
    let layout = Layout::new(config);
    let model_path = options.model.clone().unwrap_or_else(|| layout.model());
    let external = model_path.canonicalize().ok() != layout.model().canonicalize().ok();
    let (stale, adapted) = own_model(&layout, options, external)?;
    let info = ModelFile::open_for(&model_path, &config.data.classes)?;
    let Decision { threshold, source: threshold_source, target_sensitivity, .. } = decision(config, &layout, &info)?;
    let adapt_from = prior_adaptation(config, options, &info)?;
    let sources = resolve_sources(&layout, options, adapted.as_ref())?;
    if options.out.is_some() && sources.len() > 1 {
        bail!("--out takes one source; {} were given", sources.len());
    }
    let (engine, session, provider, explaining) = open_model(config, options, &info, sources.len())?;
    let mut runner = Runner { session, info: &info, threshold, explaining };
    let format = options.format.unwrap_or(config.infer.format);
    let mut outcome = Outcome {
        outputs: Vec::new(),
        rejected: Vec::new(),
        provider: provider.to_string(),
        images: 0,
        seconds: 0.0,
        threshold,
        single: None,
        adaptation: Vec::new(),
        source_outputs: Vec::new(),
        shift: shift::Monitor::default(),
    };
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
        let run = SourceRun { config, layout: &layout, info: &info, options, format, target: &target, adapt_from };
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

/// The model's prior when `infer.adaptation: prior` (checked before any image is read).
fn prior_adaptation(config: &Config, options: &Options, info: &ModelFile) -> anyhow::Result<Option<f64>> {
    match config.infer.adaptation {
        cxr_config::Adaptation::None => Ok(None),
        cxr_config::Adaptation::Prior if options.shard.is_some() => {
            bail!("infer.adaptation: prior estimates each cohort's prevalence from all its images; run without --shard")
        }
        cxr_config::Adaptation::Prior => Ok(Some(adapt::check_model(info)?)),
    }
}

/// With this experiment's own model: what does not belong together with it (an error unless
/// `--allow-stale`), and, in an experiment adapted by `train --adapt-from`, its adaptation
/// (its predictions are set beside its source model's, and the local sample it was fitted
/// on is not predicted again).
fn own_model(
    layout: &Layout,
    options: &Options,
    external: bool,
) -> anyhow::Result<(Vec<String>, Option<cxr_store::adaptation::Adaptation>)> {
    if external {
        return Ok((Vec::new(), None));
    }
    let stale = cxr_store::integrity::trained_model(layout)?;
    let stale = cxr_store::integrity::check(stale, options.allow_stale).map_err(anyhow::Error::msg)?;
    for line in &stale {
        tracing::warn!("--allow-stale: {line}");
    }
    let adapted = if options.out.is_some() || !layout.adaptation().is_file() {
        None
    } else {
        Some(cxr_store::adaptation::Adaptation::read(&layout.adaptation())?)
    };
    Ok((stale, adapted))
}

/// Opens the engine and the model it runs: `model.onnx`, or with `--explain` the Grad-CAM
/// model made from it.
fn open_model(
    config: &Config,
    options: &Options,
    info: &ModelFile,
    sources: usize,
) -> anyhow::Result<(Engine, Model, cxr_engine::Provider, Option<explain::Explaining>)> {
    let (explain_bytes, explaining) = match &options.explain {
        None => (None, None),
        Some(_) if options.shard.is_some() => {
            bail!("--explain writes one folder for all images; run it without --shard")
        }
        Some(_) if sources > 1 => bail!("--explain takes one source; {sources} were given"),
        Some(asked) => {
            let (bytes, explaining) = explain::open(info, asked)?;
            (Some(bytes), Some(explaining))
        }
    };
    let device = options.device.unwrap_or(config.infer.device);
    let engine = Engine::open(&config.runtime, device)?;
    let (session, provider) = engine.session_from_bytes(explain_bytes.as_ref().unwrap_or(&info.bytes), &info.path)?;
    if device == Device::Auto {
        tracing::info!("--device auto: running on {provider}");
    }
    Ok((engine, session, provider, explaining))
}

/// The sources to predict on: those asked for (split names checked, since they name
/// output files), or every split of the experiment but `train`; in an adapted experiment,
/// every split but the local sample its model was fitted on (whose honest figures are the
/// cross-fitted ones `train` wrote), which may leave none.
fn resolve_sources(
    layout: &Layout,
    options: &Options,
    adapted: Option<&cxr_store::adaptation::Adaptation>,
) -> anyhow::Result<Vec<Source>> {
    if options.sources.is_empty() {
        let meta = TensorsMeta::read(&layout.tensors_meta())?;
        let fitted_on = |name: &str| match adapted {
            Some(a) => a.local_splits.iter().any(|s| s == name),
            None => name == "train",
        };
        let splits: Vec<Source> =
            meta.splits.iter().filter(|s| !fitted_on(&s.name)).map(|s| Source::Split(s.name.clone())).collect();
        if let Some(a) = adapted {
            tracing::info!(
                "the adapted model was fitted on {}: their figures are the cross-fitted ones in {}",
                a.local_splits.join(", "),
                layout.crossfit().display()
            );
        } else if splits.is_empty() {
            bail!("no split to predict on besides train; give --split train or image paths");
        }
        return Ok(splits);
    }
    for source in &options.sources {
        if let Source::Split(name) = source
            && !cxr_config::is_safe_name(name)
        {
            bail!(
                "--split {name}: a split name has only letters, digits, `_` and `-` (it names a file of EXP/predictions/)"
            );
        }
    }
    Ok(options.sources.clone())
}

fn predict_split(
    config: &Config,
    layout: &Layout,
    info: &ModelFile,
    split: &str,
    runner: &mut Runner,
    options: &Options,
) -> anyhow::Result<Vec<Prediction>> {
    let meta_path = layout.tensors_meta();
    let meta = TensorsMeta::read(&meta_path)?;
    meta.check_compatible(&meta_path, meta.size, &info.classes)?;
    info.check_tensors(meta.size, &meta.channel_order, &meta_path)?;
    if let Some(model_pre) = &info.meta.preprocess {
        let differences = pixel_differences(&config.preprocess, model_pre);
        if !differences.is_empty() {
            bail!(
                "{} was trained on pixels made differently from this experiment's tensors; preprocess this dataset as the model's experiment did: {}",
                info.path.display(),
                differences.join(" ")
            );
        }
    }
    if meta.split(split).is_none() {
        let names: Vec<&str> = meta.splits.iter().map(|s| s.name.as_str()).collect();
        bail!("--split {split}: no such split in {}; splits are: {}", meta_path.display(), names.join(", "));
    }
    let rows: Vec<ManifestRow> = cxr_store::csv_file::read_csv(&layout.manifest(split))?;
    let mut reader = NpyReader::open(&layout.images(split))?;
    if reader.rows() != rows.len() {
        bail!("{}: {} images but {} manifest rows", layout.images(split).display(), reader.rows(), rows.len());
    }
    let range = options.shard.map_or(0..rows.len(), |s| s.range(rows.len()));
    let rows = &rows[range.clone()];
    let bar = cxr_cli::progress_bar(rows.len() as u64, split, options.show_progress);
    let mut out = Vec::with_capacity(rows.len());
    for (start, chunk) in (range.start..).step_by(config.infer.batch_size).zip(rows.chunks(config.infer.batch_size)) {
        let pixels = reader.read_rows_bytes(start, chunk.len())?;
        let items = chunk.iter().map(|r| (r.path.clone(), Some(r.class.clone()))).collect();
        out.extend(runner.predict(Batch { pixels, items })?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// The class a file's folder names, if it is one of `classes`.
fn label_from_path(path: &Path, classes: &[String]) -> Option<String> {
    let parent = path.parent()?.file_name()?.to_str()?;
    classes.iter().find(|c| c.as_str() == parent).cloned()
}

fn predict_files(
    config: &Config,
    info: &ModelFile,
    paths: &[PathBuf],
    runner: &mut Runner,
    options: &Options,
) -> anyhow::Result<(Vec<Prediction>, Vec<RejectRow>)> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(cxr_imaging::list_files(path).with_context(|| format!("cannot list {}", path.display()))?);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{} does not exist", path.display());
        }
    }
    if let Some(shard) = options.shard {
        files = files[shard.range(files.len())].to_vec();
    }
    let transform = info.transform(&config.preprocess);
    let threads = config.preprocess.worker_threads();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let bar = cxr_cli::progress_bar(files.len() as u64, "infer", options.show_progress);
    let batch_size = config.infer.batch_size;
    let (tx, rx) = sync_channel::<(Batch, Vec<RejectRow>)>(2);
    let mut predictions = Vec::with_capacity(files.len());
    let mut rejected = Vec::new();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let files = &files;
        let transform = &transform;
        let pool = &pool;
        scope.spawn(move || {
            for chunk in files.chunks(batch_size) {
                let decoded: Vec<_> = pool.install(|| chunk.par_iter().map(|p| transform.apply_file(p)).collect());
                let mut batch =
                    Batch { pixels: Vec::with_capacity(chunk.len() * transform.output_len()), items: Vec::new() };
                let mut bad = Vec::new();
                for (path, result) in chunk.iter().zip(decoded) {
                    match result {
                        Ok(p) => {
                            batch.pixels.extend_from_slice(&p.pixels);
                            batch.items.push((path.display().to_string(), label_from_path(path, &info.classes)));
                        }
                        Err(e) => bad.push(RejectRow { path: path.display().to_string(), reason: e.to_string() }),
                    }
                }
                if tx.send((batch, bad)).is_err() {
                    return;
                }
            }
        });
        for (batch, bad) in rx {
            let n = batch.items.len() + bad.len();
            predictions.extend(runner.predict(batch)?);
            rejected.extend(bad);
            bar.inc(n as u64);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok((predictions, rejected))
}

/// The one human line for a single image, like the tutorial's `doctor()`.
pub fn doctor_line(p: &Prediction, classes: &[String]) -> String {
    let idx = classes.iter().position(|c| *c == p.predicted).unwrap_or(0);
    format!("{} {:.2}  {}", p.predicted, p.probabilities[idx], p.path)
}

/// A predictions CSV (not a rejects list).
fn is_predictions_csv(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".csv") && !name.ends_with(".rejects.csv")
}

/// Concatenates the prediction files of `count` shards, in shard order, into `EXP/predictions/`.
pub fn merge(config: &Config, count: usize) -> anyhow::Result<Vec<(PathBuf, usize)>> {
    let _lock = cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "infer --merge", None)?;
    let layout = Layout::new(config);
    // provenance.json is written last by an infer run: its presence means the shard is complete.
    let shards =
        cxr_store::shard::complete_shards(&layout, count, "infer", |l| l.predictions_dir().join("provenance.json"))
            .map_err(anyhow::Error::msg)?;
    let dirs: Vec<PathBuf> = shards.iter().map(Layout::predictions_dir).collect();
    let mut names: Vec<String> = std::fs::read_dir(&dirs[0])
        .with_context(|| format!("cannot list {}", dirs[0].display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| (n.ends_with(".csv") || n.ends_with(".jsonl")) && !n.starts_with('.'))
        .collect();
    names.sort();
    let mut written = Vec::new();
    let mut provenance = Provenance::start("infer --merge", config);
    // Built beside the old predictions folder and swapped in whole, as an infer run's is.
    let staging = cxr_store::staging::Staging::new(&layout.predictions_dir())?;
    let out_layout = layout.with_predictions_at(staging.path());
    for name in names {
        let csv = name.ends_with(".csv");
        let mut text = String::new();
        let mut rows = 0;
        for (i, dir) in dirs.iter().enumerate() {
            let path = dir.join(&name);
            let part = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                // A shard whose files all decoded has no rejects file.
                Err(_) if name.ends_with(".rejects.csv") => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            let mut lines = part.lines();
            if csv {
                let header = lines.next().unwrap_or_default();
                if text.is_empty() {
                    text.push_str(header);
                    text.push('\n');
                }
            }
            for line in lines {
                text.push_str(line);
                text.push('\n');
                rows += 1;
            }
            provenance.input(&format!("shard {i}/{count} {name}"), cxr_store::sha256_file(&path)?);
        }
        let out = out_layout.predictions_dir().join(&name);
        cxr_store::write_atomic(&out, text.as_bytes())?;
        written.push((out, rows));
    }
    // Every shard ran the same model with the same threshold: shard 0 says which. The shift
    // verdict is of shard 0's images only: it is made again from the merged predictions.
    let source = dirs[0].join("model.json");
    if source.is_file() {
        let mut recorded = cxr_store::predictions::PredictionSource::read(&source)?;
        if let Some(shift) = &recorded.shift {
            let mut merged = Vec::new();
            for (path, _) in written.iter().filter(|(p, _)| is_predictions_csv(p)) {
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("files").to_string();
                merged.push((name, cxr_store::predictions::read_csv(path)?.1));
            }
            recorded.shift = Some(shift::merged(shift, &merged));
        }
        recorded.write(&out_layout.predictions_source())?;
    }
    provenance.write(&out_layout.predictions_dir(), config)?;
    let dir = staging.commit()?;
    Ok(written.into_iter().map(|(path, rows)| (dir.join(path.file_name().unwrap_or_default()), rows)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxr_config::{ChannelOrder, Equalize, Preprocess, ResizeFilter};

    #[test]
    fn pixel_differences_name_each_differing_key_as_the_config_spells_it() {
        let model = Preprocess::default();
        assert!(pixel_differences(&model, &model).is_empty());
        let ours = Preprocess {
            size: [50, 50],
            channel_order: ChannelOrder::Bgr,
            resize_filter: ResizeFilter::Bilinear,
            equalize: Equalize::Histogram,
            ..model.clone()
        };
        let found = pixel_differences(&ours, &model);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            found[0].starts_with("--set preprocess.size=[") && found[0].contains("this config has [50,50]"),
            "{found:?}"
        );
        assert!(found[1].contains("preprocess.channel_order=rgb (this config has bgr)"), "{found:?}");
        assert!(found[2].contains("(this config has bilinear)"), "{found:?}");
        assert!(found[3].contains("preprocess.equalize=none (this config has histogram)"), "{found:?}");
    }
}
