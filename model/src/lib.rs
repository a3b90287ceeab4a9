//! `model.onnx` as a contract, in one place for every stage that reads it: the file is read
//! once, its graph decoded only when needed; its metadata (`cxr_store::model_meta`, the data) says its classes,
//! input and preprocessing; this crate says what they mean: the transform raw images need,
//! the tensors it accepts, the decision threshold a policy resolves to, and the Grad-CAM
//! graph built from the decoded model.

mod decision;
mod error;

use std::path::{Path, PathBuf};

use cxr_config::{ChannelOrder, Preprocess};
use cxr_imaging::Transform;
use cxr_onnx::ModelProto;
use cxr_store::model_meta::ModelMeta;

pub use decision::Decision;
pub use error::ModelError;

/// An exported model: its bytes, what its metadata says, and its graph decoded on demand.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub path: PathBuf,
    /// The file's bytes; the decoded graph's weights are slices of them.
    pub bytes: cxr_onnx::Bytes,
    pub meta: ModelMeta,
    pub classes: Vec<String>,
    pub size: [u32; 2],
    pub channel_order: ChannelOrder,
    /// The index of the class sensitivity is measured on.
    pub positive: usize,
    /// Decoded on first use (Grad-CAM, `train --adapt-from`).
    proto: std::sync::OnceLock<ModelProto>,
    /// Hashed on first use: `infer` records it twice, `report`'s gallery never.
    sha256: std::sync::OnceLock<String>,
}

impl ModelFile {
    /// Reads and decodes `path` (an experiment's `train/model.onnx` or any exported model).
    pub fn open(path: &Path) -> Result<ModelFile, ModelError> {
        cxr_store::layout::require(path, "train")?;
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read { path: path.to_path_buf(), source })?;
        let bytes = cxr_onnx::Bytes::from(bytes);
        // The metadata alone: `infer` without heatmaps never needs the graph decoded.
        let metadata = cxr_onnx::decode_metadata(&bytes, path)?;
        let meta = ModelMeta::from_lookup(|key| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()))
            .map_err(|message| ModelError::Metadata { path: path.to_path_buf(), message })?;
        Ok(ModelFile {
            path: path.to_path_buf(),
            bytes,
            classes: meta.classes.clone(),
            size: meta.size,
            channel_order: meta.channel_order,
            positive: meta.positive(),
            meta,
            proto: std::sync::OnceLock::new(),
            sha256: std::sync::OnceLock::new(),
        })
    }

    /// [`ModelFile::open`], refusing a model trained for other classes than `classes`.
    pub fn open_for(path: &Path, classes: &[String]) -> Result<ModelFile, ModelError> {
        let model = ModelFile::open(path)?;
        model.check_classes(classes)?;
        Ok(model)
    }

    /// An error unless the model was trained for `classes`, in that order.
    pub fn check_classes(&self, classes: &[String]) -> Result<(), ModelError> {
        if self.classes != classes {
            return Err(ModelError::Classes {
                path: self.path.clone(),
                model: self.classes.join(", "),
                config: classes.join(", "),
            });
        }
        Ok(())
    }

    /// The decoded model, decoded on the first call (its weights shared with [`Self::bytes`]).
    pub fn proto(&self) -> Result<&ModelProto, ModelError> {
        if let Some(proto) = self.proto.get() {
            return Ok(proto);
        }
        let proto = cxr_onnx::decode_shared(self.bytes.clone(), &self.path)?;
        Ok(self.proto.get_or_init(|| proto))
    }

    /// The SHA-256 of the file's bytes, computed once.
    pub fn sha256(&self) -> String {
        self.sha256.get_or_init(|| cxr_store::sha256_bytes(&self.bytes)).clone()
    }

    /// How raw images are prepared for this model: as its own experiment prepared its
    /// training images (its `cxr.preprocess`, or `ours` for a model without it), within
    /// `ours`' limits on files.
    pub fn transform(&self, ours: &Preprocess) -> Transform {
        let preprocess = self.meta.preprocess.as_ref().unwrap_or(ours);
        let mut transform = Transform::of_model(preprocess, self.size, self.channel_order);
        transform.max_file_bytes = ours.max_file_bytes;
        transform.max_pixels = ours.max_pixels;
        transform
    }

    /// Refuses tensors (from `origin`) prepared for another input than this model's.
    pub fn check_tensors(&self, size: [u32; 2], channel_order: &str, origin: &Path) -> Result<(), ModelError> {
        let ours = cxr_store::model_meta::channel_order_name(self.channel_order);
        if size == self.size && channel_order == ours {
            return Ok(());
        }
        Err(ModelError::Tensors(format!(
            "{} holds {}x{} {channel_order} images but {} takes {}x{} {ours}: preprocess this dataset with preprocess.size [{}, {}] and channel_order {ours}",
            origin.display(),
            size[0],
            size[1],
            self.path.display(),
            self.size[0],
            self.size[1],
            self.size[0],
            self.size[1]
        )))
    }

    /// The Grad-CAM model built from this one (`cxr-explain`), from the model decoded once.
    pub fn grad_cam(&self) -> Result<cxr_explain::ExplainModel, ModelError> {
        let meta =
            self.meta.explain.as_ref().ok_or_else(|| ModelError::NoExplainMetadata { path: self.path.clone() })?;
        cxr_explain::explain_model(&self.bytes, self.proto()?, meta, self.classes.len())
            .map_err(|source| ModelError::Explain { path: self.path.clone(), source })
    }
}

#[cfg(test)]
mod tests;
