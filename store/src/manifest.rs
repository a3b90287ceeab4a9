//! Per-split manifests (`manifest.csv`), rejects (`rejects.csv`) and the tensor store's `meta.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// One image in a split, in tensor row order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRow {
    pub index: usize,
    pub path: String,
    pub label: i64,
    pub class: String,
    pub width: u32,
    pub height: u32,
    pub sha256: String,
    /// The patient (`data.patient`); empty in stores written before it was recorded.
    #[serde(default)]
    pub patient: String,
}

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectRow {
    pub path: String,
    pub reason: String,
}

/// Columns of `manifest.csv`.
pub const MANIFEST_COLUMNS: &[&str] = &["index", "path", "label", "class", "width", "height", "sha256", "patient"];
/// Columns of `rejects.csv`.
pub const REJECT_COLUMNS: &[&str] = &["path", "reason"];

/// `EXP/tensors/meta.json`: what the tensors are, for later stages to check compatibility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorsMeta {
    /// `[height, width]`.
    pub size: [u32; 2],
    /// `rgb` or `bgr`.
    pub channel_order: String,
    pub classes: Vec<String>,
    /// Splits in the order written, with their image counts per class.
    pub splits: Vec<SplitMeta>,
    /// Hash of the `data` and `preprocess` config sections that produced the tensors.
    pub config_hash: String,
    /// SHA-256 over every split's rows (source SHA-256 and label, in order), the config
    /// sections that made them and the program version; not over the stored pixels.
    pub content_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMeta {
    pub name: String,
    pub count: usize,
    pub per_class: Vec<usize>,
    /// Distinct patients in the split (absent in stores written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patients: Option<usize>,
}

impl SplitMeta {
    /// Counts per class and distinct patients of a split's manifest rows.
    pub fn of(name: &str, classes: usize, rows: &[ManifestRow]) -> SplitMeta {
        let mut per_class = vec![0usize; classes];
        for row in rows {
            per_class[row.label as usize] += 1;
        }
        let patients = rows.iter().map(|r| r.patient.as_str()).collect::<std::collections::BTreeSet<_>>().len();
        SplitMeta { name: name.to_string(), count: rows.len(), per_class, patients: Some(patients) }
    }
}

impl TensorsMeta {
    pub fn read(path: &Path) -> Result<TensorsMeta, StoreError> {
        crate::read_json(path, "preprocess")
    }

    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        crate::write_json(path, self)
    }

    pub fn split(&self, name: &str) -> Option<&SplitMeta> {
        self.splits.iter().find(|s| s.name == name)
    }

    /// Refuses tensors made for another image size or class list.
    pub fn check_compatible(&self, path: &Path, size: [u32; 2], classes: &[String]) -> Result<(), StoreError> {
        if self.size != size {
            return Err(StoreError::Incompatible {
                path: path.to_path_buf(),
                message: format!(
                    "tensors are {}x{} but the config asks for preprocess.size {}x{}; rerun `preprocess` with this config",
                    self.size[0], self.size[1], size[0], size[1]
                ),
            });
        }
        if self.classes != classes {
            return Err(StoreError::Incompatible {
                path: path.to_path_buf(),
                message: format!(
                    "tensors have classes [{}] but the config has data.classes [{}]; rerun `preprocess` with this config",
                    self.classes.join(", "),
                    classes.join(", ")
                ),
            });
        }
        Ok(())
    }
}
