//! One run at a time per experiment: an advisory lock on `EXP/.lock` (a shard's run locks
//! its own `EXP/.lock-shard-I-of-N`, so a Slurm array's tasks run side by side), held for a
//! stage's whole run. A second run on the same experiment stops at once and names the
//! process that holds it, instead of corrupting the first run's staging folders.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// A held experiment lock; released when dropped (or when the process ends, however).
#[derive(Debug)]
pub struct ExperimentLock {
    _file: File,
    pub path: PathBuf,
}

impl ExperimentLock {
    /// Locks `exp` for `stage` (creating the folder), or `exp`'s shard `shard` (`"2-of-4"`).
    pub fn acquire(exp: &Path, stage: &str, shard: Option<&str>) -> Result<ExperimentLock, StoreError> {
        std::fs::create_dir_all(exp).map_err(|e| StoreError::io(exp, e))?;
        let path = exp.join(shard.map_or(".lock".to_string(), |s| format!(".lock-shard-{s}")));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    exp: exp.to_path_buf(),
                    holder: if holder.is_empty() { "a process that has not said which".into() } else { holder.into() },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io(&path, e)),
        }
        // Who holds it, for the message a second run prints.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "`{stage}`, process {}", std::process::id());
        let _ = file.flush();
        Ok(ExperimentLock { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_shard_has_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let first = ExperimentLock::acquire(dir.path(), "train", None).unwrap();
        let err = ExperimentLock::acquire(dir.path(), "preprocess", None).unwrap_err().to_string();
        assert!(err.contains("`train`") && err.contains(&std::process::id().to_string()), "{err}");
        let shard = ExperimentLock::acquire(dir.path(), "preprocess", Some("0-of-2")).unwrap();
        assert!(ExperimentLock::acquire(dir.path(), "preprocess", Some("1-of-2")).is_ok());
        drop((first, shard));
        assert!(ExperimentLock::acquire(dir.path(), "report", None).is_ok(), "released on drop");
    }
}
