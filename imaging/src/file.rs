//! Reading an image file safely: only regular files (links followed), never more than a
//! stated number of bytes, and never blocking on a FIFO or a device behind an image name.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::ImagingError;

/// What a path that is not a regular file is, for the reject reason.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a folder"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading without blocking: `O_NONBLOCK` makes opening a FIFO return at
/// once (a plain open waits for a writer for ever); it changes nothing for regular files.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

/// The bytes of the regular file at `path` (after following links), refusing FIFOs,
/// sockets, devices and folders before reading, and files over `max_bytes` before
/// reading them (the size is also enforced while reading, for files that grow).
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ImagingError> {
    // The type is checked on the path first, so that a device is never even opened.
    let meta = std::fs::metadata(path).map_err(|e| ImagingError::Read(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(ImagingError::NotAFile(kind_of(meta.file_type())));
    }
    let file = open_nonblocking(path).map_err(|e| ImagingError::Read(e.to_string()))?;
    // Checked again on the open file: the path may have been swapped in between.
    let meta = file.metadata().map_err(|e| ImagingError::Read(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(ImagingError::NotAFile(kind_of(meta.file_type())));
    }
    if meta.len() > max_bytes {
        return Err(ImagingError::FileTooLarge { bytes: meta.len(), max: max_bytes });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(|e| ImagingError::Read(e.to_string()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(ImagingError::FileTooLarge { bytes: bytes.len() as u64, max: max_bytes });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_others_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.png");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_bounded(&file, 10).unwrap(), b"0123456789");
        assert_eq!(read_bounded(&file, 9).unwrap_err(), ImagingError::FileTooLarge { bytes: 10, max: 9 });

        let fifo = dir.path().join("pipe.jpeg");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        assert_eq!(read_bounded(&fifo, 1 << 20).unwrap_err(), ImagingError::NotAFile("a FIFO (named pipe)"));

        let zero = dir.path().join("zero.jpeg");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(read_bounded(&zero, 1 << 20).unwrap_err(), ImagingError::NotAFile("a character device"));
        assert_eq!(read_bounded(dir.path(), 1 << 20).unwrap_err(), ImagingError::NotAFile("a folder"));
        assert!(matches!(read_bounded(&dir.path().join("missing"), 1).unwrap_err(), ImagingError::Read(_)));
    }
}
