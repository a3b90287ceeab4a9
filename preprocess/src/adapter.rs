//! Which adapter reads the dataset (`data.adapter`): folders, a label file, or the
//! synthetic set (generated first, then read as folders).

use cxr_config::{Adapter, Data};

use crate::dataset::{Dataset, DatasetError};
use crate::patient::PatientRule;

/// Reads the dataset as the configured adapter says.
pub fn load(data: &Data) -> Result<Dataset, DatasetError> {
    let root = &data.root;
    // Relative to the current folder, not to the config file's: said, since it matters.
    let written = cxr_config::RelativePath::from_current_dir("data.root", root);
    if let Some(resolution) = written.resolution() {
        tracing::info!("{resolution}");
    }
    if !root.exists() {
        return Err(DatasetError::MissingRoot(written));
    }
    if !root.is_dir() {
        return Err(DatasetError::RootNotAFolder(written));
    }
    let rule = PatientRule::from_config(data)
        .map_err(|e| DatasetError::Io { path: root.clone(), message: format!("{e:#}") })?;
    match data.adapter {
        Adapter::Folders | Adapter::Synthetic => crate::folders::load(root, &data.classes, &data.class_patterns, &rule),
        Adapter::Csv => crate::csv_adapter::load(data, &rule),
    }
}
