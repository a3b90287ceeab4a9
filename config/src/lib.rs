//! The one configuration of every stage: schema and defaults, YAML loading,
//! `--set` overrides and validation. No other crate parses YAML or holds defaults.
//!
//! Precedence, lowest to highest: built-in defaults, the `--config` file, then
//! each `--set dotted.key=value` in command-line order.

mod error;
mod flatten;
mod load;
mod locate;
mod overrides;
mod paths;
mod schema;
mod suggest;
mod validate;
mod wording;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use error::{ConfigError, Origin};
pub use flatten::{KeyChange, diff_flat, flatten_file, flatten_yaml};
pub use locate::Position;
pub use paths::RelativePath;
pub use schema::*;
pub use suggest::{did_you_mean, levenshtein};
pub use validate::is_safe_name;

/// The four stages, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Preprocess,
    Train,
    Infer,
    Report,
}

impl Stage {
    /// The config sections this stage's outputs depend on, its predecessors' included.
    pub fn sections(self) -> &'static [&'static str] {
        const ALL: &[&str] = &["experiment", "data", "preprocess", "model", "train", "infer", "report"];
        match self {
            Stage::Preprocess => &ALL[..3],
            Stage::Train => &ALL[..5],
            Stage::Infer => &ALL[..6],
            Stage::Report => ALL,
        }
    }
}

/// File name of the resolved configuration each stage writes next to its outputs.
pub const RESOLVED_FILE_NAME: &str = "config.resolved.yaml";

impl Config {
    /// Loads `file` (or only defaults when `None`), applies `overrides`, validates.
    /// An error names the file, line and column, or the `--set` argument, that gave the
    /// offending value.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
        load::load(file, overrides)
    }

    /// Parses a configuration from YAML text (no overrides); used for resolved configs.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        load::from_yaml_str(text, origin)
    }

    /// The experiment folder `EXP = <experiment.workdir>/<experiment.name>`.
    pub fn experiment_dir(&self) -> PathBuf {
        self.experiment.workdir.join(&self.experiment.name)
    }

    /// The fully resolved configuration as YAML (every key, defaults included).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a Config always serialises")
    }

    /// SHA-256 of the resolved YAML of the given sections, hex-encoded.
    ///
    /// Stages hash only the sections their outputs depend on, so that changing
    /// `report` settings does not invalidate trained models.
    pub fn section_hash(&self, sections: &[&str]) -> String {
        let full = serde_yaml::to_value(self).expect("a Config always serialises");
        let mut hasher = Sha256::new();
        for section in sections {
            let part = full.get(*section).cloned().unwrap_or(serde_yaml::Value::Null);
            hasher.update(section.as_bytes());
            hasher.update(serde_yaml::to_string(&part).expect("serialisable").as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// The hash of every section `stage`'s outputs depend on (its own and those of the
    /// stages before it): a Makefile stamp that changes exactly when the stage must rerun.
    pub fn stage_hash(&self, stage: Stage) -> String {
        self.section_hash(stage.sections())
    }

    /// SHA-256 of the whole resolved configuration.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.to_yaml().as_bytes()))
    }
}

/// A config value as the YAML file spells it (`area`, `histogram`, `[224, 224]`), for
/// messages that tell the user which `--set` to write.
pub fn spelling<T: serde::Serialize>(value: &T) -> String {
    match serde_yaml::to_value(value) {
        Ok(serde_yaml::Value::String(s)) => s,
        Ok(serde_yaml::Value::Sequence(items)) => {
            let parts: Vec<String> = items.iter().map(spelling).collect();
            format!("[{}]", parts.join(","))
        }
        Ok(other) => serde_yaml::to_string(&other).map(|t| t.trim_end().to_string()).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The YAML file at `path`, parsed (a mapping; an empty file is an empty one).
fn read_yaml_file(path: &Path) -> Result<serde_yaml::Value, ConfigError> {
    load::read_yaml_file(path)
}

/// YAML text, parsed (a mapping); `path` names it in errors.
fn parse_yaml(text: &str, path: &Path) -> Result<serde_yaml::Value, ConfigError> {
    load::parse_yaml(text, path)
}

#[cfg(test)]
mod tests;
