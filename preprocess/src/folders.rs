//! The folder adapter: `<root>/<split>/<CLASS>/*` or `<root>/<CLASS>/*`.

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, DatasetError, Item, io_err, name};
use crate::patient::PatientRule;

/// Reads `root`'s class folders; every class of `classes` must have an image somewhere.
pub(crate) fn load(root: &Path, classes: &[String], rule: &PatientRule) -> Result<Dataset, DatasetError> {
    let dataset = load_folders(root, classes, rule)?;
    for (label, class) in classes.iter().enumerate() {
        if !dataset.splits.values().flatten().any(|i| i.label == label) {
            let found: Vec<String> = subdirs(root).unwrap_or_default().iter().map(|p| name(p)).collect();
            return Err(DatasetError::MissingClass {
                class: class.clone(),
                root: root.to_path_buf(),
                found: found.join(", "),
            });
        }
    }
    Ok(dataset)
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
