//! The training checkpoint: parameters, optimizer state, the best epoch's parameters and
//! the loop state, written as one folder that replaces the previous one whole, so that a
//! crash at any moment leaves the last complete checkpoint (`--resume` reads it).

use std::path::{Path, PathBuf};

use anyhow::Context;
use cxr_config::OptimizerKind;
use cxr_store::npy::{NpyReader, NpyWriter};

use crate::fit::State;
use crate::head::{HeadShape, Params, optimizer_slots};

fn write_params(dir: &Path, params: &Params) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, values) in params {
        let mut w = NpyWriter::create(&dir.join(format!("{name}.npy")), cxr_store::npy::DType::F32, &[])?;
        w.write_f32(values)?;
        w.finish()?;
    }
    Ok(())
}

fn read_params(dir: &Path, names: &[String]) -> anyhow::Result<Params> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(format!("{name}.npy"));
            let values: Vec<f32> = NpyReader::open(&path)?.read_all::<f32>()?.into_iter().collect();
            Ok((name.clone(), values))
        })
        .collect()
}

/// Writes the checkpoint folder atomically: a complete new folder replaces the old one.
pub fn save_checkpoint(checkpoint: &Path, state: &State) -> anyhow::Result<()> {
    let staging = cxr_store::staging::Staging::new(checkpoint)?;
    let dir = staging.path();
    write_params(&dir.join("params"), &state.params)?;
    write_params(&dir.join("optimizer"), &state.slots)?;
    write_params(&dir.join("best"), &state.best_params)?;
    cxr_store::write_json(&dir.join("state.json"), state)?;
    staging.commit()?;
    Ok(())
}

/// Reads a checkpoint (or the previous one, if a swap was interrupted), with the slots of
/// `optimizer` (`train.optimizer.kind`).
pub fn load_checkpoint(
    checkpoint: &Path,
    shape: &HeadShape,
    optimizer: OptimizerKind,
) -> anyhow::Result<Option<State>> {
    cxr_store::staging::recover(checkpoint);
    let dir: PathBuf = checkpoint.to_path_buf();
    if !dir.join("state.json").is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(dir.join("state.json")).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut state: State =
        serde_json::from_str(&text).with_context(|| format!("{}: corrupt state.json", dir.display()))?;
    let names: Vec<String> = shape.params().into_iter().map(|(n, _)| n).collect();
    let slot_names: Vec<String> =
        optimizer_slots(optimizer).iter().flat_map(|s| names.iter().map(move |n| format!("{s}.{n}"))).collect();
    state.params = read_params(&dir.join("params"), &names)?;
    state.slots = read_params(&dir.join("optimizer"), &slot_names)?;
    state.best_params = read_params(&dir.join("best"), &names)?;
    Ok(Some(state))
}
