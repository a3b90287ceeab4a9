//! Configurations as flat lists of `dotted.key = value` pairs, and the keys where two
//! differ: what `report compare` shows of the experiments it compares.

use std::path::Path;

use serde_yaml::Value;

use crate::ConfigError;

/// One key whose value differs between two configurations; `None` where a side lacks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The YAML file at `path` as `(dotted.key, value)` pairs in document order: mappings are
/// walked down to their leaves; a list is one value, written inline (`[224, 224]`).
pub fn flatten_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    Ok(flatten_value(&crate::read_yaml_file(path)?))
}

/// [`flatten_file`] of YAML text; `origin` names it in errors.
pub fn flatten_yaml(text: &str, origin: &str) -> Result<Vec<(String, String)>, ConfigError> {
    Ok(flatten_value(&crate::parse_yaml(text, Path::new(origin))?))
}

fn flatten_value(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match value {
        Value::Mapping(map) => walk("", map, &mut out),
        Value::Null => {}
        other => out.push((String::new(), inline(other))),
    }
    out
}

fn walk(prefix: &str, map: &serde_yaml::Mapping, out: &mut Vec<(String, String)>) {
    for (key, value) in map {
        let key = if prefix.is_empty() { inline(key) } else { format!("{prefix}.{}", inline(key)) };
        match value {
            Value::Mapping(inner) if !inner.is_empty() => walk(&key, inner, out),
            other => out.push((key, inline(other))),
        }
    }
}

/// A value on one line, as YAML's flow style would write it.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.contains(['\n', '\r']) => format!("{s:?}"),
        // serde_yaml quotes what would otherwise read back as another type ('1', 'true', '').
        Value::String(s) => serde_yaml::to_string(s).map(|t| t.trim_end().to_string()).unwrap_or_else(|_| s.clone()),
        Value::Sequence(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Value::Mapping(map) => {
            let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", inline(k), inline(v))).collect();
            format!("{{{}}}", pairs.join(", "))
        }
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, inline(&tagged.value)),
    }
}

/// The keys whose values differ from `old` to `new`: in `old`'s order, then the keys only
/// `new` has, in its order.
pub fn diff_flat(old: &[(String, String)], new: &[(String, String)]) -> Vec<KeyChange> {
    let old_map: std::collections::HashMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let new_map: std::collections::HashMap<&str, &str> = new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut changes = Vec::new();
    for (key, value) in old {
        match new_map.get(key.as_str()) {
            Some(v) if v == value => {}
            other => changes.push(KeyChange {
                key: key.clone(),
                old: Some(value.clone()),
                new: other.map(|v| v.to_string()),
            }),
        }
    }
    for (key, value) in new {
        if !old_map.contains_key(key.as_str()) {
            changes.push(KeyChange { key: key.clone(), old: None, new: Some(value.clone()) });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_flatten_to_dotted_paths_and_only_differences_are_listed() {
        let a = "experiment: {name: a, seed: 1}\npreprocess: {size: [32, 32]}\nmodel:\n  head: {hidden: [8], dropout: 0.2}\n  backbone: random\nreport: {}\n";
        let b = "experiment: {name: b, seed: 1}\npreprocess: {size: [32, 32]}\nmodel:\n  head: {hidden: [16], dropout: 0.2}\n  backbone: random\ntrain: {epochs: 3}\nreport: {}\n";
        let fa = flatten_yaml(a, "a.yaml").unwrap();
        assert_eq!(
            fa.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            [
                "experiment.name",
                "experiment.seed",
                "preprocess.size",
                "model.head.hidden",
                "model.head.dropout",
                "model.backbone",
                "report"
            ]
        );
        assert_eq!(fa[2].1, "[32, 32]");
        assert_eq!(fa[6].1, "{}");
        let changes = diff_flat(&fa, &flatten_yaml(b, "b.yaml").unwrap());
        let change = |key: &str, old: Option<&str>, new: Option<&str>| KeyChange {
            key: key.into(),
            old: old.map(str::to_string),
            new: new.map(str::to_string),
        };
        assert_eq!(
            changes,
            [
                change("experiment.name", Some("a"), Some("b")),
                change("model.head.hidden", Some("[8]"), Some("[16]")),
                change("train.epochs", None, Some("3")),
            ]
        );
        assert!(diff_flat(&fa, &fa).is_empty());
    }

    #[test]
    fn values_keep_their_type_in_the_spelling() {
        let f =
            flatten_yaml("a: '1'\nb: 1\nc: ''\nd: {e: [x, {f: true}]}\ng: null\nh: \"two\\nlines\"\n", "t").unwrap();
        let value = |k: &str| f.iter().find(|(key, _)| key == k).unwrap().1.clone();
        assert_eq!(value("a"), "'1'", "a string that reads as a number stays quoted");
        assert_eq!(value("b"), "1");
        assert_eq!(value("c"), "''");
        assert_eq!(value("d.e"), "[x, {f: true}]");
        assert_eq!(value("g"), "null");
        assert_eq!(value("h"), "\"two\\nlines\"");
    }

    #[test]
    fn a_missing_or_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.yaml");
        assert!(flatten_file(&missing).unwrap_err().to_string().contains("none.yaml"));
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, "a: [1, 2\n").unwrap();
        assert!(flatten_file(&broken).unwrap_err().to_string().contains("broken.yaml"));
    }
}
