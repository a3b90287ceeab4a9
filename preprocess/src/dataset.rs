//! What every dataset adapter produces: labelled items per split, the rejects found
//! before decoding, and the errors that stop a run before any work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cxr_store::manifest::RejectRow;

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
    /// `data.root` as written and as resolved: `data.root 'data/x' (resolved from
    /// /home/u/proj as /home/u/proj/data/x) does not exist`.
    #[error("{0} does not exist")]
    MissingRoot(cxr_config::RelativePath),
    #[error("{0} is not a folder")]
    RootNotAFolder(cxr_config::RelativePath),
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

/// The first few reject reasons, quoted, for an error message.
pub(crate) fn first_reasons(rejects: &[RejectRow]) -> String {
    let quoted: Vec<String> = rejects.iter().take(3).map(|r| format!("{:?}", r.reason)).collect();
    quoted.join("; ")
}

pub(crate) fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
