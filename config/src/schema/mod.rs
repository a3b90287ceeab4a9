//! The configuration schema: every section, key and default of every stage.
//!
//! Defaults live here and nowhere else. Every struct denies unknown keys so a
//! typo is an error that names the key, never a silently ignored setting.

mod data;
mod infer;
mod model;
mod preprocess;
mod report;
mod train;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use data::*;
pub use infer::*;
pub use model::*;
pub use preprocess::*;
pub use report::*;
pub use train::*;

/// The whole configuration shared by `preprocess`, `train`, `infer` and `report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub experiment: Experiment,
    pub data: Data,
    pub preprocess: Preprocess,
    pub model: Model,
    pub train: Train,
    pub infer: Infer,
    pub report: Report,
    pub runtime: Runtime,
}

/// Where an experiment lives: `EXP = <workdir>/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Experiment {
    pub name: String,
    pub workdir: PathBuf,
    /// Seeds every random choice: splits, sampling, init, shuffling, dropout.
    pub seed: u64,
}

impl Default for Experiment {
    fn default() -> Self {
        Self { name: "default".into(), workdir: PathBuf::from("runs"), seed: 42 }
    }
}
