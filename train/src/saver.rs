//! Checkpoints and history written on a background thread, so that the next epoch
//! does not wait for the disk (the fsyncs of a checkpoint cost more than an epoch of
//! the tutorial's head). At most one save is in flight; each is still an atomic swap,
//! so a crash at any moment leaves the previous complete checkpoint.

use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Context, anyhow};

use crate::fit::State;

/// The background writer. Call [`Saver::finish`] before trusting what is on disk.
#[derive(Debug)]
pub struct Saver {
    queue: Option<SyncSender<State>>,
    writer: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Saver {
    /// Starts the writer for `checkpoint` and `history`.
    pub fn start(checkpoint: PathBuf, history: PathBuf) -> anyhow::Result<Saver> {
        // A rendezvous channel: a second save waits until the first one is written.
        let (queue, states) = sync_channel::<State>(0);
        let writer = std::thread::Builder::new()
            .name("checkpoint-writer".into())
            .spawn(move || -> anyhow::Result<()> {
                for state in states {
                    crate::checkpoint::save_checkpoint(&checkpoint, &state)?;
                    cxr_store::history::write(&history, &state.history)?;
                }
                Ok(())
            })
            .context("cannot start the checkpoint writer thread")?;
        Ok(Saver { queue: Some(queue), writer: Some(writer) })
    }

    /// Queues `state` for writing; returns the writer's error if an earlier save failed.
    pub fn submit(&mut self, state: State) -> anyhow::Result<()> {
        let queue = self.queue.as_ref().expect("submit after finish");
        if queue.send(state).is_err() {
            // The writer stopped: it failed, and joining it tells why.
            self.queue = None;
            return self.join();
        }
        Ok(())
    }

    /// Waits until every queued save is on disk.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.queue = None;
        self.join()
    }

    fn join(&mut self) -> anyhow::Result<()> {
        match self.writer.take() {
            Some(writer) => writer.join().map_err(|_| anyhow!("the checkpoint writer panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        // Never leave a save half-way because the caller returned early.
        self.queue = None;
        let _ = self.join();
    }
}
