//! Stage 2, `train`: a frozen VGG16 (ImageNet, random, or user-supplied) and a
//! small trained head. Backbone features are computed once and cached; the head
//! trains on them through ONNX Runtime training artifacts the project generates
//! (`training_model.onnx`, `eval_model.onnx`, `optimizer_model.onnx`,
//! `checkpoint/`), and `model.onnx` is exported as one self-contained model.

pub mod adapt;
pub mod augment;
pub mod backbone;
mod checkpoint;
mod export;
pub mod features;
pub mod fit;
pub mod head;
mod init;
mod pool_trim;
pub mod quantize;
mod saver;
mod seed;
pub mod shift;
mod staged;

use anyhow::{Context, bail};
use cxr_config::{Augment, Backbone, Config, Data, Device, Preprocess, Train};
use cxr_engine::Engine;
use cxr_store::layout::Layout;
use cxr_store::manifest::TensorsMeta;
use cxr_store::model_meta;
use cxr_store::provenance::Provenance;

use crate::backbone::FeatureSpec;
use crate::fit::{EpochRow, Hooks};
use crate::head::HeadShape;
pub use cxr_store::operating_point::OperatingPoint;

/// The config sections a trained model depends on (a resume must not change them).
pub const SECTIONS: &[&str] = &["data", "preprocess", "model", "train"];

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub resume: bool,
    /// Stop once this many epochs are done and checkpointed, without exporting
    /// (`--stop-after-epoch`, for time-boxed machines): `--resume` goes on from there.
    pub stop_after_epoch: Option<usize>,
    pub show_progress: bool,
    pub device: Option<Device>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    pub history: Vec<EpochRow>,
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
    pub operating_point: Option<OperatingPoint>,
    /// The temperature fitted on validation (1 = none).
    pub temperature: f64,
    /// Set when `--stop-after-epoch` stopped the run there: nothing was exported.
    pub paused_after: Option<usize>,
}

fn resume_hash(config: &Config) -> String {
    format!("{}-seed{}", config.section_hash(SECTIONS), config.experiment.seed)
}

/// What the feature pass needs: the tensors, the engine and the (quantized) backbone.
struct Setup {
    layout: Layout,
    meta: TensorsMeta,
    engine: Engine,
    backbone: backbone::LoadedBackbone,
    spec: FeatureSpec,
    encoded: backbone::EncodedFeatures,
}

impl Setup {
    /// The engine and backbone of the experiment at `layout`, trained under `config` (an
    /// int8 backbone is calibrated on that experiment's train images).
    fn new(config: &Config, layout: Layout, options: &Options) -> anyhow::Result<Setup> {
        let meta = read_tensors_meta(config.preprocess.size, &config.data.classes, &layout)?;
        let engine = Engine::open(&config.runtime, options.device.unwrap_or(Device::Cpu))?;
        let spec = FeatureSpec::from_config(&config.preprocess, &config.model);
        let (model, seed) = (&config.model, config.experiment.seed);
        let loaded = backbone::load(model, seed)?;
        let cache = config.train.feature_cache;
        let backbone = quantize::apply_precision(model, seed, &engine, loaded, &layout, &spec, cache)?;
        tracing::info!(backbone = backbone.description, "backbone ready");
        let encoded = backbone::EncodedFeatures::build(&backbone, &spec)?;
        Ok(Setup { layout, meta, engine, backbone, spec, encoded })
    }

    fn job<'a>(&'a self, config: &Config, options: &Options) -> features::FeatureJob<'a> {
        features::FeatureJob {
            engine: &self.engine,
            layout: &self.layout,
            meta: &self.meta,
            backbone: &self.backbone,
            spec: &self.spec,
            model: &self.encoded,
            transform_hash: config.section_hash(&["preprocess"]),
            batch_size: config.train.feature_batch_size,
            use_cache: config.train.feature_cache,
            show_progress: options.show_progress,
        }
    }
}

/// The splits whose features are computed once (and cached): with augmentation
/// (`train.augment`) the train split's features change every epoch, so only val's are.
fn cached_splits(augment: &Augment) -> &'static [&'static str] {
    if augment.enabled { &["val"] } else { &["train", "val"] }
}

/// `train --shard I/N`: only shard `I`'s part of the backbone pass, into the feature
/// cache; a later `train` without `--shard` merges the parts and fits the head. Returns
/// the rows computed.
pub fn run_shard(config: &Config, options: &Options, shard: cxr_store::shard::Shard) -> anyhow::Result<usize> {
    let _lock =
        cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "train --shard", Some(&shard.to_string()))?;
    let setup = Setup::new(config, Layout::new(config), options)?;
    features::compute_shard(&setup.job(config, options), cached_splits(&config.train.augment), shard)
}

/// Runs the stage.
pub fn run(config: &Config, options: &Options) -> anyhow::Result<Summary> {
    let _lock = cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "train", None)?;
    if !matches!(config.model.backbone, Backbone::Path(_)) {
        // Known before the backbone pass for VGG16: a head too large fails now, not after it.
        let input = backbone::vgg16_feature_dim(&FeatureSpec::from_config(&config.preprocess, &config.model));
        let classes = config.data.classes.len();
        HeadShape { input, hidden: config.model.head.hidden.clone(), classes }.check_size()?;
    }
    let setup = Setup::new(config, staged::begin(&Layout::new(config), options.resume)?, options)?;
    let (layout, meta, engine, backbone, encoded) =
        (&setup.layout, &setup.meta, &setup.engine, &setup.backbone, &setup.encoded);
    let mut provenance = Provenance::start("train", config);
    provenance.input("tensors.content_hash", meta.content_hash.clone());
    let train_dir = layout.train();
    std::fs::create_dir_all(&train_dir).with_context(|| format!("cannot create {}", train_dir.display()))?;
    // model.onnx's bulk goes to disk while the features are computed and the head trains.
    let model_writer = export::ModelWriter::start(layout.model(), encoded.prefix.clone())?;
    let job = setup.job(config, options);
    let augment = config.train.augment.enabled;
    let features_started = std::time::Instant::now();
    let mut splits = features::compute(&job, cached_splits(&config.train.augment))?;
    provenance.tool("seconds_features", format!("{:.3}", features_started.elapsed().as_secs_f64()));
    let fit_started = std::time::Instant::now();
    let val = splits.pop().expect("val features");
    let fixed_train = splits.pop();
    let train_features = match &fixed_train {
        Some(train) => fit::TrainFeatures::Fixed(train),
        None => augmented_train(&config.train, config.experiment.seed, options, engine, encoded, layout, meta.size)?,
    };
    let shape =
        HeadShape { input: val.dim, hidden: config.model.head.hidden.clone(), classes: config.data.classes.len() };
    shape.check_size()?;

    let mut state = initial_state(config, options, &shape, &layout.checkpoint())?;
    let mut artifacts = fit::write_and_open(engine, &train_dir, &shape, &config.train.optimizer)?;
    let channels = backbone_channels(&config.model.backbone);
    let (fitted, monitor) = beside_shift_monitor(fixed_train.as_ref(), &val, channels, || {
        fit_checkpointed(config, options, layout, &shape, &mut artifacts, train_features, &val, &mut state)
    });
    fitted?;
    if options.stop_after_epoch.is_some_and(|n| state.epochs_done == n && !finished(config.train.epochs, &state)) {
        // model_writer is dropped unfinished: no model.onnx, and its temporary file is removed.
        // The monitor is not part of a checkpoint: a paused run ignores it, failed or not.
        return Ok(Summary::paused(&state));
    }
    let monitor = monitor?;
    provenance.tool("seconds_fit", format!("{:.3}", fit_started.elapsed().as_secs_f64()));
    provenance.tool("augment", if augment { "per-epoch backbone pass over augmented train images" } else { "off" });

    let calibrated = calibrate(&config.train, &mut artifacts, &shape, &state, &val)?;
    let operating_point = choose_operating_point(&config.data, config.report.target_sensitivity, &calibrated);
    if let Some(op) = &operating_point {
        op.write(&layout.operating_point())?;
    }
    // Export: the best epoch's head, appended to the preprocessing and backbone already on disk.
    let (data, preprocess) = (&config.data, &config.preprocess);
    let meta =
        model_meta(data, preprocess, &backbone.description, &state.config_hash, &calibrated, operating_point.as_ref());
    let meta = model_meta::ModelMeta { shift: monitor.as_ref().map(|(_, m)| m.clone()), ..meta };
    let head = Head { params: &state.best_params, shape: &shape, temperature: calibrated.temperature };
    let tail = export_tail(encoded, &head, meta, config.model.pooling, monitor.as_ref().map(|(m, _)| m));
    let model_sha256 = model_writer.finish(&tail)?;

    provenance.tool("onnxruntime", engine.version());
    provenance.tool("backbone", backbone.description.clone());
    provenance.tool("backbone_sha256", backbone.sha256.clone());
    provenance.tool("precision", cxr_config::spelling(&config.model.precision));
    provenance.tool("temperature", format!("{}", calibrated.temperature));
    provenance.input("model.onnx", model_sha256);
    provenance.write(&train_dir, config)?;
    staged::commit(layout)?;
    Ok(Summary {
        history: state.history,
        best_epoch: state.best_epoch,
        stopped_early: state.stopped_early,
        operating_point,
        temperature: calibrated.temperature,
        paused_after: None,
    })
}

impl Summary {
    /// A run stopped by `--stop-after-epoch`: its history so far, nothing exported.
    fn paused(state: &fit::State) -> Summary {
        Summary {
            history: state.history.clone(),
            best_epoch: state.best_epoch,
            stopped_early: false,
            operating_point: None,
            temperature: 1.0,
            paused_after: Some(state.epochs_done),
        }
    }
}

/// Whether training has nothing left to do: all `epochs` (`train.epochs`) run, or stopped early.
fn finished(epochs: usize, state: &fit::State) -> bool {
    state.epochs_done >= epochs || state.stopped_early
}

/// Runs `fit` while the shift monitor fits on `train`'s features on a second thread: the
/// head's sessions run on one thread, so the monitor takes the other core. Without `train`
/// (with augmentation its features are not kept) there is no reference and no monitor.
fn beside_shift_monitor<T>(
    train: Option<&features::SplitFeatures>,
    val: &features::SplitFeatures,
    channels: Option<usize>,
    fit: impl FnOnce() -> T,
) -> (T, anyhow::Result<Option<(shift::ShiftModel, model_meta::ShiftMeta)>>) {
    std::thread::scope(|scope| {
        let monitor = train.map(|train| scope.spawn(move || shift::monitor(train, val, channels)));
        let fitted = fit();
        let monitor = monitor.map(|m| m.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        (fitted, monitor.transpose().map(Option::flatten))
    })
}

/// Runs the training loop with a checkpoint after every epoch, written by a background
/// thread; whatever the outcome, the last submitted checkpoint is on disk on return.
#[allow(clippy::too_many_arguments)]
fn fit_checkpointed(
    config: &Config,
    options: &Options,
    layout: &Layout,
    shape: &HeadShape,
    artifacts: &mut fit::Artifacts,
    mut train_features: fit::TrainFeatures,
    val: &features::SplitFeatures,
    state: &mut fit::State,
) -> anyhow::Result<()> {
    let mut on_epoch = log_epoch;
    let mut saver = saver::Saver::start(layout.checkpoint(), layout.history())?;
    let mut save = |s: &fit::State| saver.submit(s.clone());
    let mut hooks = Hooks {
        on_epoch: &mut on_epoch,
        save: &mut save,
        stop_after_epoch: options.stop_after_epoch,
        show_progress: options.show_progress,
    };
    let fitted = fit::fit(config, shape, artifacts, &mut train_features, val, state, &mut hooks);
    drop(train_features);
    let saved = saver.finish();
    fitted?;
    saved
}

/// The tensor store's `meta.json`, checked against `size` and `classes` (`preprocess.size`,
/// `data.classes`) and for a train and a val split.
fn read_tensors_meta(size: [u32; 2], classes: &[String], layout: &Layout) -> anyhow::Result<TensorsMeta> {
    let meta_path = layout.tensors_meta();
    let meta = TensorsMeta::read(&meta_path)?;
    meta.check_compatible(&meta_path, size, classes)?;
    for split in ["train", "val"] {
        if meta.split(split).is_none_or(|s| s.count == 0) {
            // A dataset of held-out images only is judged with another experiment's model.
            let hint = if meta.splits.iter().any(|s| s.count > 0) {
                "this dataset can only be evaluated: run `infer --model OTHER_EXP/train/model.onnx` and `report` instead of `train`"
            } else {
                "rerun `preprocess`"
            };
            bail!("{}: the {split} split is missing or empty; {hint}", meta_path.display());
        }
    }
    Ok(meta)
}

/// The train split augmented anew every epoch (`train.augment.enabled`) from `seed`
/// (`experiment.seed`).
fn augmented_train<'a>(
    train: &'a Train,
    seed: u64,
    options: &Options,
    engine: &Engine,
    encoded: &backbone::EncodedFeatures,
    layout: &'a Layout,
    size: [u32; 2],
) -> anyhow::Result<fit::TrainFeatures<'a>> {
    let augment = &train.augment;
    tracing::info!(
        rotate_degrees = augment.rotate_degrees,
        shift_fraction = augment.shift_fraction,
        brightness = augment.brightness,
        "augmentation on: the backbone runs over the augmented train split every epoch"
    );
    Ok(fit::TrainFeatures::Augmented(features::AugmentedSplit {
        extractor: features::Extractor::open(engine, encoded, size)?,
        layout,
        split: "train",
        augment,
        seed,
        batch_size: train.feature_batch_size,
        show_progress: options.show_progress,
    }))
}

/// The channels of the feature map of `backbone` (`model.backbone`), when known (VGG16: 512).
fn backbone_channels(backbone: &Backbone) -> Option<usize> {
    match backbone {
        Backbone::Imagenet | Backbone::Random => Some(512),
        Backbone::Path(_) => None,
    }
}

/// The head to export: its parameters, shape and temperature.
struct Head<'a> {
    params: &'a head::Params,
    shape: &'a HeadShape,
    temperature: f64,
}

/// The bytes that complete `model.onnx`: the head with its temperature, the `probabilities`
/// output, the shift monitor's `shift_score` output when there is one, and `meta`, with
/// where Grad-CAM reads the graph added to it.
fn export_tail(
    encoded: &backbone::EncodedFeatures,
    head: &Head,
    meta: model_meta::ModelMeta,
    pooling: cxr_config::Pooling,
    monitor: Option<&shift::ShiftModel>,
) -> Vec<u8> {
    let (mut tail, features) = encoded.tail();
    let (params, shape, temperature) = (head.params, head.shape, head.temperature);
    let (probs, layers) = head::append_head(&mut tail, features, params, temperature);
    let (activations, layout) = &encoded.activations;
    let explain =
        model_meta::ExplainMeta { activations: activations.clone(), layout: layout.to_string(), pooling, layers };
    tail.output(
        &probs,
        "probabilities",
        cxr_onnx::DataType::Float,
        &[cxr_onnx::Dim::named("N"), cxr_onnx::Dim::Fixed(shape.classes as i64)],
    );
    if let Some(monitor) = monitor {
        let score = monitor.append(&mut tail, features);
        tail.output(&score, "shift_score", cxr_onnx::DataType::Float, &[cxr_onnx::Dim::named("N")]);
    }
    let meta = model_meta::ModelMeta { explain: Some(explain), ..meta };
    for (key, value) in meta.to_pairs() {
        tail.metadata(key, &value);
    }
    encoded.encode_tail(tail)
}

/// A fresh state, or with `--resume` the checkpoint's (which must come from the same config).
fn initial_state(
    config: &Config,
    options: &Options,
    shape: &HeadShape,
    checkpoint: &std::path::Path,
) -> anyhow::Result<fit::State> {
    let hash = resume_hash(config);
    if !options.resume {
        return Ok(fit::fresh_state(&config.train, config.experiment.seed, shape, hash));
    }
    match checkpoint::load_checkpoint(checkpoint, shape, config.train.optimizer.kind)? {
        Some(s) if s.config_hash == hash => {
            tracing::info!(epochs_done = s.epochs_done, "resuming from {}", checkpoint.display());
            Ok(s)
        }
        Some(_) => bail!(
            "--resume: {} was written under a different config (data, preprocess, model, train or seed changed); run without --resume to start over",
            checkpoint.display()
        ),
        None => {
            tracing::warn!("--resume: no checkpoint in {}; starting from scratch", checkpoint.display());
            Ok(fit::fresh_state(&config.train, config.experiment.seed, shape, hash))
        }
    }
}

/// One line per epoch, as Keras prints it.
fn log_epoch(row: &EpochRow, epochs: usize) {
    let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    tracing::info!(
        "Epoch {}/{} - {:.1}s - loss: {:.4} - accuracy: {:.4} - val_loss: {:.4} - val_accuracy: {:.4} - val_auc: {}{}",
        row.epoch,
        epochs,
        row.seconds,
        row.train_loss,
        row.train_accuracy,
        row.val_loss,
        row.val_accuracy,
        opt(row.val_auc),
        if row.best { " (best)" } else { "" }
    );
}

/// The best epoch's validation probabilities after calibration, and the temperature.
struct Calibrated {
    temperature: f64,
    probabilities: Vec<Vec<f64>>,
    labels: Vec<usize>,
}

impl Calibrated {
    /// The mean probability of class `positive` on val: the prevalence the calibrated
    /// model assumes, so that label-free prior adaptation on images like val changes
    /// nothing. Two classes only; `None` for an empty or degenerate val split.
    fn mean_positive(&self, positive: usize) -> Option<f64> {
        let first = self.probabilities.first()?;
        if first.len() != 2 {
            return None;
        }
        let mean = self.probabilities.iter().map(|p| p[positive]).sum::<f64>() / self.probabilities.len() as f64;
        (mean > 0.0 && mean < 1.0).then_some(mean)
    }
}

/// Fits `train.calibration` on the validation split (the selection part: nothing reported
/// as an estimate is measured on it).
fn calibrate(
    train: &Train,
    artifacts: &mut fit::Artifacts,
    shape: &HeadShape,
    state: &fit::State,
    val: &features::SplitFeatures,
) -> anyhow::Result<Calibrated> {
    let (_, raw) = fit::evaluate(&mut artifacts.eval, shape, &state.best_params, val, train.batch_size)?;
    let labels: Vec<usize> = val.labels.iter().map(|&l| l as usize).collect();
    let temperature = match train.calibration {
        cxr_config::Calibration::Temperature => cxr_metrics::fit_temperature(&raw, &labels).unwrap_or(1.0),
        cxr_config::Calibration::None => 1.0,
    };
    if temperature != 1.0 {
        let before = cxr_metrics::log_loss(&raw, &labels).unwrap_or(f64::NAN);
        let probabilities: Vec<Vec<f64>> = raw.iter().map(|p| cxr_metrics::apply_temperature(p, temperature)).collect();
        let after = cxr_metrics::log_loss(&probabilities, &labels).unwrap_or(f64::NAN);
        tracing::info!("temperature {temperature:.3} fitted on val: log loss {before:.4} -> {after:.4}");
        return Ok(Calibrated { temperature, probabilities, labels });
    }
    Ok(Calibrated { temperature, probabilities: raw, labels })
}

/// The validation threshold reaching `target` (`report.target_sensitivity`) on calibrated
/// probabilities of the positive class of `data`.
fn choose_operating_point(data: &Data, target: f64, calibrated: &Calibrated) -> Option<OperatingPoint> {
    // Three or more classes are called by their largest probability: no threshold applies.
    if data.classes.len() != 2 {
        return None;
    }
    let positive = data.positive_index();
    let scores: Vec<f64> = calibrated.probabilities.iter().map(|p| p[positive]).collect();
    let is_pos: Vec<bool> = calibrated.labels.iter().map(|&l| l == positive).collect();
    cxr_metrics::threshold_for_sensitivity(&scores, &is_pos, target).map(|threshold| {
        let c = cxr_metrics::Confusion::at(&scores, &is_pos, threshold);
        OperatingPoint {
            split: "val".into(),
            positive_class: data.classes[positive].clone(),
            target_sensitivity: target,
            threshold,
            sensitivity: c.sensitivity(),
            specificity: c.specificity(),
            temperature: calibrated.temperature,
            images: scores.len(),
        }
    })
}

/// What `model.onnx` records about itself (`cxr_store::model_meta`): the classes of `data`,
/// the pixels of `preprocess`.
fn model_meta(
    data: &Data,
    preprocess: &Preprocess,
    backbone: &str,
    config_hash: &str,
    calibrated: &Calibrated,
    operating_point: Option<&OperatingPoint>,
) -> model_meta::ModelMeta {
    model_meta::ModelMeta {
        classes: data.classes.clone(),
        size: preprocess.size,
        channel_order: preprocess.channel_order,
        positive_class: data.classes[data.positive_index()].clone(),
        backbone: backbone.to_string(),
        config_hash: config_hash.to_string(),
        temperature: calibrated.temperature,
        threshold: operating_point.map(|op| op.threshold),
        threshold_chosen_on: operating_point.map(|op| {
            format!(
                "chosen on its val split ({} images) as the highest threshold reaching sensitivity {}",
                op.images, op.target_sensitivity
            )
        }),
        threshold_target_sensitivity: operating_point.map(|op| op.target_sensitivity),
        preprocess: Some(preprocess.clone()),
        prior: calibrated.mean_positive(data.positive_index()),
        // Filled in by `export_tail`, which names the head's values.
        explain: None,
        adapted_from: None,
        shift: None,
    }
}

#[cfg(test)]
mod tests;
