//! One model opened as several sessions ("lanes"), each running whole batches on its own
//! share of the cores: for models whose operations are too short to split across threads,
//! where one session per core beats one session on every core.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::{EngineError, Input, Model};

/// A batch's named inputs.
pub type Inputs = Vec<(String, Input<'static>)>;

/// A batch's index and what its lane made of it.
type Done<E> = (usize, Result<Vec<Vec<f32>>, E>);

/// At most this many lanes: each holds its own copy of the weights (about 0.12 GB for a
/// float32 VGG16 with ONNX Runtime's packed copies), so more cores give each lane more
/// threads rather than more lanes.
pub const MAX_LANES: usize = 4;

/// How `cores` threads are dealt to lanes: `min(cores, MAX_LANES)` lanes, the threads
/// spread as evenly as they go (6 cores: 2, 2, 1, 1).
pub(crate) fn threads_per_lane(cores: usize) -> Vec<usize> {
    let cores = cores.max(1);
    let lanes = cores.min(MAX_LANES);
    (0..lanes).map(|i| cores / lanes + usize::from(i < cores % lanes)).collect()
}

/// The lanes of one model; see [`crate::Engine::lanes_from_bytes`].
#[derive(Debug)]
pub struct Lanes {
    models: Vec<Model>,
}

/// The lowest batch index no lane may start: the first failed batch, or 0 once delivery
/// has stopped. Set on drop when a thread unwinds, so that a panic stops the others too.
struct Limit<'a>(&'a AtomicUsize);

impl Limit<'_> {
    fn lower_to(&self, i: usize) {
        self.0.fetch_min(i, Ordering::Relaxed);
    }
}

impl Drop for Limit<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.lower_to(0);
        }
    }
}

impl Lanes {
    pub(crate) fn new(models: Vec<Model>) -> Lanes {
        assert!(!models.is_empty(), "a model opened on no lane");
        Lanes { models }
    }

    /// How many sessions run side by side.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Never true: there is at least one lane.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Runs batches `0..count`. On the lanes' threads, `input(i)` makes batch `i`'s inputs
    /// and a free lane runs them; on the calling thread, `sink(i, outputs)` gets the outputs
    /// named in `wanted` batch by batch in the order of `i`, whichever lane finished first.
    /// As a loop over the batches would: every batch before the first that fails (in
    /// `input`, the model or `sink`) reaches `sink`, none after it does, and its error is
    /// returned.
    pub fn run_in_order<E>(
        &mut self,
        count: usize,
        wanted: &[&str],
        input: impl Fn(usize) -> Result<Inputs, E> + Sync,
        mut sink: impl FnMut(usize, Vec<Vec<f32>>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<EngineError> + Send,
    {
        let next = AtomicUsize::new(0);
        let limit = AtomicUsize::new(count);
        let (sender, receiver) = mpsc::channel::<Done<E>>();
        std::thread::scope(|scope| {
            let mut lanes = Vec::with_capacity(self.models.len());
            for model in &mut self.models {
                let (sender, next, limit, input) = (sender.clone(), &next, &limit, &input);
                lanes.push(scope.spawn(move || {
                    let limit = Limit(limit);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= limit.0.load(Ordering::Relaxed) {
                            break;
                        }
                        let outputs = input(i).and_then(|inputs| Ok(model.run(inputs, wanted)?));
                        if outputs.is_err() {
                            limit.lower_to(i);
                        }
                        // The receiver outlives every lane: it is dropped after the scope.
                        let _ = sender.send((i, outputs));
                    }
                }));
            }
            drop(sender);
            let delivering = Limit(&limit);
            let result = deliver_in_order(&receiver, &mut sink);
            delivering.lower_to(0);
            // A lane that panicked stopped the delivery short; its panic goes on as it was.
            for lane in lanes {
                if let Err(panic) = lane.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            result
        })
    }
}

/// Passes the lanes' results to `sink` in the order of their batch index, up to the first
/// failed batch, whose error it returns (a later batch's error may arrive first).
fn deliver_in_order<E>(
    receiver: &mpsc::Receiver<Done<E>>,
    sink: &mut impl FnMut(usize, Vec<Vec<f32>>) -> Result<(), E>,
) -> Result<(), E> {
    let mut waiting = BTreeMap::new();
    let mut due = 0;
    // Ends when every lane has stopped: all batches (or all before a failure) were sent.
    for (i, outputs) in receiver {
        waiting.insert(i, outputs);
        while let Some(outputs) = waiting.remove(&due) {
            sink(due, outputs?)?;
            due += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_dealt_to_at_most_max_lanes_as_evenly_as_they_go() {
        assert_eq!(threads_per_lane(0), [1]);
        assert_eq!(threads_per_lane(1), [1]);
        assert_eq!(threads_per_lane(2), [1, 1]);
        assert_eq!(threads_per_lane(6), [2, 2, 1, 1]);
        assert_eq!(threads_per_lane(64), [16; 4]);
        for cores in 1..100 {
            let lanes = threads_per_lane(cores);
            assert_eq!(lanes.iter().sum::<usize>(), cores);
            assert!(lanes.len() <= MAX_LANES && lanes.iter().all(|&t| t >= 1));
        }
    }
}
