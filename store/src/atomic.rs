//! Atomic file writes: write to a temporary name in the same folder, fsync, rename.
//!
//! A file that exists under its final name is always complete; an interrupted
//! writer leaves at most a `.*.tmp-<pid>` file that no stage reads.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// A file being written; becomes visible under its final name only on [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file (and the parent folders).
    pub fn create(final_path: &Path) -> Result<AtomicFile, StoreError> {
        let (parent, prefix) = temp_prefix(final_path);
        std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        let temp_path = parent.join(format!("{prefix}{}", std::process::id()));
        let file = File::create(&temp_path).map_err(|e| StoreError::io(&temp_path, e))?;
        Ok(AtomicFile {
            final_path: final_path.to_path_buf(),
            temp_path,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// The path the file will have once committed.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    pub(crate) fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("not yet committed")
    }

    /// Rewrites bytes at `offset` (used to finish headers of streamed files).
    pub(crate) fn overwrite_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let temp = self.temp_path.clone();
        let w = self.writer();
        let end = w.stream_position().map_err(|e| StoreError::io(&temp, e))?;
        w.seek(std::io::SeekFrom::Start(offset)).map_err(|e| StoreError::io(&temp, e))?;
        w.write_all(bytes).map_err(|e| StoreError::io(&temp, e))?;
        w.seek(std::io::SeekFrom::Start(end)).map_err(|e| StoreError::io(&temp, e))?;
        Ok(())
    }

    /// Makes what is written so far durable, so that [`AtomicFile::commit`] only has the
    /// rest to sync (a large file's bulk can be synced early, off the critical path).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        let temp = self.temp_path.clone();
        let w = self.writer();
        w.flush().map_err(|e| StoreError::io(&temp, e))?;
        w.get_ref().sync_data().map_err(|e| StoreError::io(&temp, e))
    }

    /// Flushes, syncs and renames the file to its final name.
    pub fn commit(mut self) -> Result<PathBuf, StoreError> {
        let writer = self.writer.take().expect("committed once");
        let file = writer.into_inner().map_err(|e| StoreError::io(&self.temp_path, e.into_error()))?;
        file.sync_all().map_err(|e| StoreError::io(&self.temp_path, e))?;
        drop(file);
        std::fs::rename(&self.temp_path, &self.final_path).map_err(|e| StoreError::io(&self.final_path, e))?;
        sync_parent(&self.final_path)?;
        Ok(self.final_path.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// The folder of `final_path` and the name its temporary files start with, before the pid.
fn temp_prefix(final_path: &Path) -> (&Path, String) {
    let parent = final_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = final_path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    (parent, format!(".{name}.tmp-"))
}

/// Removes temporary files that writers of `final_path` left when they were killed
/// (`.<name>.tmp-<pid>`), except this process's own.
pub fn remove_stale_temps(final_path: &Path) {
    let (parent, prefix) = temp_prefix(final_path);
    let own = format!("{prefix}{}", std::process::id());
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with(&prefix) && file_name != own {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Makes a rename or removal in `path`'s folder durable: without syncing the folder, a power
/// cut can undo a rename the program already relied on.
pub fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(parent).and_then(|dir| dir.sync_all()).map_err(|e| StoreError::io(parent, e))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|e| StoreError::io(path, e))?;
    file.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temps_of_one_file_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model.onnx");
        let stale = dir.path().join(".model.onnx.tmp-999999");
        let other = dir.path().join(".history.csv.tmp-999999");
        for p in [&stale, &other, &target] {
            std::fs::write(p, b"x").unwrap();
        }
        let mut mine = AtomicFile::create(&target).unwrap();
        mine.write_all(b"new").unwrap();
        remove_stale_temps(&target);
        assert!(!stale.exists());
        assert!(other.exists() && target.exists());
        assert_eq!(mine.commit().unwrap(), target);
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }
}
