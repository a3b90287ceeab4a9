//! The training loop: seeded shuffling and dropout, the artifacts run by ONNX
//! Runtime, per-epoch validation, best-epoch tracking, early stopping, and a
//! checkpoint after every epoch that `--resume` continues from exactly.

use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use cxr_config::{ClassWeights, Config, Monitor, Optimizer, Train};
use cxr_engine::Engine;
use cxr_engine::Model;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use cxr_store::history::EpochRow;

use crate::features::{AugmentedSplit, SplitFeatures};
use crate::head::{HeadShape, Params, Precision, optimizer_slots};
use crate::seed::mix;
use cxr_engine::Input;

/// Everything needed to continue training; saved after every epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Hash of the config sections that must not change between a run and its resume.
    pub config_hash: String,
    pub epochs_done: usize,
    /// Optimizer steps taken (Adam's bias correction needs it).
    pub steps: u64,
    pub history: Vec<EpochRow>,
    pub best_epoch: Option<usize>,
    pub best_value: f64,
    pub stale_epochs: usize,
    pub stopped_early: bool,
    #[serde(skip)]
    pub params: Params,
    #[serde(skip)]
    pub slots: Params,
    #[serde(skip)]
    pub best_params: Params,
}

/// The three training artifacts opened as sessions.
pub struct Artifacts {
    pub training: Model,
    pub eval: Model,
    pub optimizer: Model,
}

impl std::fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Artifacts")
    }
}

/// Writes the artifacts into `dir` and opens them (`optimizer`: `train.optimizer`).
pub fn write_and_open(
    engine: &Engine,
    dir: &Path,
    shape: &HeadShape,
    optimizer: &Optimizer,
) -> anyhow::Result<Artifacts> {
    let l2 = optimizer.weight_decay;
    let models = [
        ("training_model.onnx", crate::head::training_model(shape, l2, Precision::F32)),
        ("eval_model.onnx", crate::head::eval_model(shape, l2, Precision::F32)),
        ("optimizer_model.onnx", crate::head::optimizer_model(shape, optimizer)),
    ];
    let mut sessions = Vec::new();
    for (name, model) in models {
        let path = dir.join(name);
        cxr_store::write_atomic(&path, &cxr_onnx::encode_model(&model))?;
        sessions.push(engine.session_for_small_model(&path)?.0);
    }
    let optimizer = sessions.pop().expect("three");
    let eval = sessions.pop().expect("three");
    let training = sessions.pop().expect("three");
    Ok(Artifacts { training, eval, optimizer })
}

/// Per-class loss weights for the training labels, of `classes` classes, as `weights`
/// (`train.class_weights`) says.
pub fn class_weights(weights: &ClassWeights, classes: usize, labels: &[i64]) -> Vec<f64> {
    match weights {
        ClassWeights::None => vec![1.0; classes],
        ClassWeights::Explicit(w) => w.clone(),
        ClassWeights::Balanced => {
            let mut counts = vec![0usize; classes];
            for &l in labels {
                counts[l as usize] += 1;
            }
            counts.iter().map(|&c| if c == 0 { 0.0 } else { labels.len() as f64 / (classes * c) as f64 }).collect()
        }
    }
}

/// Dropout masks for one batch, already scaled by 1/keep (inverted dropout, as Keras).
fn dropout_masks(seed: u64, epoch: usize, step: usize, rows: usize, shape: &HeadShape, rate: f64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, epoch as u64 + 1, step as u64 + 1));
    let keep = 1.0 - rate;
    shape
        .hidden
        .iter()
        .map(|&h| {
            (0..rows * h)
                .map(|_| if rate == 0.0 || rng.random::<f64>() < keep { (1.0 / keep) as f32 } else { 0.0 })
                .collect()
        })
        .collect()
}

fn gather(split: &SplitFeatures, idx: &[usize]) -> (Vec<f32>, Vec<i64>) {
    let mut x = Vec::with_capacity(idx.len() * split.dim);
    let mut y = Vec::with_capacity(idx.len());
    for &i in idx {
        x.extend_from_slice(split.row(i));
        y.push(split.labels[i]);
    }
    (x, y)
}

fn param_inputs<'a>(params: &'a Params, shape: &HeadShape, prefix: &str) -> Vec<(String, Input<'a>)> {
    params
        .iter()
        .zip(shape.params())
        .map(|((name, values), (_, dims))| (format!("{prefix}{name}"), Input::F32View(dims, values)))
        .collect()
}

/// Probabilities and mean (unweighted) loss of `params` on a whole split, in batches.
pub fn evaluate(
    eval: &mut Model,
    shape: &HeadShape,
    params: &Params,
    split: &SplitFeatures,
    batch: usize,
) -> anyhow::Result<(f64, Vec<Vec<f64>>)> {
    let n = split.len();
    let mut loss = 0.0;
    let mut probs = Vec::with_capacity(n);
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let (x, y) = gather(split, chunk);
        let mut inputs = vec![
            ("features".to_string(), Input::F32(vec![chunk.len(), split.dim], x)),
            ("labels".to_string(), Input::I64(vec![chunk.len()], y)),
            ("weights".to_string(), Input::F32(vec![chunk.len()], vec![1.0 / n as f32; chunk.len()])),
        ];
        inputs.extend(param_inputs(params, shape, ""));
        let out = eval.run(inputs, &["loss", "probabilities"])?;
        loss += out[0][0] as f64;
        probs.extend(out[1].chunks(shape.classes).map(|p| p.iter().map(|&v| v as f64).collect()));
    }
    Ok((loss, probs))
}

/// Validation figures of one epoch.
struct ValFigures {
    loss: f64,
    accuracy: f64,
    auc: Option<f64>,
    sensitivity: Option<f64>,
    specificity: Option<f64>,
}

fn val_figures(loss: f64, probs: &[Vec<f64>], labels: &[i64], positive: usize) -> ValFigures {
    let correct = probs.iter().zip(labels).filter(|(p, l)| argmax(p) == **l as usize).count();
    let scores: Vec<f64> = probs.iter().map(|p| p[positive]).collect();
    let is_pos: Vec<bool> = labels.iter().map(|&l| l as usize == positive).collect();
    let c = cxr_metrics::Confusion::at(&scores, &is_pos, 0.5);
    let classes = probs.first().map_or(0, Vec::len);
    // With three or more classes `val_auc` is the macro one-vs-rest AUC: the positive
    // class's alone would let early stopping ignore the others.
    let auc = if classes > 2 {
        let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
        cxr_metrics::macro_auc(probs, &labels, classes)
    } else {
        cxr_metrics::auc(&scores, &is_pos)
    };
    ValFigures {
        loss,
        accuracy: if labels.is_empty() { 0.0 } else { correct as f64 / labels.len() as f64 },
        auc,
        sensitivity: c.sensitivity(),
        specificity: c.specificity(),
    }
}

pub fn argmax(p: &[f64]) -> usize {
    p.iter().enumerate().fold((0, f64::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0
}

/// Whether `value` improves on `best` for the monitored figure.
fn improves(monitor: Monitor, value: f64, best: f64) -> bool {
    match monitor {
        Monitor::ValLoss => value < best,
        Monitor::ValAccuracy | Monitor::ValAuc | Monitor::Last => value > best,
    }
}

fn initial_best(monitor: Monitor) -> f64 {
    match monitor {
        Monitor::ValLoss => f64::INFINITY,
        Monitor::ValAccuracy | Monitor::ValAuc | Monitor::Last => f64::NEG_INFINITY,
    }
}

/// A fresh state: head init drawn from `seed` (`experiment.seed`), zero optimizer state.
pub fn fresh_state(train: &Train, seed: u64, shape: &HeadShape, config_hash: String) -> State {
    let params = crate::head::init_params(shape, seed);
    let slots = optimizer_slots(train.optimizer.kind)
        .iter()
        .flat_map(|slot| params.iter().map(move |(n, v)| (format!("{slot}.{n}"), vec![0.0; v.len()])))
        .collect();
    State {
        config_hash,
        epochs_done: 0,
        steps: 0,
        history: Vec::new(),
        best_epoch: None,
        best_value: initial_best(train.early_stopping.monitor),
        stale_epochs: 0,
        stopped_early: false,
        best_params: params.clone(),
        params,
        slots,
    }
}

/// Where each epoch's training features come from.
#[derive(Debug)]
pub enum TrainFeatures<'a> {
    /// Computed once (and cached): every epoch sees the same rows, reshuffled.
    Fixed(&'a SplitFeatures),
    /// Recomputed every epoch from freshly augmented images.
    Augmented(AugmentedSplit<'a>),
}

/// Callbacks of the loop: one line per epoch and a checkpoint after it.
pub struct Hooks<'a> {
    pub on_epoch: &'a mut dyn FnMut(&EpochRow, usize),
    pub save: &'a mut dyn FnMut(&State) -> anyhow::Result<()>,
    /// Return once this many epochs are done (and handed to `save`).
    pub stop_after_epoch: Option<usize>,
    pub show_progress: bool,
}

/// Trains until `train.epochs` or early stopping, checkpointing through `hooks`. Reads
/// `train`, `data` (the classes), `model.head.dropout` and `experiment.seed`.
pub fn fit(
    config: &Config,
    shape: &HeadShape,
    artifacts: &mut Artifacts,
    train_features: &mut TrainFeatures,
    val: &SplitFeatures,
    state: &mut State,
    hooks: &mut Hooks,
) -> anyhow::Result<()> {
    let t = &config.train;
    while state.epochs_done < t.epochs && !state.stopped_early {
        let epoch = state.epochs_done;
        let started = Instant::now();
        let augmented;
        let train = match train_features {
            TrainFeatures::Fixed(features) => *features,
            TrainFeatures::Augmented(split) => {
                augmented = split.epoch(epoch)?;
                &augmented
            }
        };
        if train.is_empty() {
            bail!("the train split has no images");
        }
        anyhow::ensure!(
            train.dim == shape.input,
            "train features have {} values per image, the head expects {}",
            train.dim,
            shape.input
        );
        let weights = class_weights(&t.class_weights, config.data.classes.len(), &train.labels);
        let row_weights: Vec<f64> = train.labels.iter().map(|&l| weights[l as usize]).collect();
        let (loss_sum, correct) =
            train_epoch(config, shape, artifacts, train, &row_weights, state, epoch, hooks.show_progress)?;
        let (val_loss, val_probs) = evaluate(&mut artifacts.eval, shape, &state.params, val, t.batch_size)?;
        let figures = val_figures(val_loss, &val_probs, &val.labels, config.data.positive_index());
        let train_figures = (loss_sum / train.len() as f64, correct as f64 / train.len() as f64);
        let row = end_epoch(t, state, epoch, &figures, train_figures, started.elapsed().as_secs_f64());
        (hooks.on_epoch)(&row, t.epochs);
        (hooks.save)(state)?;
        if hooks.stop_after_epoch == Some(state.epochs_done) {
            break;
        }
    }
    Ok(())
}

/// Trains a fresh head for `epochs` epochs on `train`, each row's loss weighted by
/// `row_weights`, without validation or checkpoints, and returns the last epoch's
/// parameters: the refits of `train --adapt-from`, whose choices are made by cross-fitting.
/// Reads `train`, `model.head.dropout` and `experiment.seed`.
pub fn fit_weighted(
    config: &Config,
    shape: &HeadShape,
    artifacts: &mut Artifacts,
    train: &SplitFeatures,
    row_weights: &[f64],
    epochs: usize,
) -> anyhow::Result<Params> {
    anyhow::ensure!(row_weights.len() == train.len(), "{} weights for {} rows", row_weights.len(), train.len());
    anyhow::ensure!(!train.is_empty(), "nothing to fit on");
    let mut state = fresh_state(&config.train, config.experiment.seed, shape, String::new());
    for epoch in 0..epochs {
        train_epoch(config, shape, artifacts, train, row_weights, &mut state, epoch, false)?;
        state.epochs_done += 1;
    }
    Ok(state.params)
}

/// One epoch over the shuffled train split, batch by batch, each row's loss weighted by
/// `row_weights`; returns the weighted loss summed over rows and the count of rows called right.
/// Reads `train`, `model.head.dropout` and `experiment.seed`.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    config: &Config,
    shape: &HeadShape,
    artifacts: &mut Artifacts,
    train: &SplitFeatures,
    row_weights: &[f64],
    state: &mut State,
    epoch: usize,
    show_progress: bool,
) -> anyhow::Result<(f64, usize)> {
    let t = &config.train;
    let seed = config.experiment.seed;
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, epoch as u64 + 1, 0)));
    let steps = order.len().div_ceil(t.batch_size);
    let bar = cxr_cli::progress_bar(steps as u64, &format!("epoch {}", epoch + 1), show_progress);
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    for (step, batch) in order.chunks(t.batch_size).enumerate() {
        let rows = batch.len();
        let (x, y) = gather(train, batch);
        let w: Vec<f32> = batch.iter().map(|&i| (row_weights[i] / rows as f64) as f32).collect();
        let masks = dropout_masks(seed, epoch, step, rows, shape, config.model.head.dropout);
        let mut inputs = vec![
            ("features".to_string(), Input::F32(vec![rows, train.dim], x)),
            ("labels".to_string(), Input::I64(vec![rows], y.clone())),
            ("weights".to_string(), Input::F32(vec![rows], w)),
        ];
        for (i, m) in masks.into_iter().enumerate() {
            inputs.push((format!("mask{i}"), Input::F32(vec![rows, shape.hidden[i]], m)));
        }
        inputs.extend(param_inputs(&state.params, shape, ""));
        let mut wanted: Vec<String> = vec!["loss".into(), "probabilities".into()];
        wanted.extend(state.params.iter().map(|(n, _)| format!("grad.{n}")));
        let wanted_refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let mut out = artifacts.training.run(inputs, &wanted_refs)?;
        let loss = out[0][0] as f64;
        if !loss.is_finite() {
            bail!(
                "training diverged: the loss is {loss} at epoch {} step {}; the last good checkpoint (epoch {}) is kept. Lower train.optimizer.lr (now {})",
                epoch + 1,
                step + 1,
                state.epochs_done,
                t.optimizer.lr
            );
        }
        // Keras reports the class-weighted loss averaged over the epoch's batches.
        loss_sum += loss * rows as f64;
        correct += out[1]
            .chunks(shape.classes)
            .zip(&y)
            .filter(|(p, l)| {
                let p: Vec<f64> = p.iter().map(|&v| v as f64).collect();
                argmax(&p) == **l as usize
            })
            .count();
        let grads: Vec<Vec<f32>> = out.drain(2..).collect();
        optimizer_step(t.optimizer.lr, shape, artifacts, state, grads)?;
        if let Some((name, _)) = state.params.iter().find(|(_, v)| v.iter().any(|x| !x.is_finite())) {
            bail!(
                "training diverged: parameter {name} is no longer finite after epoch {} step {}; the last good checkpoint (epoch {}) is kept. Lower train.optimizer.lr (now {})",
                epoch + 1,
                step + 1,
                state.epochs_done,
                t.optimizer.lr
            );
        }
        state.steps += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((loss_sum, correct))
}

/// Runs the optimizer artifact at learning rate `lr` (`train.optimizer.lr`) on the
/// parameters, their gradients and the optimizer slots, and stores what it returns.
fn optimizer_step(
    lr: f64,
    shape: &HeadShape,
    artifacts: &mut Artifacts,
    state: &mut State,
    grads: Vec<Vec<f32>>,
) -> anyhow::Result<()> {
    let param_dims: Vec<Vec<usize>> = shape.params().into_iter().map(|(_, d)| d).collect();
    let mut opt_inputs = vec![
        ("lr".to_string(), Input::F32(vec![], vec![lr as f32])),
        ("step".to_string(), Input::F32(vec![], vec![(state.steps + 1) as f32])),
    ];
    opt_inputs.extend(param_inputs(&state.params, shape, ""));
    for (((name, _), g), dims) in state.params.iter().zip(grads).zip(&param_dims) {
        opt_inputs.push((format!("grad.{name}"), Input::F32(dims.clone(), g)));
    }
    // Slots are stored slot-major: every parameter's velocity (or m, then v).
    for (i, (name, values)) in state.slots.iter().enumerate() {
        let dims = param_dims[i % param_dims.len()].clone();
        opt_inputs.push((name.clone(), Input::F32View(dims, values)));
    }
    let mut new_names: Vec<String> = state.params.iter().map(|(n, _)| format!("new.{n}")).collect();
    new_names.extend(state.slots.iter().map(|(n, _)| format!("new.{n}")));
    let new_refs: Vec<&str> = new_names.iter().map(String::as_str).collect();
    let updated = artifacts.optimizer.run(opt_inputs, &new_refs)?;
    let np = state.params.len();
    for (i, values) in updated.into_iter().enumerate() {
        if i < np {
            state.params[i].1 = values;
        } else {
            state.slots[i - np].1 = values;
        }
    }
    Ok(())
}

/// Records an epoch: the best epoch so far (`train.early_stopping.monitor`), early stopping,
/// and its history row. `train_figures` is (mean loss, accuracy) on the train split.
fn end_epoch(
    train: &Train,
    state: &mut State,
    epoch: usize,
    v: &ValFigures,
    train_figures: (f64, f64),
    seconds: f64,
) -> EpochRow {
    let monitored = match train.early_stopping.monitor {
        Monitor::ValLoss => v.loss,
        Monitor::ValAccuracy => v.accuracy,
        Monitor::ValAuc => v.auc.unwrap_or(f64::NEG_INFINITY),
        // Every epoch improves on the one before: the last one is kept.
        Monitor::Last => (epoch + 1) as f64,
    };
    let best = state.best_epoch.is_none() || improves(train.early_stopping.monitor, monitored, state.best_value);
    if best {
        state.best_epoch = Some(epoch + 1);
        state.best_value = monitored;
        state.best_params = state.params.clone();
        state.stale_epochs = 0;
        for r in &mut state.history {
            r.best = false;
        }
    } else {
        state.stale_epochs += 1;
    }
    let row = EpochRow {
        epoch: epoch + 1,
        train_loss: train_figures.0,
        train_accuracy: train_figures.1,
        val_loss: v.loss,
        val_accuracy: v.accuracy,
        val_auc: v.auc,
        val_sensitivity: v.sensitivity,
        val_specificity: v.specificity,
        lr: train.optimizer.lr,
        seconds,
        best,
    };
    state.history.push(row.clone());
    state.epochs_done += 1;
    if train.early_stopping.patience > 0 && state.stale_epochs >= train.early_stopping.patience {
        state.stopped_early = true;
    }
    row
}

#[cfg(test)]
mod monitor_tests {
    use super::*;

    #[test]
    fn last_keeps_every_new_epoch_and_the_others_keep_the_best() {
        // The monitored value of `last` is the epoch number, which always improves.
        let mut best = initial_best(Monitor::Last);
        for epoch in 1..=5 {
            assert!(improves(Monitor::Last, epoch as f64, best));
            best = epoch as f64;
        }
        assert!(improves(Monitor::ValLoss, 0.2, 0.3) && !improves(Monitor::ValLoss, 0.4, 0.3));
        assert!(improves(Monitor::ValAuc, 0.9, 0.8) && !improves(Monitor::ValAuc, 0.7, 0.8));
    }
}
