//! Every on-disk format the stages exchange, one module each: `.npy` tensors,
//! manifests and rejects (CSV), metadata and provenance (JSON), and the folder
//! layout of an experiment. All writes are atomic (temporary file, then rename).

pub mod adaptation;
mod atomic;
pub mod csv_file;
pub mod heatmaps;
pub mod history;
pub mod integrity;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod model_meta;
pub mod npy;
pub mod operating_point;
pub mod predictions;
pub mod provenance;
pub mod shard;
pub mod staging;

use std::path::{Path, PathBuf};

pub use atomic::{AtomicFile, remove_stale_temps, sync_parent, write_atomic};

/// Errors of reading or writing stage files; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path} is missing: run `{stage}` first")]
    MissingInput { path: PathBuf, stage: &'static str },
    #[error("{path}: {message}")]
    Incompatible { path: PathBuf, message: String },
    #[error(
        "{exp} is in use by another run ({holder}): wait for it to finish or stop it; two runs on one experiment would overwrite each other's files"
    )]
    Locked { exp: PathBuf, holder: String },
}

impl StoreError {
    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io { path: path.to_path_buf(), source }
    }
}

/// Hex SHA-256 of a file's bytes, streamed.
pub fn sha256_file(path: &Path) -> Result<String, StoreError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| StoreError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Hex SHA-256 of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Reads a JSON file written by `stage`; a missing file says which stage to run first.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, stage: &'static str) -> Result<T, StoreError> {
    layout::require(path, stage)?;
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Format { path: path.to_path_buf(), message: e.to_string() })
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_atomic(path, serde_json::to_string_pretty(value).expect("serialisable").as_bytes())
}
