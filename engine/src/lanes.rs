//! One model opened as several single-thread sessions ("lanes"), each running whole
//! batches on its own core: for models whose operations are too short to split across
//! threads, where one session per core beats one session on every core.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::{EngineError, Input, Model};

/// A batch's named inputs.
pub type Inputs = Vec<(String, Input<'static>)>;

/// A batch's index and what its lane made of it.
type Done<E> = (usize, Result<Vec<Vec<f32>>, E>);

/// The lanes of one model; see [`crate::Engine::lanes_from_bytes`].
#[derive(Debug)]
pub struct Lanes {
    models: Vec<Model>,
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
    /// Stops at the first error (no batch after it reaches `sink`).
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
        let stop = AtomicBool::new(false);
        let (sender, receiver) = mpsc::channel::<Done<E>>();
        std::thread::scope(|scope| {
            let mut lanes = Vec::with_capacity(self.models.len());
            for model in &mut self.models {
                let (sender, next, stop, input) = (sender.clone(), &next, &stop, &input);
                lanes.push(scope.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        let outputs = input(i).and_then(|inputs| Ok(model.run(inputs, wanted)?));
                        let failed = outputs.is_err();
                        // The receiver outlives every lane: it is dropped after the scope.
                        let _ = sender.send((i, outputs));
                        if failed {
                            break;
                        }
                    }
                }));
            }
            drop(sender);
            let result = deliver_in_order(count, &receiver, &mut sink);
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
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

/// Passes the lanes' results to `sink` in the order of their batch index.
fn deliver_in_order<E>(
    count: usize,
    receiver: &mpsc::Receiver<Done<E>>,
    sink: &mut impl FnMut(usize, Vec<Vec<f32>>) -> Result<(), E>,
) -> Result<(), E> {
    let mut waiting = BTreeMap::new();
    let mut due = 0;
    while due < count {
        // Every lane gone with batches undelivered and no error sent: one panicked.
        let Ok((i, outputs)) = receiver.recv() else { break };
        waiting.insert(i, outputs?);
        while let Some(outputs) = waiting.remove(&due) {
            sink(due, outputs)?;
            due += 1;
        }
    }
    Ok(())
}
