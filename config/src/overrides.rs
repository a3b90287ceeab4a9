//! `--set dotted.key=value` overrides applied to the parsed YAML before the schema sees it.

use serde_yaml::{Mapping, Value};

use crate::ConfigError;

/// Applies one `dotted.key=value` override; the value is parsed as YAML
/// (`3` is a number, `[224,224]` a list, `true` a bool, `sgd` a string).
pub(crate) fn apply(root: &mut Value, arg: &str) -> Result<(), ConfigError> {
    let syntax = || ConfigError::OverrideSyntax { arg: arg.to_string() };
    let (key, raw) = arg.split_once('=').ok_or_else(syntax)?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(syntax());
    }
    let value: Value = if raw.trim().is_empty() {
        Value::Null
    } else {
        serde_yaml::from_str(raw).map_err(|e| ConfigError::OverrideValue {
            arg: arg.to_string(),
            message: crate::wording::strip_location(&e.to_string(), None),
        })?
    };
    let parts: Vec<&str> = key.split('.').collect();
    let mut node = root;
    for (depth, part) in parts.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(ConfigError::OverrideNotSection {
                arg: arg.to_string(),
                key: parts[..depth].join("."),
                found: kind_of(node),
            });
        };
        let slot = map.entry(Value::String((*part).to_string())).or_insert(Value::Null);
        if depth + 1 == parts.len() {
            *slot = value;
            return Ok(());
        }
        node = slot;
    }
    unreachable!("a non-empty key always has a last part")
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "mapping",
        Value::Tagged(_) => "tagged value",
    }
}
