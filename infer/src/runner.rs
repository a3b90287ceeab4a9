//! Running the model over a source: batches of a split's stored tensors, or of raw files
//! decoded on all cores in a producer thread while the model runs.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use anyhow::{Context, bail};
use cxr_config::{OutputFormat, Preprocess};
use cxr_engine::{Input, Model};
use cxr_store::layout::Layout;
use cxr_store::manifest::{ManifestRow, REJECT_COLUMNS, RejectRow, TensorsMeta};
use cxr_store::npy::NpyReader;
use rayon::prelude::*;

use crate::model::pixel_differences;
use crate::{ModelFile, Options, Outcome, Prediction, Source, adapt, explain};

/// A batch ready for the model: uint8 pixels and who they belong to.
pub(crate) struct Batch {
    pub(crate) pixels: Vec<u8>,
    pub(crate) items: Vec<(String, Option<String>)>,
}

pub(crate) struct Runner<'a> {
    pub(crate) session: Model,
    pub(crate) info: &'a ModelFile,
    pub(crate) threshold: f64,
    /// With `--explain`: the session is the Grad-CAM model, whose maps are kept here.
    pub(crate) explaining: Option<explain::Explaining>,
}

impl Runner<'_> {
    pub(crate) fn predict(&mut self, batch: Batch) -> anyhow::Result<Vec<Prediction>> {
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
pub(crate) struct SourceRun<'a> {
    /// How raw files are prepared, and the pixels stored tensors must have been made with.
    pub(crate) preprocess: &'a Preprocess,
    /// `infer.batch_size`.
    pub(crate) batch_size: usize,
    pub(crate) layout: &'a Layout,
    pub(crate) info: &'a ModelFile,
    pub(crate) options: &'a Options,
    pub(crate) format: OutputFormat,
    /// Where predictions go: this experiment's layout, or its shard's.
    pub(crate) target: &'a Layout,
    /// The model's prior when `infer.adaptation: prior` (checked before any image is read).
    pub(crate) adapt_from: Option<f64>,
}

impl SourceRun<'_> {
    /// Predicts `source` and writes its predictions (and rejects) file.
    pub(crate) fn predict(&self, source: &Source, runner: &mut Runner, outcome: &mut Outcome) -> anyhow::Result<()> {
        let (preprocess, batch_size, info, options) = (self.preprocess, self.batch_size, self.info, self.options);
        let (name, mut predictions, rejected) = match source {
            Source::Split(split) => {
                let predictions = predict_split(preprocess, batch_size, self.layout, info, split, runner, options)?;
                (split.clone(), predictions, Vec::new())
            }
            Source::Paths(paths) => {
                let (p, r) = predict_files(preprocess, batch_size, info, paths, runner, options)?;
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
            let transform = info.transform(preprocess);
            let drawing = explain::Drawing {
                info,
                transform: &transform,
                threshold: runner.threshold,
                threads: preprocess.worker_threads(),
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

/// Predicts the stored tensors of `split`, `batch_size` (`infer.batch_size`) images at a
/// time; `preprocess` is this experiment's, which the model's pixels must match.
pub(crate) fn predict_split(
    preprocess: &Preprocess,
    batch_size: usize,
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
        let differences = pixel_differences(preprocess, model_pre);
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
    for (start, chunk) in (range.start..).step_by(batch_size).zip(rows.chunks(batch_size)) {
        let pixels = reader.read_rows_bytes(start, chunk.len())?;
        let items = chunk.iter().map(|r| (r.path.clone(), Some(r.class.clone()))).collect();
        out.extend(runner.predict(Batch { pixels, items })?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// The class a file's folder names, if it is one of `classes`.
pub(crate) fn label_from_path(path: &Path, classes: &[String]) -> Option<String> {
    let parent = path.parent()?.file_name()?.to_str()?;
    classes.iter().find(|c| c.as_str() == parent).cloned()
}

/// Predicts image files and the files below folders, decoded as `preprocess` (adjusted to
/// the model) says, `batch_size` (`infer.batch_size`) at a time; returns the unreadable ones
/// as rejects.
pub(crate) fn predict_files(
    preprocess: &Preprocess,
    batch_size: usize,
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
    let transform = info.transform(preprocess);
    let threads = preprocess.worker_threads();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let bar = cxr_cli::progress_bar(files.len() as u64, "infer", options.show_progress);
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
