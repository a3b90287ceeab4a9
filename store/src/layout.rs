//! Where each stage's files live inside `EXP = <experiment.workdir>/<experiment.name>`.

use std::path::{Path, PathBuf};

use cxr_config::Config;

/// The paths of one experiment.
#[derive(Debug, Clone)]
pub struct Layout {
    pub exp: PathBuf,
    /// Where `train/`'s files go instead, while a run builds them (see [`Layout::staged_train`]).
    train_at: Option<PathBuf>,
    /// Where `predictions/`'s files go instead, while an `infer` run builds them.
    predictions_at: Option<PathBuf>,
}

impl Layout {
    pub fn new(config: &Config) -> Layout {
        Layout { exp: config.experiment_dir(), train_at: None, predictions_at: None }
    }

    pub fn at(exp: &Path) -> Layout {
        Layout { exp: exp.to_path_buf(), train_at: None, predictions_at: None }
    }

    /// `EXP/.train.partial/`: where a `train` run writes until it is complete, when the folder
    /// is swapped in for `EXP/train/` whole; an interrupted run leaves the previous `train/`
    /// as it was, and its checkpoint here for `--resume`.
    pub fn train_partial(&self) -> PathBuf {
        self.exp.join(".train.partial")
    }

    /// This layout with `train/`'s files in [`Layout::train_partial`].
    pub fn staged_train(&self) -> Layout {
        Layout { train_at: Some(self.train_partial()), ..self.clone() }
    }

    /// `EXP/tensors/`: written by `preprocess`.
    pub fn tensors(&self) -> PathBuf {
        self.exp.join("tensors")
    }

    /// `EXP/tensors/<split>/`.
    pub fn split(&self, split: &str) -> PathBuf {
        self.tensors().join(split)
    }

    pub fn images(&self, split: &str) -> PathBuf {
        self.split(split).join("images.npy")
    }

    pub fn labels(&self, split: &str) -> PathBuf {
        self.split(split).join("labels.npy")
    }

    pub fn manifest(&self, split: &str) -> PathBuf {
        self.split(split).join("manifest.csv")
    }

    pub fn rejects(&self) -> PathBuf {
        self.tensors().join("rejects.csv")
    }

    /// `EXP/tensors/<split>/rejects.csv`: the files of one split that could not be used.
    pub fn split_rejects(&self, split: &str) -> PathBuf {
        self.split(split).join("rejects.csv")
    }

    /// `EXP/tensors/meta.json`: written last by `preprocess`; its presence means the store is complete.
    pub fn tensors_meta(&self) -> PathBuf {
        self.tensors().join("meta.json")
    }

    /// `EXP/shards/<I>-of-<N>/`: one shard's own experiment-like folder (`tensors/`, `predictions/`).
    pub fn shard(&self, index: usize, count: usize) -> PathBuf {
        self.exp.join("shards").join(format!("{index}-of-{count}"))
    }

    /// `EXP/train/`: written by `train` (or, staged, its partial folder).
    pub fn train(&self) -> PathBuf {
        self.train_at.clone().unwrap_or_else(|| self.exp.join("train"))
    }

    pub fn model(&self) -> PathBuf {
        self.train().join("model.onnx")
    }

    pub fn history(&self) -> PathBuf {
        self.train().join("history.csv")
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.train().join("checkpoint")
    }

    /// `EXP/train/adaptation.json`: written by `train --adapt-from` (what the local sample chose).
    pub fn adaptation(&self) -> PathBuf {
        self.train().join("adaptation.json")
    }

    /// `EXP/train/budget.csv`: the label-budget curve of `train --adapt-from`.
    pub fn budget(&self) -> PathBuf {
        self.train().join("budget.csv")
    }

    /// `EXP/train/crossfit.csv`: the adapted model's cross-fitted predictions of the local
    /// sample (each image scored by a refit that did not see it).
    pub fn crossfit(&self) -> PathBuf {
        self.train().join("crossfit.csv")
    }

    /// `EXP/train/crossfit_source.csv`: the source model's predictions of the same images.
    pub fn crossfit_source(&self) -> PathBuf {
        self.train().join("crossfit_source.csv")
    }

    /// `<workdir>/.feature-cache/`: backbone features keyed by what they were computed from,
    /// shared by the experiments of one workdir.
    pub fn feature_cache(&self) -> PathBuf {
        self.exp.parent().unwrap_or(std::path::Path::new(".")).join(".feature-cache")
    }

    /// `EXP/train/operating_point.json`: the validation threshold `infer.threshold: from-validation` reads.
    pub fn operating_point(&self) -> PathBuf {
        self.train().join("operating_point.json")
    }

    /// `EXP/predictions/`: written by `infer` (or, staged, its folder being built).
    pub fn predictions_dir(&self) -> PathBuf {
        self.predictions_at.clone().unwrap_or_else(|| self.exp.join("predictions"))
    }

    /// This layout with `predictions/`'s files in `dir` (a staging folder swapped in whole).
    pub fn with_predictions_at(&self, dir: &Path) -> Layout {
        Layout { predictions_at: Some(dir.to_path_buf()), ..self.clone() }
    }

    /// `EXP/predictions/model.json`: the model and threshold behind the predictions.
    pub fn predictions_source(&self) -> PathBuf {
        self.predictions_dir().join("model.json")
    }

    /// `EXP/predictions/source/`: in an adapted experiment, the source model's predictions
    /// of the same images, for the report to set beside the adapted model's.
    pub fn source_predictions_dir(&self) -> PathBuf {
        self.predictions_dir().join("source")
    }

    /// `EXP/predictions/<source>.<extension>` (`csv` or `jsonl`).
    pub fn predictions_file(&self, source: &str, extension: &str) -> PathBuf {
        self.predictions_dir().join(format!("{source}.{extension}"))
    }

    /// `EXP/report/`: written by `report`.
    pub fn report(&self) -> PathBuf {
        self.exp.join("report")
    }
}

/// The rejects file beside a predictions file: `<stem>.rejects.csv`.
pub fn rejects_beside(predictions: &Path) -> PathBuf {
    predictions.with_extension("rejects.csv")
}

/// Fails with "run `<stage>` first" when `path` does not exist.
pub fn require(path: &Path, stage: &'static str) -> Result<(), crate::StoreError> {
    if path.exists() { Ok(()) } else { Err(crate::StoreError::MissingInput { path: path.to_path_buf(), stage }) }
}
