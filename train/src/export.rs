//! Writing `EXP/train/model.onnx` while training runs: the preprocessing + backbone part
//! (nearly all of the file, encoded once by [`EncodedFeatures`]) is written and synced
//! to disk on a background thread during the feature pass and the fit; only the head
//! is appended at the end. The file appears under its final name only when complete.
//!
//! [`EncodedFeatures`]: crate::backbone::EncodedFeatures

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, anyhow};
use cxr_store::{AtomicFile, StoreError};
use sha2::{Digest, Sha256};

type Written = Result<(AtomicFile, Sha256), StoreError>;

/// A `model.onnx` being written. Dropping it without [`ModelWriter::finish`] leaves no file.
#[derive(Debug)]
pub struct ModelWriter {
    writer: Option<JoinHandle<Written>>,
}

impl ModelWriter {
    /// Starts writing `prefix` to a temporary file beside `path`, and syncing it.
    pub fn start(path: PathBuf, prefix: Arc<Vec<u8>>) -> anyhow::Result<ModelWriter> {
        let writer = std::thread::Builder::new()
            .name("model-writer".into())
            .spawn(move || -> Written {
                // A killed run leaves its unfinished model (tens of MB) behind; clear those.
                cxr_store::remove_stale_temps(&path);
                let mut file = AtomicFile::create(&path)?;
                file.write_all(&prefix).map_err(|e| StoreError::io(&path, e))?;
                file.sync()?;
                let mut hash = Sha256::new();
                hash.update(prefix.as_slice());
                Ok((file, hash))
            })
            .context("cannot start the model writer thread")?;
        Ok(ModelWriter { writer: Some(writer) })
    }

    /// Appends `tail`, syncs and renames the file into place; returns its SHA-256.
    pub fn finish(mut self, tail: &[u8]) -> anyhow::Result<String> {
        let writer = self.writer.take().expect("finished once");
        let (mut file, mut hash) = writer.join().map_err(|_| anyhow!("the model writer panicked"))??;
        let path = file.final_path().to_path_buf();
        file.write_all(tail).map_err(|e| StoreError::io(&path, e))?;
        hash.update(tail);
        file.commit()?;
        Ok(hex::encode(hash.finalize()))
    }
}

impl Drop for ModelWriter {
    fn drop(&mut self) {
        // An abandoned export: wait for the writer, whose file is then removed unfinished.
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}
