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
        let parent = final_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        let name = final_path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let temp_path = parent.join(format!(".{name}.tmp-{}", std::process::id()));
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

    /// Flushes, syncs and renames the file to its final name.
    pub fn commit(mut self) -> Result<PathBuf, StoreError> {
        let writer = self.writer.take().expect("committed once");
        let file = writer.into_inner().map_err(|e| StoreError::io(&self.temp_path, e.into_error()))?;
        file.sync_all().map_err(|e| StoreError::io(&self.temp_path, e))?;
        drop(file);
        std::fs::rename(&self.temp_path, &self.final_path).map_err(|e| StoreError::io(&self.final_path, e))?;
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

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|e| StoreError::io(path, e))?;
    file.commit()?;
    Ok(())
}
