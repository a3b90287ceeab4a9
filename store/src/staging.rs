//! Whole-folder atomicity: a stage writes a complete new folder beside the old one
//! and swaps it in at the end, so a crash, a full disk or a read-only folder leaves
//! the previous outputs as they were.

use std::path::{Path, PathBuf};

use crate::StoreError;

/// A folder being built; it replaces `target` only on [`Staging::commit`].
///
/// The new folder is `<parent>/.<name>.staging-<pid>/<name>`: it has the target's own
/// name, so a [`crate::layout::Layout`] rooted at [`Staging::root`] finds it where it
/// would find the target.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    root: PathBuf,
    path: PathBuf,
    committed: bool,
}

fn sibling(target: &Path, tag: &str) -> PathBuf {
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("dir");
    parent.join(format!(".{name}.{tag}"))
}

impl Staging {
    /// Creates an empty staging folder next to `target`, first removing any that a
    /// killed run left behind.
    pub fn new(target: &Path) -> Result<Staging, StoreError> {
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        let prefix = format!(".{}.", target.file_name().and_then(|n| n.to_str()).unwrap_or("dir"));
        if let Ok(entries) = std::fs::read_dir(parent) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name.contains(".staging-") {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let root = sibling(target, &format!("staging-{}", std::process::id()));
        let path = root.join(target.file_name().unwrap_or(std::ffi::OsStr::new("dir")));
        std::fs::create_dir_all(&path).map_err(|e| StoreError::io(&path, e))?;
        Ok(Staging { target: target.to_path_buf(), root, path, committed: false })
    }

    /// Where to write the new contents (a folder with the target's name).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder holding [`Staging::path`]; use it as the experiment root while staging.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Swaps the staging folder in for the target (old contents are removed after the swap).
    pub fn commit(mut self) -> Result<PathBuf, StoreError> {
        swap_in(&self.path, &self.target)?;
        self.committed = true;
        let _ = std::fs::remove_dir_all(&self.root);
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Replaces folder `target` with folder `new`: `target` -> `.target.old`, `new` -> `target`,
/// then the old copy is deleted. A crash between the renames leaves `.target.old`, which
/// [`recover`] puts back.
pub fn swap_in(new: &Path, target: &Path) -> Result<(), StoreError> {
    let old = sibling(target, "old");
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| StoreError::io(&old, e))?;
    }
    if target.exists() {
        std::fs::rename(target, &old).map_err(|e| StoreError::io(target, e))?;
    }
    std::fs::rename(new, target).map_err(|e| StoreError::io(target, e))?;
    crate::atomic::sync_parent(target)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Puts `.target.old` back when a swap was interrupted between its two renames.
pub fn recover(target: &Path) {
    let old = sibling(target, "old");
    if !target.exists() && old.exists() {
        let _ = std::fs::rename(&old, target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_discards() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tensors");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("old.txt"), b"old").unwrap();
        {
            let s = Staging::new(&target).unwrap();
            std::fs::write(s.path().join("new.txt"), b"new").unwrap();
        }
        assert!(target.join("old.txt").exists(), "a dropped staging folder changes nothing");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let s = Staging::new(&target).unwrap();
        std::fs::write(s.path().join("new.txt"), b"new").unwrap();
        s.commit().unwrap();
        assert!(target.join("new.txt").exists() && !target.join("old.txt").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn interrupted_swap_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("checkpoint");
        std::fs::create_dir_all(sibling(&target, "old")).unwrap();
        recover(&target);
        assert!(target.is_dir());
    }
}
