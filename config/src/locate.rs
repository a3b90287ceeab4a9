//! Where a key is in a YAML text: the line and column of its value, and of a key given
//! twice in one mapping. serde_yaml keeps positions only in its errors, so a walk over
//! the text that fails on purpose at the place looked for reads the position from there.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A place in a YAML text: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// Where serde_yaml says `error` happened.
    pub(crate) fn of(error: &serde_yaml::Error) -> Option<Position> {
        error.location().map(|l| Position { line: l.line(), column: l.column() })
    }
}

/// One step of a key path: `train`, `size`, `[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `preprocess.size[0]` as steps; what follows a space (`model.head.hidden (layers)`) is
/// a remark, not part of the path.
fn steps(key: &str) -> Vec<Step> {
    let key = key.split(' ').next().unwrap_or_default();
    let mut out = Vec::new();
    for part in key.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
            out.push(Step::Key(name.to_string()));
        }
        for index in pieces {
            match index.trim_end_matches(']').parse() {
                Ok(i) => out.push(Step::Index(i)),
                Err(_) => return Vec::new(),
            }
        }
    }
    out
}

/// The position of the value of `key` (`train.epochs`, `preprocess.size[0]`) in `text`,
/// when the text gives that key.
pub(crate) fn value_position(text: &str, key: &str) -> Option<Position> {
    seek(text, key, false)
}

/// The position of `key` itself (the first time its mapping gives it).
pub(crate) fn key_position(text: &str, key: &str) -> Option<Position> {
    seek(text, key, true)
}

fn seek(text: &str, key: &str, at_key: bool) -> Option<Position> {
    let path = steps(key);
    if path.is_empty() || at_key && !matches!(path.last(), Some(Step::Key(_))) {
        return None;
    }
    let found = RefCell::new(None);
    let result = (Seek { path: &path, at_key, found: &found }).deserialize(serde_yaml::Deserializer::from_str(text));
    found.borrow().as_ref()?;
    Position::of(&result.err()?)
}

/// The first key given twice in one mapping of `text`: its path and the position of its
/// second occurrence.
pub(crate) fn first_duplicate(text: &str) -> Option<(String, Position)> {
    let found = RefCell::new(None);
    let result =
        (Duplicates { path: String::new(), found: &found }).deserialize(serde_yaml::Deserializer::from_str(text));
    let key = found.borrow_mut().take()?;
    Some((key, Position::of(&result.err()?)?))
}

/// Walks down `path` and fails at its value (or, `at_key`, at its last key), setting
/// `found`.
struct Seek<'a> {
    path: &'a [Step],
    at_key: bool,
    found: &'a RefCell<Option<String>>,
}

impl<'a> Seek<'a> {
    fn rest(&self) -> Seek<'a> {
        Seek { path: &self.path[1..], at_key: self.at_key, found: self.found }
    }
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            *self.found.borrow_mut() = Some(String::new());
            return d.deserialize_any(Here).map(|_| ());
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if let ([Step::Key(last)], true) = (self.path, self.at_key) {
            let target = std::slice::from_ref(last);
            while map.next_key_seed(NewKey { seen: target, parent: "", found: self.found })?.is_some() {
                map.next_value::<IgnoredAny>()?;
            }
            return Ok(());
        }
        while let Some(key) = map.next_key::<KeyName>()? {
            if self.path[0] == Step::Key(key.0) {
                map.next_value_seed(self.rest())?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let more = if self.path[0] == Step::Index(index) {
                seq.next_element_seed(self.rest())?.is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Fails on whatever value it is given, so that serde_yaml puts that value's position in
/// the error.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("nothing (the place looked for)")
    }
}

/// A mapping key as text (`epochs`, `3`, `true`); a key that is itself a list or mapping
/// is read as empty text.
struct KeyName(String);

impl<'de> de::Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyName, D::Error> {
        d.deserialize_any(KeyVisitor { seen: &[], parent: "", found: None })
    }
}

/// Reads a key as text; with `found`, fails when `seen` already holds it and records its
/// path below `parent` there.
struct KeyVisitor<'a> {
    seen: &'a [String],
    parent: &'a str,
    found: Option<&'a RefCell<Option<String>>>,
}

impl KeyVisitor<'_> {
    fn key<E: de::Error>(self, text: String) -> Result<KeyName, E> {
        match self.found {
            Some(found) if self.seen.contains(&text) => {
                *found.borrow_mut() = Some(join(self.parent, &text));
                Err(E::custom("duplicate key"))
            }
            _ => Ok(KeyName(text)),
        }
    }
}

/// `parent.key`, or `key` at the top level.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

impl<'de> Visitor<'de> for KeyVisitor<'_> {
    type Value = KeyName;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyName, E> {
        self.key(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyName, E> {
        self.key(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyName, E> {
        self.key(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyName, E> {
        self.key(v.to_string())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyName, E> {
        self.key(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<KeyName, E> {
        self.key("null".to_string())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyName, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(KeyName(String::new()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyName, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyName(String::new()))
    }
}

/// A mapping key that fails when its mapping already had it, recording its path.
struct NewKey<'a> {
    seen: &'a [String],
    parent: &'a str,
    found: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for NewKey<'_> {
    type Value = KeyName;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<KeyName, D::Error> {
        d.deserialize_any(KeyVisitor { seen: self.seen, parent: self.parent, found: Some(self.found) })
    }
}

/// Walks every mapping and fails at the first key a mapping already had.
struct Duplicates<'a> {
    path: String,
    found: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Duplicates<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Duplicates<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<String> = Vec::new();
        while let Some(KeyName(key)) =
            map.next_key_seed(NewKey { seen: &seen, parent: &self.path, found: self.found })?
        {
            map.next_value_seed(Duplicates { path: join(&self.path, &key), found: self.found })?;
            seen.push(key);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(Duplicates { path: format!("{}[{index}]", self.path), found: self.found })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        "# a comment\ntrain:\n  epochs: 3\n  optimizer: {kind: sgd}\npreprocess:\n  size:\n    - 224\n    - 8\n";

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn values_and_keys_are_found_where_the_text_gives_them() {
        assert_eq!(value_position(TEXT, "train.epochs"), at(3, 11));
        assert_eq!(key_position(TEXT, "train.epochs"), at(3, 3));
        assert_eq!(value_position(TEXT, "train.optimizer.kind"), at(4, 21));
        assert_eq!(value_position(TEXT, "preprocess.size[1]"), at(8, 7));
        assert_eq!(value_position(TEXT, "model.head.hidden (layers)"), None);
        assert_eq!(value_position(TEXT, "train.batch_size"), None);
        assert_eq!(value_position(TEXT, "preprocess.size[5]"), None);
        assert_eq!(first_duplicate(TEXT), None);
    }

    #[test]
    fn the_second_of_two_equal_keys_is_found() {
        let text = "train:\n  epochs: 3\n  optimizer:\n    lr: 1\n    lr: 2\n";
        assert_eq!(first_duplicate(text), Some(("train.optimizer.lr".to_string(), Position { line: 5, column: 5 })));
        assert_eq!(key_position(text, "train.optimizer.lr"), at(4, 5));
    }
}
