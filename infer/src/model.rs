//! The exported `model.onnx` and what its metadata says about its input.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cxr_config::{ChannelOrder, Config};

use cxr_store::model_meta::{CHANNEL_ORDER, CLASSES, POSITIVE_CLASS, SIZE};

/// A trained model file and its input contract.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub classes: Vec<String>,
    pub size: [u32; 2],
    pub channel_order: ChannelOrder,
    pub positive: usize,
}

impl ModelInfo {
    /// Reads `path` and checks that it fits `config` (classes, image size, channel order).
    pub fn load(path: &Path, config: &Config) -> anyhow::Result<ModelInfo> {
        cxr_store::layout::require(path, "train")?;
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let proto = cxr_onnx::decode_model(&bytes, path)?;
        let meta = |key: &str| -> anyhow::Result<String> {
            cxr_onnx::metadata(&proto, key)
                .map(str::to_string)
                .with_context(|| format!("{}: no {key:?} metadata; was it exported by `train`?", path.display()))
        };
        let classes: Vec<String> = meta(CLASSES)?.split(',').map(str::to_string).collect();
        let size: Vec<u32> = meta(SIZE)?.split(',').filter_map(|v| v.parse().ok()).collect();
        let [h, w] = size[..] else {
            bail!("{}: bad {SIZE} metadata", path.display());
        };
        let channel_order = match meta(CHANNEL_ORDER)?.as_str() {
            "bgr" => ChannelOrder::Bgr,
            _ => ChannelOrder::Rgb,
        };
        let positive_name = meta(POSITIVE_CLASS)?;
        let positive = classes.iter().position(|c| *c == positive_name).unwrap_or(classes.len() - 1);
        if classes != config.data.classes {
            bail!(
                "{} was trained for classes [{}] but data.classes is [{}]",
                path.display(),
                classes.join(", "),
                config.data.classes.join(", ")
            );
        }
        if [h, w] != config.preprocess.size || channel_order != config.preprocess.channel_order {
            bail!(
                "{} was trained on {h}x{w} {channel_order:?} images but the config says preprocess.size {:?} {:?}; use the training config",
                path.display(),
                config.preprocess.size,
                config.preprocess.channel_order
            );
        }
        Ok(ModelInfo { path: path.to_path_buf(), bytes, classes, size: [h, w], channel_order, positive })
    }
}
