//! A path key's value as written and as resolved, for logs and errors: a relative path
//! (`data.root: data/x`) is opened from the current folder, and the messages say so.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The value of a path key (`data.root`) as written, and the absolute path it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelativePath {
    key: String,
    written: PathBuf,
    /// The folder a relative path is resolved from; `None` for an absolute one.
    base: Option<PathBuf>,
    resolved: PathBuf,
}

impl RelativePath {
    /// `written`, the value of `key`, resolved as the stages open it: from the current
    /// folder when it is relative (not from the config file's folder).
    pub fn from_current_dir(key: &str, written: &Path) -> RelativePath {
        let base = if written.is_absolute() { None } else { std::env::current_dir().ok() };
        RelativePath::from_base(key, written, base)
    }

    /// `written` resolved from `base` when it is relative and `base` is given.
    pub fn from_base(key: &str, written: &Path, base: Option<PathBuf>) -> RelativePath {
        let base = base.filter(|_| written.is_relative());
        let resolved = match &base {
            Some(base) => base.join(written).components().filter(|c| *c != Component::CurDir).collect(),
            None => written.to_path_buf(),
        };
        RelativePath { key: key.to_string(), written: written.to_path_buf(), base, resolved }
    }

    /// Whether the path was written relative (and so depends on the current folder).
    pub fn is_relative(&self) -> bool {
        self.base.is_some()
    }

    /// The path as the stage opens it.
    pub fn resolved(&self) -> &Path {
        &self.resolved
    }

    /// For a log line, when relative: `data.root data/x is relative: read from the current
    /// folder /home/u/proj, as /home/u/proj/data/x`.
    pub fn resolution(&self) -> Option<String> {
        let base = self.base.as_ref()?;
        Some(format!(
            "{} '{}' is relative: resolved from the current folder {} as {}",
            self.key,
            self.written.display(),
            base.display(),
            self.resolved.display()
        ))
    }
}

/// `data.root 'data/x' (resolved from /home/u/proj as /home/u/proj/data/x)`, or
/// `data.root '/abs/x'` when absolute.
impl fmt::Display for RelativePath {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} '{}'", self.key, self.written.display())?;
        if let Some(base) = &self.base {
            write!(f, " (resolved from {} as {})", base.display(), self.resolved.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_path_says_where_it_was_resolved_from() {
        let p = RelativePath::from_base("data.root", Path::new("./data/x"), Some("/home/u/proj".into()));
        assert!(p.is_relative());
        assert_eq!(p.resolved(), Path::new("/home/u/proj/data/x"));
        assert_eq!(p.to_string(), "data.root './data/x' (resolved from /home/u/proj as /home/u/proj/data/x)");
        assert!(p.resolution().unwrap().contains("resolved from the current folder /home/u/proj"));
        let abs = RelativePath::from_base("data.root", Path::new("/srv/x"), Some("/home/u".into()));
        assert!(!abs.is_relative() && abs.resolution().is_none());
        assert_eq!(abs.to_string(), "data.root '/srv/x'");
    }
}
