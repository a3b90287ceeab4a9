//! Loading a configuration: the `--config` file deserialised straight from its text (so
//! that every error keeps the file's line and column), then each `--set` applied in
//! order; an error says whether the file (and where) or which `--set` gave the value.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::error::Origin;
use crate::locate::{self, Position};
use crate::wording::{self, is_path_prefix};
use crate::{Config, ConfigError, overrides};

/// Loads `file` (or only defaults when `None`), applies `overrides`, validates.
pub(crate) fn load(file: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
    let source = file.map(FileText::read).transpose()?;
    let places = Places { file: source.as_ref(), overrides };
    let (mut value, mut config) = (Value::Mapping(Mapping::new()), Config::default());
    if let Some(f) = &source {
        value = f.value.clone();
        match f.config() {
            Ok(c) => config = c,
            // A `--set` of the same key replaces the file's value: judged after it.
            Err(ConfigError::Schema { key, .. }) if places.override_of(&key).is_some() => {}
            Err(e) => return Err(e),
        }
    }
    if !overrides.is_empty() {
        for arg in overrides {
            overrides::apply(&mut value, arg)?;
        }
        config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = key_of(&e);
            ConfigError::Schema {
                origin: places.origin_of(&key),
                message: wording::friendly(&e.inner().to_string(), &key),
                key,
            }
        })?;
    }
    config.validate(&|key| places.origin_of(key))?;
    Ok(config)
}

/// Parses a configuration from YAML text (no overrides); `origin` names it in errors.
pub(crate) fn from_yaml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let source = FileText::parse(text.to_string(), PathBuf::from(origin))?;
    let config = source.config()?;
    let places = Places { file: Some(&source), overrides: &[] };
    config.validate(&|key| places.origin_of(key))?;
    Ok(config)
}

/// The YAML file at `path`, parsed: a mapping (an empty file is an empty mapping).
pub(crate) fn read_yaml_file(path: &Path) -> Result<Value, ConfigError> {
    Ok(FileText::read(path)?.value)
}

/// YAML text, parsed: a mapping; `path` names it in errors.
pub(crate) fn parse_yaml(text: &str, path: &Path) -> Result<Value, ConfigError> {
    Ok(FileText::parse(text.to_string(), path.to_path_buf())?.value)
}

/// A configuration file's text and its parsed YAML (a mapping).
struct FileText {
    path: PathBuf,
    text: String,
    value: Value,
}

impl FileText {
    fn read(path: &Path) -> Result<FileText, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        FileText::parse(text, path.to_path_buf())
    }

    fn parse(text: String, path: PathBuf) -> Result<FileText, ConfigError> {
        let value: Value = serde_yaml::from_str(&text).map_err(|e| syntax_error(&text, &path, &e))?;
        let value = if value.is_null() { Value::Mapping(Mapping::new()) } else { value };
        if !value.is_mapping() {
            return Err(ConfigError::NotAMapping { origin: Origin::file(path, Some(Position { line: 1, column: 1 })) });
        }
        Ok(FileText { path, text, value })
    }

    /// The file alone as a configuration; a schema error names the file, line and column.
    fn config(&self) -> Result<Config, ConfigError> {
        if self.value.as_mapping().is_some_and(Mapping::is_empty) {
            return Ok(Config::default());
        }
        serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(&self.text)).map_err(|e| {
            let key = key_of(&e);
            let position = Position::of(e.inner()).or_else(|| locate::value_position(&self.text, &key));
            ConfigError::Schema {
                origin: Origin::file(&self.path, position),
                message: wording::friendly(&e.inner().to_string(), &key),
                key,
            }
        })
    }
}

/// A YAML error of the file: a key given twice (at the second one: serde_yaml says the
/// mapping's start), else malformed YAML where the parser stopped.
fn syntax_error(text: &str, path: &Path, e: &serde_yaml::Error) -> ConfigError {
    if let Some((key, position)) = locate::first_duplicate(text) {
        let first = locate::key_position(text, &key).map_or(String::new(), |p| format!(" (first at line {})", p.line));
        return ConfigError::DuplicateKey { origin: Origin::file(path, Some(position)), key, first };
    }
    ConfigError::Syntax {
        origin: Origin::file(path, Position::of(e)),
        message: wording::strip_location(&e.to_string(), Position::of(e)),
    }
}

/// The key path of a schema error (`train.epochs`, `preprocess.size[0]`).
fn key_of<E>(e: &serde_path_to_error::Error<E>) -> String {
    match e.path().to_string() {
        p if p == "." => "(top level)".to_string(),
        p => p,
    }
}

/// Where each setting came from: the file, or the last `--set` of its key.
struct Places<'a> {
    file: Option<&'a FileText>,
    overrides: &'a [String],
}

impl Places<'_> {
    /// The last `--set` that gave `key`, a section above it or a key below it.
    fn override_of(&self, key: &str) -> Option<&str> {
        let key = key.split(' ').next().unwrap_or_default();
        self.overrides.iter().rev().map(String::as_str).find(|arg| {
            let set = arg.split_once('=').map_or("", |(k, _)| k.trim());
            !set.is_empty() && (is_path_prefix(set, key) || is_path_prefix(key, set))
        })
    }

    fn origin_of(&self, key: &str) -> Origin {
        if let Some(arg) = self.override_of(key) {
            return Origin::Set(arg.to_string());
        }
        match self.file {
            Some(f) => match locate::value_position(&f.text, key) {
                Some(position) => Origin::file(&f.path, Some(position)),
                None if self.overrides.is_empty() => Origin::file(&f.path, None),
                None => Origin::Other(format!("{} with the --set overrides", f.path.display())),
            },
            None if self.overrides.is_empty() => Origin::Other("built-in defaults".into()),
            None => Origin::Other("the --set overrides".into()),
        }
    }
}
