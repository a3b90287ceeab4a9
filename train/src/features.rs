//! The feature cache: the frozen backbone runs once over every split and its
//! features are stored as `.npy`, keyed by the backbone's and the tensors' hashes.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cxr_engine::Engine;
use cxr_engine::ort::session::Session;
use cxr_store::layout::Layout;
use cxr_store::manifest::TensorsMeta;
use cxr_store::npy::{DType, NpyReader, NpyWriter};
use serde::{Deserialize, Serialize};

use crate::augment::AugmentParams;
use crate::backbone::{EncodedFeatures, FeatureSpec, LoadedBackbone};
use crate::runner::{Input, run};

/// What the cached features were computed from; any change recomputes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheKey {
    pub backbone_sha256: String,
    pub tensors_content_hash: String,
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
    /// The cache folder: `<workdir>/.feature-cache/<hash of the key>/`, shared by every
    /// experiment of a workdir whose tensors and backbone are the same.
    pub fn dir(&self, layout: &Layout) -> PathBuf {
        let text = serde_json::to_string(self).expect("serialisable");
        let hash = cxr_store::sha256_bytes(text.as_bytes());
        layout.feature_cache().join(&hash[..16])
    }
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("key.json")
}

fn features_path(dir: &Path, split: &str) -> PathBuf {
    dir.join(format!("{split}.npy"))
}

/// The features model (preprocessing + frozen backbone + pooling) open as a session.
pub struct Extractor {
    session: Session,
    size: [u32; 2],
    /// The execution provider that runs it.
    pub provider: String,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor").field("size", &self.size).field("provider", &self.provider).finish()
    }
}

impl Extractor {
    /// Opens the features model on `engine`, for `[h, w]` images.
    pub fn open(engine: &Engine, model: &EncodedFeatures, size: [u32; 2]) -> anyhow::Result<Self> {
        let (session, provider) = engine.session_from_bytes(&model.features_model(), Path::new("features model"))?;
        Ok(Extractor { session, size, provider: provider.to_string() })
    }

    /// Features `[n, F]` (flattened) of `n` uint8 `[h, w, 3]` images.
    pub fn run(&mut self, pixels: Vec<u8>, n: usize) -> anyhow::Result<Vec<f32>> {
        let [h, w] = self.size;
        let shape = vec![n, h as usize, w as usize, 3];
        Ok(run(&mut self.session, vec![("image".into(), Input::U8(shape, pixels))], &["features"])?.remove(0))
    }

    /// Runs the model over every row of `reader` in batches of `batch_size`: `prepare` gets
    /// each batch's first row index and pixels and returns what the model sees; `sink` gets
    /// the batch's features `[n, F]` (flattened) and `F`.
    fn run_rows(
        &mut self,
        reader: &mut NpyReader,
        batch_size: usize,
        bar: &cxr_cli::ProgressBar,
        mut prepare: impl FnMut(usize, Vec<u8>) -> Vec<u8>,
        mut sink: impl FnMut(&[f32], usize) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let rows = reader.rows();
        let mut start = 0;
        while start < rows {
            let n = batch_size.min(rows - start);
            let pixels = prepare(start, reader.read_rows_bytes(start, n)?);
            let out = self.run(pixels, n)?;
            sink(&out, out.len() / n)?;
            start += n;
            bar.inc(n as u64);
        }
        Ok(())
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
    pub batch_size: usize,
    pub use_cache: bool,
    pub show_progress: bool,
}

/// Computes (or reuses) the features of `splits`.
pub fn compute(job: &FeatureJob, splits: &[&str]) -> anyhow::Result<Vec<SplitFeatures>> {
    let FeatureJob { engine, layout, meta, backbone, spec, model, batch_size, use_cache, show_progress } = *job;
    let key = CacheKey {
        backbone_sha256: backbone.sha256.clone(),
        tensors_content_hash: meta.content_hash.clone(),
        spec: format!("{spec:?}"),
    };
    let dir = key.dir(layout);
    let cached = use_cache
        && std::fs::read_to_string(key_path(&dir))
            .ok()
            .and_then(|t| serde_json::from_str::<CacheKey>(&t).ok())
            .is_some_and(|k| k == key)
        && splits.iter().all(|s| features_path(&dir, s).is_file());
    if !cached {
        let mut extractor = Extractor::open(engine, model, meta.size)?;
        tracing::info!(provider = %extractor.provider, backbone = backbone.description, "computing backbone features once");
        let _ = std::fs::remove_file(key_path(&dir));
        let total: usize = splits.iter().filter_map(|s| meta.split(s)).map(|s| s.count).sum();
        let bar = cxr_cli::progress_bar(total as u64, "features", show_progress);
        for split in splits {
            let mut reader = NpyReader::open(&layout.images(split))?;
            let mut writer: Option<NpyWriter> = None;
            extractor.run_rows(
                &mut reader,
                batch_size,
                &bar,
                |_, pixels| pixels,
                |out, dim| {
                    let w = match &mut writer {
                        Some(w) => w,
                        None => writer.insert(NpyWriter::create(&features_path(&dir, split), DType::F32, &[dim])?),
                    };
                    Ok(w.write_f32(out)?)
                },
            )?;
            match writer {
                Some(w) => {
                    w.finish()?;
                }
                None => {
                    NpyWriter::create(&features_path(&dir, split), DType::F32, &[0])?.finish()?;
                }
            }
        }
        bar.finish_and_clear();
        cxr_store::write_json(&key_path(&dir), &key)?;
    } else {
        tracing::info!("reusing cached backbone features ({})", dir.display());
    }
    splits
        .iter()
        .map(|split| {
            let mut reader = NpyReader::open(&features_path(&dir, split))?;
            let dim = reader.shape().get(1).copied().unwrap_or(0);
            let features: Vec<f32> = reader.read_all::<f32>()?.into_iter().collect();
            let labels: Vec<i64> = cxr_store::npy::read::<i64>(&layout.labels(split))?.into_iter().collect();
            anyhow::ensure!(
                features.len() == labels.len() * dim,
                "{}: {} feature rows but {} labels",
                features_path(&dir, split).display(),
                features.len() / dim.max(1),
                labels.len()
            );
            Ok(SplitFeatures { features, labels, dim })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("reading cached features")
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
        self.extractor.run_rows(&mut reader, self.batch_size, &bar, augment_batch, |out, d| {
            dim = d;
            features.extend_from_slice(out);
            Ok(())
        })?;
        bar.finish_and_clear();
        Ok(SplitFeatures { features, labels, dim })
    }
}
