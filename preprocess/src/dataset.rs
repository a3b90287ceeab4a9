//! Dataset adapters: turn a dataset on disk into labelled items per split.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cxr_config::{Adapter, Config};
use cxr_store::manifest::RejectRow;

use crate::patient::PatientRule;

/// One image to preprocess.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub path: PathBuf,
    pub label: usize,
    /// Who the image shows (`data.patient`): images of one patient stay on one side of a split.
    pub patient: String,
}

/// Items per split name, plus entries rejected before decoding (e.g. CSV rows without a file).
#[derive(Debug, Default)]
pub struct Dataset {
    pub splits: BTreeMap<String, Vec<Item>>,
    pub rejects: Vec<RejectRow>,
}

/// Errors that stop the run before any work: the dataset itself is not usable.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("data.root {0} does not exist")]
    MissingRoot(PathBuf),
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("class folder {0} is empty")]
    EmptyClass(PathBuf),
    #[error(
        "class {class:?} (from data.classes) has no images in {root}; found class folders: [{found}]. Check data.classes and data.root"
    )]
    MissingClass { class: String, root: PathBuf, found: String },
    #[error(
        "class {class:?} (from data.classes) has no usable row in {file}: {kept} row(s) kept for other classes, {rejected} rejected{reasons}. Check data.csv.label and data.classes"
    )]
    MissingCsvClass { class: String, file: PathBuf, kept: usize, rejected: usize, reasons: String },
    #[error(
        "every row of {file} was rejected ({rejected} rows), so there is nothing to preprocess; the first reasons: {reasons}"
    )]
    AllRowsRejected { file: PathBuf, rejected: usize, reasons: String },
    #[error(
        "{root} has no class folders named after data.classes [{classes}] (expected <root>/<split>/<CLASS>/ or <root>/<CLASS>/)"
    )]
    NoLayout { root: PathBuf, classes: String },
    #[error("{path}: {message}")]
    Csv { path: PathBuf, message: String },
}

pub(crate) fn io_err(path: &Path, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Io { path: path.to_path_buf(), message: e.to_string() }
}

/// Reads the dataset as the configured adapter says (synthetic is generated first, then read as folders).
pub fn load(config: &Config) -> Result<Dataset, DatasetError> {
    let root = &config.data.root;
    if !root.is_dir() {
        return Err(DatasetError::MissingRoot(root.clone()));
    }
    let rule = PatientRule::from_config(config)
        .map_err(|e| DatasetError::Io { path: root.clone(), message: format!("{e:#}") })?;
    let dataset = match config.data.adapter {
        Adapter::Folders | Adapter::Synthetic => load_folders(root, &config.data.classes, &rule)?,
        Adapter::Csv => return crate::csv_adapter::load(config, &rule),
    };
    for (label, class) in config.data.classes.iter().enumerate() {
        if !dataset.splits.values().flatten().any(|i| i.label == label) {
            let found: Vec<String> = subdirs(root).unwrap_or_default().iter().map(|p| name(p)).collect();
            return Err(DatasetError::MissingClass {
                class: class.clone(),
                root: root.clone(),
                found: found.join(", "),
            });
        }
    }
    Ok(dataset)
}

/// The first few reject reasons, quoted, for an error message.
pub(crate) fn first_reasons(rejects: &[RejectRow]) -> String {
    let quoted: Vec<String> = rejects.iter().take(3).map(|r| format!("{:?}", r.reason)).collect();
    quoted.join("; ")
}

pub(crate) fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if entry.file_type().map_err(|e| io_err(dir, e))?.is_dir() && !cxr_imaging::is_ignored_name(&entry.path()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// `<root>/<split>/<CLASS>/*` when any subfolder holds class folders, else `<root>/<CLASS>/*` as `train`.
fn load_folders(root: &Path, classes: &[String], rule: &PatientRule) -> Result<Dataset, DatasetError> {
    let has_class_dirs = |dir: &Path| classes.iter().any(|c| dir.join(c).is_dir());
    let mut dataset = Dataset::default();
    let split_dirs: Vec<PathBuf> = subdirs(root)?.into_iter().filter(|d| has_class_dirs(d)).collect();
    if let Some(bad) = split_dirs.iter().find(|d| !cxr_config::is_safe_name(&name(d))) {
        return Err(DatasetError::Io {
            path: bad.clone(),
            message: "a split folder's name becomes a folder of EXP/tensors/, so it may hold only letters, digits, `_` and `-`; rename it".into(),
        });
    }
    let layout: Vec<(String, PathBuf)> = if !split_dirs.is_empty() {
        split_dirs.iter().map(|d| (name(d), d.clone())).collect()
    } else if has_class_dirs(root) {
        vec![("train".to_string(), root.to_path_buf())]
    } else {
        return Err(DatasetError::NoLayout { root: root.to_path_buf(), classes: classes.join(", ") });
    };
    for (split, dir) in layout {
        let mut items = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let class_dir = dir.join(class);
            if !class_dir.is_dir() {
                tracing::warn!(split, class, "no folder {}", class_dir.display());
                continue;
            }
            let files = cxr_imaging::list_files(&class_dir).map_err(|e| io_err(&class_dir, e))?;
            if files.is_empty() {
                return Err(DatasetError::EmptyClass(class_dir));
            }
            for path in files {
                // A pattern that does not match leaves the image its own patient.
                let patient = rule.key_from_path(root, &path).unwrap_or_else(|| path.display().to_string());
                items.push(Item { path, label, patient });
            }
        }
        items.sort();
        dataset.splits.insert(split, items);
    }
    Ok(dataset)
}
