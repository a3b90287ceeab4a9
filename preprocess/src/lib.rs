//! Stage 1, `preprocess`: reads a dataset of chest X-rays (folders, a CSV label
//! file, or the generated synthetic set), decodes and resizes every image on all
//! cores with the shared `cxr-imaging` transform, and writes per-split uint8
//! tensors, labels and manifests to `EXP/tensors/`.

pub mod adapter;
mod csv_adapter;
pub mod dataset;
mod folders;
pub mod patient;
mod run;
pub mod shard;
pub mod split;
pub mod synthetic;
mod tensor_store;

pub use run::{Options, Summary, arrange_splits, run};
pub use shard::{Shard, merge};
pub use tensor_store::SECTIONS;
