//! Dataset adapters: turn a dataset on disk into labelled items per split.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cxr_config::{Adapter, Config, CsvLabelRule};
use cxr_store::manifest::RejectRow;

/// One image to preprocess.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub path: PathBuf,
    pub label: usize,
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
        "{root} has no class folders named after data.classes [{classes}] (expected <root>/<split>/<CLASS>/ or <root>/<CLASS>/)"
    )]
    NoLayout { root: PathBuf, classes: String },
    #[error("{path}: {message}")]
    Csv { path: PathBuf, message: String },
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Io { path: path.to_path_buf(), message: e.to_string() }
}

/// Reads the dataset as the configured adapter says (synthetic is generated first, then read as folders).
pub fn load(config: &Config) -> Result<Dataset, DatasetError> {
    let root = &config.data.root;
    if !root.is_dir() {
        return Err(DatasetError::MissingRoot(root.clone()));
    }
    let dataset = match config.data.adapter {
        Adapter::Folders | Adapter::Synthetic => load_folders(root, &config.data.classes)?,
        Adapter::Csv => load_csv(config)?,
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

fn name(p: &Path) -> String {
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
fn load_folders(root: &Path, classes: &[String]) -> Result<Dataset, DatasetError> {
    let has_class_dirs = |dir: &Path| classes.iter().any(|c| dir.join(c).is_dir());
    let mut dataset = Dataset::default();
    let split_dirs: Vec<PathBuf> = subdirs(root)?.into_iter().filter(|d| has_class_dirs(d)).collect();
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
            items.extend(files.into_iter().map(|path| Item { path, label }));
        }
        items.sort();
        dataset.splits.insert(split, items);
    }
    Ok(dataset)
}

/// A label file (RSNA, NIH ChestX-ray14, CheXpert style): see `data.csv` in the config reference.
fn load_csv(config: &Config) -> Result<Dataset, DatasetError> {
    let csv_cfg = &config.data.csv;
    let root = &config.data.root;
    let file = if csv_cfg.file.is_absolute() { csv_cfg.file.clone() } else { root.join(&csv_cfg.file) };
    let csv_err = |message: String| DatasetError::Csv { path: file.clone(), message };
    let mut reader = csv::Reader::from_path(&file).map_err(|e| csv_err(e.to_string()))?;
    let headers = reader.headers().map_err(|e| csv_err(e.to_string()))?.clone();
    let column = |key: &str, name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            csv_err(format!(
                "{key}: no column {name:?}; columns are: {}",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let path_col = column("data.csv.path_column", &csv_cfg.path_column)?;
    let label_col = column("data.csv.label.column", &csv_cfg.label.column)?;
    let split_col = csv_cfg.split_column.as_deref().map(|c| column("data.csv.split_column", c)).transpose()?;
    let class_id = |class: &str| config.data.classes.iter().position(|c| c == class).expect("validated");
    let rule = &csv_cfg.label;
    let mut by_path: BTreeMap<PathBuf, (String, usize)> = BTreeMap::new();
    let mut dataset = Dataset::default();
    for (row_no, record) in reader.records().enumerate() {
        let record = record.map_err(|e| csv_err(e.to_string()))?;
        let key = record.get(path_col).unwrap_or("").trim();
        let cell = record.get(label_col).unwrap_or("").trim();
        let path = root.join(csv_cfg.path_template.replace("{}", key));
        let matched = match rule.rule {
            CsvLabelRule::Equals => rule.map.iter().find(|(v, _)| v == cell),
            CsvLabelRule::Contains => {
                let parts: Vec<&str> = cell.split(rule.separator.as_str()).map(str::trim).collect();
                rule.map.iter().find(|(v, _)| parts.contains(&v.as_str()))
            }
        };
        let class = matched.map(|(_, c)| c.as_str()).or(rule.otherwise.as_deref());
        let Some(class) = class else {
            dataset.rejects.push(RejectRow {
                path: path.display().to_string(),
                reason: format!(
                    "{} row {}: label {cell:?} in column {:?} matches no data.csv.label.map entry",
                    name(&file),
                    row_no + 2,
                    rule.column
                ),
            });
            continue;
        };
        let label = class_id(class);
        let split = split_col
            .and_then(|c| record.get(c))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "train".to_string());
        match by_path.get_mut(&path) {
            Some((_, existing)) if rule.merge_duplicates => *existing = (*existing).max(label),
            Some(_) => {
                return Err(csv_err(format!(
                    "{} is listed more than once (set data.csv.label.merge_duplicates: true to merge)",
                    path.display()
                )));
            }
            None => {
                by_path.insert(path, (split, label));
            }
        }
    }
    for (path, (split, label)) in by_path {
        if !path.is_file() {
            dataset.rejects.push(RejectRow {
                path: path.display().to_string(),
                reason: "file not found (listed in the label file)".into(),
            });
            continue;
        }
        dataset.splits.entry(split).or_default().push(Item { path, label });
    }
    Ok(dataset)
}
