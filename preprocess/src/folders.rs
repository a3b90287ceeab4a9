//! The folder adapter: `<root>/<split>/<CLASS>/*` or `<root>/<CLASS>/*`.

use std::path::{Path, PathBuf};

use cxr_config::ClassPattern;
use cxr_store::manifest::RejectRow;
use regex::Regex;

use crate::dataset::{Dataset, DatasetError, Item, io_err, name};
use crate::patient::PatientRule;

/// `data.class_patterns`, compiled: (folder, pattern, label id), in the config's order.
struct NameRules(Vec<(String, Regex, usize)>);

impl NameRules {
    fn new(patterns: &[ClassPattern], classes: &[String]) -> Result<NameRules, DatasetError> {
        let mut rules = Vec::new();
        for p in patterns {
            // The config checked both; a failure here would be a bug, reported rather than a panic.
            let regex = Regex::new(&p.pattern)
                .map_err(|e| DatasetError::Io { path: p.folder.clone().into(), message: e.to_string() })?;
            let label = classes.iter().position(|c| *c == p.class).ok_or_else(|| DatasetError::Io {
                path: p.folder.clone().into(),
                message: format!("class {:?} is not in data.classes", p.class),
            })?;
            rules.push((p.folder.clone(), regex, label));
        }
        Ok(NameRules(rules))
    }

    /// The folders whose images take their class from their names.
    /// Each folder once, in the order rules first name it (rules of one folder need not be
    /// adjacent, and a folder read twice would give every image twice).
    fn folders(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (folder, _, _) in &self.0 {
            if !out.contains(&folder.as_str()) {
                out.push(folder);
            }
        }
        out
    }

    /// The class of a file of `folder` named `file`, by the first rule that matches.
    fn class_of(&self, folder: &str, file: &str) -> Option<usize> {
        self.0.iter().find(|(f, regex, _)| f == folder && regex.is_match(file)).map(|&(_, _, label)| label)
    }

    /// Whether some rule gives `label` (so that its class needs no folder).
    fn gives(&self, label: usize) -> bool {
        self.0.iter().any(|&(_, _, l)| l == label)
    }
}

/// Reads `root`'s class folders (and the folders `patterns` read by file name); every
/// class of `classes` must have an image somewhere.
pub(crate) fn load(
    root: &Path,
    classes: &[String],
    patterns: &[ClassPattern],
    rule: &PatientRule,
) -> Result<Dataset, DatasetError> {
    let names = NameRules::new(patterns, classes)?;
    let dataset = load_folders(root, classes, &names, rule)?;
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
fn load_folders(
    root: &Path,
    classes: &[String],
    names: &NameRules,
    rule: &PatientRule,
) -> Result<Dataset, DatasetError> {
    let has_class_dirs = |dir: &Path| {
        let found = subdirs(dir).unwrap_or_default();
        classes
            .iter()
            .map(String::as_str)
            .chain(names.folders())
            .any(|c| found.iter().any(|d| name(d).eq_ignore_ascii_case(c)))
    };
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
        let patient = |path: &Path| rule.key_from_path(root, path).unwrap_or_else(|| path.display().to_string());
        warn_about_other_folders(&dir, classes, names);
        for (label, class) in classes.iter().enumerate() {
            let class_dirs = folders_named(&dir, class);
            if class_dirs.is_empty() && !names.gives(label) {
                tracing::warn!(split, class, "no folder {}", dir.join(class).display());
            }
            for class_dir in class_dirs {
                // A pattern that does not match leaves the image its own patient.
                items.extend(non_empty_files(&class_dir)?.into_iter().map(|path| Item {
                    patient: patient(&path),
                    path,
                    label,
                }));
            }
        }
        for folder in names.folders() {
            let folder_dir = dir.join(folder);
            if !folder_dir.is_dir() {
                continue;
            }
            for path in non_empty_files(&folder_dir)? {
                match names.class_of(folder, &name(&path)) {
                    Some(label) => items.push(Item { patient: patient(&path), path, label }),
                    None => dataset.rejects.push(RejectRow {
                        path: path.display().to_string(),
                        reason: format!("unlabelled: its name matches none of data.class_patterns for folder {folder}"),
                    }),
                }
            }
        }
        items.sort();
        dataset.splits.insert(split, items);
    }
    Ok(dataset)
}

/// The folders in `dir` named `class`, whatever the case of the letters (`Pneumonia/` for
/// PNEUMONIA: an export from another system must not lose a class without a word); a
/// folder whose name differs only in case is read with a warning.
fn folders_named(dir: &Path, class: &str) -> Vec<PathBuf> {
    let found: Vec<PathBuf> =
        subdirs(dir).unwrap_or_default().into_iter().filter(|d| name(d).eq_ignore_ascii_case(class)).collect();
    for d in found.iter().filter(|d| name(d) != class) {
        tracing::warn!("{} is read as class {class}: its name differs from data.classes only in case", d.display());
    }
    found
}

/// A warning for each folder of a split that names no class: its images are not read.
fn warn_about_other_folders(dir: &Path, classes: &[String], names: &NameRules) {
    for d in subdirs(dir).unwrap_or_default() {
        let n = name(&d);
        let known = classes.iter().map(String::as_str).chain(names.folders()).any(|c| c.eq_ignore_ascii_case(&n));
        if !known {
            tracing::warn!(
                "{} is not a class folder (data.classes: {}): its files are not read",
                d.display(),
                classes.join(", ")
            );
        }
    }
}

/// The image files below `dir`; none is an error (a class folder left empty by mistake).
fn non_empty_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let files = cxr_imaging::list_files(dir).map_err(|e| io_err(dir, e))?;
    if files.is_empty() {
        return Err(DatasetError::EmptyClass(dir.to_path_buf()));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_named_by_rules_that_are_not_adjacent_is_read_once_and_the_first_match_wins() {
        let rule = |folder: &str, pattern: &str, class: &str| ClassPattern {
            folder: folder.into(),
            pattern: pattern.into(),
            class: class.into(),
        };
        let classes = ["NORMAL".to_string(), "BACTERIA".to_string(), "VIRUS".to_string()];
        let rules =
            [rule("PNEUMONIA", "_bacteria_", "BACTERIA"), rule("OTHER", "x", "VIRUS"), rule("PNEUMONIA", "_", "VIRUS")];
        let names = NameRules::new(&rules, &classes).unwrap();
        assert_eq!(names.folders(), ["PNEUMONIA", "OTHER"]);
        assert_eq!(names.class_of("PNEUMONIA", "p1_bacteria_2.jpeg"), Some(1));
        assert_eq!(names.class_of("PNEUMONIA", "p1_virus_2.jpeg"), Some(2));
        assert_eq!(names.class_of("NORMAL", "p1_virus_2.jpeg"), None);
        assert!(names.gives(2) && !names.gives(0));
    }
}
