//! What can be wrong with a model file, each naming the file.

use std::path::PathBuf;

/// An error about one model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Onnx(#[from] cxr_onnx::OnnxError),
    #[error("{path}: {message}")]
    Metadata { path: PathBuf, message: String },
    #[error("{path} was trained for classes [{model}] but data.classes is [{config}]")]
    Classes { path: PathBuf, model: String, config: String },
    /// Tensors prepared for another input than the model's; the message names both and the fix.
    #[error("{0}")]
    Tensors(String),
    #[error("{path}: {message}")]
    Threshold { path: PathBuf, message: String },
    #[error("{path} carries no cxr.explain metadata (it predates heatmaps): retrain it to explain its calls")]
    NoExplainMetadata { path: PathBuf },
    #[error("{path}: {source}")]
    Explain { path: PathBuf, source: cxr_explain::ExplainError },
    #[error(transparent)]
    Store(#[from] cxr_store::StoreError),
}
