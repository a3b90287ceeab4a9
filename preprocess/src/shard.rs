//! Sharded preprocessing: each shard writes a complete store for its contiguous part
//! of every split under `EXP/shards/<I>-of-<N>/tensors/`; [`merge`] concatenates the
//! shards in order into `EXP/tensors/`, byte for byte what one unsharded run writes.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use cxr_config::Config;
use cxr_store::csv_file::write_csv;
use cxr_store::layout::Layout;
use cxr_store::manifest::{MANIFEST_COLUMNS, ManifestRow, REJECT_COLUMNS, RejectRow, SplitMeta, TensorsMeta};
use cxr_store::npy::{DType, NpyReader, NpyWriter};
use cxr_store::provenance::Provenance;
use cxr_store::staging::Staging;

pub use cxr_store::shard::Shard;

use crate::dataset::Item;
use crate::tensor_store::{SECTIONS, finish};

/// Rows copied at a time when merging images.
const COPY_ROWS: usize = 256;

pub(crate) trait SliceSplits {
    fn slice(&self, splits: BTreeMap<String, Vec<Item>>) -> BTreeMap<String, Vec<Item>>;
}

impl SliceSplits for Shard {
    fn slice(&self, splits: BTreeMap<String, Vec<Item>>) -> BTreeMap<String, Vec<Item>> {
        splits
            .into_iter()
            .map(|(name, items)| {
                let range = self.range(items.len());
                (name, items[range].to_vec())
            })
            .collect()
    }
}

/// Concatenates the `count` shard stores of this experiment into `EXP/tensors/`.
pub fn merge(config: &Config, count: usize) -> anyhow::Result<TensorsMeta> {
    let _lock = cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "preprocess --merge", None)?;
    let layout = Layout::new(config);
    let expected_hash = config.section_hash(SECTIONS);
    let shards = cxr_store::shard::complete_shards(&layout, count, "preprocess", Layout::tensors_meta)
        .map_err(anyhow::Error::msg)?;
    let mut metas = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let path = shard.tensors_meta();
        let meta = TensorsMeta::read(&path)?;
        if meta.config_hash != expected_hash {
            bail!("{}: shard {i}/{count} was made under a different data/preprocess config", path.display());
        }
        metas.push(meta);
    }
    let mut provenance = Provenance::start("preprocess --merge", config);
    let final_tensors = layout.tensors();
    cxr_store::staging::recover(&final_tensors);
    let staging = Staging::new(&final_tensors)?;
    let out = Layout::at(staging.root());
    let [h, w] = config.preprocess.size;

    // Rejects found before decoding are the first rows of shard 0's list.
    let shard0_rejects: Vec<RejectRow> = cxr_store::csv_file::read_csv(&shards[0].rejects())?;
    let mut per_split_rejects0 = 0;
    for split in &metas[0].splits {
        per_split_rejects0 += cxr_store::csv_file::read_csv::<RejectRow>(&shards[0].split_rejects(&split.name))?.len();
    }
    let mut rejects: Vec<RejectRow> = shard0_rejects[..shard0_rejects.len() - per_split_rejects0].to_vec();

    let mut split_metas = Vec::new();
    for split in metas[0].splits.iter().map(|s| s.name.clone()) {
        let mut images = NpyWriter::create(&out.images(&split), DType::U8, &[h as usize, w as usize, 3])?;
        let mut labels: Vec<i64> = Vec::new();
        let mut manifest: Vec<ManifestRow> = Vec::new();
        let mut split_rejects: Vec<RejectRow> = Vec::new();
        for shard in &shards {
            let mut reader = NpyReader::open(&shard.images(&split))?;
            let rows = reader.rows();
            for start in (0..rows).step_by(COPY_ROWS) {
                images.write_rows_bytes(&reader.read_rows_bytes(start, COPY_ROWS)?)?;
            }
            labels.extend(cxr_store::npy::read::<i64>(&shard.labels(&split))?.iter());
            for mut row in cxr_store::csv_file::read_csv::<ManifestRow>(&shard.manifest(&split))? {
                row.index = manifest.len();
                manifest.push(row);
            }
            split_rejects.extend(cxr_store::csv_file::read_csv::<RejectRow>(&shard.split_rejects(&split))?);
        }
        images.finish()?;
        cxr_store::npy::write_i64(&out.labels(&split), &labels)?;
        write_csv(&out.manifest(&split), MANIFEST_COLUMNS, &manifest)?;
        write_csv(&out.split_rejects(&split), REJECT_COLUMNS, &split_rejects)?;
        rejects.extend(split_rejects);
        split_metas.push(SplitMeta::of(&split, config.data.classes.len(), &manifest));
    }
    provenance.tool("merged_shards", count.to_string());
    let meta = finish(&out, config, split_metas, &rejects, provenance)?;
    staging.commit().context("swapping in the merged tensors")?;
    Ok(meta)
}
