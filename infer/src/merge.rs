//! `infer --merge N`: the prediction files of N shards, concatenated in shard order.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cxr_config::Config;
use cxr_store::layout::Layout;
use cxr_store::provenance::Provenance;

use crate::shift;

/// A predictions CSV (not a rejects list).
pub(crate) fn is_predictions_csv(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".csv") && !name.ends_with(".rejects.csv")
}

/// Concatenates the prediction files of `count` shards, in shard order, into `EXP/predictions/`.
pub fn merge(config: &Config, count: usize) -> anyhow::Result<Vec<(PathBuf, usize)>> {
    let _lock = cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "infer --merge", None)?;
    let layout = Layout::new(config);
    // provenance.json is written last by an infer run: its presence means the shard is complete.
    let shards =
        cxr_store::shard::complete_shards(&layout, count, "infer", |l| l.predictions_dir().join("provenance.json"))
            .map_err(anyhow::Error::msg)?;
    let dirs: Vec<PathBuf> = shards.iter().map(Layout::predictions_dir).collect();
    let mut names: Vec<String> = std::fs::read_dir(&dirs[0])
        .with_context(|| format!("cannot list {}", dirs[0].display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| (n.ends_with(".csv") || n.ends_with(".jsonl")) && !n.starts_with('.'))
        .collect();
    names.sort();
    let mut written = Vec::new();
    let mut provenance = Provenance::start("infer --merge", config);
    // Built beside the old predictions folder and swapped in whole, as an infer run's is.
    let staging = cxr_store::staging::Staging::new(&layout.predictions_dir())?;
    let out_layout = layout.with_predictions_at(staging.path());
    for name in names {
        let csv = name.ends_with(".csv");
        let mut text = String::new();
        let mut rows = 0;
        for (i, dir) in dirs.iter().enumerate() {
            let path = dir.join(&name);
            let part = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                // A shard whose files all decoded has no rejects file.
                Err(_) if name.ends_with(".rejects.csv") => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            let mut lines = part.lines();
            if csv {
                let header = lines.next().unwrap_or_default();
                if text.is_empty() {
                    text.push_str(header);
                    text.push('\n');
                }
            }
            for line in lines {
                text.push_str(line);
                text.push('\n');
                rows += 1;
            }
            provenance.input(&format!("shard {i}/{count} {name}"), cxr_store::sha256_file(&path)?);
        }
        let out = out_layout.predictions_dir().join(&name);
        cxr_store::write_atomic(&out, text.as_bytes())?;
        written.push((out, rows));
    }
    // Every shard ran the same model with the same threshold: shard 0 says which. The shift
    // verdict is of shard 0's images only: it is made again from the merged predictions.
    let source = dirs[0].join("model.json");
    if source.is_file() {
        let mut recorded = cxr_store::predictions::PredictionSource::read(&source)?;
        if let Some(shift) = &recorded.shift {
            let mut merged = Vec::new();
            for (path, _) in written.iter().filter(|(p, _)| is_predictions_csv(p)) {
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("files").to_string();
                merged.push((name, cxr_store::predictions::read_csv(path)?.1));
            }
            recorded.shift = Some(shift::merged(shift, &merged));
        }
        recorded.write(&out_layout.predictions_source())?;
    }
    provenance.write(&out_layout.predictions_dir(), config)?;
    let dir = staging.commit()?;
    Ok(written.into_iter().map(|(path, rows)| (dir.join(path.file_name().unwrap_or_default()), rows)).collect())
}
