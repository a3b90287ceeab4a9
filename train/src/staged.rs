//! The train folder as one transaction: a run writes `EXP/.train.partial/` and swaps it in
//! for `EXP/train/` whole when it is complete. An interrupted or failed run leaves the
//! previous `train/` exactly as it was (never an old `model.onnx` beside a new history), and
//! its own checkpoint in the partial folder, where `--resume` continues.

use std::path::Path;

use anyhow::Context;
use cxr_store::layout::Layout;

/// Prepares the partial folder of `layout`'s experiment and returns the layout that writes
/// into it. A fresh run starts it empty; `--resume` continues the partial folder an
/// interrupted run left, or, when there is none, a copy of the finished run's checkpoint.
pub fn begin(layout: &Layout, resume: bool) -> anyhow::Result<Layout> {
    let staged = layout.staged_train();
    let partial = layout.train_partial();
    let remove = |dir: &Path| -> anyhow::Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        Ok(())
    };
    if !resume {
        remove(&partial)?;
    } else if !partial.exists() && layout.checkpoint().is_dir() {
        let copy = layout.exp.join(".train.partial.copying");
        remove(&copy)?;
        copy_dir(&layout.checkpoint(), &copy.join("checkpoint"))?;
        if layout.history().is_file() {
            std::fs::copy(layout.history(), copy.join("history.csv"))
                .with_context(|| format!("cannot copy {}", layout.history().display()))?;
        }
        std::fs::rename(&copy, &partial).with_context(|| format!("cannot rename {}", copy.display()))?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    Ok(staged)
}

/// Swaps the complete partial folder in for `EXP/train/`.
pub fn commit(staged: &Layout) -> anyhow::Result<()> {
    let target = Layout::at(&staged.exp).train();
    cxr_store::staging::recover(&target);
    cxr_store::staging::swap_in(&staged.train(), &target)?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).with_context(|| format!("cannot copy {}", source.display()))?;
        }
    }
    Ok(())
}
