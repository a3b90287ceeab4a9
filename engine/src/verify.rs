//! Checking that a runtime library found in the project's `.ort/` is the one the pinned
//! wheels ship (by SHA-256), with a stamp (size + modification time + hash) beside it so
//! that the 30 MB file is hashed once, not at every stage start.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::EngineError;

/// SHA-256 of `libonnxruntime.so.1.31.1` as the pinned wheels ship it (scripts/wheels/).
pub const TRUSTED_LIBRARIES: &[(&str, &str)] = &[
    ("onnxruntime 1.31.1 (CPU)", "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"),
    ("onnxruntime-gpu 1.31.1 (CUDA 13)", "5104254339ecadae808da771bd0b63b240f0dbd466514234905e54372435c303"),
];

fn stamp_path(library: &Path) -> PathBuf {
    let name = library.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    library.with_file_name(format!(".{name}.verified"))
}

/// `size mtime_ns` of a file: what the stamp records besides the hash.
fn fingerprint(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let mtime = meta.modified()?.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    Ok(format!("{} {mtime}", meta.len()))
}

/// Checks `library` (already resolved through links) against [`TRUSTED_LIBRARIES`]; a
/// valid stamp beside it skips the hashing.
pub fn verify_library(library: &Path) -> Result<(), EngineError> {
    let io = |e: std::io::Error| EngineError::Load { path: library.to_path_buf(), message: e.to_string() };
    let fingerprint = fingerprint(library).map_err(io)?;
    let stamp = stamp_path(library);
    if let Ok(text) = std::fs::read_to_string(&stamp)
        && let Some((recorded, hash)) = text.trim().rsplit_once(' ')
        && recorded == fingerprint
        && TRUSTED_LIBRARIES.iter().any(|(_, h)| *h == hash)
    {
        return Ok(());
    }
    let hash = cxr_store::sha256_file(library)
        .map_err(|e| EngineError::Load { path: library.to_path_buf(), message: e.to_string() })?;
    let Some((what, _)) = TRUSTED_LIBRARIES.iter().find(|(_, h)| *h == hash) else {
        return Err(EngineError::Untrusted { path: library.to_path_buf(), sha256: hash });
    };
    tracing::debug!(library = %library.display(), what, "runtime library verified by SHA-256");
    // A stamp that cannot be written (read-only checkout) only means hashing again next time.
    let _ = std::fs::write(&stamp, format!("{fingerprint} {hash}\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_library_is_refused_and_a_stale_stamp_does_not_help() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&lib, b"not the real library").unwrap();
        let err = verify_library(&lib).unwrap_err().to_string();
        assert!(err.contains("libonnxruntime.so.1.31.1") && err.contains("SHA-256"), "{err}");
        // A forged stamp with a trusted hash but another size is ignored.
        std::fs::write(stamp_path(&lib), format!("1 2 {}\n", TRUSTED_LIBRARIES[0].1)).unwrap();
        assert!(verify_library(&lib).is_err());
    }
}
