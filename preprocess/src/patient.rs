//! Which patient an image belongs to, so that no patient is on both sides of a split:
//! the Kermany file-name rule, a column of the label file, or a pattern over the path.

use std::path::Path;

use anyhow::Context;
use cxr_config::{Adapter, Data, PatientId};
use regex::Regex;

/// The patient in Kermany file names (`person<ID>_bacteria_*`, `IM-<ID>-*`,
/// `NORMAL2-IM-<ID>-*`); other names are their own patient.
pub fn kermany_key(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if stem.starts_with("person")
        && let Some((id, _)) = stem.split_once('_')
    {
        return id.to_string();
    }
    for prefix in ["NORMAL2-IM-", "IM-"] {
        if let Some(rest) = stem.strip_prefix(prefix) {
            let id: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if !id.is_empty() {
                return format!("{prefix}{id}");
            }
        }
    }
    stem
}

/// The configured rule (`data.patient`), resolved for the adapter in use.
#[derive(Debug, Clone)]
pub enum PatientRule {
    Kermany,
    Path,
    /// The label file's column of this name (read by the CSV adapter).
    Column(String),
    Pattern(Regex),
}

impl PatientRule {
    pub fn from_config(data: &Data) -> anyhow::Result<PatientRule> {
        Ok(match &data.patient {
            PatientId::Auto if data.adapter == Adapter::Csv => PatientRule::Path,
            PatientId::Auto | PatientId::Kermany => PatientRule::Kermany,
            PatientId::Path => PatientRule::Path,
            PatientId::Column(c) => PatientRule::Column(c.clone()),
            PatientId::Pattern(p) => PatientRule::Pattern(
                Regex::new(p).with_context(|| format!("data.patient: pattern {p:?} is not a regular expression"))?,
            ),
        })
    }

    /// The patient of `path` (below `root`) by a rule that needs no label-file column;
    /// `None` when a pattern does not match (the caller decides what that means).
    pub fn key_from_path(&self, root: &Path, path: &Path) -> Option<String> {
        match self {
            PatientRule::Kermany => Some(kermany_key(path)),
            PatientRule::Path | PatientRule::Column(_) => Some(relative(root, path)),
            PatientRule::Pattern(re) => {
                let rel = relative(root, path);
                let caps = re.captures(&rel)?;
                Some(caps.get(1).or_else(|| caps.get(0)).map(|m| m.as_str().to_string()).unwrap_or_default())
            }
        }
    }
}

/// `path` relative to `root`, with `/` separators, for patterns and path keys.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kermany_keys_follow_the_file_names() {
        assert_eq!(kermany_key(Path::new("/x/person1017_bacteria_2948.jpeg")), "person1017");
        assert_eq!(kermany_key(Path::new("/x/person1017_virus_1.jpeg")), "person1017");
        assert_eq!(kermany_key(Path::new("IM-0115-0001.jpeg")), "IM-0115");
        assert_eq!(kermany_key(Path::new("NORMAL2-IM-0115-0001.jpeg")), "NORMAL2-IM-0115");
        assert_eq!(kermany_key(Path::new("scan.png")), "scan");
    }

    #[test]
    fn a_pattern_takes_its_first_group_over_the_relative_path() {
        let rule = PatientRule::Pattern(Regex::new(r"/(patient\d+)/").unwrap());
        let root = Path::new("/data/chexpert");
        let path = Path::new("/data/chexpert/CheXpert-v1.0-small/train/patient00042/study1/view1_frontal.jpg");
        assert_eq!(rule.key_from_path(root, path).as_deref(), Some("patient00042"));
        assert_eq!(rule.key_from_path(root, Path::new("/data/chexpert/other/x.jpg")), None);
        let whole = PatientRule::Pattern(Regex::new(r"patient\d+").unwrap());
        assert_eq!(whole.key_from_path(root, path).as_deref(), Some("patient00042"));
    }
}
