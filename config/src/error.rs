//! Errors of loading a configuration; every one names the file or the key path.

use std::path::PathBuf;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: malformed YAML at line {line}, column {column}: {message}")]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: malformed YAML: {message}")]
    SyntaxNoLocation { path: PathBuf, message: String },
    #[error("{origin}: the top level must be a mapping of sections (experiment, data, ...)")]
    NotAMapping { origin: String },
    #[error("--set {arg:?}: expected dotted.key=value (e.g. --set train.epochs=3)")]
    OverrideSyntax { arg: String },
    #[error("--set {arg:?}: value is not valid YAML: {message}")]
    OverrideValue { arg: String, message: String },
    #[error("--set {arg:?}: `{key}` is a {found}, not a section, so it has no sub-key")]
    OverrideNotSection { arg: String, key: String, found: &'static str },
    #[error("{origin}: {key}: {message}")]
    Schema { origin: String, key: String, message: String },
    #[error("{origin}: {key}: {message}")]
    Invalid { origin: String, key: String, message: String },
}
