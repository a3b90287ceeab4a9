//! serde's wording turned into the project's: types in words (`expected a whole number
//! (0 or more), got "abc"`), unknown keys and values with every allowed one and the one
//! most likely meant.

use crate::locate::Position;
use crate::suggest;

/// Rewrites one error message of serde or of the schema's own deserialisers; `key` is
/// where it happened (`train.epochs`), whose spelling serde_yaml puts in front.
pub(crate) fn friendly(message: &str, key: &str) -> String {
    let message = strip_location(message, None);
    let message = strip_path(&message, key);
    if let Some(m) = unknown_key_or_variant(message) {
        return m;
    }
    if let Some(m) = invalid_type(message) {
        return m;
    }
    if let Some(m) = invalid_length(message) {
        return m;
    }
    with_suggestion(message)
}

/// `message` without serde_yaml's ` at line L column C` where it marks `only` (the caller
/// says where, once), or without every one when `only` is `None`; a mark of another
/// place (`while parsing a flow sequence at line 1 column 1`) stays.
pub(crate) fn strip_location(message: &str, only: Option<Position>) -> String {
    const AT: &str = " at line ";
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(AT) {
        let tail = &rest[at + AT.len()..];
        let line_end = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
        let after_line = &tail[line_end..];
        let mark = after_line.strip_prefix(" column ").and_then(|cols| {
            let end = cols.find(|c: char| !c.is_ascii_digit()).unwrap_or(cols.len());
            let position = Position { line: tail[..line_end].parse().ok()?, column: cols[..end].parse().ok()? };
            Some((position, AT.len() + line_end + " column ".len() + end))
        });
        match mark {
            Some((position, len)) if only.is_none_or(|p| p == position) => {
                out.push_str(&rest[..at]);
                rest = &rest[at + len..];
            }
            _ => {
                out.push_str(&rest[..at + AT.len()]);
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `message` without serde_yaml's `train: ` or `train.epochs: ` in front (the caller
/// names the key itself).
fn strip_path<'a>(message: &'a str, key: &str) -> &'a str {
    match message.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && is_path_prefix(head, key) => rest,
        _ => message,
    }
}

/// Whether `prefix` is `path` or one of its parents (`train` of `train.epochs`,
/// `preprocess.size` of `preprocess.size[0]`).
pub(crate) fn is_path_prefix(prefix: &str, path: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// `unknown field `epoch`, expected one of `epochs`, ...` (serde's), as
/// `unknown key "epoch" (did you mean "epochs"?), expected one of: epochs, ...`.
fn unknown_key_or_variant(message: &str) -> Option<String> {
    let (noun, rest) = if let Some(rest) = message.strip_prefix("unknown field `") {
        ("key", rest)
    } else {
        ("value", message.strip_prefix("unknown variant `")?)
    };
    let (bad, tail) = rest.split_once('`')?;
    let allowed: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    let hint = suggest::hint(bad, &allowed).map_or(String::new(), |h| format!(" ({h})"));
    Some(if allowed.is_empty() {
        format!("unknown {noun} {bad:?}{hint}: this section takes no {noun}s")
    } else {
        format!("unknown {noun} {bad:?}{hint}, expected one of: {}", allowed.join(", "))
    })
}

/// The schema's own `unknown value "x", expected one of: a, b, or ...` with a suggestion
/// added when one of the listed words is close.
fn with_suggestion(message: &str) -> String {
    const MARK: &str = ", expected one of: ";
    let suggestion = message.strip_prefix("unknown value \"").and_then(|rest| {
        let (bad, list) = rest.split_once(MARK)?;
        let bad = bad.strip_suffix('"')?;
        let allowed: Vec<&str> = list
            .split(", ")
            .map(|w| w.trim_start_matches("or ").trim())
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_alphanumeric() || "-_./".contains(c)))
            .collect();
        Some((bad.len(), suggest::hint(bad, &allowed)?))
    });
    match suggestion {
        Some((len, hint)) => {
            let end = "unknown value \"".len() + len + 1;
            format!("{} ({hint}){}", &message[..end], &message[end..])
        }
        None => message.to_string(),
    }
}

/// `invalid type: string "abc", expected usize` as `expected a whole number (0 or more),
/// got "abc"`; the same for `invalid value`.
fn invalid_type(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: ").or_else(|| message.strip_prefix("invalid value: "))?;
    let at = rest.rfind(", expected ")?;
    let (got, expected) = (&rest[..at], &rest[at + ", expected ".len()..]);
    Some(format!("expected {}, got {}", expected_in_words(expected), got_in_words(got)))
}

/// `invalid length 3, expected sequence of 2 elements` as `expected a list of 2 items,
/// got 3 items`.
fn invalid_length(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid length ")?;
    let (count, expected) = rest.split_once(", expected ")?;
    Some(format!("expected {}, got {count} item(s)", expected_in_words(expected)))
}

/// A type as serde names it (`usize`, `a sequence`, `struct Train`) in words.
pub(crate) fn expected_in_words(expected: &str) -> String {
    let words = match expected {
        "usize" | "u8" | "u16" | "u32" | "u64" | "u128" => "a whole number (0 or more)",
        "isize" | "i8" | "i16" | "i32" | "i64" | "i128" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" | "bool" => "true or false",
        "a string" | "string" | "a borrowed string" | "a character" | "char" => "text",
        "path string" => "a path",
        "a sequence" | "sequence" => "a list, e.g. [a, b]",
        "a map" | "map" => "a mapping of key: value",
        "fewer elements in sequence" => "fewer items in the list",
        "more elements in sequence" => "more items in the list",
        other => {
            if other.starts_with("struct ") {
                return "a section of key: value lines".to_string();
            }
            if let Some(n) = other
                .strip_prefix("sequence of ")
                .or_else(|| other.strip_prefix("an array of length "))
                .or_else(|| other.strip_prefix("a tuple of size "))
            {
                return format!("a list of {} items", n.trim_end_matches(" elements"));
            }
            other
        }
    };
    words.to_string()
}

/// A value as serde describes it (`string "abc"`, ``integer `3` ``, `sequence`) in words.
fn got_in_words(got: &str) -> String {
    if let Some(s) = got.strip_prefix("string ") {
        return s.to_string();
    }
    for prefix in ["integer `", "floating point `", "boolean `", "character `"] {
        if let Some(rest) = got.strip_prefix(prefix) {
            let (value, tail) = rest.split_once('`').unwrap_or((rest, ""));
            return if tail.contains("as u128") || tail.contains("as i128") {
                format!("{value} (too large)")
            } else {
                value.to_string()
            };
        }
    }
    match got {
        "unit value" => "nothing (an empty value)",
        "sequence" => "a list",
        "map" => "a mapping",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_said_in_words() {
        let f = |m: &str| friendly(m, "train.epochs");
        assert_eq!(
            f("invalid type: string \"abc\", expected usize"),
            "expected a whole number (0 or more), got \"abc\""
        );
        assert_eq!(f("invalid value: integer `-1`, expected usize"), "expected a whole number (0 or more), got -1");
        assert_eq!(
            f("invalid type: floating point `3.5`, expected u32"),
            "expected a whole number (0 or more), got 3.5"
        );
        assert_eq!(f("invalid type: string \"x\", expected f64"), "expected a number, got \"x\"");
        assert_eq!(f("invalid type: integer `3`, expected a boolean"), "expected true or false, got 3");
        assert_eq!(f("invalid type: sequence, expected a string"), "expected text, got a list");
        assert_eq!(f("invalid type: integer `3`, expected a sequence"), "expected a list, e.g. [a, b], got 3");
        assert_eq!(
            f("invalid type: integer `3`, expected struct Train"),
            "expected a section of key: value lines, got 3"
        );
        assert_eq!(f("invalid type: map, expected i64"), "expected a whole number, got a mapping");
        assert_eq!(
            f("invalid type: unit value, expected usize"),
            "expected a whole number (0 or more), got nothing (an empty value)"
        );
        assert_eq!(f("invalid length 3, expected sequence of 2 elements"), "expected a list of 2 items, got 3 item(s)");
    }

    #[test]
    fn only_the_location_asked_for_is_removed() {
        let m = "did not find expected ',' or ']' at line 2 column 1, while parsing a flow sequence at line 1 column 1";
        assert_eq!(
            strip_location(m, Some(Position { line: 2, column: 1 })),
            "did not find expected ',' or ']', while parsing a flow sequence at line 1 column 1"
        );
        assert_eq!(strip_location(m, None), "did not find expected ',' or ']', while parsing a flow sequence");
        assert_eq!(strip_location("no mark at line x", None), "no mark at line x");
    }

    #[test]
    fn serde_yaml_path_and_location_are_removed() {
        assert_eq!(
            friendly("train.epochs: invalid type: string \"abc\", expected usize at line 2 column 11", "train.epochs"),
            "expected a whole number (0 or more), got \"abc\""
        );
        assert_eq!(
            friendly("train: unknown field `epoch`, expected `epochs` or `lr` at line 2 column 3", "train.epoch"),
            "unknown key \"epoch\" (did you mean \"epochs\"?), expected one of: epochs, lr"
        );
    }

    #[test]
    fn unknown_names_list_what_is_allowed_with_a_suggestion() {
        assert_eq!(
            friendly("unknown variant `sgdd`, expected `sgd` or `adam`", "train.optimizer.kind"),
            "unknown value \"sgdd\" (did you mean \"sgd\"?), expected one of: sgd, adam"
        );
        assert_eq!(
            friendly("unknown variant `gpu`, expected one of `cpu`, `cuda`, `auto`", "infer.device"),
            "unknown value \"gpu\" (use cuda), expected one of: cpu, cuda, auto"
        );
        assert_eq!(
            friendly("unknown variant `zzz`, expected `sgd` or `adam`", "k"),
            "unknown value \"zzz\", expected one of: sgd, adam"
        );
        assert_eq!(
            friendly("unknown value \"imagenett\", expected one of: imagenet, random, or a path ending in .onnx", "m"),
            "unknown value \"imagenett\" (did you mean \"imagenet\"?), expected one of: imagenet, random, or a path ending in .onnx"
        );
    }
}
