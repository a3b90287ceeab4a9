//! `provenance.json` in each stage's output folder: what produced the outputs, from what, when.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use cxr_config::{Config, RESOLVED_FILE_NAME};
use serde::{Deserialize, Serialize};

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub stage: String,
    pub crate_version: String,
    pub config_hash: String,
    /// Hashes of the inputs consumed (name -> SHA-256 or upstream hash).
    pub inputs: BTreeMap<String, String>,
    /// Other facts: ONNX Runtime version, backbone hash, provider.
    pub tools: BTreeMap<String, String>,
    pub git_revision: String,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    pub finished: u64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Provenance {
    /// Starts a record for `stage` (call [`Provenance::write`] when the outputs are in place).
    pub fn start(stage: &str, config: &Config) -> Provenance {
        Provenance {
            stage: stage.to_string(),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            config_hash: config.hash(),
            inputs: BTreeMap::new(),
            tools: BTreeMap::new(),
            git_revision: git_revision(),
            host: std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default(),
            started: now(),
            finished: 0,
        }
    }

    pub fn input(&mut self, name: &str, hash: impl Into<String>) {
        self.inputs.insert(name.to_string(), hash.into());
    }

    pub fn tool(&mut self, name: &str, value: impl Into<String>) {
        self.tools.insert(name.to_string(), value.into());
    }

    /// Writes `provenance.json` and the resolved config into `dir`.
    pub fn write(mut self, dir: &Path, config: &Config) -> Result<(), StoreError> {
        self.finished = now();
        crate::write_atomic(&dir.join(RESOLVED_FILE_NAME), config.to_yaml().as_bytes())?;
        crate::write_json(&dir.join("provenance.json"), &self)
    }

    pub fn read(path: &Path) -> Result<Provenance, StoreError> {
        crate::read_json(path, self_stage(path))
    }
}

/// The stage that writes the folder a provenance file is in (for "run X first").
fn self_stage(path: &Path) -> &'static str {
    match path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()) {
        Some("tensors") => "preprocess",
        Some("train") => "train",
        Some("predictions") => "infer",
        _ => "report",
    }
}

/// The git revision this project was built from (`-dirty`: with uncommitted changes when
/// it was built), or `unknown` when it was built outside a checkout. Read at build time
/// (`store/build.rs`): no stage runs `git`.
pub fn git_revision() -> String {
    env!("CXR_GIT_REVISION").to_string()
}
