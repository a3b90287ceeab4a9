//! The preprocess stage: dataset -> per-split uint8 tensors, manifests and rejects.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::bail;
use cxr_config::{Adapter, Config, Data, Duplicates, OnError, Preprocess, ValSource};
use cxr_imaging::{Format, ImagingError, Prepared, Transform};
use cxr_store::csv_file::write_csv;
use cxr_store::layout::Layout;
use cxr_store::manifest::{MANIFEST_COLUMNS, ManifestRow, REJECT_COLUMNS, RejectRow, SplitMeta};
use cxr_store::npy::{DType, NpyWriter};
use cxr_store::provenance::Provenance;
use cxr_store::staging::Staging;
use rayon::prelude::*;

use crate::dataset::Item;
use crate::shard::{Shard, SliceSplits};
use crate::split;

/// Images decoded in parallel before their rows are written in order.
const CHUNK: usize = 128;
/// Dataset `val` splits smaller than this per class are merged into train and re-split.
const MIN_DATASET_VAL_PER_CLASS: usize = 20;

/// Per-split counts of what was written and rejected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub splits: Vec<SplitMeta>,
    /// Rejected files per reason kind (`corrupt`, `not-an-image`, ...).
    pub rejected: BTreeMap<String, usize>,
}

/// What the caller wants besides the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub show_progress: bool,
    /// Process only this shard's contiguous slice of every split (`--shard I/N`).
    pub shard: Option<Shard>,
}

/// Runs the stage for `config`.
pub fn run(config: &Config, options: &Options) -> anyhow::Result<Summary> {
    let shard = options.shard.map(|s| s.to_string());
    let _lock = cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "preprocess", shard.as_deref())?;
    let threads = config.preprocess.worker_threads();
    let mut provenance = Provenance::start("preprocess", config);
    if config.data.adapter == Adapter::Synthetic {
        crate::synthetic::ensure(&config.data, config.experiment.seed, threads)?;
    }
    let dataset = crate::adapter::load(&config.data)?;
    let mut rejects = dataset.rejects.clone();
    let mut splits = arrange_splits(&config.data, config.experiment.seed, dataset.splits)?;
    let mut target = Layout::new(config);
    if let Some(shard) = options.shard {
        splits = shard.slice(splits);
        // Rejects found before decoding (e.g. CSV rows without a file) belong to shard 0.
        if shard.index != 0 {
            rejects.clear();
        }
        target = Layout::at(&target.shard(shard.index, shard.count));
        provenance.tool("shard", format!("{}/{}", shard.index, shard.count));
    }

    // The new store is built in a staging folder and swapped in at the end: a crash,
    // a full disk or a read-only folder leaves the previous tensors as they were.
    let final_tensors = target.tensors();
    cxr_store::staging::recover(&final_tensors);
    let staging = Staging::new(&final_tensors)?;
    let layout = Layout::at(staging.root());

    let transform = Transform::from_config(&config.preprocess);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let total: usize = splits.values().map(Vec::len).sum();
    let bar = cxr_cli::progress_bar(total as u64, "preprocess", options.show_progress);
    let mut summary = Summary::default();
    for (split, items) in &splits {
        let before = rejects.len();
        let meta = write_split(
            &layout,
            split,
            items,
            &transform,
            &config.preprocess,
            &config.data.classes,
            &pool,
            &bar,
            &mut rejects,
        )?;
        write_csv(&layout.split_rejects(split), REJECT_COLUMNS, &rejects[before..])?;
        summary.splits.push(meta);
    }
    bar.finish_and_clear();

    for r in &rejects {
        *summary.rejected.entry(reason_kind(&r.reason)).or_default() += 1;
    }
    if options.shard.is_none() {
        check_usable(&config.data.root, &summary, &rejects, &cxr_store::layout::rejects_beside(&final_tensors))?;
        let names: Vec<&str> = summary.splits.iter().map(|s| s.name.as_str()).collect();
        check_duplicates(config.data.duplicates, &layout, &names)?;
    }
    provenance.input("data.root", config.data.root.display().to_string());
    provenance.tool("threads", threads.to_string());
    crate::tensor_store::finish(&layout, config, summary.splits.clone(), &rejects, provenance)?;
    staging.commit()?;
    Ok(summary)
}

/// Refuses a store nothing could be learnt from: no usable image at all, or a train split
/// whose every file was rejected. The error counts the rejects by reason, and every
/// rejected file with its reason is written to `rejects_file` (`EXP/tensors.rejects.csv`:
/// the staged `tensors/` is discarded, and the previous tensors stay as they were).
fn check_usable(root: &Path, summary: &Summary, rejects: &[RejectRow], rejects_file: &Path) -> anyhow::Result<()> {
    let total: usize = summary.splits.iter().map(|s| s.count).sum();
    let train_listed = summary.splits.iter().any(|s| s.name == "train");
    let train_empty = summary.splits.iter().find(|s| s.name == "train").is_some_and(|s| s.count == 0);
    if total > 0 && !(train_listed && train_empty) {
        if let Err(e) = std::fs::remove_file(rejects_file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove the stale {}: {e}", rejects_file.display());
        }
        return Ok(());
    }
    let what = if total > 0 { "training " } else { "" };
    let root = root.display();
    if rejects.is_empty() {
        bail!("no usable {what}image in {root}: no file was found to read");
    }
    write_csv(rejects_file, REJECT_COLUMNS, rejects)?;
    bail!(
        "no usable {what}image in {root}: {} file(s) rejected: {}; every file and its reason: {}",
        rejects.len(),
        reasons_with_counts(rejects),
        rejects_file.display()
    )
}

/// `6 not an image (content is text), 2 corrupt or truncated JPEG (e.g. premature end)`:
/// the rejects counted by kind, most first, each with its detail (the most common one,
/// `e.g.` when they differ).
fn reasons_with_counts(rejects: &[RejectRow]) -> String {
    let mut kinds: BTreeMap<String, BTreeMap<&str, usize>> = BTreeMap::new();
    for r in rejects {
        let kind = reason_kind(&r.reason);
        let detail = r.reason[kind.len().min(r.reason.len())..].trim_start_matches([':', ',', ' ']);
        *kinds.entry(kind).or_default().entry(detail).or_default() += 1;
    }
    let mut counted: Vec<(usize, String)> = kinds
        .into_iter()
        .map(|(kind, details)| {
            let count: usize = details.values().sum();
            let (detail, n) = details.iter().max_by_key(|(_, n)| **n).map(|(d, n)| (*d, *n)).unwrap_or(("", 0));
            let detail = match shorten(detail) {
                d if d.is_empty() => String::new(),
                d if n == count => format!(" ({d})"),
                d => format!(" (e.g. {d})"),
            };
            (count, format!("{count} {kind}{detail}"))
        })
        .collect();
    counted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    counted.into_iter().map(|(_, text)| text).collect::<Vec<_>>().join(", ")
}

/// `text` cut to about 80 characters at a character boundary.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// Byte-identical images in two splits (a leak: the model is judged on what it learnt) or
/// under two labels (a contradiction): an error, or with `data.duplicates: warn` a warning.
fn check_duplicates(duplicates: Duplicates, layout: &Layout, splits: &[&str]) -> anyhow::Result<()> {
    let mut seen: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for split in splits {
        for row in cxr_store::csv_file::read_csv::<ManifestRow>(&layout.manifest(split))? {
            match seen.get(&row.sha256) {
                Some((s, class, path)) if s != split || *class != row.class => {
                    conflicts.push(format!("{path} ({s}, {class}) = {} ({split}, {})", row.path, row.class));
                }
                Some(_) => {}
                None => {
                    seen.insert(row.sha256.clone(), (split.to_string(), row.class.clone(), row.path.clone()));
                }
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    let message = format!(
        "{} image(s) are byte for byte the same as another in another split or under another label, for example {}",
        conflicts.len(),
        conflicts.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
    );
    match duplicates {
        Duplicates::Error => {
            bail!("{message}; remove the copies, or set data.duplicates: warn to go on")
        }
        Duplicates::Warn => {
            tracing::warn!("{message} (data.duplicates: warn)");
            Ok(())
        }
    }
}

/// The first word of a reason, used to count rejects by kind.
fn reason_kind(reason: &str) -> String {
    reason.split([':', ',']).next().unwrap_or(reason).trim().to_string()
}

/// Applies `data.val_source`, `data.val_fraction` and `data.limit_per_class`; `seed` is
/// `experiment.seed`.
pub fn arrange_splits(
    data: &Data,
    seed: u64,
    mut splits: BTreeMap<String, Vec<Item>>,
) -> anyhow::Result<BTreeMap<String, Vec<Item>>> {
    let classes = data.classes.len();
    let val_big_enough = |items: &Vec<Item>| {
        (0..classes).all(|c| items.iter().filter(|i| i.label == c).count() >= MIN_DATASET_VAL_PER_CLASS)
    };
    let from_train = match data.val_source {
        ValSource::FromTrain => true,
        ValSource::Dataset => {
            if !splits.contains_key("val") {
                bail!(
                    "data.val_source is `dataset` but {} has no val split; use `auto` or `from-train`",
                    data.root.display()
                );
            }
            false
        }
        ValSource::Auto => !splits.get("val").is_some_and(val_big_enough),
    };
    if !splits.contains_key("train") {
        let names: Vec<&str> = splits.keys().map(String::as_str).collect();
        tracing::warn!(
            "{} has no train split, only [{}]: this dataset can only be evaluated, with a model trained elsewhere (`infer --model OTHER_EXP/train/model.onnx`)",
            data.root.display(),
            names.join(", ")
        );
        return Ok(splits);
    }
    if from_train {
        let mut train = splits.remove("train").expect("checked above");
        if let Some(small_val) = splits.remove("val") {
            tracing::info!(
                images = small_val.len(),
                "the dataset's own val split is too small or not wanted; merged into train before re-splitting"
            );
            train.extend(small_val);
            train.sort();
        }
        let (train, val) = split::take_validation(
            train,
            data.val_fraction,
            seed,
            data.group_by_patient,
            data.max_patient_share,
            classes,
        )?;
        splits.insert("train".into(), train);
        splits.insert("val".into(), val);
    }
    split_off_estimate(data, seed, &mut splits)?;
    // The limit makes a small balanced training set (the tutorial's 300 + 300); validation
    // and test keep every image, so they still measure on as much data as there is.
    if let Some(limit) = data.limit_per_class
        && let Some(train) = splits.get_mut("train")
    {
        *train = split::limit_per_class(std::mem::take(train), limit, seed, classes);
    }
    Ok(splits)
}

/// Divides `val` (by patient) into `val`, on which train chooses the epoch, temperature and
/// threshold, and `estimate`, which nothing is chosen on (`data.estimate_fraction`).
fn split_off_estimate(data: &Data, seed: u64, splits: &mut BTreeMap<String, Vec<Item>>) -> anyhow::Result<()> {
    let fraction = data.estimate_fraction;
    let classes = data.classes.len();
    let Some(val) = splits.get("val") else { return Ok(()) };
    if fraction == 0.0 {
        return Ok(());
    }
    if splits.contains_key("estimate") {
        bail!(
            "{} has its own `estimate` split, which data.estimate_fraction would make from val; rename it or set data.estimate_fraction: 0",
            data.root.display()
        );
    }
    let smallest = (0..classes).map(|c| val.iter().filter(|i| i.label == c).count()).min().unwrap_or(0);
    if smallest < cxr_config::Data::MIN_PER_CLASS_FOR_ESTIMATE {
        tracing::warn!(
            "the val split has only {smallest} images of its smallest class (< {}): it is not divided into val and estimate, so its figures are the ones choices were made on (optimistic)",
            cxr_config::Data::MIN_PER_CLASS_FOR_ESTIMATE
        );
        return Ok(());
    }
    let val = splits.remove("val").expect("checked");
    let seed = seed ^ 0xe571_3a7e;
    // No share check here: it was made on the whole training split.
    let (val, estimate) = split::take_validation(val, fraction, seed, data.group_by_patient, 1.0, classes)?;
    splits.insert("val".into(), val);
    splits.insert("estimate".into(), estimate);
    Ok(())
}

fn decode_one(item: &Item, transform: &Transform) -> Result<(Prepared, String), ImagingError> {
    let bytes = transform.read_file(&item.path)?;
    let sha = cxr_store::sha256_bytes(&bytes);
    Ok((transform.apply_bytes(&bytes)?, sha))
}

fn extension_matches(format: Format, path: &Path) -> bool {
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    match format {
        Format::Jpeg => matches!(ext.as_str(), "jpg" | "jpeg" | "jpe" | "jfif"),
        Format::Png => ext == "png",
        Format::Dicom => matches!(ext.as_str(), "dcm" | "dicom" | ""),
        Format::Bmp => ext == "bmp",
        Format::Tiff => matches!(ext.as_str(), "tif" | "tiff"),
        Format::Webp => ext == "webp",
    }
}

#[allow(clippy::too_many_arguments)]
fn write_split(
    layout: &Layout,
    split: &str,
    items: &[Item],
    transform: &Transform,
    preprocess: &Preprocess,
    classes: &[String],
    pool: &rayon::ThreadPool,
    bar: &cxr_cli::ProgressBar,
    rejects: &mut Vec<RejectRow>,
) -> anyhow::Result<SplitMeta> {
    let [h, w] = preprocess.size;
    let mut images = NpyWriter::create(&layout.images(split), DType::U8, &[h as usize, w as usize, 3])?;
    let mut labels: Vec<i64> = Vec::with_capacity(items.len());
    let mut manifest: Vec<ManifestRow> = Vec::with_capacity(items.len());
    bar.set_message(split.to_string());
    for chunk in items.chunks(CHUNK) {
        let results: Vec<_> = pool.install(|| chunk.par_iter().map(|item| decode_one(item, transform)).collect());
        for (item, result) in chunk.iter().zip(results) {
            let path = item.path.display().to_string();
            match result {
                Ok((prepared, sha256)) => {
                    if !extension_matches(prepared.format, &item.path) {
                        tracing::warn!(
                            path,
                            format = prepared.format.name(),
                            "file extension does not match its content; decoded by content"
                        );
                    }
                    images.write_rows_bytes(&prepared.pixels)?;
                    labels.push(item.label as i64);
                    manifest.push(ManifestRow {
                        index: manifest.len(),
                        patient: item.patient.clone(),
                        path,
                        label: item.label as i64,
                        class: classes[item.label].clone(),
                        width: prepared.source_width,
                        height: prepared.source_height,
                        sha256,
                    });
                }
                Err(e) if preprocess.on_error == OnError::Fail => {
                    bail!(
                        "{path}: {e} (preprocess.on_error is `fail`; use `skip` to record it in rejects.csv and go on)"
                    )
                }
                Err(e) => {
                    tracing::debug!(path, reason = %e, "rejected");
                    rejects.push(RejectRow { path, reason: e.to_string() });
                }
            }
            bar.inc(1);
        }
    }
    images.finish()?;
    cxr_store::npy::write_i64(&layout.labels(split), &labels)?;
    write_csv(&layout.manifest(split), MANIFEST_COLUMNS, &manifest)?;
    Ok(SplitMeta::of(split, classes.len(), &manifest))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;

    fn items(n: usize, label: usize) -> Vec<Item> {
        // Two images per patient.
        (0..n)
            .map(|i| Item {
                path: PathBuf::from(format!("/d/{label}/p{}_{}.png", i / 2, i % 2)),
                label,
                patient: format!("{label}-{}", i / 2),
            })
            .collect()
    }

    #[test]
    fn val_is_divided_by_patient_into_selection_and_estimate() {
        let seed = cxr_config::Experiment::default().seed;
        let mut data = Data { val_source: ValSource::FromTrain, val_fraction: 0.3, ..Data::default() };
        let mut all = items(200, 0);
        all.extend(items(300, 1));
        let splits = arrange_splits(&data, seed, BTreeMap::from([("train".to_string(), all)])).unwrap();
        let names: Vec<&str> = splits.keys().map(String::as_str).collect();
        assert_eq!(names, ["estimate", "train", "val"]);
        let patients = |s: &str| splits[s].iter().map(|i| i.patient.clone()).collect::<BTreeSet<_>>();
        for (a, b) in [("train", "val"), ("train", "estimate"), ("val", "estimate")] {
            assert!(patients(a).is_disjoint(&patients(b)), "{a} and {b} share a patient");
        }
        let (val, estimate) = (splits["val"].len(), splits["estimate"].len());
        assert_eq!(val + estimate + splits["train"].len(), 500);
        assert!(val.abs_diff(estimate) <= 6, "{val} vs {estimate}");

        // Off, or too small a val split: one val split, as before.
        data.estimate_fraction = 0.0;
        let mut all = items(200, 0);
        all.extend(items(300, 1));
        assert!(
            !arrange_splits(&data, seed, BTreeMap::from([("train".to_string(), all)]))
                .unwrap()
                .contains_key("estimate")
        );
        data.estimate_fraction = 0.5;
        let mut small = items(40, 0);
        small.extend(items(40, 1));
        assert!(
            !arrange_splits(&data, seed, BTreeMap::from([("train".to_string(), small)]))
                .unwrap()
                .contains_key("estimate")
        );
    }
}
