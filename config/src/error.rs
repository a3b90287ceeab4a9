//! Errors of loading a configuration; every one says where the setting came from (the
//! file with its line and column, or the `--set` argument) and names the key.

use std::fmt;
use std::path::PathBuf;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A YAML file, at a line and column (1-based) when known.
    File { path: PathBuf, position: Option<crate::locate::Position> },
    /// One `--set dotted.key=value` argument.
    Set(String),
    /// Anything else, in words: `built-in defaults`, `the --set overrides`.
    Other(String),
}

impl Origin {
    /// The file, at a position when known.
    pub(crate) fn file(path: impl Into<PathBuf>, position: Option<crate::locate::Position>) -> Origin {
        Origin::File { path: path.into(), position }
    }

    /// The line of a file position, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Origin::File { position: Some(p), .. } => Some(p.line),
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Origin::File { path, position: Some(p) } => {
                write!(f, "{}, line {}, column {}", path.display(), p.line, p.column)
            }
            Origin::File { path, position: None } => write!(f, "{}", path.display()),
            Origin::Set(arg) => write!(f, "{}", set_arg(arg)),
            Origin::Other(what) => f.write_str(what),
        }
    }
}

/// `--set key=value` as the user typed it, quoted when it holds spaces.
pub(crate) fn set_arg(arg: &str) -> String {
    if arg.is_empty() || arg.contains(char::is_whitespace) { format!("--set {arg:?}") } else { format!("--set {arg}") }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The OS error is part of this message and not a `source`, so that a chain printed
    /// with every cause says it once.
    #[error("cannot read config file {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{origin}: malformed YAML: {message}")]
    Syntax { origin: Origin, message: String },
    #[error("{origin}: `{key}` is given twice{first}; a mapping takes each key once, so keep one")]
    DuplicateKey { origin: Origin, key: String, first: String },
    #[error("{origin}: the top level must be a mapping of sections (experiment, data, ...)")]
    NotAMapping { origin: Origin },
    #[error("{}: expected dotted.key=value (e.g. --set train.epochs=3)", set_arg(.arg))]
    OverrideSyntax { arg: String },
    #[error("{}: the value is not valid YAML: {message}", set_arg(.arg))]
    OverrideValue { arg: String, message: String },
    #[error("{}: `{key}` is a {found}, not a section, so it has no sub-key", set_arg(.arg))]
    OverrideNotSection { arg: String, key: String, found: &'static str },
    /// The value does not fit the schema: unknown key or value, wrong type.
    #[error("{origin}: {key}: {message}")]
    Schema { origin: Origin, key: String, message: String },
    /// The value fits the schema but is out of range or inconsistent with another.
    #[error("{origin}: {key}: {message}")]
    Invalid { origin: Origin, key: String, message: String },
}

impl ConfigError {
    /// Where the offending setting came from, when the error is about one.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ConfigError::Syntax { origin, .. }
            | ConfigError::DuplicateKey { origin, .. }
            | ConfigError::NotAMapping { origin }
            | ConfigError::Schema { origin, .. }
            | ConfigError::Invalid { origin, .. } => Some(origin),
            _ => None,
        }
    }
}
