//! The exported `model.onnx` and what its metadata (`cxr_store::model_meta`) says about
//! its input, its classes and its decision threshold.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cxr_config::{ChannelOrder, Config};
use cxr_store::model_meta::ModelMeta;

/// A trained model file and its contract.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub meta: ModelMeta,
    pub classes: Vec<String>,
    pub size: [u32; 2],
    pub channel_order: ChannelOrder,
    pub positive: usize,
}

impl ModelInfo {
    /// Reads `path` and checks that its classes are the config's. The image size and
    /// channel order come from the model (a model from another experiment brings its own).
    pub fn load(path: &Path, config: &Config) -> anyhow::Result<ModelInfo> {
        cxr_store::layout::require(path, "train")?;
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let proto = cxr_onnx::decode_model(&bytes, path)?;
        let meta = ModelMeta::from_lookup(|key| cxr_onnx::metadata(&proto, key))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if meta.classes != config.data.classes {
            bail!(
                "{} was trained for classes [{}] but data.classes is [{}]",
                path.display(),
                meta.classes.join(", "),
                config.data.classes.join(", ")
            );
        }
        Ok(ModelInfo {
            path: path.to_path_buf(),
            bytes,
            classes: meta.classes.clone(),
            size: meta.size,
            channel_order: meta.channel_order,
            positive: meta.positive(),
            meta,
        })
    }

    /// Refuses tensors prepared for another input than this model's.
    pub fn check_tensors(&self, size: [u32; 2], channel_order: &str, origin: &Path) -> anyhow::Result<()> {
        let ours = cxr_store::model_meta::channel_order_name(self.channel_order);
        if size != self.size || channel_order != ours {
            bail!(
                "{} holds {}x{} {channel_order} images but {} takes {}x{} {ours}: preprocess this dataset with preprocess.size [{}, {}] and channel_order {ours}",
                origin.display(),
                size[0],
                size[1],
                self.path.display(),
                self.size[0],
                self.size[1],
                self.size[0],
                self.size[1]
            );
        }
        Ok(())
    }
}
