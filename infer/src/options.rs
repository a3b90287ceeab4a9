//! What a run of `infer` is asked for (`Options`, its `Source`s) and what it produced (`Outcome`).

use std::path::PathBuf;

use cxr_config::{Device, OutputFormat};
use cxr_store::manifest::RejectRow;

use crate::{Prediction, explain, shift};

/// What to predict on.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A preprocessed split of this experiment.
    Split(String),
    /// Image files and folders (searched recursively).
    Paths(Vec<PathBuf>),
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub device: Option<Device>,
    /// Sources to run; empty means every non-train split of the experiment.
    pub sources: Vec<Source>,
    pub out: Option<PathBuf>,
    pub format: Option<OutputFormat>,
    pub model: Option<PathBuf>,
    pub show_progress: bool,
    /// Predict only this shard's contiguous part of each source (`--shard I/N`), into
    /// `EXP/shards/I-of-N/predictions/`; `merge` combines the shards.
    pub shard: Option<cxr_store::shard::Shard>,
    /// Also draw each image's Grad-CAM heatmap (`--explain DIR`).
    pub explain: Option<explain::ExplainOptions>,
    /// Go on when the model and tensors do not belong together (`--allow-stale`), and say so.
    pub allow_stale: bool,
}

/// What one run produced.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub outputs: Vec<(PathBuf, usize)>,
    pub rejected: Vec<RejectRow>,
    pub provider: String,
    pub images: usize,
    pub seconds: f64,
    pub threshold: f64,
    /// The predictions when exactly one file was given (for the one-line answer).
    pub single: Option<Prediction>,
    /// The sources adapted to their cohort without labels (`infer.adaptation: prior`).
    pub adaptation: Vec<cxr_store::predictions::PriorAdaptation>,
    /// In an adapted experiment: the source model's predictions of the same splits.
    pub source_outputs: Vec<(PathBuf, usize)>,
    /// The shift monitor's scores of every source (a model with the monitor).
    pub shift: shift::Monitor,
}
