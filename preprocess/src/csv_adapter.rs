//! The label-file adapter (RSNA, NIH ChestX-ray14, CheXpert, MIMIC-CXR style): one row
//! per image (or per finding, merged), with row filters, labels by map or class name,
//! the patient from a column or a pattern, and every path kept inside its root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cxr_config::{CsvAdapter, CsvLabelRule, Data};
use cxr_store::manifest::RejectRow;

use crate::dataset::{Dataset, DatasetError, Item, first_reasons, name};
use crate::patient::PatientRule;

/// Column positions of the label file.
struct Columns {
    path: usize,
    label: usize,
    split: Option<usize>,
    patient: Option<(usize, String)>,
    filters: Vec<(usize, String, Vec<String>)>,
}

/// One accepted row, before its file is looked at.
struct Row {
    split: String,
    label: usize,
    patient: Option<String>,
}

/// Reads the label file named by `data.csv`.
pub(crate) fn load(data: &Data, rule: &PatientRule) -> Result<Dataset, DatasetError> {
    let csv_cfg = &data.csv;
    let root = &data.root;
    let file = if csv_cfg.file.is_absolute() { csv_cfg.file.clone() } else { root.join(&csv_cfg.file) };
    let csv_err = |message: String| DatasetError::Csv { path: file.clone(), message };
    // `flexible`: NIH's header names `OriginalImage[Width,Height]` with a comma inside, so it
    // has more fields than its rows; the columns read here come before it.
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(&file).map_err(|e| csv_err(e.to_string()))?;
    let headers = reader.headers().map_err(|e| csv_err(e.to_string()))?.clone();
    let columns = find_columns(csv_cfg, rule, &headers).map_err(csv_err)?;
    let file_name = name(&file);
    let mut by_path: BTreeMap<PathBuf, Row> = BTreeMap::new();
    let mut dataset = Dataset::default();
    let mut rows_read = 0usize;
    for (row_no, record) in reader.records().enumerate() {
        let record = record.map_err(|e| csv_err(e.to_string()))?;
        rows_read += 1;
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let key = cell(columns.path);
        let path = root.join(csv_cfg.path_template.replace("{}", key));
        let at = format!("{file_name} row {}", row_no + 2);
        match accept_row(data, &columns, &cell, &at) {
            Ok(row) => merge_row(&mut by_path, path, row, csv_cfg.label.merge_duplicates).map_err(csv_err)?,
            Err(reason) => dataset.rejects.push(RejectRow { path: path.display().to_string(), reason }),
        }
    }
    let roots = allowed_roots(data)?;
    for (path, row) in by_path {
        match resolve_inside(&path, &roots) {
            Ok(()) => {
                let patient = match row.patient {
                    Some(p) => p,
                    None => rule.key_from_path(root, &path).unwrap_or_else(|| path.display().to_string()),
                };
                dataset.splits.entry(row.split).or_default().push(Item { path, label: row.label, patient });
            }
            Err(reason) => dataset.rejects.push(RejectRow { path: path.display().to_string(), reason }),
        }
    }
    check_classes(&data.classes, &file, &dataset, rows_read)?;
    Ok(dataset)
}

fn find_columns(csv_cfg: &CsvAdapter, rule: &PatientRule, headers: &csv::StringRecord) -> Result<Columns, String> {
    let column = |key: &str, name: &str| {
        headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            format!("{key}: no column {name:?}; columns are: {}", headers.iter().collect::<Vec<_>>().join(", "))
        })
    };
    let filters = csv_cfg
        .filters
        .iter()
        .map(|f| Ok((column("data.csv.filters", &f.column)?, f.column.clone(), f.keep.clone())))
        .collect::<Result<_, String>>()?;
    Ok(Columns {
        path: column("data.csv.path_column", &csv_cfg.path_column)?,
        label: column("data.csv.label.column", &csv_cfg.label.column)?,
        split: csv_cfg.split_column.as_deref().map(|c| column("data.csv.split_column", c)).transpose()?,
        patient: match rule {
            PatientRule::Column(c) => Some((column("data.patient", c)?, c.clone())),
            _ => None,
        },
        filters,
    })
}

/// Applies the filters, the label rule, the split and the patient column to one row;
/// `Err` is the reject reason.
fn accept_row<'r>(data: &Data, columns: &Columns, cell: &impl Fn(usize) -> &'r str, at: &str) -> Result<Row, String> {
    for (i, column, keep) in &columns.filters {
        let value = cell(*i);
        if !keep.iter().any(|k| k == value) {
            return Err(format!("{at}: {column} is {value:?}, not one of [{}] (data.csv.filters)", keep.join(", ")));
        }
    }
    let label_cell = cell(columns.label);
    let label = label_of(data, label_cell).ok_or_else(|| {
        format!(
            "{at}: label {label_cell:?} in column {:?} matches no data.csv.label.map entry and no class name",
            data.csv.label.column
        )
    })?;
    let split = columns.split.map(cell).filter(|s| !s.is_empty()).unwrap_or("train").to_string();
    // The split becomes a folder name under EXP/tensors/: `../x` must never get there.
    if !cxr_config::is_safe_name(&split) {
        return Err(format!("{at}: split {split:?} is not a name of letters, digits, `_` and `-`"));
    }
    let patient = match &columns.patient {
        Some((i, column)) if cell(*i).is_empty() => {
            return Err(format!("{at}: the patient column {column:?} is empty (data.patient)"));
        }
        Some((i, _)) => Some(cell(*i).to_string()),
        None => None,
    };
    Ok(Row { split, label, patient })
}

/// The label id of a label cell: the first `map` entry that matches, else a cell equal to
/// a class name, else `otherwise`.
fn label_of(data: &Data, cell: &str) -> Option<usize> {
    let rule = &data.csv.label;
    let classes = &data.classes;
    let parts: Vec<&str> = match rule.rule {
        CsvLabelRule::Equals => vec![cell],
        CsvLabelRule::Contains => cell.split(rule.separator.as_str()).map(str::trim).collect(),
    };
    let class = rule
        .map
        .iter()
        .find(|(v, _)| parts.contains(&v.as_str()))
        .map(|(_, c)| c.as_str())
        .or_else(|| classes.iter().find(|c| parts.contains(&c.as_str())).map(String::as_str))
        .or(rule.otherwise.as_deref())?;
    classes.iter().position(|c| c == class)
}

fn merge_row(by_path: &mut BTreeMap<PathBuf, Row>, path: PathBuf, row: Row, merge: bool) -> Result<(), String> {
    match by_path.get_mut(&path) {
        // RSNA lists one row per box: the image is positive when any row is.
        Some(existing) if merge => existing.label = existing.label.max(row.label),
        Some(_) => {
            return Err(format!(
                "{} is listed more than once (set data.csv.label.merge_duplicates: true to merge)",
                path.display()
            ));
        }
        None => {
            by_path.insert(path, row);
        }
    }
    Ok(())
}

/// `data.root` and `data.csv.allowed_roots` (relative ones below `data.root`), resolved.
fn allowed_roots(data: &Data) -> Result<Vec<PathBuf>, DatasetError> {
    let root = &data.root;
    let mut roots = vec![root.clone()];
    roots.extend(data.csv.allowed_roots.iter().map(|r| if r.is_absolute() { r.clone() } else { root.join(r) }));
    roots.into_iter().map(|r| std::fs::canonicalize(&r).map_err(|e| crate::dataset::io_err(&r, e))).collect()
}

/// `Ok` when `path` exists and resolves (links followed) inside one of `roots`; the file
/// itself is not opened, so a path pointing elsewhere is never read.
fn resolve_inside(path: &Path, roots: &[PathBuf]) -> Result<(), String> {
    let resolved = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("file not found (listed in the label file)".into());
        }
        Err(e) => return Err(format!("cannot read file: {e}")),
    };
    if roots.iter().any(|r| resolved.starts_with(r)) {
        Ok(())
    } else {
        Err(format!(
            "outside data.root: resolves to {}, which is not below {} (add its folder to data.csv.allowed_roots to allow it); not read",
            resolved.display(),
            roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(" or ")
        ))
    }
}

/// Every class must have an image; an error says what the label file gave instead.
fn check_classes(classes: &[String], file: &Path, dataset: &Dataset, rows: usize) -> Result<(), DatasetError> {
    let kept: usize = dataset.splits.values().map(Vec::len).sum();
    if kept == 0 && rows > 0 {
        return Err(DatasetError::AllRowsRejected {
            file: file.to_path_buf(),
            rejected: dataset.rejects.len(),
            reasons: first_reasons(&dataset.rejects),
        });
    }
    for (label, class) in classes.iter().enumerate() {
        if !dataset.splits.values().flatten().any(|i| i.label == label) {
            let reasons = if dataset.rejects.is_empty() {
                String::new()
            } else {
                format!(" (first reasons: {})", first_reasons(&dataset.rejects))
            };
            return Err(DatasetError::MissingCsvClass {
                class: class.clone(),
                file: file.to_path_buf(),
                kept,
                rejected: dataset.rejects.len(),
                reasons,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod fuzz {
    //! The label-file adapter on random CSV text: every input gives a dataset or an error,
    //! never a panic. `CXR_FUZZ_CASES=N` runs N cases (default 400).

    use proptest::prelude::*;

    use cxr_config::Config;

    use super::*;

    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("img/a.png".to_string()),
            Just("img/b.png".to_string()),
            Just("../outside.png".to_string()),
            Just("/etc/passwd".to_string()),
            Just("NORMAL".to_string()),
            Just("PNEUMONIA".to_string()),
            Just("1.0".to_string()),
            Just("".to_string()),
            Just("\"quoted, with comma\"".to_string()),
            Just("\"unterminated".to_string()),
            Just("train".to_string()),
            Just("../../x".to_string()),
            Just("Frontal".to_string()),
            "[ -~]{0,12}".prop_map(|s| s.replace(['\n', '\r'], "")),
            "\\PC{0,6}",
        ]
    }

    fn row() -> impl Strategy<Value = String> {
        proptest::collection::vec(cell(), 0..7).prop_map(|cells| cells.join(","))
    }

    fn cases() -> u32 {
        std::env::var("CXR_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn random_label_files_load_or_fail_cleanly(
            header in prop_oneof![Just("path,label,split,patient,view".to_string()), row()],
            rows in proptest::collection::vec(row(), 0..12),
            split in any::<bool>(),
            patient in any::<bool>(),
            filter in any::<bool>(),
            contains in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            std::fs::create_dir_all(root.join("img")).unwrap();
            std::fs::write(root.join("img/a.png"), b"not decoded here").unwrap();
            std::fs::write(root.join("img/b.png"), b"not decoded here").unwrap();
            std::fs::write(dir.path().join("outside.png"), b"never read").unwrap();
            std::fs::write(root.join("labels.csv"), format!("{header}\n{}\n", rows.join("\n"))).unwrap();
            let mut config = Config::default();
            config.data.root = root;
            config.data.adapter = cxr_config::Adapter::Csv;
            if split {
                config.data.csv.split_column = Some("split".into());
            }
            if patient {
                config.data.patient = cxr_config::PatientId::Column("patient".into());
            }
            if filter {
                config.data.csv.filters = vec![cxr_config::CsvFilter { column: "view".into(), keep: vec!["Frontal".into()] }];
            }
            if contains {
                config.data.csv.label.rule = CsvLabelRule::Contains;
                config.data.csv.label.map = vec![("1.0".into(), "PNEUMONIA".into())];
            }
            let rule = PatientRule::from_config(&config.data).unwrap();
            if let Ok(dataset) = load(&config.data, &rule) {
                for (split, items) in &dataset.splits {
                    prop_assert!(cxr_config::is_safe_name(split));
                    for item in items {
                        prop_assert!(item.path.canonicalize().unwrap().starts_with(config.data.root.canonicalize().unwrap()));
                    }
                }
            }
        }
    }
}
