//! The feature cache: the frozen backbone runs once over every split and its
//! features are stored as `.npy`, keyed by the backbone's and the tensors' hashes.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cxr_engine::{Engine, Inputs, Lanes};
use cxr_store::layout::Layout;
use cxr_store::manifest::TensorsMeta;
use cxr_store::npy::{DType, NpyReader, NpyWriter};
use cxr_store::shard::Shard;
use serde::{Deserialize, Serialize};

use crate::augment::AugmentParams;
use crate::backbone::{EncodedFeatures, FeatureSpec, LoadedBackbone};
use cxr_engine::Input;

/// What the cached features were computed from; any change recomputes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheKey {
    pub backbone_sha256: String,
    /// SHA-256 over the split's source files (manifest order), the `preprocess` section
    /// and the program version: the same images made the same way, whatever the
    /// experiment, its other splits or its `data` settings.
    pub split_content: String,
    pub spec: String,
}

/// Features of one split: `[N, F]` float32 and the labels.
#[derive(Debug, Clone)]
pub struct SplitFeatures {
    pub features: Vec<f32>,
    pub labels: Vec<i64>,
    pub dim: usize,
}

impl SplitFeatures {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }
}

impl CacheKey {
    /// The cache folder of one split's features: `<workdir>/.feature-cache/<hash of the key>/`,
    /// shared by every experiment of a workdir with the same images and backbone.
    pub fn dir(&self, layout: &Layout) -> PathBuf {
        let text = serde_json::to_string(self).expect("serialisable");
        let hash = cxr_store::sha256_bytes(text.as_bytes());
        layout.feature_cache().join(&hash[..16])
    }
}

/// The content hash of `split`: its rows' source SHA-256 in order, how pixels were made,
/// and the stored pixels themselves (a program version that decodes or resizes differently
/// makes other pixels from the same files and settings; its features are not these).
pub fn split_content(layout: &Layout, split: &str, transform_hash: &str) -> anyhow::Result<String> {
    let rows: Vec<cxr_store::manifest::ManifestRow> = cxr_store::csv_file::read_csv(&layout.manifest(split))?;
    let pixels = cxr_store::sha256_file(&layout.images(split))?;
    let mut text = format!("{transform_hash}\n{}\n{pixels}\n", env!("CARGO_PKG_VERSION"));
    for row in rows {
        text.push_str(&row.sha256);
        text.push('\n');
    }
    Ok(cxr_store::sha256_bytes(text.as_bytes()))
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("key.json")
}

fn features_path(dir: &Path) -> PathBuf {
    dir.join("features.npy")
}

/// The features model (preprocessing + frozen backbone + pooling), open as lanes: one
/// session per core on the CPU for an int8 backbone (see [`Engine::lanes_from_bytes`]).
pub struct Extractor {
    lanes: Lanes,
    size: [u32; 2],
    /// The execution provider that runs it.
    pub provider: String,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("size", &self.size)
            .field("provider", &self.provider)
            .field("lanes", &self.lanes.len())
            .finish()
    }
}

impl Extractor {
    /// Opens the features model on `engine`, for `[h, w]` images.
    pub fn open(engine: &Engine, model: &EncodedFeatures, size: [u32; 2]) -> anyhow::Result<Self> {
        let (lanes, provider) = engine.lanes_from_bytes(&model.features_model(), Path::new("features model"))?;
        Ok(Extractor { lanes, size, provider: provider.to_string() })
    }

    /// Runs the model over the rows `rows` of `reader`, `batch_size` rows at a time over all
    /// lanes together (each lane takes its share, so the lanes hold about one batch's
    /// activations between them): `prepare` gets each share's first row index and pixels and returns what
    /// the model sees (on the lane's thread); `sink` gets the features `[n, F]` (flattened)
    /// and `F`, in row order.
    fn run_rows(
        &mut self,
        reader: &mut NpyReader,
        rows: std::ops::Range<usize>,
        batch_size: usize,
        bar: &cxr_cli::ProgressBar,
        prepare: impl Fn(usize, Vec<u8>) -> Vec<u8> + Sync,
        mut sink: impl FnMut(&[f32], usize) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let (start, end) = (rows.start, rows.end.min(reader.rows()));
        let share = batch_size.div_ceil(self.lanes.len()).max(1);
        let rows_of = |i: usize| {
            let first = start + i * share;
            (first, share.min(end - first))
        };
        let [h, w] = self.size.map(|v| v as usize);
        let reader = std::sync::Mutex::new(reader);
        let input = |i: usize| -> anyhow::Result<Inputs> {
            let (first, n) = rows_of(i);
            let bytes = reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).read_rows_bytes(first, n)?;
            Ok(vec![("image".into(), Input::U8(vec![n, h, w, 3], prepare(first, bytes)))])
        };
        let count = end.saturating_sub(start).div_ceil(share);
        self.lanes.run_in_order(count, &["features"], input, |i, mut outputs| {
            let (features, n) = (outputs.remove(0), rows_of(i).1);
            sink(&features, features.len() / n)?;
            bar.inc(n as u64);
            Ok(())
        })
    }
}

/// What to compute features with.
#[derive(Debug)]
pub struct FeatureJob<'a> {
    pub engine: &'a Engine,
    pub layout: &'a Layout,
    pub meta: &'a TensorsMeta,
    pub backbone: &'a LoadedBackbone,
    pub spec: &'a FeatureSpec,
    pub model: &'a EncodedFeatures,
    /// Hash of the `preprocess` config section (how the stored pixels were made).
    pub transform_hash: String,
    pub batch_size: usize,
    pub use_cache: bool,
    pub show_progress: bool,
}

impl FeatureJob<'_> {
    /// The cache key of `split`'s features.
    fn key(&self, split: &str) -> anyhow::Result<CacheKey> {
        Ok(CacheKey {
            backbone_sha256: self.backbone.sha256.clone(),
            split_content: split_content(self.layout, split, &self.transform_hash)?,
            spec: serde_json::to_string(self.spec).expect("serialisable"),
        })
    }
}

/// The key in a cache key file, if it holds one.
fn read_key(path: &Path) -> Option<CacheKey> {
    std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str::<CacheKey>(&t).ok())
}

/// Computes (or reuses, split by split) the features of `splits`.
pub fn compute(job: &FeatureJob, splits: &[&str]) -> anyhow::Result<Vec<SplitFeatures>> {
    let mut dirs = Vec::new();
    let mut missing = Vec::new();
    for split in splits {
        let key = job.key(split)?;
        let dir = key.dir(job.layout);
        let cached = job.use_cache && read_key(&key_path(&dir)).as_ref() == Some(&key) && features_path(&dir).is_file();
        if cached {
            tracing::info!(split, "reusing cached backbone features ({})", dir.display());
        } else if job.use_cache && merge_shards(&dir, &key)? {
            tracing::info!(split, "backbone features merged from `train --shard` runs ({})", dir.display());
        } else {
            missing.push((*split, key, dir.clone()));
        }
        dirs.push(dir);
    }
    if !missing.is_empty() {
        compute_missing(job, &missing)?;
    }
    splits
        .iter()
        .zip(&dirs)
        .map(|(split, dir)| {
            let mut reader = NpyReader::open(&features_path(dir))?;
            let dim = reader.shape().get(1).copied().unwrap_or(0);
            let features: Vec<f32> = reader.read_all::<f32>()?.into_iter().collect();
            let labels: Vec<i64> = cxr_store::npy::read::<i64>(&job.layout.labels(split))?.into_iter().collect();
            anyhow::ensure!(
                features.len() == labels.len() * dim,
                "{}: {} feature rows but {} labels",
                features_path(dir).display(),
                features.len() / dim.max(1),
                labels.len()
            );
            Ok(SplitFeatures { features, labels, dim })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("reading cached features")
}

/// Runs the backbone over the splits not in the cache, writing each split's folder.
fn compute_missing(job: &FeatureJob, missing: &[(&str, CacheKey, PathBuf)]) -> anyhow::Result<()> {
    let mut extractor = Extractor::open(job.engine, job.model, job.meta.size)?;
    tracing::info!(provider = %extractor.provider, backbone = job.backbone.description, "computing backbone features once");
    let total: usize = missing.iter().filter_map(|(s, _, _)| job.meta.split(s)).map(|s| s.count).sum();
    let bar = cxr_cli::progress_bar(total as u64, "features", job.show_progress);
    for (split, key, dir) in missing {
        let _ = std::fs::remove_file(key_path(dir));
        write_rows(job, &mut extractor, split, None, &features_path(dir), &bar)?;
        // The key is written last: its presence means the features beside it are complete.
        cxr_store::write_json(&key_path(dir), key)?;
    }
    bar.finish_and_clear();
    Ok(())
}

/// Writes the features of `split`'s rows (all, or `shard`'s part) to `path`.
fn write_rows(
    job: &FeatureJob,
    extractor: &mut Extractor,
    split: &str,
    shard: Option<Shard>,
    path: &Path,
    bar: &cxr_cli::ProgressBar,
) -> anyhow::Result<usize> {
    let mut reader = NpyReader::open(&job.layout.images(split))?;
    let rows = shard.map_or(0..reader.rows(), |s| s.range(reader.rows()));
    let mut writer: Option<NpyWriter> = None;
    extractor.run_rows(
        &mut reader,
        rows.clone(),
        job.batch_size,
        bar,
        |_, pixels| pixels,
        |out, dim| {
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(NpyWriter::create(path, DType::F32, &[dim])?),
            };
            Ok(w.write_f32(out)?)
        },
    )?;
    match writer {
        Some(w) => w.finish()?,
        None => NpyWriter::create(path, DType::F32, &[0])?.finish()?,
    };
    Ok(rows.len())
}

/// Shard `I` of `N` of a split's features: `<dir>/shards/I-of-N.npy`, and its key (written last).
fn shard_paths(dir: &Path, shard: Shard) -> (PathBuf, PathBuf) {
    let shards = dir.join("shards");
    (shards.join(format!("{shard}.npy")), shards.join(format!("{shard}.key.json")))
}

/// `train --shard I/N`: the features of shard `I`'s part of each of `splits` not cached
/// yet, into the shared feature cache, where a later `train` merges them. Returns the rows
/// computed.
pub fn compute_shard(job: &FeatureJob, splits: &[&str], shard: Shard) -> anyhow::Result<usize> {
    anyhow::ensure!(job.use_cache, "--shard fills the feature cache: set train.feature_cache: true");
    let mut extractor = Extractor::open(job.engine, job.model, job.meta.size)?;
    let total: usize = splits.iter().filter_map(|s| job.meta.split(s)).map(|s| shard.range(s.count).len()).sum();
    let bar = cxr_cli::progress_bar(total as u64, &format!("features {shard}"), job.show_progress);
    let mut rows = 0;
    for split in splits {
        let key = job.key(split)?;
        let dir = key.dir(job.layout);
        let (features, key_file) = shard_paths(&dir, shard);
        let whole = features_path(&dir).is_file() && read_key(&key_path(&dir)).as_ref() == Some(&key);
        if read_key(&key_file).as_ref() == Some(&key) || whole {
            tracing::info!(split, "shard {shard} of the features is already in {}", dir.display());
            continue;
        }
        std::fs::create_dir_all(dir.join("shards")).with_context(|| format!("cannot create {}", dir.display()))?;
        let _ = std::fs::remove_file(&key_file);
        rows += write_rows(job, &mut extractor, split, Some(shard), &features, &bar)?;
        cxr_store::write_json(&key_file, &key)?;
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// Concatenates a complete set of `train --shard I/N` outputs for `key` in `dir` (every
/// `I` of one `N`, each with its key) into the split's features, rows in order; `false`
/// when there is no complete set.
fn merge_shards(dir: &Path, key: &CacheKey) -> anyhow::Result<bool> {
    let Ok(entries) = std::fs::read_dir(dir.join("shards")) else { return Ok(false) };
    let mut counts: Vec<usize> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".key.json")?.split_once("-of-")?.1.parse().ok())
        .collect();
    counts.sort_unstable();
    counts.dedup();
    let mut foreign = Vec::new();
    for count in counts {
        let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
        let keys: Vec<Option<CacheKey>> = shards.iter().map(|&s| read_key(&shard_paths(dir, s).1)).collect();
        foreign.extend(
            shards.iter().zip(&keys).filter(|(_, k)| k.as_ref().is_some_and(|k| k != key)).map(|(s, _)| s.to_string()),
        );
        if keys.iter().any(|k| k.as_ref() != Some(key)) {
            continue;
        }
        let mut writer: Option<NpyWriter> = None;
        for &s in &shards {
            let path = shard_paths(dir, s).0;
            let mut reader = NpyReader::open(&path)?;
            let dim = reader.shape().get(1).copied().unwrap_or(0);
            let rows = reader.rows();
            if rows == 0 {
                continue; // more shards than rows
            }
            let bytes = reader.read_rows_bytes(0, rows)?;
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(NpyWriter::create(&features_path(dir), DType::F32, &[dim])?),
            };
            w.write_rows_bytes(&bytes).with_context(|| format!("merging {}", path.display()))?;
        }
        match writer {
            Some(w) => w.finish()?,
            None => NpyWriter::create(&features_path(dir), DType::F32, &[0])?.finish()?,
        };
        cxr_store::write_json(&key_path(dir), key)?;
        return Ok(true);
    }
    if !foreign.is_empty() {
        // Another backbone (an int8 one calibrated to other ranges on another machine) or
        // other pixels: those shards cannot be used, and the whole pass runs here.
        tracing::warn!(
            "{}: shards {} were made with another backbone or other images than this run's; computing the whole backbone pass",
            dir.join("shards").display(),
            foreign.join(", ")
        );
    }
    Ok(false)
}

/// A split whose images are augmented anew every epoch (`train.augment.enabled`):
/// the backbone runs over the whole split each epoch and nothing is cached.
#[derive(Debug)]
pub struct AugmentedSplit<'a> {
    pub extractor: Extractor,
    pub layout: &'a Layout,
    pub split: &'a str,
    pub augment: &'a cxr_config::Augment,
    pub seed: u64,
    pub batch_size: usize,
    pub show_progress: bool,
}

impl AugmentedSplit<'_> {
    /// The features of `epoch` (0-based). Row `i`'s transform depends only on
    /// (seed, epoch, i), so a resumed run computes the same features.
    pub fn epoch(&mut self, epoch: usize) -> anyhow::Result<SplitFeatures> {
        let [h, w] = self.extractor.size.map(|v| v as usize);
        let (images, labels_path) = (self.layout.images(self.split), self.layout.labels(self.split));
        let labels: Vec<i64> = cxr_store::npy::read::<i64>(&labels_path)?.into_iter().collect();
        let mut reader = NpyReader::open(&images)?;
        let rows = reader.rows();
        anyhow::ensure!(rows == labels.len(), "{}: {rows} images but {} labels", images.display(), labels.len());
        let bar = cxr_cli::progress_bar(rows as u64, &format!("epoch {} features", epoch + 1), self.show_progress);
        let mut features = Vec::new();
        let mut dim = 0;
        let augment_batch = |start: usize, pixels: Vec<u8>| {
            let mut augmented = vec![0u8; pixels.len()];
            for (i, (src, dst)) in pixels.chunks(h * w * 3).zip(augmented.chunks_mut(h * w * 3)).enumerate() {
                let params = AugmentParams::draw(self.augment, self.seed, epoch, start + i, [h, w]);
                crate::augment::apply(src, [h, w], &params, dst);
            }
            augmented
        };
        self.extractor.run_rows(&mut reader, 0..rows, self.batch_size, &bar, augment_batch, |out, d| {
            dim = d;
            features.extend_from_slice(out);
            Ok(())
        })?;
        bar.finish_and_clear();
        Ok(SplitFeatures { features, labels, dim })
    }
}
