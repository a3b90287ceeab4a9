//! Reading and writing `.onnx` files and building ONNX graphs from Rust.
//!
//! ort's model editor can build a session but cannot save a file; training
//! artifacts and `model.onnx` are files, and the ImageNet weights must be read out
//! of a third-party ONNX file, so this crate speaks the protobuf format itself, with types
//! generated from ONNX's own schema ([`proto`]). Graphs built here use standard `ai.onnx`
//! operators only, besides a spliced model's own functions and domains.

mod builder;
mod int8;
pub mod proto;
mod rename;
mod tensor;

use std::path::{Path, PathBuf};

pub use bytes::Bytes;
use prost::Message;

pub use builder::{Attr, Dim, GraphBuilder, attribute};
pub use int8::offset_symmetric_conv_weights;
pub use proto::{GraphProto, ModelProto, NodeProto, TensorProto};
pub use rename::rename_node_values;
pub use tensor::{DataType, RawElement, tensor, tensor_f32, tensor_f64, tensor_i64, tensor_u8};

/// The ONNX opset every graph of this project is built for.
pub const OPSET: i64 = 17;
/// ONNX IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// Errors of reading ONNX data.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot read ONNX file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid ONNX model: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: prost::DecodeError,
    },
    #[error("tensor {name:?}: {message}")]
    Tensor { name: String, message: String },
    #[error("{0}")]
    Graph(String),
}

/// Reads and decodes an ONNX model file (its tensors' `raw_data` are slices of the file's
/// bytes, read once).
pub fn read_model(path: &Path) -> Result<ModelProto, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Read { path: path.to_path_buf(), source })?;
    decode_shared(Bytes::from(bytes), path)
}

/// Decodes ONNX model bytes (copying its weights out of them); `origin` names them in errors.
pub fn decode_model(bytes: &[u8], origin: &Path) -> Result<ModelProto, OnnxError> {
    ModelProto::decode(bytes).map_err(|source| OnnxError::Decode { path: origin.to_path_buf(), source })
}

/// Decodes ONNX model bytes without copying its weights: each tensor's `raw_data` is a
/// slice of `bytes`, which stay in memory while any of them does.
pub fn decode_shared(bytes: Bytes, origin: &Path) -> Result<ModelProto, OnnxError> {
    ModelProto::decode(bytes).map_err(|source| OnnxError::Decode { path: origin.to_path_buf(), source })
}

/// A model with only its metadata: decoding skips every other field without copying it
/// (the graph is one length-delimited field), so reading the metadata of a 85 MB model
/// costs next to nothing.
#[derive(Clone, PartialEq, prost::Message)]
struct MetadataOnly {
    #[prost(message, repeated, tag = "14")]
    metadata_props: Vec<proto::StringStringEntryProto>,
}

/// The metadata of ONNX model bytes as key-value pairs, without decoding the rest (bytes
/// cut short or not protobuf are still an error); `origin` names them in errors.
pub fn decode_metadata(bytes: &[u8], origin: &Path) -> Result<Vec<(String, String)>, OnnxError> {
    let model =
        MetadataOnly::decode(bytes).map_err(|source| OnnxError::Decode { path: origin.to_path_buf(), source })?;
    Ok(model.metadata_props.into_iter().map(|p| (p.key, p.value)).collect())
}

/// Encodes a model to bytes (write them with the caller's atomic writer).
pub fn encode_model(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// A model's graph, or an empty graph for a model without one (which ONNX Runtime refuses:
/// the callers' own checks then report what is missing).
pub fn graph(model: &ModelProto) -> &GraphProto {
    static EMPTY: std::sync::LazyLock<GraphProto> = std::sync::LazyLock::new(GraphProto::default);
    model.graph.as_ref().unwrap_or(&EMPTY)
}

/// Looks up a metadata property of a model.
pub fn metadata<'a>(model: &'a ModelProto, key: &str) -> Option<&'a str> {
    model.metadata_props.iter().find(|p| p.key == key).map(|p| p.value.as_str())
}

#[cfg(test)]
mod tests;
