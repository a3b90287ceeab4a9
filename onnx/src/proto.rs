//! ONNX's protobuf messages, all of them, generated from the ONNX specification's schema.
//!
//! `build.rs` generates them with prost-build from `onnx/proto/onnx.proto3`, vendored from
//! the `onnx` Python wheel (its header says which version, and how to regenerate it with
//! `onnx/proto/vendor.py`); protox parses it, so building needs no `protoc`. Every message
//! and field of the specification is declared, so a model read and written again keeps
//! what this project never builds itself: a user backbone's `functions`,
//! `sparse_initializer`, `training_info`, graph and tensor-list attributes, annotations.
//!
//! Why proto3 (as ONNX's own `onnx.proto3` and candle-onnx), not the proto2 `onnx.proto`:
//! ONNX defines its schema in the subset of protobuf common to both syntaxes, and reads a
//! field that is absent as its default in either, so the two describe the same models. In
//! proto3, prost gives scalar fields plain types (`name: String`, `ir_version: i64`), where
//! proto2 would give `Option`s everywhere, and it packs repeated numbers (`dims`, `ints`,
//! `floats`). That is how this crate has always encoded models, so the files it writes
//! are byte for byte what they were with its earlier hand-written subset. Re-encoding a
//! file written by a proto2 writer (PyTorch, the `onnx` package) keeps every value but may
//! change two things that carry no meaning: a field explicitly set to its default is left
//! out, and repeated numbers become packed. A field newer than the vendored schema is
//! still dropped: update `onnx.proto3` with `vendor.py` to keep it.

#[allow(clippy::all, clippy::pedantic, rustdoc::all, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use generated::*;

/// `AttributeProto.AttributeType` values as the `i32` that `AttributeProto::r#type` holds.
pub mod attribute_type {
    use super::attribute_proto::AttributeType;

    pub const FLOAT: i32 = AttributeType::Float as i32;
    pub const INT: i32 = AttributeType::Int as i32;
    pub const STRING: i32 = AttributeType::String as i32;
    pub const TENSOR: i32 = AttributeType::Tensor as i32;
    pub const GRAPH: i32 = AttributeType::Graph as i32;
    pub const FLOATS: i32 = AttributeType::Floats as i32;
    pub const INTS: i32 = AttributeType::Ints as i32;
    pub const STRINGS: i32 = AttributeType::Strings as i32;
}
