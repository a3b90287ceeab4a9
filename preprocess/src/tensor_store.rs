//! Completing a tensor store (`EXP/tensors/`, or a shard's) once its splits are written:
//! `rejects.csv`, the provenance, and `meta.json` last, which marks the store complete.

use cxr_config::Config;
use cxr_store::csv_file::write_csv;
use cxr_store::layout::Layout;
use cxr_store::manifest::{ManifestRow, REJECT_COLUMNS, RejectRow, SplitMeta, TensorsMeta};
use cxr_store::provenance::Provenance;
use sha2::{Digest, Sha256};

/// The config sections the tensors depend on.
pub const SECTIONS: &[&str] = &["data", "preprocess"];

/// Writes `rejects.csv`, `meta.json` (with the content hash over every split's
/// manifest) and the provenance of a tensor store whose splits are written.
pub(crate) fn finish(
    layout: &Layout,
    config: &Config,
    splits: Vec<SplitMeta>,
    rejects: &[RejectRow],
    mut provenance: Provenance,
) -> anyhow::Result<TensorsMeta> {
    write_csv(&layout.rejects(), REJECT_COLUMNS, rejects)?;
    let config_hash = config.section_hash(SECTIONS);
    let mut content = Sha256::new();
    for split in &splits {
        for row in cxr_store::csv_file::read_csv::<ManifestRow>(&layout.manifest(&split.name))? {
            content.update(format!("{}\t{}\t{}\n", split.name, row.sha256, row.label).as_bytes());
        }
    }
    content.update(config_hash.as_bytes());
    content.update(env!("CARGO_PKG_VERSION").as_bytes());
    let meta = TensorsMeta {
        size: config.preprocess.size,
        channel_order: cxr_store::model_meta::channel_order_name(config.preprocess.channel_order).to_string(),
        classes: config.data.classes.clone(),
        splits,
        config_hash,
        content_hash: hex::encode(content.finalize()),
    };
    provenance.input("tensors.content_hash", meta.content_hash.clone());
    provenance.write(&layout.tensors(), config)?;
    meta.write(&layout.tensors_meta())?;
    Ok(meta)
}
