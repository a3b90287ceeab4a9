//! `train --adapt-from SOURCE_EXP`: a source experiment's model adapted to this
//! experiment's labelled local sample (a new hospital's images: every split but `test`).
//!
//! The frozen backbone is the source's; the head is refitted on the source's training
//! features plus the local images, each local image weighted as `train.adapt.local_weights`
//! candidates say. Everything chosen (the weight, the temperature, the threshold) is
//! chosen by cross-fitting over the local sample (`crossfit`), which also gives the honest
//! cross-fitted estimate, the label-budget curve (refits on nested subsets) and the source
//! model's figures on the same images. The exported `model.onnx` is the source's
//! preprocessing and backbone with the refitted head, and names its source.

mod budget;
pub mod crossfit;
mod source;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use cxr_config::{Adapt, Config, Data, Precision, Report, Train};
use cxr_engine::{Engine, Model};
use cxr_store::adaptation::{Adaptation, BudgetRow, WeightCandidate};
use cxr_store::layout::Layout;
use cxr_store::manifest::{ManifestRow, TensorsMeta};
use cxr_store::model_meta::{AdaptedFrom, ModelMeta};
use cxr_store::operating_point::OperatingPoint;
use cxr_store::predictions::Prediction;
use cxr_store::provenance::Provenance;

use crate::features::SplitFeatures;
use crate::head::{HeadShape, Params};
use crate::{Options, Setup, export, features, fit};
use crossfit::{Estimate, Sample};

/// What an adaptation run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    pub adaptation: Adaptation,
    /// The cross-fitted figures: the source model's, then each budget point's, the last
    /// being every local image but a fold's.
    pub budget: Vec<BudgetRow>,
}

/// The labelled local sample: its features, and each row's path, class and patient.
struct Local {
    features: SplitFeatures,
    paths: Vec<String>,
    sample: Sample,
}

/// Runs `train --adapt-from source_exp` in the experiment `config` names.
pub fn run(config: &Config, options: &Options, source_exp: &Path) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let _lock = cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "train --adapt-from", None)?;
    let source = source::Source::open(source_exp, config)?;
    // The train folder is built beside the old one and swapped in whole (`staged`).
    let layout = crate::staged::begin(&Layout::new(config), false)?;
    let (meta, local_splits) = local_tensors(config.preprocess.size, &config.data.classes, &layout)?;
    let setup = source_setup(&source, options)?;
    let mut provenance = Provenance::start("train --adapt-from", config);
    let train_dir = layout.train();
    std::fs::create_dir_all(&train_dir).with_context(|| format!("cannot create {}", train_dir.display()))?;
    let model_writer = export::ModelWriter::start(layout.model(), setup.encoded.prefix.clone())?;

    let features_started = Instant::now();
    let (source_train, source_val, local) =
        all_features(config, options, &setup, &source, &layout, &meta, &local_splits)?;
    provenance.tool("seconds_features", format!("{:.3}", features_started.elapsed().as_secs_f64()));

    let (epochs, epochs_from) = refit_epochs(&config.train.adapt, &source);
    let shape = HeadShape {
        input: source_train.dim,
        hidden: config.model.head.hidden.clone(),
        classes: config.data.classes.len(),
    };
    shape.check_size()?;
    let artifacts = fit::write_and_open(&setup.engine, &train_dir, &shape, &config.train.optimizer)?;
    let mut refit = Refitter::new(config, shape.clone(), artifacts, &source_train, &local.features, epochs, options);
    let fitted = crossfit_and_refit(&config.train, &config.report, config.experiment.seed, &mut refit, &local.sample)?;
    let source_probabilities = source_head_probabilities(&setup.engine, &source, &local.features)?;
    let budget = budget_curve(config, &mut refit, &local.sample, &fitted, &source_probabilities, &source)?;
    refit.bar.finish_and_clear();

    let adaptation = Adaptation {
        source_experiment: source.exp.display().to_string(),
        source_model: source.model_path.display().to_string(),
        source_model_sha256: source.model_sha256.clone(),
        local_splits: local_splits.clone(),
        local_images: local.sample.len(),
        local_patients: local.sample.patient_count(),
        source_images: source_train.len(),
        folds: fitted.folds,
        epochs,
        epochs_from,
        candidates: fitted.candidates_summary(&local.sample),
        local_weight: fitted.weight,
        temperature: fitted.choice.temperature,
        threshold: fitted.choice.threshold,
        threshold_chosen_on: threshold_chosen_on(config.report.target_sensitivity, &local.sample, fitted.folds),
        source_temperature: source.meta.temperature,
        source_threshold: source.meta.threshold,
        refits: refit.refits,
        seconds: 0.0,
    };
    write_local_predictions(&config.data.classes, &layout, &local, &fitted.estimate, &source_probabilities, &source)?;
    cxr_store::adaptation::write_budget(&layout.budget(), &budget)?;
    if let Some(op) = operating_point(&config.data.classes, config.report.target_sensitivity, &local.sample, &fitted) {
        op.write(&layout.operating_point())?;
    }
    let monitor = adapted_monitor(&source_train, &source_val, &local, &source)?;
    let model_meta = ModelMeta {
        shift: monitor.as_ref().map(|(_, m)| m.clone()),
        ..adapted_meta(config, &setup, &source, &local.sample, &fitted)
    };
    let head = crate::Head { params: &fitted.params, shape: &shape, temperature: fitted.choice.temperature };
    let monitor = monitor.as_ref().map(|(m, _)| m);
    let tail = crate::export_tail(&setup.encoded, &head, model_meta, config.model.pooling, monitor);
    let model_sha256 = model_writer.finish(&tail)?;
    let adaptation = Adaptation { seconds: started.elapsed().as_secs_f64(), ..adaptation };
    adaptation.write(&layout.adaptation())?;
    provenance.input("tensors.content_hash", meta.content_hash.clone());
    provenance.input("model.onnx", model_sha256);
    provenance.tool("temperature", format!("{}", fitted.choice.temperature));
    record_tools(&mut provenance, config.model.precision, &setup, &source);
    provenance.write(&train_dir, config)?;
    crate::staged::commit(&layout)?;
    Ok(Summary { adaptation, budget })
}

/// The source's engine and backbone, checked to be the backbone its model was trained with.
fn source_setup(source: &source::Source, options: &Options) -> anyhow::Result<Setup> {
    let setup = Setup::new(&source.config, source.layout.clone(), options)?;
    if let Some(recorded) = source.backbone_sha256()
        && recorded != setup.backbone.sha256
    {
        bail!(
            "--adapt-from {}: its backbone here has SHA-256 {} but its model was trained with {recorded}; rebuild the backbone (make build) or retrain the source",
            source.exp.display(),
            setup.backbone.sha256
        );
    }
    Ok(setup)
}

/// The source's training and validation features (from its feature cache) and the local
/// sample's, all through the source's backbone.
fn all_features(
    config: &Config,
    options: &Options,
    setup: &Setup,
    source: &source::Source,
    layout: &Layout,
    meta: &TensorsMeta,
    local_splits: &[String],
) -> anyhow::Result<(SplitFeatures, SplitFeatures, Local)> {
    let mut source_splits = features::compute(&setup.job(&source.config, options), &["train", "val"])?;
    let source_val = source_splits.pop().expect("val");
    let source_train = source_splits.pop().expect("train");
    let local_job = features::FeatureJob {
        layout,
        meta,
        transform_hash: config.section_hash(&["preprocess"]),
        ..setup.job(config, options)
    };
    let local_refs: Vec<&str> = local_splits.iter().map(String::as_str).collect();
    let local = gather_local(&config.data, layout, &local_refs, features::compute(&local_job, &local_refs)?)?;
    tracing::info!(
        local = local.sample.len(),
        patients = local.sample.patient_count(),
        source = source_train.len(),
        "adapting {} with {} local images ({})",
        source.model_path.display(),
        local.sample.len(),
        local_splits.join(", ")
    );
    Ok((source_train, source_val, local))
}

/// The shift monitor of the adapted model: the images its head was fitted on (the source's
/// training images and the local ones), against the source's validation images.
fn adapted_monitor(
    source_train: &SplitFeatures,
    source_val: &SplitFeatures,
    local: &Local,
    source: &source::Source,
) -> anyhow::Result<Option<(crate::shift::ShiftModel, cxr_store::model_meta::ShiftMeta)>> {
    let fitted_on = SplitFeatures {
        features: [source_train.features.as_slice(), local.features.features.as_slice()].concat(),
        labels: [source_train.labels.as_slice(), local.features.labels.as_slice()].concat(),
        dim: source_train.dim,
    };
    crate::shift::monitor(&fitted_on, source_val, crate::backbone_channels(&source.config.model.backbone))
}

/// What `provenance.json` says of the source and the tools (`precision`: `model.precision`).
fn record_tools(provenance: &mut Provenance, precision: Precision, setup: &Setup, source: &source::Source) {
    provenance.input("source model.onnx", source.model_sha256.clone());
    provenance.tool("adapted_from", source.model_path.display().to_string());
    provenance.tool("onnxruntime", setup.engine.version());
    provenance.tool("backbone", setup.backbone.description.clone());
    provenance.tool("backbone_sha256", setup.backbone.sha256.clone());
    provenance.tool("precision", cxr_config::spelling(&precision));
}

/// This experiment's tensors, checked against `size` and `classes` (`preprocess.size`,
/// `data.classes`), and the splits that make the local sample: every non-empty split but
/// `test`, which is never touched.
fn local_tensors(size: [u32; 2], classes: &[String], layout: &Layout) -> anyhow::Result<(TensorsMeta, Vec<String>)> {
    let path = layout.tensors_meta();
    let meta = TensorsMeta::read(&path)?;
    meta.check_compatible(&path, size, classes)?;
    let splits: Vec<String> =
        meta.splits.iter().filter(|s| s.name != "test" && s.count > 0).map(|s| s.name.clone()).collect();
    if splits.is_empty() {
        bail!(
            "{}: no labelled local images to adapt with (only a test split); give the dataset a train split of labelled local images and rerun `preprocess`",
            path.display()
        );
    }
    Ok((meta, splits))
}

/// The local splits' features in one table, with each row's path, class and patient (the
/// classes of `data`).
fn gather_local(data: &Data, layout: &Layout, splits: &[&str], parts: Vec<SplitFeatures>) -> anyhow::Result<Local> {
    let mut features = SplitFeatures { features: Vec::new(), labels: Vec::new(), dim: parts[0].dim };
    let mut paths = Vec::new();
    let mut patient_names = Vec::new();
    for (split, part) in splits.iter().zip(parts) {
        let rows: Vec<ManifestRow> = cxr_store::csv_file::read_csv(&layout.manifest(split))?;
        anyhow::ensure!(rows.len() == part.len(), "{}: {} rows but {} features", split, rows.len(), part.len());
        for row in rows {
            // Rows without a recorded patient are each their own.
            patient_names.push(if row.patient.is_empty() { format!("\0{}", row.path) } else { row.patient });
            paths.push(row.path);
        }
        features.features.extend(part.features);
        features.labels.extend(part.labels);
    }
    let mut ids = std::collections::HashMap::new();
    let patients: Vec<usize> = patient_names
        .into_iter()
        .map(|p| {
            let next = ids.len();
            *ids.entry(p).or_insert(next)
        })
        .collect();
    let labels: Vec<usize> = features.labels.iter().map(|&l| l as usize).collect();
    let classes = data.classes.len();
    let missing: Vec<&str> = (0..classes).filter(|c| !labels.contains(c)).map(|c| data.classes[c].as_str()).collect();
    if !missing.is_empty() {
        bail!(
            "the local sample ({}) has no image of {}: cross-fitting needs every class",
            splits.join(", "),
            missing.join(", ")
        );
    }
    let sample = Sample { labels, patients, classes, positive: data.positive_index() };
    Ok(Local { features, paths, sample })
}

/// Epochs of every refit: `train.adapt.epochs`, else the epoch the source run exported.
fn refit_epochs(adapt: &Adapt, source: &source::Source) -> (usize, String) {
    match (adapt.epochs, source.exported_epoch) {
        (Some(n), _) => (n, "train.adapt.epochs".into()),
        (None, Some(n)) => (n, format!("the epoch {} exported", source.exp.display())),
        (None, None) => {
            (source.config.train.epochs, format!("{}'s train.epochs (no history.csv)", source.exp.display()))
        }
    }
}

/// Refits of the head on the source's training features plus some local rows.
struct Refitter<'a> {
    /// Its `train` settings, `data.classes`, `model.head.dropout` and `experiment.seed`.
    config: &'a Config,
    shape: HeadShape,
    artifacts: fit::Artifacts,
    source: &'a SplitFeatures,
    /// Each source row's loss weight: its class weight within the source's training images.
    source_weights: Vec<f64>,
    local: &'a SplitFeatures,
    epochs: usize,
    refits: usize,
    bar: cxr_cli::ProgressBar,
}

impl<'a> Refitter<'a> {
    fn new(
        config: &'a Config,
        shape: HeadShape,
        artifacts: fit::Artifacts,
        source: &'a SplitFeatures,
        local: &'a SplitFeatures,
        epochs: usize,
        options: &Options,
    ) -> Self {
        let class = fit::class_weights(&config.train.class_weights, config.data.classes.len(), &source.labels);
        let source_weights = source.labels.iter().map(|&l| class[l as usize]).collect();
        let bar = cxr_cli::progress_bar(0, "refits", options.show_progress);
        Refitter { config, shape, artifacts, source, source_weights, local, epochs, refits: 0, bar }
    }

    /// A head fitted on every source row and the local `rows`, one local image weighing
    /// `weight` source images (classes weighted within each group); weights average 1.
    fn fit(&mut self, rows: &[usize], weight: f64) -> anyhow::Result<Params> {
        let mut train = self.source.clone();
        let local_labels: Vec<i64> = rows.iter().map(|&r| self.local.labels[r]).collect();
        let class = fit::class_weights(&self.config.train.class_weights, self.config.data.classes.len(), &local_labels);
        let mut weights = self.source_weights.clone();
        for (&r, &label) in rows.iter().zip(&local_labels) {
            train.features.extend_from_slice(self.local.row(r));
            train.labels.push(label);
            weights.push(class[label as usize] * weight);
        }
        let mean = weights.iter().sum::<f64>() / weights.len() as f64;
        weights.iter_mut().for_each(|w| *w /= mean);
        let params = fit::fit_weighted(self.config, &self.shape, &mut self.artifacts, &train, &weights, self.epochs)?;
        self.refits += 1;
        self.bar.inc(1);
        Ok(params)
    }

    /// Uncalibrated probabilities of the local `rows` under `params`.
    fn score(&mut self, params: &Params, rows: &[usize]) -> anyhow::Result<Vec<Vec<f64>>> {
        let subset = subset(self.local, rows);
        let batch = self.config.train.batch_size;
        Ok(fit::evaluate(&mut self.artifacts.eval, &self.shape, params, &subset, batch)?.1)
    }
}

fn subset(split: &SplitFeatures, rows: &[usize]) -> SplitFeatures {
    let mut out =
        SplitFeatures { features: Vec::with_capacity(rows.len() * split.dim), labels: Vec::new(), dim: split.dim };
    for &r in rows {
        out.features.extend_from_slice(split.row(r));
        out.labels.push(split.labels[r]);
    }
    out
}

/// The cross-fitted candidates, the honest estimate, and the exported head.
struct Fitted {
    fold_of: Vec<usize>,
    folds: usize,
    weights: Vec<f64>,
    /// Out-of-fold probabilities of every local row, per candidate weight.
    candidates: Vec<Vec<Vec<f64>>>,
    estimate: Estimate,
    /// Chosen on the whole local sample: what the exported model uses.
    choice: crossfit::Choice,
    weight: f64,
    params: Params,
}

impl Fitted {
    fn candidates_summary(&self, sample: &Sample) -> Vec<WeightCandidate> {
        let all: Vec<usize> = (0..sample.len()).collect();
        self.weights
            .iter()
            .zip(&self.candidates)
            .map(|(&weight, probabilities)| WeightCandidate {
                weight,
                auc: crossfit::auc_on(sample, probabilities, &all),
                log_loss: cxr_metrics::log_loss(probabilities, &sample.labels),
            })
            .collect()
    }
}

/// Out-of-fold probabilities for each candidate weight, the cross-fitted estimate, the
/// choice on the whole sample, and the head refitted with every local image: `train.adapt`
/// settings, folds drawn from `seed` (`experiment.seed`), and the `targets` of `train` and `report`.
fn crossfit_and_refit(
    train: &Train,
    report: &Report,
    seed: u64,
    refit: &mut Refitter,
    sample: &Sample,
) -> anyhow::Result<Fitted> {
    let adapt = &train.adapt;
    let (fold_of, folds) = crossfit::assign_folds(sample, adapt.folds, seed);
    if folds < 2 {
        bail!("the local sample has one patient: cross-fitting needs at least two");
    }
    let mut weights = adapt.local_weights.clone();
    weights.sort_by(f64::total_cmp);
    weights.dedup();
    let budget_refits = adapt.budget.len() * folds;
    refit.bar.set_length((weights.len() * folds + 1 + budget_refits) as u64);
    let mut candidates = Vec::with_capacity(weights.len());
    for &weight in &weights {
        let started = Instant::now();
        candidates.push(crossfit::out_of_fold(&fold_of, folds, |_, train, score| {
            let params = refit.fit(train, weight)?;
            refit.score(&params, score)
        })?);
        let all: Vec<usize> = (0..sample.len()).collect();
        tracing::info!(
            "local weight {weight}: cross-fitted ROC AUC {} ({folds} refits, {:.1}s)",
            crossfit::auc_on(sample, candidates.last().expect("pushed"), &all)
                .map_or("n/a".into(), |a| format!("{a:.4}")),
            started.elapsed().as_secs_f64()
        );
    }
    let (target, calibrate) = targets(train, report);
    let estimate = crossfit::estimate(sample, &candidates, &fold_of, folds, target, calibrate);
    let all: Vec<usize> = (0..sample.len()).collect();
    let choice = crossfit::choose(sample, &candidates, &all, target, calibrate);
    let weight = weights[choice.candidate];
    let params = refit.fit(&all, weight)?;
    tracing::info!(
        "chosen: local weight {weight}, temperature {:.3}, threshold {}",
        choice.temperature,
        choice.threshold.map_or("n/a".into(), |t| format!("{t:.4}"))
    );
    Ok(Fitted { fold_of, folds, weights, candidates, estimate, choice, weight, params })
}

/// The sensitivity a threshold is chosen for (`report.target_sensitivity`), and whether a
/// temperature is fitted (`train.calibration`).
fn targets(train: &Train, report: &Report) -> (f64, bool) {
    (report.target_sensitivity, train.calibration == cxr_config::Calibration::Temperature)
}

/// The source model's probabilities of the local rows: its own head and temperature.
fn source_head_probabilities(
    engine: &Engine,
    source: &source::Source,
    local: &SplitFeatures,
) -> anyhow::Result<Vec<Vec<f64>>> {
    anyhow::ensure!(
        source.head_shape.input == local.dim,
        "{}: its head takes {} features but its backbone gives {}",
        source.model_path.display(),
        source.head_shape.input,
        local.dim
    );
    let model = crate::head::eval_model(&source.head_shape, 0.0, crate::head::Precision::F32);
    let (mut eval, _): (Model, _) =
        engine.session_from_bytes(&cxr_onnx::encode_model(&model), Path::new("the source model's head"))?;
    let (_, raw) = fit::evaluate(&mut eval, &source.head_shape, &source.head, local, 256)?;
    Ok(raw.iter().map(|p| cxr_metrics::apply_temperature(p, source.meta.temperature)).collect())
}

/// The label-budget curve: the source model as it is, then refits with nested subsets of
/// each fold's training part (the fold's own weight), then every local image but a fold's.
/// Reads `train` (`adapt.budget`, `calibration`), `report` and `experiment.seed`.
fn budget_curve(
    config: &Config,
    refit: &mut Refitter,
    sample: &Sample,
    fitted: &Fitted,
    source_probabilities: &[Vec<f64>],
    source: &source::Source,
) -> anyhow::Result<Vec<BudgetRow>> {
    let (resamples, seed) = (config.report.bootstrap, config.experiment.seed);
    let (target, calibrate) = targets(&config.train, &config.report);
    let source_calls = calls(sample, source_probabilities, source.meta.threshold);
    let mut rows = vec![budget::row(sample, 0.0, source_probabilities, &source_calls, resamples, seed)];
    let pools: Vec<Vec<usize>> =
        (0..fitted.folds).map(|k| (0..sample.len()).filter(|&r| fitted.fold_of[r] != k).collect()).collect();
    let smallest_pool = pools.iter().map(Vec::len).min().unwrap_or(0);
    let mut sizes: Vec<usize> = config.train.adapt.budget.iter().copied().filter(|&n| n < smallest_pool).collect();
    sizes.sort_unstable();
    sizes.dedup();
    for size in sizes {
        let mut used = 0usize;
        let probabilities = crossfit::out_of_fold(&fitted.fold_of, fitted.folds, |k, _, score| {
            let pool = &pools[k];
            let (_, subset) = crossfit::nested_subsets(sample, pool, &[size], seed ^ (k as u64 + 1))
                .pop()
                .expect("sizes are below every pool");
            used += subset.len();
            let weight = fitted.weights[fitted.estimate.choices[k].candidate];
            let params = refit.fit(&subset, weight)?;
            refit.score(&params, score)
        })?;
        let estimate = crossfit::estimate(sample, &[probabilities], &fitted.fold_of, fitted.folds, target, calibrate);
        let local_images = used as f64 / fitted.folds as f64;
        rows.push(budget::row(sample, local_images, &estimate.probabilities, &estimate.predicted, resamples, seed));
    }
    let whole = pools.iter().map(Vec::len).sum::<usize>() as f64 / fitted.folds as f64;
    let e = &fitted.estimate;
    rows.push(budget::row(sample, whole, &e.probabilities, &e.predicted, resamples, seed));
    Ok(rows)
}

/// Calls at `threshold` (two classes; 0.5 without one), else by the largest probability.
fn calls(sample: &Sample, probabilities: &[Vec<f64>], threshold: Option<f64>) -> Vec<usize> {
    probabilities.iter().map(|p| cxr_metrics::decide(p, sample.positive, threshold.unwrap_or(0.5))).collect()
}

/// How the exported threshold was chosen (for sensitivity `target`, `report.target_sensitivity`),
/// for the model's metadata and the report.
fn threshold_chosen_on(target: f64, sample: &Sample, folds: usize) -> String {
    format!(
        "chosen on the cross-fitted predictions of its {} local images ({folds} folds by patient) as the highest threshold reaching sensitivity {}",
        sample.len(),
        target
    )
}

/// `crossfit.csv` (the adapted model's cross-fitted predictions) and `crossfit_source.csv`
/// (the source model's), in the predictions format, naming `classes` (`data.classes`).
fn write_local_predictions(
    classes: &[String],
    layout: &Layout,
    local: &Local,
    estimate: &Estimate,
    source_probabilities: &[Vec<f64>],
    source: &source::Source,
) -> anyhow::Result<()> {
    let rows = |probabilities: &[Vec<f64>], predicted: &[usize]| -> Vec<Prediction> {
        (0..local.sample.len())
            .map(|r| Prediction {
                path: local.paths[r].clone(),
                label: Some(classes[local.sample.labels[r]].clone()),
                predicted: classes[predicted[r]].clone(),
                probabilities: probabilities[r].clone(),
                shift: None,
            })
            .collect()
    };
    let csv = cxr_config::OutputFormat::Csv;
    let adapted = rows(&estimate.probabilities, &estimate.predicted);
    cxr_store::predictions::write(&layout.crossfit(), csv, classes, &adapted)?;
    let source_calls = calls(&local.sample, source_probabilities, source.meta.threshold);
    cxr_store::predictions::write(&layout.crossfit_source(), csv, classes, &rows(source_probabilities, &source_calls))?;
    Ok(())
}

/// The exported threshold as `operating_point.json` records a threshold: with its figures
/// on the cross-fitted probabilities it was chosen on, for sensitivity `target`
/// (`report.target_sensitivity`), naming the positive class among `classes`.
fn operating_point(classes: &[String], target: f64, sample: &Sample, fitted: &Fitted) -> Option<OperatingPoint> {
    let threshold = fitted.choice.threshold?;
    let positive: Vec<bool> = sample.labels.iter().map(|&l| l == sample.positive).collect();
    let scores: Vec<f64> = fitted.candidates[fitted.choice.candidate]
        .iter()
        .map(|p| cxr_metrics::apply_temperature(p, fitted.choice.temperature)[sample.positive])
        .collect();
    let c = cxr_metrics::Confusion::at(&scores, &positive, threshold);
    Some(OperatingPoint {
        split: "local sample (cross-fitted)".into(),
        positive_class: classes[sample.positive].clone(),
        target_sensitivity: target,
        threshold,
        sensitivity: c.sensitivity(),
        specificity: c.specificity(),
        temperature: fitted.choice.temperature,
        images: sample.len(),
    })
}

/// The adapted model's metadata: this experiment's classes and pixels, the cross-fitted
/// temperature and threshold, and its source.
fn adapted_meta(
    config: &Config,
    setup: &Setup,
    source: &source::Source,
    sample: &Sample,
    fitted: &Fitted,
) -> ModelMeta {
    let prior = (sample.classes == 2)
        .then(|| {
            let e = &fitted.estimate.probabilities;
            e.iter().map(|p| p[sample.positive]).sum::<f64>() / e.len() as f64
        })
        .filter(|p| *p > 0.0 && *p < 1.0);
    ModelMeta {
        classes: config.data.classes.clone(),
        size: config.preprocess.size,
        channel_order: config.preprocess.channel_order,
        positive_class: config.data.classes[sample.positive].clone(),
        backbone: setup.backbone.description.clone(),
        config_hash: config.section_hash(crate::SECTIONS),
        temperature: fitted.choice.temperature,
        threshold: fitted.choice.threshold,
        threshold_chosen_on: fitted
            .choice
            .threshold
            .map(|_| threshold_chosen_on(config.report.target_sensitivity, sample, fitted.folds)),
        threshold_target_sensitivity: fitted.choice.threshold.map(|_| config.report.target_sensitivity),
        preprocess: Some(config.preprocess.clone()),
        prior,
        explain: None,
        shift: None,
        adapted_from: Some(AdaptedFrom {
            source_model: source.model_path.display().to_string(),
            source_sha256: source.model_sha256.clone(),
            local_images: sample.len(),
            local_patients: sample.patient_count(),
            local_weight: fitted.weight,
            folds: fitted.folds,
        }),
    }
}
